"""The disruption controller: keeps each PodDisruptionBudget's status as Kubernetes'
does, which the Eviction API then trusts.

- ``expectedPods``: with ``maxUnavailable`` or a percentage ``minAvailable``, the sum
  of the scales of the pods' controllers (a Deployment's replicas for pods of its
  ReplicaSets, a ReplicaSet's, StatefulSet's or ReplicationController's own), never the
  pods alive now, so that an eviction in flight does not shrink the budget; with an
  integer ``minAvailable``, the number of matching pods.
- ``desiredHealthy``: ``expectedPods - maxUnavailable`` or ``minAvailable`` (percentages
  rounded up); ``currentHealthy``: Ready pods not being deleted and not recently evicted
  (``disruptedPods``, which the Eviction API fills and which this controller forgets once
  the pod goes or after two minutes); ``disruptionsAllowed``: the difference, never
  negative, and 0 while ``expectedPods`` is 0.
- A pod whose controller has no scale (a DaemonSet's, a Job's) makes the budget fail safe:
  ``disruptionsAllowed`` 0, condition ``DisruptionAllowed`` False with reason
  ``SyncFailed``. Pods without a controller are left out, with an ``UnmanagedPods``
  warning.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, cast

from orchestra.loops._context import Context, Runnable
from orchestra.loops._engine import Controller, Result, key_of, split_key
from orchestra.loops._podutil import is_ready
from orchestra.objects._base import KINDS
from orchestra.objects._scalars import format_time, parse_time
from orchestra.objects._selector import Selector

if TYPE_CHECKING:
    from orchestra._store import Store
    from orchestra.objects import PodDisruptionBudget

DELETION_TIMEOUT = 120.0
"""How long an evicted pod counts as disrupted before it must have started to go."""

_SCALED_KINDS = ("ReplicaSet", "Deployment", "StatefulSet", "ReplicationController")


class ScaleError(Exception):
    """The expected pods cannot be counted; the budget fails safe with this message."""


def scaled(value: Any, total: int) -> int:
    """An int-or-percent of ``total``, percentages rounded up (GetScaledValueFromIntOrPercent)."""
    if isinstance(value, int):
        return value
    text = str(value)
    if text.endswith("%"):
        return math.ceil(int(text[:-1]) * total / 100)
    return int(text)


def pods_for(store: Store, pdb: Any) -> list[Any]:
    """Every pod the budget's selector picks in its namespace (a missing selector: none)."""
    if pdb.spec.selector is None:
        return []
    sel = Selector.from_label_selector(pdb.spec.selector)
    return store.list("Pod", namespace=pdb.metadata.namespace, selector=sel)


def _controller_scale(store: Store, ref: Any, namespace: str) -> tuple[str, int] | None:
    """(uid, replicas) of the controller ``ref`` names, following a ReplicaSet up to its
    Deployment; None when it does not exist (any more)."""
    kind = ref.kind
    if kind == "ReplicaSet":
        rs = store.get_or_none("ReplicaSet", ref.name, namespace=namespace)
        if rs is None or rs.metadata.uid != ref.uid:
            return None
        up = rs.metadata.controller_ref()
        if up is not None and up.kind == "Deployment":
            return _controller_scale(store, up, namespace)
        return rs.metadata.uid or "", _replicas(rs)
    info = KINDS.get(kind)
    if info is None or not info.namespaced:
        return None
    obj = store.get_or_none(kind, ref.name, namespace=namespace)
    if obj is None or obj.metadata.uid != ref.uid:
        return None
    if kind not in _SCALED_KINDS:
        raise ScaleError(f"{info.resource} does not implement the scale subresource")
    return obj.metadata.uid or "", _replicas(obj)


def _replicas(obj: Any) -> int:
    replicas = obj.spec.replicas
    return 1 if replicas is None else int(replicas)


def expected_scale(store: Store, pods: list[Any]) -> tuple[int, list[str]]:
    """The sum of the scales of the pods' controllers, and the pods with no controller."""
    scales: dict[str, int] = {}
    unmanaged = []
    for pod in pods:
        ref = pod.metadata.controller_ref()
        if ref is None:
            unmanaged.append(pod.metadata.name)
            continue
        if ref.uid in scales:
            continue
        found = _controller_scale(store, ref, pod.metadata.namespace)
        if found is None:
            raise ScaleError(f'found no controllers for pod "{pod.metadata.name}"')
        scales[found[0]] = found[1]
    return sum(scales.values()), unmanaged


def expected_pods(store: Store, pdb: Any, pods: list[Any]) -> tuple[int, int, list[str]]:
    """(expectedPods, desiredHealthy, unmanaged pod names), as getExpectedPodCount."""
    spec = pdb.spec
    if spec.max_unavailable is not None:
        expected, unmanaged = expected_scale(store, pods)
        return expected, max(0, expected - scaled(spec.max_unavailable, expected)), unmanaged
    if spec.min_available is not None:
        if isinstance(spec.min_available, int):
            return len(pods), spec.min_available, []
        expected, unmanaged = expected_scale(store, pods)
        return expected, scaled(spec.min_available, expected), unmanaged
    return 0, 0, []


def disrupted_map(pdb: Any, pods: list[Any], now: float) -> tuple[dict[str, str], float | None]:
    """The budget's ``disruptedPods`` without pods that went, began to go or timed out;
    and when the earliest remaining one times out."""
    old = (pdb.status.disrupted_pods if pdb.status else None) or {}
    by_name = {p.metadata.name: p for p in pods}
    out: dict[str, str] = {}
    recheck: float | None = None
    for name, stamp in old.items():
        pod = by_name.get(name)
        if pod is None or pod.metadata.deletion_timestamp is not None:
            continue
        expires = parse_time(stamp) + DELETION_TIMEOUT
        if expires <= now:
            continue
        out[name] = stamp
        recheck = expires if recheck is None else min(recheck, expires)
    return out, recheck


