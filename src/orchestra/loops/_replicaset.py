"""The ReplicaSet controller: keeps ``spec.replicas`` pods matching the selector.

It adopts orphans that match its selector and releases pods that no longer match
(controller references, as Kubernetes' ControllerRefManager does), creates missing pods
in slow-start batches under expectations, deletes surplus pods in Kubernetes' order
(unscheduled, pending, not ready, doubled-up, recently ready, restarted, newer first),
and reports replicas, fullyLabeled, ready and available counts.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, cast

from orchestra._errors import Conflict, NotFound, OrchestraError
from orchestra.loops._context import Context, Runnable
from orchestra.loops._engine import (
    Controller,
    Expectations,
    Result,
    key_of,
    slow_start_batch,
    split_key,
)
from orchestra.loops._podutil import (
    is_active,
    is_available,
    is_ready,
    pod_from_template,
    ready_condition,
)
from orchestra.objects._meta import OwnerReference
from orchestra.objects._scalars import format_time, parse_time
from orchestra.objects._selector import Selector

if TYPE_CHECKING:
    from orchestra._store import Store
    from orchestra.objects import ReplicaSet

log = logging.getLogger("orchestra.replicaset")

BURST = 500  # Kubernetes' burstReplicas: at most this many creates/deletes per sync


def claim_pods(store: Store, owner: Any, selector: Selector, pods: list[Any]) -> list[Any]:
    """Adopt matching orphans and release owned pods that stopped matching; returns
    the pods ``owner`` controls afterwards."""
    uid = owner.metadata.uid
    mine = []
    for pod in pods:
        ref = pod.metadata.controller_ref()
        matches = selector.matches(pod.metadata.labels or {})
        if ref is not None:
            if ref.uid != uid:
                continue
            if matches or owner.metadata.deletion_timestamp is not None:
                mine.append(pod)
                continue
            refs = tuple(r for r in pod.metadata.owner_references or () if r.uid != uid)
            try:
                store.update(pod.model_copy(update={"metadata": pod.metadata.model_copy(
                    update={"owner_references": refs or None})}))
            except (Conflict, NotFound):
                pass
            continue
        if not matches or pod.metadata.deletion_timestamp is not None or \
                owner.metadata.deletion_timestamp is not None:
            continue
        new_ref = OwnerReference(api_version=owner.api_version, kind=owner.kind,
                                 name=owner.metadata.name, uid=uid, controller=True,
                                 block_owner_deletion=True)
        refs = (*(pod.metadata.owner_references or ()), new_ref)
        try:
            adopted = store.update(pod.model_copy(update={"metadata": pod.metadata.model_copy(
                update={"owner_references": refs})}))
            mine.append(adopted)
        except (Conflict, NotFound):
            continue
    return mine


def deletion_rank(pods: list[Any]) -> list[Any]:
    """Pods in the order Kubernetes deletes them (ActivePodsWithRanks)."""
    per_node: dict[str, int] = {}
    for p in pods:
        if p.spec.node_name:
            per_node[p.spec.node_name] = per_node.get(p.spec.node_name, 0) + 1
    phase_rank = {"Pending": 0, "Unknown": 1, "Running": 2}

    def key(p: Any) -> tuple[Any, ...]:
        ready_since = ready_condition(p)
        since = parse_time(ready_since.last_transition_time) if (
            ready_since is not None and ready_since.status == "True"
            and ready_since.last_transition_time) else 0.0
        restarts = sum(cs.restart_count or 0 for cs in (p.status.container_statuses or ())
                       ) if p.status else 0
        cost = int((p.metadata.annotations or {}).get(
            "controller.kubernetes.io/pod-deletion-cost", "0") or 0)
        created = parse_time(p.metadata.creation_timestamp) if p.metadata.creation_timestamp \
            else 0.0
        return (
            1 if p.spec.node_name else 0,
            phase_rank.get(p.status.phase if p.status else "Pending", 0),
            1 if is_ready(p) else 0,
            cost,
            -per_node.get(p.spec.node_name or "", 0),
            -since,
            -restarts,
            -created,
        )

    return sorted(pods, key=key)


class ReplicaSetController:
    """Also the base of the ReplicationController's manager (``_replication``), as in
    Kubernetes, where one implementation serves both kinds: the class attributes and
    the two small methods below are all that differ."""

    KIND = "ReplicaSet"
    NAME = "replicaset"
    COMPONENT = "replicaset-controller"

    def selector_of(self, rs: Any) -> Selector:
        return Selector.from_label_selector(rs.spec.selector)

    def status_of(self, status: dict[str, Any]) -> Any:
        from orchestra.objects import ReplicaSetStatus

        return ReplicaSetStatus.model_validate(status)

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.expectations = Expectations(ctx.clock)
        self.controller = Controller(self.NAME, self.reconcile, ctx.clock,
                                     workers=int(ctx.options.get(f"{self.NAME}_workers", 2)))
        ctx.informers[self.KIND].add_handler(self._on_rs)
        ctx.informers["Pod"].add_handler(self._on_pod)

    def _on_rs(self, typ: str, rs: Any, old: Any) -> None:
        if typ == "DELETED":
            self.expectations.forget(key_of(rs))
        self.controller.enqueue(key_of(rs))

    def _on_pod(self, typ: str, pod: Any, old: Any) -> None:
        ref = pod.metadata.controller_ref()
        old_ref = old.metadata.controller_ref() if old is not None else None
        ns = pod.metadata.namespace
        if ref is not None and ref.kind == self.KIND:
            key = f"{ns}/{ref.name}"
            if typ == "ADDED":
                self.expectations.observed_add(key)
            elif typ == "DELETED" or (pod.metadata.deletion_timestamp is not None and (
                    old is None or old.metadata.deletion_timestamp is None)):
                self.expectations.observed_del(key)
            self.controller.enqueue(key)
        if old_ref is not None and old_ref.kind == self.KIND and (
                ref is None or ref.uid != old_ref.uid):
            self.controller.enqueue(f"{ns}/{old_ref.name}")
        if ref is None and typ != "DELETED":
            for rs in cast("list[ReplicaSet]", self.ctx.store.list(self.KIND, namespace=ns)):
                if self.selector_of(rs).matches(
                        pod.metadata.labels or {}):
                    self.controller.enqueue(key_of(rs))

    async def reconcile(self, key: str) -> Result | None:
        store = self.ctx.store
        ns, name = split_key(key)
        rs = cast("ReplicaSet | None", store.get_or_none(self.KIND, name, namespace=ns))
        if rs is None:
            self.expectations.forget(key)
            return None
        selector = self.selector_of(rs)
        candidates = {p.metadata.uid: p for p in store.list("Pod", namespace=ns,
                                                            selector=selector)}
        for p in store.list_owned(rs.uid):
            if p.kind == "Pod":
                candidates.setdefault(p.metadata.uid, p)
        pods = claim_pods(store, rs, selector, list(candidates.values()))
        active = [p for p in pods if is_active(p)]
        error: OrchestraError | None = None
        if self.expectations.satisfied(key) and rs.metadata.deletion_timestamp is None:
            error = await self._manage(rs, key, active)
        return self._update_status(rs, pods, active, error)

    async def _manage(self, rs: Any, key: str, active: list[Any]) -> OrchestraError | None:
        store = self.ctx.store
        want = rs.spec.replicas if rs.spec.replicas is not None else 1
        diff = len(active) - want
        if diff < 0:
            count = min(-diff, BURST)
            self.expectations.expect(key, adds=count)
            created = 0

            async def create_one() -> None:
                nonlocal created
                pod = pod_from_template(rs.spec.template, namespace=rs.metadata.namespace,
                                        generate_name=f"{rs.metadata.name}-", owner=rs)
                new = store.create(pod)
                created += 1
                self.ctx.recorder.event(rs, "Normal", "SuccessfulCreate",
                                        f"Created pod: {new.metadata.name}",
                                        component=self.COMPONENT)

            try:
                await slow_start_batch(count, create_one)
            except OrchestraError as exc:
                for _ in range(count - created):
                    self.expectations.observed_add(key)
                self.ctx.recorder.event(rs, "Warning", "FailedCreate", f"Error creating: {exc}",
                                        component=self.COMPONENT)
                return exc
        elif diff > 0:
            doomed = deletion_rank(active)[: min(diff, BURST)]
            self.expectations.expect(key, dels=len(doomed))
            for pod in doomed:
                try:
                    store.delete("Pod", pod.metadata.name, namespace=pod.metadata.namespace)
                    self.ctx.recorder.event(rs, "Normal", "SuccessfulDelete",
                                            f"Deleted pod: {pod.metadata.name}",
                                            component=self.COMPONENT)
                except NotFound:
                    self.expectations.observed_del(key)
        return None

    def _update_status(self, rs: Any, pods: list[Any], active: list[Any],
                       error: OrchestraError | None) -> Result | None:
        now = self.ctx.clock.now()
        min_ready = rs.spec.min_ready_seconds or 0
        template_labels = (rs.spec.template.metadata.labels
                           if rs.spec.template.metadata else None) or {}
        ready = sum(1 for p in active if is_ready(p))
        available = sum(1 for p in active if is_available(p, min_ready, now))
        fully = sum(1 for p in active if all(
            (p.metadata.labels or {}).get(k) == v for k, v in template_labels.items()))
        conditions = [c.to_dict() for c in (rs.status.conditions or ())] if rs.status else []
        conditions = [c for c in conditions if c["type"] != "ReplicaFailure"]
        if error is not None:
            reason = "FailedCreate"
            conditions.append({"type": "ReplicaFailure", "status": "True", "reason": reason,
                               "message": str(error), "lastTransitionTime": format_time(now)})
        status: dict[str, Any] = {
            "replicas": len(active),
            "fullyLabeledReplicas": fully,
            "readyReplicas": ready,
            "availableReplicas": available,
            "observedGeneration": rs.metadata.generation,
        }
        if conditions:
            status["conditions"] = conditions
        new = self.status_of(status)
        if rs.status != new:
            self.ctx.store.update(rs.model_copy(update={"status": new}))
        if min_ready and ready > available:
            return Result(requeue_after=float(min_ready))
        if error is not None:
            return Result(requeue=True)
        return None


def setup(ctx: Context) -> list[Runnable]:
    c = ReplicaSetController(ctx)
    ctx.controllers["replicaset"] = c.controller
    return [c.controller.run]
