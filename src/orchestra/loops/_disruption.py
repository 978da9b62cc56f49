"""PodDisruptionBudgets: the disruption controller keeps each budget's status, and
``evict`` is the Eviction API that ``drain`` uses: it refuses (returns False) when the
eviction would leave fewer healthy pods than the budget allows, and otherwise
decrements ``disruptionsAllowed`` before deleting, so concurrent evictions can't
overshoot."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, cast

from orchestra._errors import Conflict, NotFound
from orchestra.loops._context import Context, Runnable
from orchestra.loops._engine import Controller, Result, key_of, split_key
from orchestra.loops._podutil import is_active, is_ready
from orchestra.objects._selector import Selector

if TYPE_CHECKING:
    from orchestra.objects import PodDisruptionBudget


def _scaled(value: Any, total: int, round_up: bool) -> int:
    if isinstance(value, int):
        return value
    text = str(value)
    if text.endswith("%"):
        frac = int(text[:-1]) * total / 100
        return math.ceil(frac) if round_up else math.floor(frac)
    return int(text)


def budget_status(pdb: Any, pods: list[Any]) -> dict[str, Any]:
    expected = len(pods)
    healthy = sum(1 for p in pods if is_ready(p))
    if pdb.spec.min_available is not None:
        desired = _scaled(pdb.spec.min_available, expected, True)
    elif pdb.spec.max_unavailable is not None:
        desired = max(0, expected - _scaled(pdb.spec.max_unavailable, expected, True))
    else:
        desired = expected
    allowed = max(0, healthy - desired)
    return {"currentHealthy": healthy, "desiredHealthy": desired, "expectedPods": expected,
            "disruptionsAllowed": allowed, "observedGeneration": pdb.metadata.generation}


def _pods_for(store: Any, pdb: Any) -> list[Any]:
    sel = Selector.from_label_selector(pdb.spec.selector)
    return [p for p in store.list("Pod", namespace=pdb.metadata.namespace, selector=sel)
            if is_active(p)]


def _write(store: Any, pdb: Any, status: dict[str, Any], now: str) -> Any:
    from orchestra.objects import PodDisruptionBudgetStatus

    ok = status["disruptionsAllowed"] > 0
    prev = next((c for c in (pdb.status.conditions or ())
                 if c.type == "DisruptionAllowed"), None) if pdb.status else None
    cond = {"type": "DisruptionAllowed", "status": "True" if ok else "False",
            "reason": "SufficientPods" if ok else "InsufficientPods",
            "message": "", "observedGeneration": pdb.metadata.generation,
            "lastTransitionTime": prev.last_transition_time if prev is not None and
            prev.status == ("True" if ok else "False") else now}
    status = {**status, "conditions": [cond]}
    new = PodDisruptionBudgetStatus.model_validate(status)
    if pdb.status == new:
        return pdb
    return store.update(pdb.model_copy(update={"status": new}))


def evict(store: Any, pod: Any, recorder: Any = None) -> bool:
    """Delete ``pod`` unless a PodDisruptionBudget forbids it; True if evicted."""
    from orchestra.objects._base import format_time

    for pdb in store.list("PodDisruptionBudget", namespace=pod.metadata.namespace):
        if not Selector.from_label_selector(pdb.spec.selector).matches(pod.metadata.labels or {}):
            continue
        status = budget_status(pdb, _pods_for(store, pdb))
        if is_ready(pod) and status["disruptionsAllowed"] <= 0:
            return False
        if is_ready(pod):
            status["disruptionsAllowed"] -= 1
            try:
                _write(store, pdb, status, format_time(0))
            except Conflict:
                return False
    try:
        store.delete("Pod", pod.metadata.name, namespace=pod.metadata.namespace)
    except NotFound:
        return True
    if recorder is not None:
        recorder.event(pod, "Normal", "Killing", "Stopping container for eviction",
                       component="eviction")
    return True


class DisruptionController:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.controller = Controller("disruption", self.reconcile, ctx.clock)
        ctx.informers["PodDisruptionBudget"].add_handler(
            lambda t, p, o: self.controller.enqueue(key_of(p)))
        ctx.informers["Pod"].add_handler(self._on_pod)

    def _on_pod(self, typ: str, pod: Any, old: Any) -> None:
        pdbs = self.ctx.store.list("PodDisruptionBudget", namespace=pod.metadata.namespace)
        for pdb in cast("list[PodDisruptionBudget]", pdbs):
            if Selector.from_label_selector(pdb.spec.selector).matches(pod.metadata.labels or {}):
                self.controller.enqueue(key_of(pdb))

    async def reconcile(self, key: str) -> Result | None:
        from orchestra.objects._base import format_time

        ns, name = split_key(key)
        pdb = self.ctx.store.get_or_none("PodDisruptionBudget", name, namespace=ns)
        if pdb is None:
            return None
        _write(self.ctx.store, pdb, budget_status(pdb, _pods_for(self.ctx.store, pdb)),
               format_time(self.ctx.clock.now()))
        return None


def setup(ctx: Context) -> list[Runnable]:
    c = DisruptionController(ctx)
    ctx.controllers["disruption"] = c.controller
    return [c.controller.run]
