"""The DaemonSet controller: one pod on every eligible node.

As in Kubernetes:

- A node is eligible when the pod template's ``nodeSelector`` and required node affinity
  match it and the pod (with the DaemonSet's automatic tolerations) tolerates its
  NoSchedule and NoExecute taints. A running daemon pod stays while it tolerates the
  node's NoExecute taints (``shouldContinueRunning``): a NoSchedule taint added later
  does not evict it.
- The automatic tolerations: ``not-ready`` and ``unreachable`` NoExecute without
  ``tolerationSeconds`` (daemon pods survive a node going dark), ``disk-pressure``,
  ``memory-pressure``, ``pid-pressure`` and ``unschedulable`` NoSchedule (so cordoning
  neither evicts nor blocks daemon pods), ``network-unavailable`` for host-network pods.
- Each pod gets required node affinity ``matchFields metadata.name In [<node>]``
  replacing the template's required terms (already checked by the controller), and goes
  through the scheduler like any pod.
- Pods on nodes that are no longer eligible are deleted; extra pods on a node are
  deleted (the oldest stays); failed pods are deleted and recreated (``FailedDaemonPod``).
  Pods bound to a node that no longer exists are deleted (the pod GC does it in
  Kubernetes).
- Templates are recorded as ControllerRevisions; pods carry
  ``controller-revision-hash`` and ``pod-template-generation``. ``RollingUpdate``
  replaces old pods while at most ``maxUnavailable`` nodes lack an available pod
  (``maxSurge`` is treated as 0); ``OnDelete`` replaces pods only when they are deleted.
"""

from __future__ import annotations

import logging
from typing import Any

from orchestra._errors import NotFound, OrchestraError
from orchestra.loops._context import Context, Runnable
from orchestra.loops._engine import (
    Controller,
    Expectations,
    Result,
    key_of,
    slow_start_batch,
    split_key,
)
from orchestra.loops._nodes import tolerates
from orchestra.loops._podutil import is_available, is_ready
from orchestra.loops._replicaset import claim_pods
from orchestra.loops._statefulset import HASH_KEY, REVISION_LABEL, ensure_revision, truncate_history
from orchestra.objects._apps import resolve_int_or_percent
from orchestra.objects._scalars import parse_time
from orchestra.objects._selector import Selector

log = logging.getLogger("orchestra.daemonset")

COMPONENT = "daemonset-controller"
GENERATION_LABEL = "pod-template-generation"
BURST = 250

_NO_EXECUTE = ("node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable")
_NO_SCHEDULE = ("node.kubernetes.io/disk-pressure", "node.kubernetes.io/memory-pressure",
                "node.kubernetes.io/pid-pressure", "node.kubernetes.io/unschedulable")


def daemon_tolerations(spec: dict[str, Any]) -> list[dict[str, Any]]:
    """The template's tolerations plus Kubernetes' ``AddOrUpdateDaemonPodTolerations``."""
    tols = list(spec.get("tolerations") or [])
    have = {(t.get("key"), t.get("effect")) for t in tols}
    wanted = [(k, "NoExecute") for k in _NO_EXECUTE] + [(k, "NoSchedule") for k in _NO_SCHEDULE]
    if spec.get("hostNetwork"):
        wanted.append(("node.kubernetes.io/network-unavailable", "NoSchedule"))
    for key, effect in wanted:
        if (key, effect) not in have:
            tols.append({"key": key, "operator": "Exists", "effect": effect})
    return tols


def target_node(pod: Any) -> str | None:
    """The node a daemon pod is for: its ``nodeName``, or before binding the name in its
    ``matchFields`` node affinity (Kubernetes' ``GetTargetNodeName``)."""
    if pod.spec.node_name:
        return str(pod.spec.node_name)
    aff = pod.spec.affinity
    na = aff.node_affinity if aff is not None else None
    req = na.required_during_scheduling_ignored_during_execution if na is not None else None
    for term in (req.node_selector_terms if req is not None else ()):
        for f in term.match_fields or ():
            if f.key == "metadata.name" and f.operator == "In" and f.values and \
                    len(f.values) == 1:
                return str(f.values[0])
    return None


def _term_matches(term: Any, node: Any) -> bool:
    labels = node.metadata.labels or {}
    exprs = term.match_expressions or ()
    fields = term.match_fields or ()
    if not exprs and not fields:
        return False
    for r in exprs:
        if not _requirement(r.key, r.operator, r.values or (), labels):
            return False
    for r in fields:
        if r.key != "metadata.name" or not _requirement(
                r.key, r.operator, r.values or (), {"metadata.name": node.metadata.name}):
            return False
    return True


