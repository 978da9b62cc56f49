"""Score plugins, with kube-scheduler's formulas and default weights.

Weights (kube-scheduler's default profile): TaintToleration 3, NodeAffinity 2,
PodTopologySpread 2, InterPodAffinity 2, NodeResourcesFit 1,
NodeResourcesBalancedAllocation 1. A plugin whose score would be the same on every node
for this pod returns ``SKIP`` from ``pre_score`` and is left out, which cannot change the
argmax.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from typing import ClassVar

from orchestra.scheduler._cache import NodeInfo
from orchestra.scheduler._filters import spread_counts
from orchestra.scheduler._framework import (
    MAX_NODE_SCORE,
    SKIP,
    SUCCESS,
    Cycle,
    Status,
    default_normalize,
)

HARD_POD_AFFINITY_WEIGHT = 1


class LeastAllocated:
    """NodeResourcesFit, strategy LeastAllocated: prefer the emptiest node (spreading).

    cpu and memory, weight 1 each, non-zero requests (pods without requests count as
    100m / 200Mi so that they still spread)."""

    name: ClassVar[str] = "NodeResourcesFit"
    node_local: ClassVar[bool] = True
    weight: ClassVar[int] = 1

    def score(self, cycle: Cycle, node: NodeInfo) -> int:
        pod = cycle.pod
        return (_least(node.nz_cpu + pod.nz_cpu, node.alloc_cpu)
                + _least(node.nz_memory + pod.nz_memory, node.alloc_memory)) // 2


class MostAllocated:
    """NodeResourcesFit, strategy MostAllocated: prefer the fullest node (bin-packing)."""

    name: ClassVar[str] = "NodeResourcesFit"
    node_local: ClassVar[bool] = True
    weight: ClassVar[int] = 1

    def score(self, cycle: Cycle, node: NodeInfo) -> int:
        pod = cycle.pod
        return (_most(node.nz_cpu + pod.nz_cpu, node.alloc_cpu)
                + _most(node.nz_memory + pod.nz_memory, node.alloc_memory)) // 2


def _least(requested: int, capacity: int) -> int:
    if capacity == 0 or requested > capacity:
        return 0
    return (capacity - requested) * MAX_NODE_SCORE // capacity


def _most(requested: int, capacity: int) -> int:
    if capacity == 0:
        return 0
    return min(requested, capacity) * MAX_NODE_SCORE // capacity


class BalancedAllocation:
    """NodeResourcesBalancedAllocation: prefer nodes whose cpu and memory fractions stay
    close after placing the pod: ``(1 - std) * 100``, with fractions capped at 1."""

    name: ClassVar[str] = "NodeResourcesBalancedAllocation"
    node_local: ClassVar[bool] = True
    weight: ClassVar[int] = 1

    def score(self, cycle: Cycle, node: NodeInfo) -> int:
        pod = cycle.pod
        fractions = []
        if node.alloc_cpu:
            fractions.append(min(1.0, (node.nz_cpu + pod.nz_cpu) / node.alloc_cpu))
        if node.alloc_memory:
            fractions.append(min(1.0, (node.nz_memory + pod.nz_memory) / node.alloc_memory))
        std = abs(fractions[0] - fractions[1]) / 2 if len(fractions) == 2 else 0.0
        return int((1 - std) * MAX_NODE_SCORE)


class TaintTolerationScore:
    """Fewer untolerated PreferNoSchedule taints is better (normalized, reversed)."""

    name: ClassVar[str] = "TaintToleration"
    node_local: ClassVar[bool] = True
    weight: ClassVar[int] = 3

    def pre_score(self, cycle: Cycle, nodes: Sequence[NodeInfo]) -> Status:
        return SUCCESS if cycle.cache.prefer_no_schedule else SKIP

    def score(self, cycle: Cycle, node: NodeInfo) -> int:
        pod = cycle.pod
        n = 0
        for t in node.taints:
            if t.effect == "PreferNoSchedule" and not any(
                tol.tolerates(t.key, t.value, t.effect)
                for tol in pod.tolerations
                if tol.effect in ("", "PreferNoSchedule")
            ):
                n += 1
        return n

    def normalize(self, cycle: Cycle, scores: list[int]) -> None:
        default_normalize(scores, reverse=True)


class NodeAffinityScore:
    """The sum of the weights of the pod's preferred node-affinity terms the node matches."""

    name: ClassVar[str] = "NodeAffinity"
    node_local: ClassVar[bool] = True
    weight: ClassVar[int] = 2

    def pre_score(self, cycle: Cycle, nodes: Sequence[NodeInfo]) -> Status:
        return SUCCESS if cycle.pod.preferred_node_affinity else SKIP

    def score(self, cycle: Cycle, node: NodeInfo) -> int:
        return sum(w for w, term in cycle.pod.preferred_node_affinity
                   if term(node.name, node.labels))

    def normalize(self, cycle: Cycle, scores: list[int]) -> None:
        default_normalize(scores, reverse=False)


