"""Scheduler throughput and packing quality; prints one JSON object.

Throughput: the shape of kube-scheduler's scheduler_perf ``SchedulingBasic`` test
(``5000Nodes_10000Pods``): nodes from ``node-default.yaml`` (cpu 4, memory 32Gi, pods 110),
pods from ``pod-default.yaml`` (one pause container requesting cpu 100m, memory 500Mi);
1,000 pods are placed first (not timed), then 10,000 are timed. Only the scheduler is
measured: ``schedule(pod)`` (filter, score, select, assume) for each pod; the models are
validated once beforehand.

Packing: a mixed workload (several request shapes, random order) on identical nodes,
with MostAllocated and with LeastAllocated; nodes used against the lower bound
``max over resources of ceil(sum of requests / node capacity)``.

    python benchmarks/scheduler.py [--nodes 5000] [--pods 10000] [--percentage N]
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import random
import time
from typing import Any

from orchestra.objects._core import Node
from orchestra.objects._pod import Pod
from orchestra.objects._quantity import cpu_milli, to_bytes
from orchestra.scheduler import Scheduler, Strategy, num_feasible_nodes_to_find

NODE_CPU, NODE_MEMORY, NODE_PODS = "4", "32Gi", "110"


def make_node(name: str) -> Node:
    capacity = {"cpu": NODE_CPU, "memory": NODE_MEMORY, "pods": NODE_PODS}
    return Node.model_validate({
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}},
        "status": {"capacity": capacity, "allocatable": capacity,
                   "conditions": [{"type": "Ready", "status": "True"}]},
    })


def make_pod(i: int, cpu: str = "100m", memory: str = "500Mi") -> Pod:
    req = {"cpu": cpu, "memory": memory}
    return Pod.model_validate({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": f"pod-{i}", "namespace": "default", "uid": f"uid-{i}"},
        "spec": {"containers": [{
            "name": "pause", "image": "registry.k8s.io/pause:3.10",
            "ports": [{"containerPort": 80}],
            "resources": {"limits": req, "requests": req},
        }]},
    })


def throughput(nodes: int, init_pods: int, pods: int, percentage: int | None) -> dict[str, Any]:
    sched = Scheduler(percentage_of_nodes_to_score=percentage, seed=1)
    for i in range(nodes):
        sched.add_node(make_node(f"node-{i}"))
    for p in (make_pod(i) for i in range(init_pods)):
        sched.schedule(p)
    measured = [make_pod(init_pods + i) for i in range(pods)]
    gc.collect()
    gc.disable()
    try:
        start, cpu_start = time.perf_counter(), time.process_time()
        for p in measured:
            sched.schedule(p)
        elapsed = time.perf_counter() - start
        cpu = time.process_time() - cpu_start
    finally:
        gc.enable()
    per_node = [len(n.pods) for n in sched.cache.order]
    return {
        "nodes": nodes,
        "init_pods": init_pods,
        "measured_pods": pods,
        "seconds": round(elapsed, 3),
        "pods_per_second": round(pods / elapsed),
        "cpu_seconds": round(cpu, 3),
        "pods_per_cpu_second": round(pods / cpu),  # the machine may be shared
        "feasible_nodes_to_find": num_feasible_nodes_to_find(nodes, percentage),
        "pods_per_node_max": max(per_node),
        "pods_per_node_min": min(per_node),
    }


SHAPES = [  # (cpu, memory): small web pods to large batch pods, cpu- and memory-heavy
    ("100m", "256Mi"), ("250m", "512Mi"), ("500m", "1Gi"), ("1", "2Gi"),
    ("2", "4Gi"), ("250m", "4Gi"), ("500m", "6Gi"), ("1500m", "1Gi"),
]


def packing(strategy: Strategy, nodes: int, pods: int, percentage: int | None,
            seed: int = 7) -> dict[str, Any]:
    rng = random.Random(seed)
    shapes = [rng.choice(SHAPES) for _ in range(pods)]
    workload = [make_pod(i, cpu, mem) for i, (cpu, mem) in enumerate(shapes)]
    sched = Scheduler(strategy=strategy, percentage_of_nodes_to_score=percentage, seed=seed)
    for i in range(nodes):
        sched.add_node(make_node(f"node-{i}"))
    unscheduled = 0
    for p in workload:
        try:
            sched.schedule(p)
        except Exception:
            unscheduled += 1
    cpu_total = sum(cpu_milli(c) for c, _ in shapes)
    mem_total = sum(to_bytes(m) for _, m in shapes)
    bound = max(math.ceil(cpu_total / cpu_milli(NODE_CPU)),
                math.ceil(mem_total / to_bytes(NODE_MEMORY)),
                math.ceil(pods / int(NODE_PODS)))
    used = sum(1 for n in sched.cache.order if n.pods)
    return {"strategy": strategy, "nodes_used": used, "lower_bound": bound,
            "ratio": round(used / bound, 4), "unscheduled": unscheduled}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--nodes", type=int, default=5000)
    ap.add_argument("--init-pods", type=int, default=1000)
    ap.add_argument("--pods", type=int, default=10000)
    ap.add_argument("--percentage", type=int, default=None,
                    help="percentageOfNodesToScore (default: Kubernetes' adaptive value)")
    ap.add_argument("--packing-nodes", type=int, default=1000)
    ap.add_argument("--packing-pods", type=int, default=3000)
    args = ap.parse_args()
    result = {
        "benchmark": "scheduler",
        "shape": {"node": {"cpu": NODE_CPU, "memory": NODE_MEMORY, "pods": NODE_PODS},
                  "pod": {"cpu": "100m", "memory": "500Mi"}},
        "percentage_of_nodes_to_score": args.percentage or "adaptive (50 - nodes/125, min 5)",
        "throughput": throughput(args.nodes, args.init_pods, args.pods, args.percentage),
        "packing": {
            "shapes": SHAPES,
            "nodes": args.packing_nodes,
            "pods": args.packing_pods,
            "MostAllocated": packing("MostAllocated", args.packing_nodes, args.packing_pods,
                                     args.percentage),
            "LeastAllocated": packing("LeastAllocated", args.packing_nodes, args.packing_pods,
                                      args.percentage),
        },
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