def _requirement(key: str, op: str, values: Any, labels: Any) -> bool:
    has = key in labels
    v = labels.get(key)
    if op == "In":
        return has and v in values
    if op == "NotIn":
        return not has or v not in values
    if op == "Exists":
        return has
    if op == "DoesNotExist":
        return not has
    if op in ("Gt", "Lt") and has and values:
        try:
            a, b = int(v), int(values[0])
        except ValueError:
            return False
        return a > b if op == "Gt" else a < b
    return False


def node_should_run(template: Any, tolerations: list[Any], node: Any) -> tuple[bool, bool]:
    """(should run, should continue running) — Kubernetes' ``NodeShouldRunDaemonPod``."""
    spec = template.spec
    labels = node.metadata.labels or {}
    for k, v in (spec.node_selector or {}).items():
        if labels.get(k) != v:
            return False, False
    aff = spec.affinity
    na = aff.node_affinity if aff is not None else None
    req = na.required_during_scheduling_ignored_during_execution if na is not None else None
    if req is not None and not any(_term_matches(t, node) for t in req.node_selector_terms):
        return False, False
    run = cont = True
    for taint in node.spec.taints or ():
        if taint.effect not in ("NoSchedule", "NoExecute"):
            continue
        ok = any(tolerates(t, taint) for t in tolerations)
        if not ok:
            run = False
            if taint.effect == "NoExecute":
                cont = False
    return run, cont


def _set_node_affinity(spec: dict[str, Any], node: str) -> None:
    """Kubernetes' ``ReplaceDaemonSetPodNodeNameNodeAffinity``."""
    term = {"matchFields": [{"key": "metadata.name", "operator": "In", "values": [node]}]}
    aff = dict(spec.get("affinity") or {})
    na = dict(aff.get("nodeAffinity") or {})
    na["requiredDuringSchedulingIgnoredDuringExecution"] = {"nodeSelectorTerms": [term]}
    aff["nodeAffinity"] = na
    spec["affinity"] = aff


def _created(pod: Any) -> float:
    ts = pod.metadata.creation_timestamp
    return parse_time(ts) if ts else 0.0