class PodTopologySpreadScore:
    """``whenUnsatisfiable: ScheduleAnyway``: fewer matching pods in the node's domains is
    better, each constraint weighted by ``log(domains + 2)``."""

    name: ClassVar[str] = "PodTopologySpread"
    node_local: ClassVar[bool] = False
    weight: ClassVar[int] = 2

    def pre_score(self, cycle: Cycle, nodes: Sequence[NodeInfo]) -> Status:
        soft = [c for c in cycle.pod.spread if not c.hard]
        if not soft:
            return SKIP
        counts = spread_counts(cycle, soft)
        weights = [math.log(len(d) + 2) for d in counts]
        cycle.data[self.name] = (soft, counts, weights)
        return SUCCESS

    def score(self, cycle: Cycle, node: NodeInfo) -> int:
        soft, counts, weights = cycle.data[self.name]
        labels = node.labels
        total = 0.0
        for c, domains, w in zip(soft, counts, weights, strict=True):
            value = labels.get(c.topology_key)
            if value is None:
                return -1  # ignored: scores 0 after normalization
            total += domains.get(value, 0) * w + (c.max_skew - 1)
        return round(total)

    def normalize(self, cycle: Cycle, scores: list[int]) -> None:
        valid = [s for s in scores if s >= 0]
        if not valid:
            return
        low, high = min(valid), max(valid)
        for i, s in enumerate(scores):
            if s < 0:
                scores[i] = 0
            elif high == 0:
                scores[i] = MAX_NODE_SCORE
            else:
                scores[i] = MAX_NODE_SCORE * (high + low - s) // high


class InterPodAffinityScore:
    """Preferred pod affinity (+weight) and anti-affinity (-weight) per topology domain,
    both the pod's terms towards existing pods and existing pods' terms towards it
    (their required affinity terms count with weight 1); min-max normalized."""

    name: ClassVar[str] = "InterPodAffinity"
    node_local: ClassVar[bool] = False
    weight: ClassVar[int] = 2

    def pre_score(self, cycle: Cycle, nodes: Sequence[NodeInfo]) -> Status:
        pod = cycle.pod
        mine = pod.preferred_affinity or pod.preferred_anti_affinity
        if not mine and not cycle.cache.affinity_pod_count:
            return SKIP
        topo: dict[tuple[str, str], int] = defaultdict(int)
        for node in cycle.cache.nodes.values():
            labels = node.labels
            others = node.pods if mine else node.affinity_pods
            for other in others.values():
                weighed = [(t, t.weight) for t in pod.preferred_affinity if t.matches(other)]
                weighed += [(t, -t.weight) for t in pod.preferred_anti_affinity
                            if t.matches(other)]
                if other.has_pod_affinity:
                    weighed += [(t, t.weight) for t in other.preferred_affinity
                                if t.matches(pod)]
                    weighed += [(t, -t.weight) for t in other.preferred_anti_affinity
                                if t.matches(pod)]
                    weighed += [(t, HARD_POD_AFFINITY_WEIGHT) for t in other.affinity
                                if t.matches(pod)]
                for t, w in weighed:
                    value = labels.get(t.topology_key)
                    if value is not None:
                        topo[(t.topology_key, value)] += w
        pairs = [(k, v, w) for (k, v), w in topo.items() if w]
        if not pairs:
            return SKIP
        cycle.data[self.name] = pairs
        return SUCCESS

    def score(self, cycle: Cycle, node: NodeInfo) -> int:
        labels = node.labels
        return sum(w for k, v, w in cycle.data[self.name] if labels.get(k) == v)

    def normalize(self, cycle: Cycle, scores: list[int]) -> None:
        if not scores:
            return
        low, high = min(scores), max(scores)
        diff = high - low
        for i, s in enumerate(scores):
            scores[i] = MAX_NODE_SCORE * (s - low) // diff if diff > 0 else 0
