"""The pod garbage collector (kube-controller-manager's PodGC): it force-deletes the pods
nobody else will finish, as Kubernetes' does:

- orphans: pods bound to a Node that no longer exists, once it has been missing for the
  40 s quarantine (a node may only be late in the informer). Each is first marked
  ``Failed`` with the ``DisruptionTarget`` condition (``DeletionByPodGC``, "PodGC: node
  no longer exists"), since no kubelet will ever end it: a Job with
  ``podReplacementPolicy: Failed`` replaces it only then;
- terminated pods (``Succeeded``/``Failed``) beyond ``terminated_pod_gc_threshold``
  (12500; 0 turns this off): evicted pods first, then the oldest by creation time, ties
  by name;
- unscheduled pods being deleted (held by finalizers, no kubelet to end them);
- pods being deleted on a NotReady node tainted ``node.kubernetes.io/out-of-service``
  (the operator says the node is really down).

Every pod it collects that has not ended is marked ``Failed`` before it is deleted with
a zero grace period. Kubernetes' controller sweeps every 20 s; this one looks when a
pod or a node changes (a node key waits out the quarantine with ``requeue_after``), so
it acts at the earliest moment Kubernetes' sweep could. PodGC records no Events; its
counters are Kubernetes' ``pod_gc_collector_force_delete_pods_total`` and
``pod_gc_collector_force_delete_pod_errors_total`` (by namespace and reason).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, cast

from orchestra._errors import NotFound
from orchestra.loops._context import Context, Runnable
from orchestra.loops._engine import Controller, Counts, Result, key_of, split_key
from orchestra.objects._scalars import format_time

if TYPE_CHECKING:
    from orchestra.objects import Node, Pod, PodCondition
    from orchestra.objects._base import KubeObject

log = logging.getLogger("orchestra.podgc")

QUARANTINE = 40.0
"""Seconds a node must stay missing before its pods count as orphans (quarantineTime)."""
DEFAULT_THRESHOLD = 12500
"""kube-controller-manager's ``--terminated-pod-gc-threshold``."""
OUT_OF_SERVICE = "node.kubernetes.io/out-of-service"
TERMINAL = ("Succeeded", "Failed")
# the ``reason`` label of the counters, Kubernetes' values
ORPHANED, TERMINATED = "orphaned", "terminated"
OUT_OF_SERVICE_REASON, UNSCHEDULED = "out-of-service", "unscheduled"
_TERMINATED_KEY = "terminated"


def terminated(pod: Pod) -> bool:
    """PodGC's isPodTerminated: any phase but Pending, Running and Unknown."""
    phase = pod.status.phase if pod.status is not None else None
    return phase not in ("Pending", "Running", "Unknown")


def ended(pod: Pod) -> bool:
    """Succeeded or Failed: nothing is left for a kubelet to do."""
    return pod.status is not None and pod.status.phase in TERMINAL


def evicted(pod: Pod) -> bool:
    """The kubelet's PodIsEvicted: Failed with reason ``Evicted``."""
    st = pod.status
    return st is not None and st.phase == "Failed" and st.reason == "Evicted"


def out_of_service(node: Node) -> bool:
    """NotReady (no Ready condition that is True) and tainted out-of-service (any
    effect): the pods being deleted there will never be confirmed by its kubelet."""
    ready = node.condition("Ready")
    if ready is not None and ready.status == "True":
        return False
    return any(t.key == OUT_OF_SERVICE for t in node.spec.taints or ())


def gc_order(pod: Pod) -> tuple[bool, str, str]:
    """byEvictionAndCreationTimestamp: evicted pods first, then oldest, then by name."""
    return (not evicted(pod), pod.metadata.creation_timestamp or "", pod.metadata.name or "")


