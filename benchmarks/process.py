"""The process runtime's overhead and the service proxy's throughput; prints one JSON object.

Startup: ``N`` Pods (1, then 50) each running ``sleep 3600`` are applied at once to a
cluster on the process runtime and the loopback network; measured from the ``apply``
call to every pod's ``Ready`` condition being True (seen from a store watch). In the same
run, the same command is spawned ``N`` times with plain ``subprocess.Popen`` (one after
another, which is how fast one Python process can start them), and
``overhead_ms_per_pod = (orchestra - plain) / N``: what scheduling, the kubelet, the
pod network, status writes and events add to each pod. Aim: < 20 ms per pod. Best of
``--rounds``.

Proxy: ``benchmarks/proxy.py``'s measurement (short HTTP requests and bulk transfer
through ``ServiceProxy`` vs direct, in three processes). Targets: >= 60% of direct for
requests, >= 80% for bulk.

    python benchmarks/process.py [--quick] [--rounds 3] [--pods 1,50] [--no-proxy]
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import orchestra as oc

HERE = Path(__file__).resolve().parent


def _command() -> list[str]:
    sleep = shutil.which("sleep") or "/bin/sleep"
    return [sleep, "3600"]


def _pod(i: int, command: list[str]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": f"bench-{i}", "labels": {"app": "bench"}},
            "spec": {"terminationGracePeriodSeconds": 1,
                     "containers": [{"name": "main", "image": "host", "command": command}]}}


def _ready(pod: Any) -> bool:
    st = pod.status
    return st is not None and any(c.type == "Ready" and c.status == "True"
                                  for c in st.conditions or ())


async def _orchestra_round(cluster: oc.Cluster, n: int, command: list[str]) -> float:
    store = cluster.store
    watch = store.watch("Pod", resource_version=store.resource_version)
    pending = {f"bench-{i}" for i in range(n)}
    try:
        t0 = time.perf_counter()
        await cluster.apply([_pod(i, command) for i in range(n)])
        async for ev in watch:
            if ev.type != "DELETED" and _ready(ev.object):
                pending.discard(ev.object.metadata.name)
                if not pending:
                    break
        elapsed = time.perf_counter() - t0
    finally:
        await watch.aclose()
    for i in range(n):
        await cluster.delete("pod", f"bench-{i}", grace_period_seconds=0)
    for i in range(n):
        await cluster.wait_for(f"pod/bench-{i}", "Deleted", timeout=60)
    return elapsed


def _plain_round(n: int, command: list[str]) -> float:
    procs = []
    t0 = time.perf_counter()
    try:
        for _ in range(n):
            procs.append(subprocess.Popen(command, stdin=subprocess.DEVNULL,
                                          stdout=subprocess.DEVNULL,
                                          stderr=subprocess.DEVNULL, start_new_session=True))
        return time.perf_counter() - t0
    finally:
        for p in procs:
            p.kill()
        for p in procs:
            p.wait()


async def startup(sizes: list[int], rounds: int) -> list[dict[str, Any]]:
    command = _command()
    out = []
    async with oc.Cluster(runtime="process", network="loopback", nodes=1) as cluster:
        await _orchestra_round(cluster, 1, command)  # warm-up: imports, first paths
        for n in sizes:
            orch = min([await _orchestra_round(cluster, n, command) for _ in range(rounds)])
            plain = min([await asyncio.to_thread(_plain_round, n, command)
                         for _ in range(rounds)])
            out.append({
                "pods": n, "command": " ".join(command),
                "orchestra_seconds": round(orch, 4), "plain_spawn_seconds": round(plain, 4),
                "ratio": round(orch / plain, 1) if plain else None,
                "overhead_ms_per_pod": round((orch - plain) / n * 1000, 2),
            })
    return out


def _proxy_module() -> Any:
    spec = importlib.util.spec_from_file_location("_orchestra_bench_proxy", HERE / "proxy.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def proxy(requests: int, bulk_mb: int, rounds: int, concurrency: str = "4,16,64"
          ) -> dict[str, Any]:
    mod = _proxy_module()
    args = argparse.Namespace(requests=requests, concurrency=concurrency, bulk_mb=bulk_mb,
                              rounds=rounds, haproxy=True)
    result: dict[str, Any] = asyncio.run(mod.run(args))
    result["targets"] = {"short_http_ratio": 0.6, "bulk_ratio": 0.8}
    return result


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--quick", action="store_true",
                    help="1 and 5 pods, one round, a small proxy run (for the test suite)")
    ap.add_argument("--pods", default=None, help="comma-separated pod counts (default 1,50)")
    ap.add_argument("--rounds", type=int, default=None)
    ap.add_argument("--no-proxy", dest="proxy", action="store_false", default=True)
    ap.add_argument("--requests", type=int, default=None)
    ap.add_argument("--bulk-mb", type=int, default=None)
    args = ap.parse_args(argv)
    sizes = [int(x) for x in (args.pods or ("1,5" if args.quick else "1,50")).split(",")]
    rounds = args.rounds or (1 if args.quick else 3)
    result: dict[str, Any] = {"startup": asyncio.run(startup(sizes, rounds)),
                              "target_overhead_ms_per_pod": 20}
    if args.proxy:
        result["proxy"] = proxy(args.requests or (300 if args.quick else 3000),
                                args.bulk_mb or (5 if args.quick else 100),
                                rounds if args.quick else max(rounds, 5),
                                "4,16" if args.quick else "4,16,64")
    result["rounds"] = rounds
    result["cpus"] = os.cpu_count()
    result["python"] = sys.version.split()[0]
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
