"""The scheduler: a cache of nodes and pods, and the pipeline that places one pod.

Invariants:

- Every pod counted in the cache is either bound (``spec.nodeName`` seen through
  ``add_pod``/``update_pod``) or *assumed* by :meth:`Scheduler.schedule`, which counts the
  pod on its chosen node at once so that the next ``schedule`` sees those resources taken,
  before the binding reaches the store. ``forget`` undoes an assumption whose binding
  failed; ``add_pod`` of the bound pod confirms it.
- ``schedule`` either returns a node that passed every filter or raises
  :class:`Unschedulable` carrying kube-scheduler's FitError message; it never returns a
  node that the filters would reject.
- Synchronous and CPU-bound by design (no awaits): the scheduler loop calls it from the
  event loop; one call costs well under a millisecond on a 5,000-node cluster.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Literal

from orchestra.scheduler import _filters as filters
from orchestra.scheduler import _scores as scores
from orchestra.scheduler._cache import Cache, NodeInfo
from orchestra.scheduler._framework import (
    SKIP,
    SUCCESS,
    Cycle,
    FilterPlugin,
    NormalizeScorePlugin,
    PreFilterPlugin,
    PreScorePlugin,
    ScorePlugin,
    Status,
)
from orchestra.scheduler._info import PodFacts
from orchestra.scheduler._messages import NO_NODES, Unschedulable, fit_error
from orchestra.scheduler._preemption import Budget, Candidate
from orchestra.scheduler._preemption import find as find_preemption
from orchestra.scheduler._volumes import VolumeBinding, VolumeFacts

Strategy = Literal["LeastAllocated", "MostAllocated", "BalancedAllocation"]

MIN_FEASIBLE_NODES_TO_FIND = 100
MIN_FEASIBLE_NODES_PERCENTAGE_TO_FIND = 5
TERMINAL_PHASES = ("Succeeded", "Failed")


class ScheduleResult:
    """Where a pod went and how many nodes were looked at to decide it."""

    __slots__ = ("evaluated_nodes", "feasible_nodes", "node")

    def __init__(self, node: str, evaluated_nodes: int, feasible_nodes: int) -> None:
        self.node = node
        self.evaluated_nodes = evaluated_nodes
        self.feasible_nodes = feasible_nodes

    def __repr__(self) -> str:
        return (f"ScheduleResult({self.node!r}, evaluated={self.evaluated_nodes}, "
                f"feasible={self.feasible_nodes})")


def default_filters() -> list[FilterPlugin]:
    """kube-scheduler's default filter order."""
    return [filters.NodeUnschedulable(), filters.NodeName(), filters.TaintToleration(),
            filters.NodeAffinity(), filters.NodePorts(), filters.NodeResourcesFit(),
            VolumeBinding(), filters.PodTopologySpread(), filters.InterPodAffinity()]


def default_scores(strategy: Strategy) -> list[ScorePlugin]:
    """The default score plugins, with the resource plugins the strategy calls for."""
    resource: list[ScorePlugin]
    if strategy == "LeastAllocated":
        resource = [scores.LeastAllocated(), scores.BalancedAllocation()]
    elif strategy == "MostAllocated":
        resource = [scores.MostAllocated(), scores.BalancedAllocation()]
    elif strategy == "BalancedAllocation":
        resource = [scores.BalancedAllocation()]
    else:
        raise ValueError(f"unknown scoring strategy {strategy!r}")
    return [*resource, scores.TaintTolerationScore(), scores.NodeAffinityScore(),
            scores.PodTopologySpreadScore(), scores.InterPodAffinityScore()]