def current_healthy(pods: list[Any], disrupted: dict[str, str]) -> int:
    return sum(1 for p in pods if p.metadata.deletion_timestamp is None
               and p.metadata.name not in disrupted and is_ready(p))


def condition(pdb: Any, allowed: bool, now: str, *, reason: str | None = None,
              message: str = "", observed: int | None = None) -> dict[str, Any]:
    """The DisruptionAllowed condition, its transition time kept while its status holds."""
    status = "True" if allowed else "False"
    prev = next((c for c in (pdb.status.conditions or ())
                 if c.type == "DisruptionAllowed"), None) if pdb.status else None
    return {"type": "DisruptionAllowed", "status": status,
            "reason": reason or ("SufficientPods" if allowed else "InsufficientPods"),
            "message": message, "observedGeneration": observed,
            "lastTransitionTime": prev.last_transition_time
            if prev is not None and prev.status == status else now}


def write_status(store: Store, pdb: Any, status: dict[str, Any]) -> Any:
    from orchestra.objects import PodDisruptionBudgetStatus

    new = PodDisruptionBudgetStatus.model_validate(status)
    if pdb.status == new:
        return pdb
    return store.update(pdb.model_copy(update={"status": new}))


class DisruptionController:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.controller = Controller("disruption", self.reconcile, ctx.clock)
        ctx.informers["PodDisruptionBudget"].add_handler(
            lambda t, p, o: self.controller.enqueue(key_of(p)))
        ctx.informers["Pod"].add_handler(self._on_pod)
        for kind in ("ReplicaSet", "Deployment", "StatefulSet"):
            ctx.informers[kind].add_handler(self._on_controller)

    def _budgets(self, namespace: str) -> list[PodDisruptionBudget]:
        return cast("list[PodDisruptionBudget]",
                    self.ctx.store.list("PodDisruptionBudget", namespace=namespace))

    def _on_pod(self, typ: str, pod: Any, old: Any) -> None:
        labels = pod.metadata.labels or {}
        for pdb in self._budgets(pod.metadata.namespace):
            if pdb.spec.selector is not None and \
                    Selector.from_label_selector(pdb.spec.selector).matches(labels):
                self.controller.enqueue(key_of(pdb))

    def _on_controller(self, typ: str, obj: Any, old: Any) -> None:
        if old is not None and typ == "MODIFIED" and \
                getattr(old.spec, "replicas", None) == getattr(obj.spec, "replicas", None):
            return
        for pdb in self._budgets(obj.metadata.namespace):
            self.controller.enqueue(key_of(pdb))

    async def reconcile(self, key: str) -> Result | None:
        ns, name = split_key(key)
        store = self.ctx.store
        pdb: Any = store.get_or_none("PodDisruptionBudget", name, namespace=ns)
        if pdb is None:
            return None
        now = self.ctx.clock.now()
        stamp = format_time(now)
        recorder = self.ctx.recorder
        pods = pods_for(store, pdb)
        if not pods:
            recorder.event(pdb, "Normal", "NoPods", "No matching pods found",
                           component="controllermanager")
        try:
            expected, desired, unmanaged = expected_pods(store, pdb, pods)
        except ScaleError as exc:
            recorder.event(pdb, "Warning", "CalculateExpectedPodCountFailed",
                           f"Failed to calculate the number of expected pods: {exc}",
                           component="controllermanager")
            return self._fail_safe(pdb, str(exc), stamp)
        if unmanaged:
            sel = Selector.from_label_selector(pdb.spec.selector)
            recorder.event(
                pdb, "Warning", "UnmanagedPods",
                f"Pods selected by this PodDisruptionBudget (selector: {sel}) were found to "
                "be unmanaged. As a result, the status of the PDB cannot be calculated "
                "correctly, which may result in undefined behavior. To account for these "
                'pods please set ".spec.minAvailable" field of the PDB to an integer value.',
                component="controllermanager")
        disrupted, recheck = disrupted_map(pdb, pods, now)
        healthy = current_healthy(pods, disrupted)
        allowed = healthy - desired
        if expected <= 0 or allowed <= 0:
            allowed = 0
        gen = pdb.metadata.generation
        write_status(store, pdb, {
            "observedGeneration": gen, "disruptedPods": disrupted or None,
            "disruptionsAllowed": allowed, "currentHealthy": healthy,
            "desiredHealthy": desired, "expectedPods": expected,
            "conditions": [condition(pdb, allowed > 0, stamp, observed=gen)]})
        if recheck is not None:
            return Result(requeue_after=max(0.0, recheck - now))
        return None

    def _fail_safe(self, pdb: Any, message: str, stamp: str) -> Result:
        status = pdb.status.to_dict() if pdb.status else {}
        observed = status.get("observedGeneration")
        status["disruptionsAllowed"] = 0
        status["conditions"] = [condition(pdb, False, stamp, reason="SyncFailed",
                                          message=message, observed=observed)]
        write_status(self.ctx.store, pdb, status)
        return Result(requeue_after=30.0)


def setup(ctx: Context) -> list[Runnable]:
    c = DisruptionController(ctx)
    ctx.controllers["disruption"] = c.controller
    return [c.controller.run]