class DaemonSetController:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.expectations = Expectations(ctx.clock)
        self.controller = Controller("daemonset", self.reconcile, ctx.clock,
                                     workers=int(ctx.options.get("daemonset_workers", 2)))
        ctx.informers["DaemonSet"].add_handler(self._on_ds)
        ctx.informers["Pod"].add_handler(self._on_pod)
        ctx.informers["Node"].add_handler(self._on_node)

    def _on_ds(self, typ: str, ds: Any, old: Any) -> None:
        if typ == "DELETED":
            self.expectations.forget(key_of(ds))
        self.controller.enqueue(key_of(ds))

    def _on_pod(self, typ: str, pod: Any, old: Any) -> None:
        ref = pod.metadata.controller_ref()
        ns = pod.metadata.namespace
        if ref is not None and ref.kind == "DaemonSet":
            key = f"{ns}/{ref.name}"
            if typ == "ADDED":
                self.expectations.observed_add(key)
            elif typ == "DELETED" or (pod.metadata.deletion_timestamp is not None and (
                    old is None or old.metadata.deletion_timestamp is None)):
                self.expectations.observed_del(key)
            self.controller.enqueue(key)
        elif ref is None and typ != "DELETED":
            ds: Any
        for ds in self.ctx.store.list("DaemonSet", namespace=ns):
                if Selector.from_label_selector(ds.spec.selector).matches(
                        pod.metadata.labels or {}):
                    self.controller.enqueue(key_of(ds))

    def _on_node(self, typ: str, node: Any, old: Any) -> None:
        if typ == "MODIFIED" and old is not None and (
                old.metadata.labels == node.metadata.labels and old.spec == node.spec):
            return
        for ds in self.ctx.store.list("DaemonSet"):
            self.controller.enqueue(key_of(ds))

    def _event(self, ds: Any, type_: str, reason: str, message: str) -> None:
        self.ctx.recorder.event(ds, type_, reason, message, component=COMPONENT)

    # -- reconcile ----------------------------------------------------------------------

    async def reconcile(self, key: str) -> Result | None:
        store = self.ctx.store
        ns, name = split_key(key)
        ds: Any = store.get_or_none("DaemonSet", name, namespace=ns)
        if ds is None:
            self.expectations.forget(key)
            return None
        if ds.metadata.deletion_timestamp is not None:
            return None
        selector = Selector.from_label_selector(ds.spec.selector)
        candidates: dict[Any, Any] = {p.metadata.uid: p for p in store.list(
            "Pod", namespace=ns, selector=selector)}
        for p in store.list_owned(ds.metadata.uid):
            if p.kind == "Pod":
                candidates.setdefault(p.metadata.uid, p)
        pods = [p for p in claim_pods(store, ds, selector, list(candidates.values()))
                if p.metadata.deletion_timestamp is None]
        labels = dict((ds.spec.template.metadata.labels if ds.spec.template.metadata
                       else None) or {})
        rev, revs = ensure_revision(self.ctx, ds, ds.spec.template, labels)
        h = rev.metadata.labels[HASH_KEY]
        nodes: dict[str, Any] = {str(n.metadata.name): n for n in store.list("Node")}
        by_node: dict[str, list[Any]] = {}
        orphans: list[Any] = []
        for p in pods:
            node = target_node(p)
            if node is None or node not in nodes:
                orphans.append(p)
            else:
                by_node.setdefault(node, []).append(p)
        from orchestra.objects import Toleration

        tols = [Toleration.model_validate(t)
                for t in daemon_tolerations(ds.spec.template.spec.to_dict())]
        eligible: dict[str, bool] = {}
        to_create: list[str] = []
        to_delete: list[Any] = list(orphans)
        requeue: float | None = None
        for node_name, node_obj in nodes.items():
            run, cont = node_should_run(ds.spec.template, tols, node_obj)
            eligible[node_name] = run
            mine = sorted(by_node.get(node_name, []), key=_created)
            if run and not mine:
                to_create.append(node_name)
            elif cont and mine:
                alive = []
                for p in mine:
                    if p.status is not None and p.status.phase == "Failed":
                        self._event(ds, "Warning", "FailedDaemonPod",
                                    f"Found failed daemon pod {ns}/{p.metadata.name} on node "
                                    f"{node_name}, will try to kill it")
                        to_delete.append(p)
                    else:
                        alive.append(p)
                if not alive and run:
                    # replaced after the failed pod is gone (Kubernetes backs off here)
                    requeue = 1.0
                to_delete.extend(alive[1:])
            elif not cont:
                to_delete.extend(mine)
        if self.expectations.satisfied(key):
            to_delete.extend(self._rolling_update(ds, h, by_node, eligible, to_delete))
            await self._sync_nodes(ds, key, h, to_create, to_delete)
        self._status(ds, h, by_node, eligible)
        truncate_history(self.ctx, revs, {rev.metadata.name} | {
            f"{name}-{(p.metadata.labels or {}).get(REVISION_LABEL, '')}" for p in pods},
            ds.spec.revision_history_limit)
        min_ready = ds.spec.min_ready_seconds or 0
        if min_ready and any(is_ready(p) and not is_available(p, min_ready,
                                                              self.ctx.clock.now())
                             for p in pods):
            requeue = min(requeue or float(min_ready), float(min_ready))
        return Result(requeue_after=requeue) if requeue is not None else None

    def _rolling_update(self, ds: Any, h: str, by_node: dict[str, list[Any]],
                        eligible: dict[str, bool], deleting: list[Any]) -> list[Any]:
        strategy = ds.spec.update_strategy
        if strategy.type != "RollingUpdate":
            return []
        desired = sum(1 for v in eligible.values() if v)
        ru = strategy.rolling_update
        max_unavailable = resolve_int_or_percent(
            ru.max_unavailable if ru is not None and ru.max_unavailable is not None else 1,
            desired, True)
        now = self.ctx.clock.now()
        min_ready = ds.spec.min_ready_seconds or 0
        doomed = {p.metadata.uid for p in deleting}
        unavailable = 0
        old_available: list[Any] = []
        old_unavailable: list[Any] = []
        for node, ok in eligible.items():
            if not ok:
                continue
            pods = [p for p in by_node.get(node, []) if p.metadata.uid not in doomed]
            if not pods:
                unavailable += 1
                continue
            pod = min(pods, key=_created)
            available = is_available(pod, min_ready, now)
            if (pod.metadata.labels or {}).get(REVISION_LABEL) != h:
                (old_available if available else old_unavailable).append(pod)
                if not available:
                    unavailable += 1
            elif not available:
                unavailable += 1
        out = list(old_unavailable)
        budget = max_unavailable - unavailable
        for pod in sorted(old_available, key=lambda p: p.spec.node_name or ""):
            if budget <= 0:
                break
            out.append(pod)
            budget -= 1
        return out

    async def _sync_nodes(self, ds: Any, key: str, h: str, to_create: list[str],
                          to_delete: list[Any]) -> None:
        from orchestra.objects import Pod

        store = self.ctx.store
        ns = ds.metadata.namespace
        unique: dict[str, Any] = {}
        for p in to_delete:
            unique.setdefault(p.metadata.uid, p)
        doomed = list(unique.values())[:BURST]
        if doomed:
            self.expectations.expect(key, dels=len(doomed))
        for pod in doomed:
            try:
                store.delete("Pod", pod.metadata.name, namespace=ns)
            except NotFound:
                self.expectations.observed_del(key)
                continue
            self._event(ds, "Normal", "SuccessfulDelete", f"Deleted pod: {pod.metadata.name}")
        nodes = iter(to_create[:BURST])
        count = len(to_create[:BURST])
        if not count:
            return
        self.expectations.expect(key, adds=count)
        created = 0
        template = ds.spec.template.to_dict()
        meta = template.get("metadata") or {}
        owner = {"apiVersion": ds.api_version, "kind": ds.kind, "name": ds.metadata.name,
                 "uid": ds.metadata.uid, "controller": True, "blockOwnerDeletion": True}

        async def create_one() -> None:
            nonlocal created
            node = next(nodes)
            spec = dict(template["spec"])
            spec["tolerations"] = daemon_tolerations(spec)
            _set_node_affinity(spec, node)
            labels = {**(meta.get("labels") or {}), REVISION_LABEL: h,
                      GENERATION_LABEL: str(ds.metadata.generation or 1)}
            pod = Pod.model_validate({
                "metadata": {"generateName": f"{ds.metadata.name}-", "namespace": ns,
                             "labels": labels, "ownerReferences": [owner],
                             **({"annotations": meta["annotations"]}
                                if meta.get("annotations") else {})},
                "spec": spec,
            })
            new = store.create(pod)
            created += 1
            self._event(ds, "Normal", "SuccessfulCreate", f"Created pod: {new.metadata.name}")

        try:
            await slow_start_batch(count, create_one)
        except OrchestraError as exc:
            for _ in range(count - created):
                self.expectations.observed_add(key)
            self._event(ds, "Warning", "FailedCreate", f"Error creating: {exc}")
            raise

    def _status(self, ds: Any, h: str, by_node: dict[str, list[Any]],
                eligible: dict[str, bool]) -> None:
        from orchestra.objects import DaemonSetStatus

        now = self.ctx.clock.now()
        min_ready = ds.spec.min_ready_seconds or 0
        desired = current = ready = available = updated = misscheduled = 0
        for node, run in eligible.items():
            pods = by_node.get(node, [])
            if run:
                desired += 1
                if pods:
                    current += 1
                    pod = min(pods, key=_created)
                    if is_ready(pod):
                        ready += 1
                        if is_available(pod, min_ready, now):
                            available += 1
                    if (pod.metadata.labels or {}).get(REVISION_LABEL) == h:
                        updated += 1
            elif pods:
                misscheduled += 1
        status: dict[str, Any] = {
            "desiredNumberScheduled": desired,
            "currentNumberScheduled": current,
            "numberMisscheduled": misscheduled,
            "numberReady": ready,
            "numberAvailable": available,
            "numberUnavailable": desired - available,
            "updatedNumberScheduled": updated,
            "observedGeneration": ds.metadata.generation,
        }
        if ds.status and ds.status.collision_count:
            status["collisionCount"] = ds.status.collision_count
        if ds.status and ds.status.conditions:
            status["conditions"] = [c.to_dict() for c in ds.status.conditions]
        new = DaemonSetStatus.model_validate(status)
        if ds.status != new:
            self.ctx.store.update(ds.model_copy(update={"status": new}))


def setup(ctx: Context) -> list[Runnable]:
    c = DaemonSetController(ctx)
    ctx.controllers["daemonset"] = c.controller
    return [c.controller.run]
