"""``cluster.top``: ``kubectl top pods|nodes`` from what metrics-server would serve.

A pod's usage is its running containers' CPU (millicores) and memory (bytes) from the
runtime's stats, the same numbers the HorizontalPodAutoscaler reads; a node's is the sum
of its pods' (metrics-server reads the node's root cgroup; orchestra's nodes share one
host, so the sum of their pods is what is theirs). The rows print as kubectl prints them
(``12m``, ``64Mi``, percentages of the node's allocatable), and each row carries the
``metrics.k8s.io/v1beta1`` PodMetrics or NodeMetrics object as a dict.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from orchestra.objects import cpu_milli, to_bytes
from orchestra.present._tables import Table

__all__ = ["TopRow", "node_top", "pod_top"]

Metrics = Callable[[Any], Awaitable[dict[str, tuple[float, int]] | None]]


@dataclass(frozen=True)
class TopRow:
    """One pod's or node's usage: CPU in millicores, memory in bytes, and the
    metrics.k8s.io object (``PodMetrics`` or ``NodeMetrics``) as a dict."""

    name: str
    namespace: str | None
    cpu_milli: float
    memory_bytes: int
    metrics: dict[str, Any] = field(repr=False)


def _stamp(now: float) -> str:
    return _dt.datetime.fromtimestamp(now, _dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _usage(cpu_milli: float, memory: int) -> dict[str, str]:
    return {"cpu": f"{round(cpu_milli * 1_000_000)}n", "memory": f"{memory // 1024}Ki"}


def _cpu(milli: float) -> str:
    return f"{int(milli)}m"


def _mem(b: int) -> str:
    return f"{b // (1024 * 1024)}Mi"


async def pod_top(pods: Sequence[Any], metrics: Metrics, now: float, *,
                  all_namespaces: bool) -> Table:
    rows: list[TopRow] = []
    for pod in sorted(pods, key=lambda p: (p.metadata.namespace or "", p.metadata.name)):
        usage = await metrics(pod)
        if usage is None:
            continue  # kubectl top shows no row for a pod without metrics
        containers = [{"name": n, "usage": _usage(c, m)} for n, (c, m) in usage.items()]
        cpu = sum(c for c, _ in usage.values())
        mem = sum(m for _, m in usage.values())
        rows.append(TopRow(pod.metadata.name, pod.metadata.namespace, cpu, mem, {
            "kind": "PodMetrics", "apiVersion": "metrics.k8s.io/v1beta1",
            "metadata": {"name": pod.metadata.name, "namespace": pod.metadata.namespace,
                         "creationTimestamp": _stamp(now),
                         "labels": dict(pod.metadata.labels or {})},
            "timestamp": _stamp(now), "window": "15s", "containers": containers}))
    headers = ["NAME", "CPU(cores)", "MEMORY(bytes)"]
    cells = [[r.name, _cpu(r.cpu_milli), _mem(r.memory_bytes)] for r in rows]
    if all_namespaces:
        headers = ["NAMESPACE", *headers]
        cells = [[r.namespace or "", *c] for r, c in zip(rows, cells, strict=True)]
    return Table("PodMetrics", headers, cells, rows,
                 empty="error: Metrics not available for pods")


async def node_top(nodes: Sequence[Any], pods: Sequence[Any], metrics: Metrics,
                   now: float) -> Table:
    rows: list[TopRow] = []
    cells = []
    for node in sorted(nodes, key=lambda n: n.metadata.name):
        cpu, mem = 0.0, 0
        for pod in pods:
            if pod.spec.node_name != node.metadata.name:
                continue
            usage = await metrics(pod)
            for c, m in (usage or {}).values():
                cpu += c
                mem += m
        alloc = (node.status.allocatable or {}) if node.status else {}
        alloc_cpu = cpu_milli(str(alloc.get("cpu", "0")))
        alloc_mem = to_bytes(str(alloc.get("memory", "0")))
        rows.append(TopRow(node.metadata.name, None, cpu, mem, {
            "kind": "NodeMetrics", "apiVersion": "metrics.k8s.io/v1beta1",
            "metadata": {"name": node.metadata.name, "creationTimestamp": _stamp(now),
                         "labels": dict(node.metadata.labels or {})},
            "timestamp": _stamp(now), "window": "15s", "usage": _usage(cpu, mem)}))
        cells.append([node.metadata.name, _cpu(cpu),
                      f"{int(cpu * 100 / alloc_cpu)}%" if alloc_cpu else "<unknown>",
                      _mem(mem), f"{int(mem * 100 / alloc_mem)}%" if alloc_mem else "<unknown>"])
    return Table("NodeMetrics", ["NAME", "CPU(cores)", "CPU%", "MEMORY(bytes)", "MEMORY%"],
                 cells, rows, empty="error: metrics not available yet")
