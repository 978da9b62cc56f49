"""The StatefulSet controller: pods with stable names, ordinals and storage.

As in Kubernetes:

- Pod ``<set>-<ordinal>`` for each ordinal in ``[start, start + replicas)``, with
  ``hostname`` = its name and ``subdomain`` = ``serviceName``, and the labels
  ``controller-revision-hash``, ``statefulset.kubernetes.io/pod-name`` and
  ``apps.kubernetes.io/pod-index``.
- ``OrderedReady``: one pod at a time in ordinal order, each waiting for the previous to
  be Running and Ready; scale-down deletes the highest ordinal first, one at a time.
  ``Parallel``: creates and deletes without waiting.
- ``volumeClaimTemplates``: a claim ``<template>-<set>-<ordinal>`` per pod, created
  before the pod and kept when the pod goes (retention ``Retain``; ``whenDeleted:
  Delete`` makes the set own its claims so they go with it; ``whenScaled: Delete`` hands
  a scaled-down pod's claims to that pod, so they go with it). The claims bind as any
  claim does (the PV controller, the default StorageClass's provisioner once the
  scheduler has placed the pod), and the node agent mounts the bound volume.
- Each distinct template is a ControllerRevision ``<set>-<hash>``; ``RollingUpdate``
  replaces pods from the highest ordinal down to ``partition``, one at a time, each
  after the previous updated pod is Ready; ``OnDelete`` only records revisions.
  ``currentRevision`` becomes ``updateRevision`` once every pod is updated and ready.

The ControllerRevision helpers here are shared with the DaemonSet controller.
"""

from __future__ import annotations

import logging
from typing import Any

from orchestra._errors import AlreadyExists, Conflict, NotFound, OrchestraError
from orchestra.loops._context import Context, Runnable
from orchestra.loops._deployment import template_hash
from orchestra.loops._engine import Controller, Result, key_of, split_key
from orchestra.loops._podutil import is_available, is_ready
from orchestra.loops._replicaset import claim_pods
from orchestra.objects._selector import Selector

log = logging.getLogger("orchestra.statefulset")

COMPONENT = "statefulset-controller"
REVISION_LABEL = "controller-revision-hash"
POD_NAME_LABEL = "statefulset.kubernetes.io/pod-name"
POD_INDEX_LABEL = "apps.kubernetes.io/pod-index"
HASH_KEY = "controller.kubernetes.io/hash"


# -- ControllerRevisions (shared with the DaemonSet controller) ---------------------------


def revision_data(template: Any) -> dict[str, Any]:
    """What a ControllerRevision stores: a patch replacing the pod template."""
    t = template.to_dict()
    t["$patch"] = "replace"
    return {"spec": {"template": t}}


def revisions_of(ctx: Context, owner: Any) -> list[Any]:
    """The ControllerRevisions ``owner`` controls, oldest revision first."""
    return revisions_of_in(ctx.store, owner)


def revisions_of_in(store: Any, owner: Any) -> list[Any]:
    """:func:`revisions_of` on a bare store (for ``rollout history``/``undo``)."""
    revs: list[Any] = [r for r in store.list_owned(owner.metadata.uid)
                       if r.kind == "ControllerRevision"]
    return sorted(revs, key=lambda r: r.revision)


def ensure_revision(ctx: Context, owner: Any, template: Any, labels: dict[str, str]
                    ) -> tuple[Any, list[Any]]:
    """The revision for ``template`` (created, or renumbered to be the newest when an
    older revision's template comes back, as a rollback does), and all revisions."""
    from orchestra.objects import ControllerRevision

    store = ctx.store
    revs = revisions_of(ctx, owner)
    data = revision_data(template)
    collision = (owner.status.collision_count if owner.status else None) or 0
    h = template_hash(data, collision)
    name = f"{owner.metadata.name}-{h}"
    newest = revs[-1].revision if revs else 0
    r: Any
    for i, r in enumerate(revs):
        if r.metadata.name == name:
            if r.revision != newest:
                r = store.update(r.model_copy(update={"revision": newest + 1}))
                revs[i] = r
                revs.sort(key=lambda x: x.revision)
            return r, revs
    rev: Any = ControllerRevision.model_validate({
        "metadata": {
            "name": name, "namespace": owner.metadata.namespace,
            "labels": {**labels, HASH_KEY: h},
            # Kubernetes copies the owner's annotations (kubernetes.io/change-cause is
            # what ``rollout history`` shows from them).
            "annotations": dict(owner.metadata.annotations or {}) or None,
            "ownerReferences": [{"apiVersion": owner.api_version, "kind": owner.kind,
                                 "name": owner.metadata.name, "uid": owner.metadata.uid,
                                 "controller": True, "blockOwnerDeletion": True}],
        },
        "data": data,
        "revision": newest + 1,
    })
    try:
        rev = store.create(rev)
    except AlreadyExists:
        existing = store.get("ControllerRevision", name, namespace=owner.metadata.namespace)
        ref = existing.metadata.controller_ref()
        if ref is None or ref.uid != owner.metadata.uid:
            raise Conflict(f'controllerrevisions "{name}" belongs to another owner') from None
        rev = existing
    revs.append(rev)
    return rev, revs