def num_feasible_nodes_to_find(num_nodes: int, percentage: int | None) -> int:
    """kube-scheduler's ``numFeasibleNodesToFind``: all nodes below 100; else the given
    percentage, or adaptively ``50 - nodes/125`` percent (at least 5%), never under 100."""
    if num_nodes < MIN_FEASIBLE_NODES_TO_FIND:
        return num_nodes
    if percentage is not None and percentage >= 100:
        return num_nodes
    if not percentage:
        percentage = max(50 - num_nodes // 125, MIN_FEASIBLE_NODES_PERCENTAGE_TO_FIND)
    return max(num_nodes * percentage // 100, MIN_FEASIBLE_NODES_TO_FIND)


def _run(plugins: Sequence[FilterPlugin], cycle: Cycle, node: NodeInfo) -> Status:
    for plugin in plugins:
        status = plugin.filter(cycle, node)
        if status is not SUCCESS and not status.ok:
            return status
    return SUCCESS


class Scheduler:
    """Places pods on nodes with kube-scheduler's filter and score plugins.

    ``strategy`` picks the resource scoring: ``LeastAllocated`` (spread, the Kubernetes
    default), ``MostAllocated`` (bin-packing) or ``BalancedAllocation`` alone.
    ``percentage_of_nodes_to_score`` is kube-scheduler's setting (None/0: adaptive).
    ``seed`` makes tie-breaking between equally scored nodes reproducible.
    """

    def __init__(
        self,
        *,
        strategy: Strategy = "LeastAllocated",
        percentage_of_nodes_to_score: int | None = None,
        seed: int | None = None,
    ) -> None:
        self.strategy = strategy
        self.percentage_of_nodes_to_score = percentage_of_nodes_to_score
        self.filters: tuple[FilterPlugin, ...] = tuple(default_filters())
        self.scores: tuple[ScorePlugin, ...] = tuple(default_scores(strategy))
        # Which extension points each plugin implements, found once (isinstance on a
        # Protocol is slow), as (plugin, its pre-step or None[, weight, normalizer]).
        self._filter_plan = [
            (f, f.pre_filter if isinstance(f, PreFilterPlugin) else None) for f in self.filters
        ]
        self._score_plan = [
            (s, s.pre_score if isinstance(s, PreScorePlugin) else None, _weight(s),
             s.normalize if isinstance(s, NormalizeScorePlugin) else None)
            for s in self.scores
        ]
        self._cache = Cache()
        self._rng = random.Random(seed)
        self._next_start = 0
        self.last: ScheduleResult | None = None
        self.nominated: dict[str, tuple[PodFacts, str]] = {}  # uid -> (pod, node)

    # -- cache maintenance ----------------------------------------------------

    @property
    def cache(self) -> Cache:
        """The node infos (read-only by convention), for diagnostics and tests."""
        return self._cache

    def add_node(self, node: Any) -> None:
        self._cache.set_node(node)

    def update_node(self, node: Any) -> None:
        self._cache.set_node(node)

    def remove_node(self, name: str) -> None:
        self._cache.remove_node(name)

    def add_pod(self, pod: Any) -> None:
        """Count a pod bound to a node (``spec.nodeName``); confirms an assumed pod.

        Unbound pods are ignored, and pods in a terminal phase are dropped: they no longer
        hold resources on their node."""
        node_name = pod.spec.node_name
        status = pod.status
        if not node_name or (status is not None and status.phase in TERMINAL_PHASES):
            uid = pod.metadata.uid
            if uid and uid in self._cache.pods and uid not in self._cache.assumed:
                self._cache.remove_pod(uid)
            return
        self._cache.add_pod(PodFacts.of(pod), node_name)

    def update_pod(self, old: Any, new: Any) -> None:
        self.add_pod(new)

    def remove_pod(self, pod: Any) -> None:
        self._cache.remove_pod(pod.metadata.uid or f"{pod.metadata.namespace}/{pod.metadata.name}")

    def forget(self, pod: Any) -> None:
        """Undo the assumption ``schedule`` made, e.g. because binding failed."""
        uid = pod.metadata.uid or f"{pod.metadata.namespace}/{pod.metadata.name}"
        if uid in self._cache.assumed:
            self._cache.remove_pod(uid)

    def is_assumed(self, pod: Any) -> bool:
        return (pod.metadata.uid or "") in self._cache.assumed

    # -- the pipeline ---------------------------------------------------------

    def schedule(self, pod: Any, *, volumes: VolumeFacts | None = None) -> str:
        """Pick a node for ``pod`` and assume the pod onto it; raise Unschedulable if none.
        ``volumes`` is what the pod's claims ask of a node (the VolumeBinding filter).

        candidates -> pre-filter -> filter (until enough feasible nodes) -> pre-score ->
        score -> normalize -> weigh -> select the best (ties broken at random). Pods
        nominated to a node by preemption count there while a pod of no higher priority
        is placed, so that it does not take the room freed for them."""
        facts = PodFacts.of(pod)
        cache = self._cache
        if facts.uid in cache.assumed:  # scheduling again supersedes the assumption
            cache.remove_pod(facts.uid)
        held = self._hold_nominated(facts)
        try:
            return self._schedule(facts, volumes)
        finally:
            for n in held:
                cache.remove_pod(n.uid)

    def _hold_nominated(self, facts: PodFacts) -> list[PodFacts]:
        """Count the pods nominated by earlier preemptions, of no lower priority than
        ``facts``, on their nodes (as kube-scheduler's filters with nominated pods);
        the caller removes them again."""
        held = [(n, node) for uid, (n, node) in self.nominated.items()
                if uid != facts.uid and n.priority >= facts.priority
                and uid not in self._cache.pods]
        for n, node in held:
            self._cache.add_pod(n, node, assumed=True)
        return [n for n, _ in held]

    def fits(self, pod: PodFacts, node: NodeInfo, volumes: VolumeFacts | None = None
             ) -> Status:
        """Every filter's verdict on ``pod`` for ``node`` as the cache stands now."""
        cycle = self._cycle(pod, volumes)
        active = [f for f, pre in self._filter_plan if pre is None or pre(cycle) is not SKIP]
        return _run(active, cycle, node)

    def preempt(self, pod: Any, budgets: Sequence[Budget], *,
                volumes: VolumeFacts | None = None) -> Candidate:
        """DefaultPreemption for a pod that fits nowhere: the node to free and the pods to
        evict there (see ``_preemption``); raises :class:`NoPreemption` when none helps."""
        facts = PodFacts.of(pod)
        if facts.uid in self._cache.assumed:
            self._cache.remove_pod(facts.uid)
        status = pod.status
        held = self._hold_nominated(facts)
        try:
            return find_preemption(
                self._cache, facts, lambda p, n: self.fits(p, n, volumes), budgets,
                preemption_policy=pod.spec.preemption_policy,
                nominated_node=status.nominated_node_name if status is not None else None)
        finally:
            for n in held:
                self._cache.remove_pod(n.uid)

    def nominate(self, pod: Any, node: str) -> None:
        """Hold room on ``node`` for ``pod`` until it is bound or :meth:`unnominate` d."""
        self.nominated[PodFacts.of(pod).uid] = (PodFacts.of(pod), node)

    def unnominate(self, uid: str) -> None:
        self.nominated.pop(uid, None)

    def displace_nominated(self, node: str, priority: int) -> list[PodFacts]:
        """Drop the nominations to ``node`` of pods below ``priority`` (a preemption for
        a more important pod took that room); returns those pods."""
        out = [n for n, where in self.nominated.values()
               if where == node and n.priority < priority]
        for n in out:
            self.nominated.pop(n.uid, None)
        return out

    def _cycle(self, facts: PodFacts, volumes: VolumeFacts | None) -> Cycle:
        cycle = Cycle(facts, self._cache)
        if volumes is not None:
            cycle.data[VolumeBinding.name] = volumes
        return cycle

    def _schedule(self, facts: PodFacts, volumes: VolumeFacts | None) -> str:
        cache = self._cache
        if not cache.nodes:
            raise Unschedulable(NO_NODES, {}, 0)
        cycle = self._cycle(facts, volumes)
        active = [f for f, pre in self._filter_plan if pre is None or pre(cycle) is not SKIP]
        feasible, found, evaluated = self._find_feasible(cycle, active)
        if not found:
            raise self._diagnose(cycle, active)
        chosen = self._select(cycle, feasible, found)
        cache.add_pod(facts, chosen.name, assumed=True)
        self.last = ScheduleResult(chosen.name, evaluated, found)
        return chosen.name

    def _candidates(self, pod: PodFacts) -> tuple[Iterable[NodeInfo], bool]:
        """Nodes in the order filters should see them, and whether that is the round-robin
        order (which then advances). The free-resource indexes skip nodes that cannot fit
        the pod's cpu or memory when those are few, and give MostAllocated the tightest
        nodes first."""
        cache = self._cache
        if pod.node_name:
            node = cache.nodes.get(pod.node_name)
            return ([node] if node else []), False
        if pod.cpu or pod.memory:
            fit_cpu, fit_mem = cache.fitting_count(pod.cpu, pod.memory)
            resource, at_least, count = (
                ("cpu", pod.cpu, fit_cpu) if fit_cpu <= fit_mem
                else ("memory", pod.memory, fit_mem))
            if self.strategy == "MostAllocated":
                return cache.fitting(resource, at_least, tightest_first=True), False
            if count * 2 < len(cache.order):
                return cache.fitting(resource, at_least, tightest_first=False), False
        order = cache.order
        start = self._next_start % len(order)
        return (order[start:] + order[:start]) if start else order, True

    def _find_feasible(
        self, cycle: Cycle, active: list[FilterPlugin]
    ) -> tuple[dict[Any, list[NodeInfo]], int, int]:
        """Filter candidates until ``num_feasible_nodes_to_find`` pass.

        The feasible nodes come back grouped by memo key (see ``NodeInfo.key``): node-local
        filters run once per group, and node-local scores are computed once per group."""
        pod = cycle.pod
        limit = num_feasible_nodes_to_find(len(self._cache.order),
                                           self.percentage_of_nodes_to_score)
        local = [f for f in active if f.node_local]
        remote = [f for f in active if not f.node_local]
        key_of = _memo_key(pod)
        groups: dict[Any, list[NodeInfo]] = {}
        get = groups.get
        refused: set[Any] = set()
        passed: set[Any] = set()
        found = evaluated = 0
        candidates, rotating = self._candidates(pod)
        for evaluated, node in enumerate(candidates, 1):  # noqa: B007 (used after the loop)
            key = node.key if key_of is None else key_of(node)
            group = get(key)
            if group is None:
                if key in refused:
                    continue
                if key not in passed:
                    if _run(local, cycle, node) is not SUCCESS:
                        refused.add(key)
                        continue
                    passed.add(key)
            if remote and _run(remote, cycle, node) is not SUCCESS:
                continue
            if group is None:
                group = groups[key] = []
            group.append(node)
            found += 1
            if found >= limit:
                break
        if rotating:
            self._next_start = (self._next_start + evaluated) % len(self._cache.order)
        return groups, found, evaluated

    def _diagnose(self, cycle: Cycle, active: list[FilterPlugin]) -> Unschedulable:
        """Run the filters on every node to count why each one refused the pod."""
        reasons: dict[str, int] = {}
        memo: dict[Any, Status] = {}
        key_of = _memo_key(cycle.pod)
        local = [f for f in active if f.node_local]
        remote = [f for f in active if not f.node_local]
        for node in self._cache.order:
            key = node.key if key_of is None else key_of(node)
            status = memo.get(key)
            if status is None:
                status = memo[key] = _run(local, cycle, node)
            if status is SUCCESS:
                status = _run(remote, cycle, node)
            for reason in status.reasons:
                reasons[reason] = reasons.get(reason, 0) + 1
        n = len(self._cache.order)
        return Unschedulable(fit_error(n, reasons), reasons, n)

    def _select(self, cycle: Cycle, groups: dict[Any, list[NodeInfo]], found: int) -> NodeInfo:
        """Weighted sum of every active score plugin; the best node, ties at random.

        Node-local plugins that need no normalization score once per group; the others
        score every feasible node, then normalize."""
        feasible = [n for group in groups.values() for n in group]
        if found == 1:
            return feasible[0]
        active = [(s, w, norm) for s, pre, w, norm in self._score_plan
                  if pre is None or pre(cycle, feasible) is not SKIP]
        plain = [(s, w) for s, w, norm in active if s.node_local and norm is None]
        rest = [(s, w, norm) for s, w, norm in active if not (s.node_local and norm is None)]
        group_totals = [
            sum(s.score(cycle, group[0]) * w for s, w in plain) for group in groups.values()
        ]
        if not rest:  # one score per group decides
            best = max(group_totals)
            tied = [g for g, t in zip(groups.values(), group_totals, strict=True) if t == best]
            if len(tied) == 1 and len(tied[0]) == 1:
                return tied[0][0]
            pick = self._rng.randrange(sum(len(g) for g in tied))
            for g in tied:
                if pick < len(g):
                    return g[pick]
                pick -= len(g)
            raise AssertionError("unreachable")
        totals: list[int] = []
        for group, total in zip(groups.values(), group_totals, strict=True):
            totals.extend([total] * len(group))
        for s, w, norm in rest:
            raw = [s.score(cycle, node) for node in feasible]
            if norm is not None:
                norm(cycle, raw)
            for i, value in enumerate(raw):
                totals[i] += value * w
        best = max(totals)
        ties = [i for i, t in enumerate(totals) if t == best]
        return feasible[ties[0] if len(ties) == 1 else self._rng.choice(ties)]


def _memo_key(pod: PodFacts) -> Callable[[NodeInfo], Any] | None:
    """What node-local results depend on besides ``node.key``: nothing (None), the node's
    labels (node selector or node affinity), or its name (nodeName, matchFields)."""
    if pod.uses_node_name:
        return _by_name
    if pod.node_selector or pod.required_node_affinity is not None or pod.preferred_node_affinity:
        return _by_labels
    return None


def _by_name(node: NodeInfo) -> Any:
    return node.name


def _by_labels(node: NodeInfo) -> Any:
    return (node.key, node.label_id)


def _weight(plugin: ScorePlugin) -> int:
    return int(getattr(plugin, "weight", 1))
