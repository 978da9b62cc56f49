"""The scheduler loop: binds each pending pod to a node chosen by ``orchestra.scheduler``.

The scheduler's cache follows the store through the node and pod informers. A pod that
fits nowhere gets ``PodScheduled=False`` with reason ``Unschedulable`` and the exact
message (``0/5 nodes are available: ...``), a ``FailedScheduling`` event, and waits in
the unschedulable set until the cluster changes (a node added or updated, a pod
deleted) or five minutes pass, as kube-scheduler's queue does.

Pending pods wait in priority order (higher ``spec.priority`` first, then first come).
A pod that fits nowhere may preempt (see ``orchestra.scheduler._preemption``): its
victims get the ``DisruptionTarget`` condition (``PreemptionByScheduler``), a graceful
deletion and a ``Preempted`` event ("Preempted by pod <uid> on node <node>"); the pod
gets ``status.nominatedNodeName`` and the room is held for it until it is bound. When no
node can be freed, the FitError carries kube-scheduler's ``preemption: ...`` sentence.
"""

from __future__ import annotations

import contextlib
import logging
from typing import TYPE_CHECKING, Any, cast

from orchestra._errors import Conflict, NotFound
from orchestra.loops._context import Context, Runnable
from orchestra.loops._engine import Controller, Result, key_of, split_key
from orchestra.loops._podutil import mark_disruption_target
from orchestra.loops._volumebinding import (
    VolumeRejected,
    bind_volumes,
    volume_facts,
    watch_volumes,
)
from orchestra.objects._scalars import format_time
from orchestra.objects._selector import Selector
from orchestra.scheduler import (
    Budget,
    Candidate,
    NoPreemption,
    Scheduler,
    Unschedulable,
    VolumeFacts,
    pre_filter_error,
)

if TYPE_CHECKING:
    from orchestra.objects import Pod, PodDisruptionBudget
    from orchestra.objects._base import KubeObject

log = logging.getLogger("orchestra.scheduler")

UNSCHEDULABLE_FLUSH = 300.0
SCHEDULER_NAME = "default-scheduler"


