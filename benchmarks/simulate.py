"""A simulated cluster at scale on the fake runtime; prints one JSON object.

The default run: 1,000 nodes (cpu 32, memory 128Gi, 110 pods each) and 300 Deployments
of 100 replicas (30,000 pods), applied at once; measured from the first ``apply`` to
every Deployment reporting ``Available=True`` with all replicas available. The figure
includes everything the control plane does on the way: admission, the Deployment and
ReplicaSet controllers, the scheduler, 1,000 kubelets (pod IPs, fake containers, pod
status writes), events, Endpoints for one Service per Deployment, node lease
heartbeats. Goal: < 60 s and < 2 GiB peak resident memory.

``--large`` is Kubernetes' own scalability limit: 5,000 nodes and 150,000 pods
(1,500 Deployments x 100). ``--quick`` is a small run the test suite uses to keep the
benchmark working (20 nodes, 10 x 20 pods).

Peak memory is the process's high-water resident set (``VmHWM``), which includes the
interpreter and the imported modules (``baseline_mb``, measured before the cluster
starts); tracemalloc would slow a run of this size several times.

    python benchmarks/simulate.py [--quick | --large] [--nodes N --deployments D
        --replicas R] [--events | --no-events] [--profile FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import resource
import sys
import time
from typing import Any

import orchestra as oc


def _rss_mb(field: str) -> float:
    """A ``/proc/self/status`` memory figure in MiB (falls back to ru_maxrss)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def deployment(i: int, replicas: int) -> dict[str, Any]:
    name = f"app-{i:04d}"
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name, "tier": "web"}},
                "spec": {"containers": [{
                    "name": "web", "image": "registry.example/web:1.0",
                    "ports": [{"containerPort": 8080, "name": "http"}],
                    "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}},
                }]},
            },
        },
    }


def service(i: int) -> dict[str, Any]:
    name = f"app-{i:04d}"
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name},
            "spec": {"selector": {"app": name},
                     "ports": [{"port": 80, "targetPort": "http"}]}}


def _available(d: Any) -> bool:
    st = d.status
    if st is None or (st.available_replicas or 0) < d.spec.replicas:
        return False
    if (st.updated_replicas or 0) < d.spec.replicas:
        return False
    return any(c.type == "Available" and c.status == "True" for c in st.conditions or ())


async def run(nodes: int, deployments: int, replicas: int, events: bool,
              services: bool, timeout: float) -> dict[str, Any]:  # noqa: ASYNC109
    baseline = _rss_mb("VmRSS")
    specs = [oc.NodeSpec(f"node-{i:05d}", cpu="32", memory="128Gi", pods=110)
             for i in range(nodes)]
    t_start = time.perf_counter()
    cpu0 = time.process_time()
    cluster = oc.Cluster(runtime="fake", nodes=specs, events=events)
    await cluster.start()
    t_nodes = time.perf_counter() - t_start
    try:
        objs: list[dict[str, Any]] = []
        for i in range(deployments):
            objs.append(deployment(i, replicas))
            if services:
                objs.append(service(i))
        t0 = time.perf_counter()
        await cluster.apply(objs)
        t_applied = time.perf_counter() - t0
        store = cluster.store
        watch = store.watch("Deployment", resource_version=store.resource_version)
        pending = {d.metadata.name for d in store.list("Deployment") if not _available(d)}
        timed_out = False
        first_ready: float | None = None
        with_deadline = asyncio.timeout(timeout)
        try:
            async with with_deadline:
                if pending:
                    async for ev in watch:
                        obj = ev.object
                        if ev.type != "DELETED" and _available(obj):
                            pending.discard(obj.metadata.name)
                            if first_ready is None:
                                first_ready = time.perf_counter() - t0
                        if not pending:
                            break
        except TimeoutError:
            timed_out = True
        finally:
            await watch.aclose()
        elapsed = time.perf_counter() - t0
        cpu = time.process_time() - cpu0
        pods: list[Any] = store.list("Pod")
        running = sum(1 for p in pods if p.status is not None and p.status.phase == "Running")
        n_events = len(store.list("Event"))
        endpoints = 0
        if services:
            eps: list[Any] = store.list("Endpoints")
            for ep in eps:
                for subset in ep.subsets or ():
                    endpoints += len(subset.addresses or ())
        result = {
            "nodes": nodes, "deployments": deployments, "replicas": replicas,
            "pods": deployments * replicas, "events": events, "services": services,
            "seconds_to_available": round(elapsed, 2),
            "seconds_first_available": round(first_ready, 2) if first_ready else None,
            "seconds_apply_call": round(t_applied, 2),
            "seconds_start_nodes": round(t_nodes, 2),
            "pods_per_second": round(deployments * replicas / elapsed),
            "cpu_seconds": round(cpu, 1),
            "peak_rss_mb": round(_rss_mb("VmHWM")),
            "baseline_rss_mb": round(baseline),
            "pods_running": running, "ready_endpoints": endpoints,
            "event_objects": n_events,
            "all_available": not timed_out and not pending,
            "deployments_not_available": len(pending),
        }
    finally:
        t_stop = time.perf_counter()
        await cluster.stop()
        result["seconds_stop"] = round(time.perf_counter() - t_stop, 2)
    return result


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    size = ap.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="20 nodes, 10 x 20 pods")
    size.add_argument("--large", action="store_true", help="5,000 nodes, 1,500 x 100 pods")
    ap.add_argument("--nodes", type=int)
    ap.add_argument("--deployments", type=int)
    ap.add_argument("--replicas", type=int)
    ap.add_argument("--events", dest="events", action="store_true", default=True,
                    help="record Events (the default, as users get it)")
    ap.add_argument("--no-events", dest="events", action="store_false")
    ap.add_argument("--no-services", dest="services", action="store_false", default=True)
    ap.add_argument("--timeout", type=float, default=1800.0)
    ap.add_argument("--profile", metavar="FILE", help="write a cProfile to FILE")
    args = ap.parse_args(argv)
    nodes, deps, reps = (20, 10, 20) if args.quick else \
        (5000, 1500, 100) if args.large else (1000, 300, 100)
    nodes = args.nodes or nodes
    deps = args.deployments or deps
    reps = args.replicas or reps
    # A long-lived control plane with hundreds of thousands of objects: the cyclic
    # collector's full passes over that heap cost more than they find, so raise the
    # young-generation threshold the way servers of this size usually do.
    gc.freeze()
    gc.set_threshold(50_000, 50, 100)
    coro = run(nodes, deps, reps, args.events, args.services, args.timeout)
    if args.profile:
        import cProfile

        prof = cProfile.Profile()
        result = prof.runcall(asyncio.run, coro)
        prof.dump_stats(args.profile)
    else:
        result = asyncio.run(coro)
    result["python"] = sys.version.split()[0]
    result["cpus"] = os.cpu_count()
    print(json.dumps(result, indent=2))
    return 0 if result["all_available"] else 1


if __name__ == "__main__":
    sys.exit(main())