def truncate_history(ctx: Context, revs: list[Any], keep: set[str], limit: int) -> None:
    """Delete the oldest revisions no pod uses beyond ``revisionHistoryLimit``."""
    unused = [r for r in revs if r.metadata.name not in keep]
    for r in unused[: max(0, len(unused) - limit)]:
        try:
            ctx.store.delete("ControllerRevision", r.metadata.name,
                             namespace=r.metadata.namespace)
        except NotFound:
            pass


def template_from_revision(rev: Any) -> dict[str, Any]:
    t = dict(rev.data["spec"]["template"]) if rev.data else {}
    t.pop("$patch", None)
    out: dict[str, Any] = _thaw(t)
    return out


def _thaw(v: Any) -> Any:
    if isinstance(v, dict) or hasattr(v, "items"):
        return {k: _thaw(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_thaw(x) for x in v]
    return v


# -- pods ---------------------------------------------------------------------------------


def ordinal_of(set_name: str, pod: Any) -> int | None:
    prefix, _, tail = (pod.metadata.name or "").rpartition("-")
    if prefix != set_name or not tail.isdigit():
        return None
    return int(tail)


def claim_name(template: Any, set_name: str, ordinal: int) -> str:
    return f"{template.metadata.name}-{set_name}-{ordinal}"


def _running_and_ready(pod: Any) -> bool:
    return bool(pod.status and pod.status.phase == "Running" and is_ready(pod))


def _terminating(pod: Any) -> bool:
    return pod.metadata.deletion_timestamp is not None


def _failed(pod: Any) -> bool:
    return bool(pod.status and pod.status.phase in ("Failed", "Succeeded"))


def _revision(pod: Any) -> str:
    return str((pod.metadata.labels or {}).get(REVISION_LABEL, ""))


class StatefulSetController:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.controller = Controller("statefulset", self.reconcile, ctx.clock,
                                     workers=int(ctx.options.get("statefulset_workers", 2)))
        ctx.informers["StatefulSet"].add_handler(
            lambda t, s, o: self.controller.enqueue(key_of(s)))
        ctx.informers["Pod"].add_handler(self._on_pod)

    def _on_pod(self, typ: str, pod: Any, old: Any) -> None:
        for p in (pod, old):
            ref = p.metadata.controller_ref() if p is not None else None
            if ref is not None and ref.kind == "StatefulSet":
                self.controller.enqueue(f"{pod.metadata.namespace}/{ref.name}")
                return
        if typ != "DELETED" and pod.metadata.controller_ref() is None:
            s: Any
            for s in self.ctx.store.list("StatefulSet", namespace=pod.metadata.namespace):
                if Selector.from_label_selector(s.spec.selector).matches(
                        pod.metadata.labels or {}):
                    self.controller.enqueue(key_of(s))

    def _event(self, sts: Any, type_: str, reason: str, message: str) -> None:
        self.ctx.recorder.event(sts, type_, reason, message, component=COMPONENT)

    # -- reconcile ----------------------------------------------------------------------

    async def reconcile(self, key: str) -> Result | None:
        store = self.ctx.store
        ns, name = split_key(key)
        sts: Any = store.get_or_none("StatefulSet", name, namespace=ns)
        if sts is None or sts.metadata.deletion_timestamp is not None:
            return None
        selector = Selector.from_label_selector(sts.spec.selector)
        candidates: dict[Any, Any] = {p.metadata.uid: p for p in store.list(
            "Pod", namespace=ns, selector=selector)}
        for p in store.list_owned(sts.metadata.uid):
            if p.kind == "Pod":
                candidates.setdefault(p.metadata.uid, p)
        pods = claim_pods(store, sts, selector, list(candidates.values()))
        labels = dict((sts.spec.template.metadata.labels if sts.spec.template.metadata
                       else None) or {})
        update_rev, revs = ensure_revision(self.ctx, sts, sts.spec.template, labels)
        current_name = (sts.status.current_revision if sts.status else None) or ""
        current_rev = next((r for r in revs if r.metadata.name == current_name), update_rev)
        requeue = await self._update(sts, pods, current_rev, update_rev)
        pods = [p for p in store.list_owned(sts.metadata.uid) if p.kind == "Pod"]
        self._status(sts, pods, current_rev, update_rev)
        keep = {current_rev.metadata.name, update_rev.metadata.name} | {
            _revision(p) for p in pods}
        truncate_history(self.ctx, revs, keep, sts.spec.revision_history_limit)
        return requeue

    async def _update(self, sts: Any, pods: list[Any], current_rev: Any, update_rev: Any
                      ) -> Result | None:
        store = self.ctx.store
        name = sts.metadata.name
        start = sts.spec.ordinals.start if sts.spec.ordinals else 0
        replicas = sts.spec.replicas
        monotonic = sts.spec.pod_management_policy != "Parallel"
        min_ready = sts.spec.min_ready_seconds or 0
        now = self.ctx.clock.now()
        by_ordinal: dict[int, Any] = {}
        condemned: list[Any] = []
        for p in pods:
            o = ordinal_of(name, p)
            if o is not None and start <= o < start + replicas:
                by_ordinal[o] = p
            else:
                condemned.append(p)
        condemned.sort(key=lambda p: ordinal_of(name, p) or 0, reverse=True)
        requeue: Result | None = None
        if min_ready and any(is_ready(p) and not is_available(p, min_ready, now) for p in pods):
            requeue = Result(requeue_after=float(min_ready))
        # Pods that ended are replaced, as Kubernetes does (restartPolicy is Always).
        for o, p in list(by_ordinal.items()):
            if _failed(p) and not _terminating(p):
                self._delete_pod(sts, p)
                del by_ordinal[o]
        for o in range(start, start + replicas):
            pod = by_ordinal.get(o)
            if pod is None:
                self._create_pod(sts, o, current_rev, update_rev)
                if monotonic:
                    return requeue
                continue
            if _terminating(pod):
                if monotonic:
                    return requeue
                continue
            if monotonic and not (_running_and_ready(pod)
                                  and (not min_ready or is_available(pod, min_ready, now))):
                return requeue
        for pod in condemned:
            if _terminating(pod):
                if monotonic:
                    return requeue
                continue
            self._claims_follow(sts, pod)
            self._delete_pod(sts, pod)
            if monotonic:
                return requeue
        strategy = sts.spec.update_strategy
        if strategy.type != "RollingUpdate":
            return requeue
        partition = strategy.rolling_update.partition if strategy.rolling_update else 0
        for o in range(start + replicas - 1, start + partition - 1, -1):
            pod = by_ordinal.get(o)
            if pod is None:
                continue
            if _revision(pod) != update_rev.metadata.name:
                if not _terminating(pod):
                    self._event(sts, "Normal", "SuccessfulDelete",
                                f"delete Pod {pod.metadata.name} in StatefulSet {name} "
                                "successful")
                    try:
                        store.delete("Pod", pod.metadata.name, namespace=pod.metadata.namespace)
                    except NotFound:
                        pass
                return requeue
            if not _running_and_ready(pod):
                return requeue
        return requeue

    def _create_pod(self, sts: Any, ordinal: int, current_rev: Any, update_rev: Any) -> None:
        from orchestra.objects import PersistentVolumeClaim, Pod

        store = self.ctx.store
        ns = sts.metadata.namespace
        name = sts.metadata.name
        strategy = sts.spec.update_strategy
        start = sts.spec.ordinals.start if sts.spec.ordinals else 0
        rev = update_rev
        if current_rev.metadata.name != update_rev.metadata.name and \
                strategy.type == "RollingUpdate" and strategy.rolling_update is not None and \
                ordinal < start + strategy.rolling_update.partition:
            rev = current_rev
        template = (template_from_revision(rev) if rev is not update_rev
                    else sts.spec.template.to_dict())
        pod_name = f"{name}-{ordinal}"
        meta = template.get("metadata") or {}
        labels = {**(meta.get("labels") or {}), REVISION_LABEL: rev.metadata.name,
                  POD_NAME_LABEL: pod_name, POD_INDEX_LABEL: str(ordinal)}
        spec = dict(template["spec"])
        spec["hostname"] = pod_name
        if sts.spec.service_name:
            spec["subdomain"] = sts.spec.service_name
        claims = sts.spec.volume_claim_templates or ()
        if claims:
            names = {c.metadata.name for c in claims}
            volumes = [v for v in spec.get("volumes") or [] if v["name"] not in names]
            for c in claims:
                volumes.append({"name": c.metadata.name, "persistentVolumeClaim": {
                    "claimName": claim_name(c, name, ordinal)}})
            spec["volumes"] = volumes
        retention = sts.spec.persistent_volume_claim_retention_policy
        owner = {"apiVersion": sts.api_version, "kind": sts.kind, "name": name,
                 "uid": sts.metadata.uid}
        for c in claims:
            cname = claim_name(c, name, ordinal)
            if store.get_or_none("PersistentVolumeClaim", cname, namespace=ns) is not None:
                continue
            d = c.to_dict()
            d["metadata"] = {"name": cname, "namespace": ns,
                             "labels": {**(c.metadata.labels or {}),
                                        **(sts.spec.selector.match_labels or {})}}
            if c.metadata.annotations:
                d["metadata"]["annotations"] = dict(c.metadata.annotations)
            if retention.when_deleted == "Delete":
                d["metadata"]["ownerReferences"] = [{**owner, "controller": True,
                                                     "blockOwnerDeletion": True}]
            try:
                store.create(PersistentVolumeClaim.model_validate(d))
            except AlreadyExists:
                continue
            except OrchestraError as exc:
                self._event(sts, "Warning", "FailedCreate",
                            f"create Claim {cname} for Pod {pod_name} in StatefulSet {name} "
                            f"failed error: {exc}")
                raise
            self._event(sts, "Normal", "SuccessfulCreate",
                        f"create Claim {cname} Pod {pod_name} in StatefulSet {name} success")
        pod = Pod.model_validate({
            "metadata": {"name": pod_name, "namespace": ns, "labels": labels,
                         **({"annotations": meta["annotations"]} if meta.get("annotations")
                            else {}),
                         "ownerReferences": [{**owner, "controller": True,
                                              "blockOwnerDeletion": True}]},
            "spec": spec,
        })
        try:
            store.create(pod)
        except AlreadyExists:
            return
        except OrchestraError as exc:
            self._event(sts, "Warning", "FailedCreate",
                        f"create Pod {pod_name} in StatefulSet {name} failed error: {exc}")
            raise
        self._event(sts, "Normal", "SuccessfulCreate",
                    f"create Pod {pod_name} in StatefulSet {name} successful")

    def _claims_follow(self, sts: Any, pod: Any) -> None:
        """``whenScaled: Delete``: the claims of a pod removed by a scale-down are owned by
        that pod alone (not the set), so they go when it goes."""
        policy = sts.spec.persistent_volume_claim_retention_policy
        if policy is None or policy.when_scaled != "Delete":
            return
        store = self.ctx.store
        ordinal = ordinal_of(sts.metadata.name, pod)
        if ordinal is None:
            return
        for c in sts.spec.volume_claim_templates or ():
            claim = store.get_or_none("PersistentVolumeClaim",
                                      claim_name(c, sts.metadata.name, ordinal),
                                      namespace=sts.metadata.namespace)
            if claim is None:
                continue
            refs = [r.to_dict() for r in claim.metadata.owner_references or ()
                    if r.uid not in (sts.metadata.uid, pod.metadata.uid)]
            refs.append({"apiVersion": "v1", "kind": "Pod", "name": pod.metadata.name,
                         "uid": pod.metadata.uid})
            store.patch("PersistentVolumeClaim", {"metadata": {"ownerReferences": refs}},
                        namespace=sts.metadata.namespace, name=claim.metadata.name)

    def _delete_pod(self, sts: Any, pod: Any) -> None:
        try:
            self.ctx.store.delete("Pod", pod.metadata.name, namespace=pod.metadata.namespace)
        except NotFound:
            return
        self._event(sts, "Normal", "SuccessfulDelete",
                    f"delete Pod {pod.metadata.name} in StatefulSet {sts.metadata.name} "
                    "successful")

    def _status(self, sts: Any, pods: list[Any], current_rev: Any, update_rev: Any) -> None:
        from orchestra.objects import StatefulSetStatus

        now = self.ctx.clock.now()
        min_ready = sts.spec.min_ready_seconds or 0
        live = [p for p in pods if not _terminating(p)]
        cur, upd = current_rev.metadata.name, update_rev.metadata.name
        status: dict[str, Any] = {
            "observedGeneration": sts.metadata.generation,
            "replicas": len(live),
            "readyReplicas": sum(1 for p in live if is_ready(p)),
            "availableReplicas": sum(1 for p in live if is_available(p, min_ready, now)),
            "currentReplicas": sum(1 for p in live if _revision(p) == cur),
            "updatedReplicas": sum(1 for p in live if _revision(p) == upd),
            "currentRevision": cur,
            "updateRevision": upd,
            "collisionCount": (sts.status.collision_count if sts.status else None) or 0,
        }
        if sts.spec.update_strategy.type == "RollingUpdate" and \
                status["updatedReplicas"] == sts.spec.replicas and \
                status["readyReplicas"] == sts.spec.replicas and \
                status["replicas"] == sts.spec.replicas:
            status["currentRevision"] = upd
            status["currentReplicas"] = status["updatedReplicas"]
        if sts.status and sts.status.conditions:
            status["conditions"] = [c.to_dict() for c in sts.status.conditions]
        new = StatefulSetStatus.model_validate(status)
        if sts.status != new:
            self.ctx.store.update(sts.model_copy(update={"status": new}))


def setup(ctx: Context) -> list[Runnable]:
    c = StatefulSetController(ctx)
    ctx.controllers["statefulset"] = c.controller
    return [c.controller.run]