class SchedulingLoop:
    def __init__(self, ctx: Context, scheduler: Scheduler) -> None:
        self.ctx = ctx
        self.scheduler = scheduler
        self.controller = Controller("scheduler", self.reconcile, ctx.clock, workers=1,
                                     order=self._order)
        self.unschedulable: set[str] = set()
        ctx.informers["Node"].add_handler(self._on_node)
        ctx.informers["Pod"].add_handler(self._on_pod)
        watch_volumes(ctx, self._retry_unschedulable)

    def _order(self, key: str) -> int:
        """The queue's sort key: higher priority first."""
        ns, name = split_key(key)
        pod = cast("Pod | None", self.ctx.store.get_or_none("Pod", name, namespace=ns))
        return -((pod.spec.priority or 0) if pod is not None else 0)

    # The cache follows the store; pending pods are queued.
    def _on_node(self, typ: str, node: Any, old: Any) -> None:
        if typ == "ADDED":
            self.scheduler.add_node(node)
        elif typ == "MODIFIED":
            self.scheduler.update_node(node)
        else:
            self.scheduler.remove_node(node.metadata.name)
            return
        if typ == "ADDED" or _loosened(node, old):
            self._retry_unschedulable()

    def _on_pod(self, typ: str, obj: KubeObject, old_obj: KubeObject | None) -> None:
        pod = cast("Pod", obj)
        old = cast("Pod | None", old_obj)
        bound = bool(pod.spec.node_name)
        was_bound = old is not None and bool(old.spec.node_name)
        if typ == "DELETED" or bound:
            self.scheduler.unnominate(pod.metadata.uid or "")
        if typ == "DELETED":
            if bound:
                self.scheduler.remove_pod(pod)
                self._retry_unschedulable()
            self.unschedulable.discard(key_of(pod))
            return
        if bound:
            if was_bound and old is not None:
                self.scheduler.update_pod(old, pod)
            else:
                self.scheduler.add_pod(pod)
            if pod.status is not None and pod.status.phase in ("Succeeded", "Failed") and (
                old is None or old.status is None or old.status.phase != pod.status.phase
            ):
                self._retry_unschedulable()
            return
        if (pod.spec.scheduler_name or SCHEDULER_NAME) != SCHEDULER_NAME:
            return
        if pod.metadata.deletion_timestamp is None:
            key = key_of(pod)
            if key not in self.unschedulable:
                self.controller.enqueue(key)

    def _retry_unschedulable(self) -> None:
        for key in self.unschedulable:
            self.controller.enqueue(key)
        self.unschedulable.clear()

    async def reconcile(self, key: str) -> Result | None:
        ns, name = split_key(key)
        store = self.ctx.store
        pod = cast("Pod | None", store.get_or_none("Pod", name, namespace=ns))
        if pod is None or pod.spec.node_name or pod.metadata.deletion_timestamp is not None:
            self.unschedulable.discard(key)
            return None
        volumes = None
        try:
            volumes = volume_facts(store, pod)
            node = self.scheduler.schedule(pod, volumes=volumes)
        except (VolumeRejected, Unschedulable) as exc:
            if isinstance(exc, VolumeRejected):
                # A PreFilter refusal: every node is unresolvable, preemption included.
                num_nodes = len(self.scheduler.cache.nodes)
                message = pre_filter_error(num_nodes, str(exc))
                volumes = VolumeFacts(bound=(_nowhere,))
            else:
                num_nodes, message = exc.num_nodes, exc.message
            if num_nodes:  # (no nodes: kube-scheduler runs no PostFilter)
                try:
                    chosen = self.scheduler.preempt(pod, self._budgets(), volumes=volumes)
                except NoPreemption as no:
                    message = f"{message} {no.message}"
                else:
                    pod = self._preempt(pod, chosen)
            self._mark_unschedulable(pod, message)
            self.unschedulable.add(key)
            return Result(requeue_after=UNSCHEDULABLE_FLUSH)
        self.unschedulable.discard(key)
        try:
            if volumes is not None:
                bind_volumes(store, pod, node)
            store.bind(pod.metadata.name or "", node,
                       namespace=pod.metadata.namespace or "default")
        except (Conflict, NotFound):
            self.scheduler.forget(pod)
            raise
        self.ctx.recorder.event(
            pod, "Normal", "Scheduled",
            f"Successfully assigned {pod.metadata.namespace}/{pod.metadata.name} to {node}",
            component=SCHEDULER_NAME)
        return None

    def _budgets(self) -> list[Budget]:
        out = []
        for b in cast("list[PodDisruptionBudget]", self.ctx.store.list("PodDisruptionBudget")):
            st = b.status
            out.append(Budget(
                b.metadata.namespace or "default",
                Selector.from_label_selector(b.spec.selector) if b.spec.selector else None,
                st.disruptions_allowed if st is not None else 0,
                frozenset((st.disrupted_pods or {}) if st is not None else ())))
        return out

    def _preempt(self, pod: Pod, chosen: Candidate) -> Pod:
        """Evict ``chosen``'s victims for ``pod`` and nominate ``pod`` to its node."""
        store = self.ctx.store
        now = format_time(self.ctx.clock.now())
        for v in chosen.victims:
            victim = cast("Pod | None", store.get_or_none("Pod", v.name, namespace=v.namespace))
            if victim is None or victim.metadata.uid != v.uid:
                continue
            mark_disruption_target(
                store, victim, now, "PreemptionByScheduler",
                f"{pod.spec.scheduler_name or SCHEDULER_NAME}: preempting to accommodate a "
                "higher priority pod")
            with contextlib.suppress(NotFound):
                store.delete("Pod", v.name, namespace=v.namespace)
            self.ctx.recorder.event(
                victim, "Normal", "Preempted",
                f"Preempted by pod {pod.metadata.uid} on node {chosen.node}",
                component=SCHEDULER_NAME)
        for other in self.scheduler.displace_nominated(chosen.node, pod.spec.priority or 0):
            self._clear_nomination(other.namespace, other.name)
        self.scheduler.nominate(pod, chosen.node)
        status = pod.status.to_dict() if pod.status is not None else {}
        if status.get("nominatedNodeName") == chosen.node:
            return pod
        status["nominatedNodeName"] = chosen.node
        from orchestra.objects import PodStatus

        try:
            return cast("Pod", store.update(pod.model_copy(
                update={"status": PodStatus.model_validate(status)})))
        except (Conflict, NotFound):
            return pod

    def _clear_nomination(self, namespace: str, name: str) -> None:
        """ClearNominatedNodeName: the pod goes back to the queue without a node held."""
        from orchestra.objects import PodStatus

        pod = cast("Pod | None", self.ctx.store.get_or_none("Pod", name, namespace=namespace))
        if pod is None or pod.status is None or not pod.status.nominated_node_name:
            return
        status = pod.status.to_dict()
        del status["nominatedNodeName"]
        with contextlib.suppress(Conflict, NotFound):
            self.ctx.store.update(pod.model_copy(
                update={"status": PodStatus.model_validate(status)}))
        key = key_of(pod)
        self.unschedulable.discard(key)
        self.controller.enqueue(key)

    def _mark_unschedulable(self, pod: Pod, message: str) -> None:
        from orchestra.objects import PodStatus

        old = pod.status.condition("PodScheduled") if pod.status is not None else None
        if old is not None and old.status == "False" and old.message == message:
            return
        self.ctx.recorder.event(pod, "Warning", "FailedScheduling", message,
                                component=SCHEDULER_NAME)
        status = pod.status.to_dict() if pod.status is not None else {}
        conds = [c for c in status.get("conditions", []) if c.get("type") != "PodScheduled"]
        conds.append({"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                      "message": message,
                      "lastTransitionTime": format_time(self.ctx.clock.now())})
        status["conditions"] = conds
        status["phase"] = "Pending"
        try:
            new_status = PodStatus.model_validate(status)
            self.ctx.store.update(pod.model_copy(update={"status": new_status}))
        except (Conflict, NotFound):
            pass


def _nowhere(node: str, labels: Any) -> bool:
    return False


def _loosened(node: Any, old: Any) -> bool:
    """Did the node change in a way that may let a pending pod fit?"""
    if old is None:
        return True
    return (
        node.spec.unschedulable != old.spec.unschedulable
        or node.spec.taints != old.spec.taints
        or node.metadata.labels != old.metadata.labels
        or (node.status and old.status and node.status.allocatable != old.status.allocatable)
        or _ready(node) != _ready(old)
    )


def _ready(node: Any) -> bool:
    for c in (node.status.conditions or ()) if node.status else ():
        if c.type == "Ready":
            return bool(c.status == "True")
    return False


def setup(ctx: Context) -> list[Runnable]:
    strategy = ctx.options.get("scheduler", "LeastAllocated")
    loop = SchedulingLoop(ctx, Scheduler(strategy=strategy,
                                         percentage_of_nodes_to_score=ctx.options.get(
                                             "percentage_of_nodes_to_score")))
    ctx.controllers["scheduler"] = loop.controller
    return [loop.controller.run]