class PodGC:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.threshold = int(ctx.options.get("terminated_pod_gc_threshold",
                                             DEFAULT_THRESHOLD))
        self.controller = Controller("pod-garbage-collector", self.reconcile, ctx.clock)
        # node name -> when this collector first found it missing (the quarantine)
        self.missing: dict[str, float] = {}
        # keys of terminated pods, so that a change costs a count, not a listing
        self._terminated: set[str] = set()
        # Kubernetes' counters, by (namespace, reason)
        self.force_deleted = Counts("Number of pods that are being forcefully deleted "
                                    "since the Pod GC Controller started.",
                                    ("namespace", "reason"))
        self.force_delete_errors = Counts("Number of errors encountered when forcefully "
                                          "deleting the pods since the Pod GC Controller "
                                          "started.", ("namespace", "reason"))
        self.controller.counters.update({
            "pod_gc_collector_force_delete_pods": self.force_deleted,
            "pod_gc_collector_force_delete_pod_errors": self.force_delete_errors})
        ctx.informers["Pod"].add_handler(self._on_pod)
        ctx.informers["Node"].add_handler(self._on_node)

    def _on_pod(self, typ: str, obj: KubeObject, old: KubeObject | None) -> None:
        pod = cast("Pod", obj)
        key = key_of(pod)
        node_name = pod.spec.node_name
        if typ == "DELETED":
            self._terminated.discard(key)
            if node_name in self.missing:
                self.controller.enqueue(f"node:{node_name}")  # to forget the node
            return
        if terminated(pod):
            self._terminated.add(key)
            if 0 < self.threshold < len(self._terminated):
                self.controller.enqueue(_TERMINATED_KEY)
        else:
            self._terminated.discard(key)
        deleting = pod.metadata.deletion_timestamp is not None
        if deleting and ended(pod):
            return  # already ended and deleted: only finalizers hold it
        if not node_name:
            if deleting:
                self.controller.enqueue(f"pod:{key}")
            return
        node = cast("Node | None", self.ctx.store.get_or_none("Node", node_name))
        if node is None or (deleting and out_of_service(node)):
            self.controller.enqueue(f"node:{node_name}")

    def _on_node(self, typ: str, obj: KubeObject, old: KubeObject | None) -> None:
        node = cast("Node", obj)
        name = node.metadata.name or ""
        if typ == "DELETED" or name in self.missing or out_of_service(node):
            self.controller.enqueue(f"node:{name}")

    async def reconcile(self, key: str) -> Result | None:
        if key == _TERMINATED_KEY:
            self._gc_terminated()
            return None
        what, _, rest = key.partition(":")
        if what == "pod":
            self._gc_unscheduled_terminating(rest)
            return None
        return self._gc_node(rest)

    def _gc_node(self, name: str) -> Result | None:
        store = self.ctx.store
        node = cast("Node | None", store.get_or_none("Node", name))
        pods = cast("list[Pod]", store.list("Pod", field_selector=f"spec.nodeName={name}"))
        if node is not None:
            self.missing.pop(name, None)
            if out_of_service(node):
                for pod in sorted(pods, key=gc_order):
                    if pod.metadata.deletion_timestamp is not None and not ended(pod):
                        self._force_delete(pod, OUT_OF_SERVICE_REASON)
            return None
        todo = [p for p in pods if p.metadata.deletion_timestamp is None or not ended(p)]
        if not todo:
            self.missing.pop(name, None)
            return None
        now = self.ctx.clock.now()
        left = self.missing.setdefault(name, now) + QUARANTINE - now
        if left > 0:
            return Result(requeue_after=left)
        from orchestra.objects import PodCondition

        gone = PodCondition(type="DisruptionTarget", status="True", reason="DeletionByPodGC",
                            message="PodGC: node no longer exists")
        for pod in todo:
            log.info("found orphaned pod %s assigned to the node %s, deleting", key_of(pod),
                     name)
            self._force_delete(pod, ORPHANED, gone)
        return None

    def _gc_unscheduled_terminating(self, key: str) -> None:
        ns, name = split_key(key)
        pod = cast("Pod | None", self.ctx.store.get_or_none("Pod", name, namespace=ns))
        if pod is None or pod.metadata.deletion_timestamp is None or pod.spec.node_name:
            return
        if ended(pod):
            return  # nothing more a force deletion would do
        self._force_delete(pod, UNSCHEDULED)

    def _gc_terminated(self) -> None:
        if self.threshold <= 0 or len(self._terminated) <= self.threshold:
            return
        done = [p for p in cast("list[Pod]", self.ctx.store.list("Pod")) if terminated(p)]
        surplus = len(done) - self.threshold
        if surplus <= 0:
            return
        log.info("garbage collecting %d pods", surplus)
        for pod in sorted(done, key=gc_order)[:surplus]:
            self._force_delete(pod, TERMINATED)

    def _force_delete(self, pod: Pod, reason: str,
                      condition: PodCondition | None = None) -> None:
        """markFailedAndDeletePodWithCondition: a pod that has not ended is marked Failed
        (with ``condition``) first, then it is deleted with a zero grace period."""
        ns, name = pod.metadata.namespace or "default", pod.metadata.name or ""
        log.info("PodGC is force deleting Pod %s/%s", ns, name)
        self.force_deleted.values[(ns, reason)] += 1
        store = self.ctx.store
        try:
            if not ended(pod):
                store.update(pod.model_copy(update={"status": self._failed(pod, condition)}))
            store.delete("Pod", name, namespace=ns, grace_period_seconds=0)
        except NotFound:
            self.force_delete_errors.values[(ns, reason)] += 1  # gone already: done
        except Exception:
            self.force_delete_errors.values[(ns, reason)] += 1
            raise

    def _failed(self, pod: Pod, condition: PodCondition | None) -> Any:
        """The pod's status with phase Failed and ``condition`` set as UpdatePodCondition
        does (its transition time kept when its status does not change)."""
        from orchestra.objects import PodStatus

        st = pod.status or PodStatus()
        conds = list(st.conditions or ())
        if condition is not None:
            now = format_time(self.ctx.clock.now())
            old = next((c for c in conds if c.type == condition.type), None)
            stamp = old.last_transition_time if old is not None and \
                old.status == condition.status else now
            new = condition.model_copy(update={"last_transition_time": stamp})
            conds = [new if c.type == condition.type else c for c in conds] \
                if old is not None else [*conds, new]
        return st.model_copy(update={"phase": "Failed", "conditions": tuple(conds) or None})


def setup(ctx: Context) -> list[Runnable]:
    gc = PodGC(ctx)
    ctx.controllers["pod-garbage-collector"] = gc.controller
    return [gc.controller.run]


__all__ = ["DEFAULT_THRESHOLD", "OUT_OF_SERVICE", "QUARANTINE", "PodGC", "setup"]
