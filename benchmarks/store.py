"""Store benchmark: prints one JSON object of figures.

    .venv/bin/python benchmarks/store.py [--quick]

- ``create_per_s``: pods created from dicts (validation included), 1 container, 3 labels,
  resource requests. Target >= 30,000/s.
- ``get_per_s``: ``store.get("pods", name)``. Target >= 500,000/s.
- ``list``: for N stored pods, a label selector matching 100 of them through the indexes
  vs a linear scan over the same store, in the same run. Target: >= 100x, flat in N.
- ``watch``: 100 watchers x 10,000 updates, events delivered per second (the writer
  commits in batches of 100 and yields, as a busy control plane does). Target >= 500,000/s.
- ``bytes_per_pod``: tracemalloc growth per stored typical pod, history included.
  Aim <= 5 KB.

Rates are measured on this process's CPU time (``time.process_time``), best of a few
runs, because the benchmark machine is usually shared: wall time would measure the
neighbours. ``create_per_s_gc_off`` repeats the create benchmark with the cyclic garbage
collector paused, to show how much of the cost is the collector walking a growing heap.
"""

from __future__ import annotations

import asyncio
import gc
import json
import sys
import time
import tracemalloc
from collections.abc import Callable
from typing import Any

import orchestra.objects
import orchestra.objects._core
import orchestra.objects._pod  # noqa: F401
from orchestra._store import Store
from orchestra.objects._base import KubeObject
from orchestra.objects._model import FrozenDict

_now = time.process_time


def pod_dict(i: int, groups: int = 100) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": f"web-{i}",
            "namespace": "default",
            "labels": {"app": f"app-{i % groups}", "tier": "frontend", "track": "stable"},
        },
        "spec": {
            "containers": [{
                "name": "web",
                "image": "nginx:1.27",
                "ports": [{"containerPort": 80}],
                "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}},
            }],
        },
    }


def rate(n: int, fn: Callable[[], object], *, min_time: float = 0.3) -> float:
    """Operations per second of ``fn`` (which performs ``n`` operations), best of runs."""
    best = float("inf")
    total = 0.0
    runs = 0
    while total < min_time or runs < 3:
        t0 = _now()
        fn()
        dt = _now() - t0
        best = min(best, dt)
        total += dt
        runs += 1
    return n / best


def bench_create(n: int, *, gc_off: bool = False) -> float:
    dicts = [pod_dict(i) for i in range(n)]
    gc.collect()
    gc.freeze()  # the inputs are the benchmark's, not the store's: keep them out of GC
    best = float("inf")
    for _ in range(3):
        store = Store()
        gc.collect()
        if gc_off:
            gc.disable()
        t0 = _now()
        create = store.create
        for d in dicts:
            create(d)
        best = min(best, _now() - t0)
        gc.enable()
    gc.unfreeze()
    return n / best


def fill(n: int) -> Store:
    store = Store(history=1000)
    for i in range(n):
        store.create(pod_dict(i, groups=n // 100))
    return store


def bench_get(store: Store, n: int) -> dict[str, float]:
    names = [f"web-{i}" for i in range(0, n, max(1, n // 1000))]
    get = store.get

    def by_kind_and_name() -> None:
        for name in names:
            get("pods", name)

    def by_ref() -> None:
        for name in names:
            get("pods/" + name)

    return {
        "kind_name_per_s": round(rate(len(names), by_kind_and_name)),
        "ref_string_per_s": round(rate(len(names), by_ref)),
    }


def bench_list(store: Store, n: int) -> dict[str, float]:
    assert len(store.list("pods", selector="app=app-7")) == 100
    assert len(store._list_by_scan("pods", selector="app=app-7")) == 100
    indexed = rate(1, lambda: store.list("pods", selector="app=app-7"))
    scan = rate(1, lambda: store._list_by_scan("pods", selector="app=app-7"), min_time=0.5)
    with_ns = rate(1, lambda: store.list("pods", "default", "app=app-7,tier=frontend"))
    return {
        "n": n,
        "indexed_lists_per_s": round(indexed),
        "indexed_ns_and_2_labels_per_s": round(with_ns),
        "scan_lists_per_s": round(scan, 1),
        "speedup": round(indexed / scan, 1),
    }


async def _fan_out(watchers: int, updates: int, batch: int) -> float:
    store = Store(history=updates + 10)
    base = store.create(pod_dict(0))
    versions: list[KubeObject] = []
    obj = base
    # Cheap, valid updates: a label change (model_copy keeps the object immutable).
    for i in range(updates):
        meta = obj.metadata.model_copy(update={
            "labels": FrozenDict({"app": "app-0", "n": str(i)}), "resource_version": None})
        versions.append(obj.model_copy(update={"metadata": meta}))
    ws = [store.watch("pods", resource_version=store.resource_version)
          for _ in range(watchers)]
    done = 0

    async def consume(w: Any) -> None:
        nonlocal done
        seen = 0
        async for _ev in w:
            seen += 1
            if seen == updates:
                break
        done += 1

    tasks = [asyncio.ensure_future(consume(w)) for w in ws]
    await asyncio.sleep(0)
    t0 = _now()
    update = store.update
    for i, v in enumerate(versions):
        update(v)
        if i % batch == batch - 1:
            await asyncio.sleep(0)
    await asyncio.gather(*tasks)
    dt = _now() - t0
    assert done == watchers
    return watchers * updates / dt


def bench_watch(watchers: int, updates: int) -> dict[str, float]:
    out: dict[str, float] = {}
    for batch in (100, 1):
        out[f"deliveries_per_s_batch_{batch}"] = round(
            asyncio.run(_fan_out(watchers, updates if batch > 1 else updates // 10, batch)))
    return out


def bench_memory(n: int) -> float:
    dicts = [pod_dict(i) for i in range(n)]
    gc.collect()
    store = Store(history=100_000)
    tracemalloc.start()
    gc.collect()
    before = tracemalloc.get_traced_memory()[0]
    for d in dicts:
        store.create(d)
    gc.collect()
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    return (after - before) / n


def main() -> None:
    quick = "--quick" in sys.argv
    result: dict[str, Any] = {}
    result["create_per_s"] = round(bench_create(5_000 if quick else 20_000))
    result["create_per_s_gc_off"] = round(bench_create(5_000 if quick else 20_000, gc_off=True))
    result["bytes_per_pod"] = round(bench_memory(2_000 if quick else 10_000))
    lists = []
    for n in (10_000,) if quick else (10_000, 100_000):
        store = fill(n)
        if n == 10_000:
            result["get"] = bench_get(store, n)
        lists.append(bench_list(store, n))
        del store
        gc.collect()
    result["list"] = lists
    result["watch"] = {"watchers": 100, "updates": 10_000,
                       **bench_watch(100, 1_000 if quick else 10_000)}
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
