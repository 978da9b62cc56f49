"""Preemption, as kube-scheduler's DefaultPreemption plugin does it (PostFilter).

For a pod that fits nowhere, each node where the pod was refused for a reason that
removing pods could fix is a candidate. On it, every pod of lower priority is removed;
if the pod then fits, the removed pods are given back one at a time, most important
first (higher priority, then earlier start), those whose PodDisruptionBudget would be
violated first: a pod the preemptor still fits beside is reprieved, the others are the
victims. Of the candidates, the node chosen has (in this order) the fewest budget
violations, the lowest highest-priority victim, the lowest sum of victim priorities, the
fewest victims, and the latest start among its highest-priority victims.

Invariants: the cache is left exactly as it was found (victims are only simulated away),
and a pod with ``preemptionPolicy: Never`` never preempts.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from orchestra._errors import OrchestraError
from orchestra.objects._selector import Selector
from orchestra.scheduler._cache import Cache, NodeInfo
from orchestra.scheduler._framework import Code, Status
from orchestra.scheduler._info import PodFacts
from orchestra.scheduler._messages import fit_error

NO_VICTIMS = "No preemption victims found for incoming pod."
NOT_HELPFUL = "Preemption is not helpful for scheduling."
NOT_ELIGIBLE_NEVER = "not eligible due to preemptionPolicy=Never."
NOT_ELIGIBLE_TERMINATING = "not eligible due to a terminating pod on the nominated node."
_INT32_SPAN = 2**31


class NoPreemption(OrchestraError):
    """No node can be freed for the pod; ``message`` is kube-scheduler's PostFilter text
    (``preemption: 0/3 nodes are available: 3 No preemption victims found for incoming
    pod.``), appended to the FitError in the pod's condition and event."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class Budget:
    """A PodDisruptionBudget as preemption reads it (a nil or empty selector matches no
    pod here, as in kube-scheduler)."""

    namespace: str
    selector: Selector | None
    disruptions_allowed: int
    disrupted_pods: frozenset[str] = frozenset()


@dataclass
class Candidate:
    node: str
    victims: list[PodFacts] = field(default_factory=list)
    violations: int = 0


FitCheck = Callable[[PodFacts, NodeInfo], Status]


def _importance(p: PodFacts) -> tuple[int, str]:
    """Sort key, most important first: higher priority, then earlier start."""
    return (-p.priority, p.start_time)


def _split_by_budget(pods: Sequence[PodFacts], budgets: Sequence[Budget]
                     ) -> tuple[list[PodFacts], list[PodFacts]]:
    """(violating, non-violating), each in the given order (filterPodsWithPDBViolation)."""
    allowed = [b.disruptions_allowed for b in budgets]
    violating: list[PodFacts] = []
    fine: list[PodFacts] = []
    for p in pods:
        violated = False
        if p.labels:
            for i, b in enumerate(budgets):
                if b.namespace != p.namespace or b.selector is None or b.selector.empty \
                        or not b.selector.matches(p.labels):
                    continue
                if p.name in b.disrupted_pods:
                    continue
                allowed[i] -= 1
                if allowed[i] < 0:
                    violated = True
        (violating if violated else fine).append(p)
    return violating, fine


def _victims_on(cache: Cache, node: NodeInfo, pod: PodFacts, fits: FitCheck,
                budgets: Sequence[Budget]) -> Candidate | None:
    """selectVictimsOnNode: the victims that make ``pod`` fit on ``node``, or None."""
    lower = sorted((p for p in node.pods.values() if p.priority < pod.priority),
                   key=_importance)
    if not lower:
        return None
    assumed = {p.uid for p in lower if p.uid in cache.assumed}
    for p in lower:
        cache.remove_pod(p.uid)
    removed = list(lower)
    try:
        if not fits(pod, node).ok:
            return None
        violating, fine = _split_by_budget(lower, budgets)
        out = Candidate(node.name)
        for group, counts in ((violating, True), (fine, False)):
            for p in group:
                cache.add_pod(p, node.name, assumed=p.uid in assumed)
                removed.remove(p)
                if fits(pod, node).ok:
                    continue  # reprieved
                cache.remove_pod(p.uid)
                removed.append(p)
                out.victims.append(p)
                out.violations += counts
        return out
    finally:
        for p in removed:
            cache.add_pod(p, node.name, assumed=p.uid in assumed)


def _earliest_top_start(c: Candidate) -> str:
    top = max(v.priority for v in c.victims)
    return min(v.start_time for v in c.victims if v.priority == top)


def pick_node(candidates: list[Candidate]) -> Candidate:
    """pickOneNodeForPreemption's criteria, each narrowing the field, first node last."""
    rules: list[Callable[[Candidate], object]] = [
        lambda c: c.violations,
        lambda c: max((v.priority for v in c.victims), default=-_INT32_SPAN),
        lambda c: sum(v.priority + _INT32_SPAN for v in c.victims),
        lambda c: len(c.victims),
    ]
    field_ = candidates
    for rule in rules:
        best = min(rule(c) for c in field_)  # type: ignore[type-var]
        field_ = [c for c in field_ if rule(c) == best]
        if len(field_) == 1:
            return field_[0]
    if all(c.victims for c in field_):
        latest = max(_earliest_top_start(c) for c in field_)
        field_ = [c for c in field_ if _earliest_top_start(c) == latest]
    return field_[0]


def find(cache: Cache, pod: PodFacts, fits: FitCheck, budgets: Sequence[Budget], *,
         preemption_policy: str | None, nominated_node: str | None) -> Candidate:
    """The node to free for ``pod`` and its victims; raises :class:`NoPreemption`."""
    if preemption_policy == "Never":
        raise NoPreemption(NOT_ELIGIBLE_NEVER)
    if nominated_node:
        info = cache.nodes.get(nominated_node)
        if info is not None and any(p.terminating and p.priority < pod.priority
                                    for p in info.pods.values()):
            raise NoPreemption(NOT_ELIGIBLE_TERMINATING)
    reasons: dict[str, int] = {}
    candidates: list[Candidate] = []
    for node in list(cache.order):
        status = fits(pod, node)
        if status.ok:
            continue
        if status.code is Code.UNSCHEDULABLE_AND_UNRESOLVABLE:
            reasons[NOT_HELPFUL] = reasons.get(NOT_HELPFUL, 0) + 1
            continue
        found = _victims_on(cache, node, pod, fits, budgets)
        if found is None or not found.victims:
            reasons[NO_VICTIMS] = reasons.get(NO_VICTIMS, 0) + 1
            continue
        candidates.append(found)
    if not candidates:
        raise NoPreemption(f"preemption: {fit_error(len(cache.order), reasons)}")
    return pick_node(candidates)
