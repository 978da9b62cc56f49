"""The Deployment controller: rolls ReplicaSets toward the current pod template.

As in Kubernetes: the new ReplicaSet is the one whose template (without
``pod-template-hash``) equals the Deployment's; RollingUpdate never lets the total pod
count exceed ``replicas + maxSurge`` nor the available count drop below ``replicas -
maxUnavailable``; Recreate scales every old ReplicaSet to zero and waits for their pods
to go before starting the new one. Revisions live in the
``deployment.kubernetes.io/revision`` annotation; ``rollout_undo`` copies an old
ReplicaSet's template back. Progressing/Available carry Kubernetes' reasons, including
``ProgressDeadlineExceeded`` once ``progressDeadlineSeconds`` pass without progress.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, cast

from orchestra._errors import Conflict, Invalid, NotFound
from orchestra.loops._context import Context, Runnable
from orchestra.loops._engine import Controller, Result, key_of, split_key
from orchestra.loops._replicaset import claim_pods as claim_children
from orchestra.objects._apps import resolve_int_or_percent
from orchestra.objects._scalars import format_time, parse_time
from orchestra.objects._selector import Selector

if TYPE_CHECKING:
    from orchestra.objects import Deployment, ReplicaSet

REVISION = "deployment.kubernetes.io/revision"
DESIRED = "deployment.kubernetes.io/desired-replicas"
MAX_REPLICAS = "deployment.kubernetes.io/max-replicas"
CHANGE_CAUSE = "kubernetes.io/change-cause"
HASH_LABEL = "pod-template-hash"
COMPONENT = "deployment-controller"
_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"


def template_hash(template: dict[str, Any], collision_count: int = 0) -> str:
    """A stable hash of a template in Kubernetes' shape: FNV-1a 32 bit, its decimal digits
    safe-encoded one by one as the controllers do (``rand.SafeEncodeString``), so a
    ``pod-template-hash`` reads like ``7d4f8b9c5d``: up to 10 of ``4-9 b c d f``."""
    data = json.dumps(template, sort_keys=True, separators=(",", ":")).encode()
    h = 0x811C9DC5
    for b in data + (collision_count.to_bytes(4, "little") if collision_count else b""):
        h ^= b
        h = (h * 0x01000193) & 0xFFFFFFFF
    return "".join(_ALPHABET[ord(digit) % len(_ALPHABET)] for digit in str(h))


def _template_without_hash(template: Any) -> dict[str, Any]:
    d: dict[str, Any] = template.to_dict()
    labels = d.get("metadata", {}).get("labels")
    if labels and HASH_LABEL in labels:
        labels = dict(labels)
        del labels[HASH_LABEL]
        d["metadata"]["labels"] = labels
    return d


def revision_of(rs: Any) -> int:
    try:
        return int((rs.metadata.annotations or {}).get(REVISION, "0"))
    except ValueError:
        return 0


def _replicas(obj: Any) -> int:
    return obj.spec.replicas if obj.spec.replicas is not None else 1


def _surge_unavailable(d: Any) -> tuple[int, int]:
    ru = d.spec.strategy.rolling_update if d.spec.strategy else None
    want = _replicas(d)
    surge = resolve_int_or_percent(ru.max_surge if ru and ru.max_surge is not None else "25%",
                                   want, True)
    unavailable = resolve_int_or_percent(
        ru.max_unavailable if ru and ru.max_unavailable is not None else "25%", want, False)
    if surge == 0 and unavailable == 0:
        unavailable = 1
    return surge, unavailable


class DeploymentController:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.controller = Controller("deployment", self.reconcile, ctx.clock,
                                     workers=int(ctx.options.get("deployment_workers", 2)))
        ctx.informers["Deployment"].add_handler(
            lambda t, d, o: self.controller.enqueue(key_of(d)))
        ctx.informers["ReplicaSet"].add_handler(self._on_rs)
        ctx.informers["Pod"].add_handler(self._on_pod)

    def _on_rs(self, typ: str, rs: Any, old: Any) -> None:
        ref = rs.metadata.controller_ref()
        if ref is not None and ref.kind == "Deployment":
            self.controller.enqueue(f"{rs.metadata.namespace}/{ref.name}")
        elif typ != "DELETED":
            for d in cast("list[Deployment]",
                          self.ctx.store.list("Deployment", namespace=rs.metadata.namespace)):
                if Selector.from_label_selector(d.spec.selector).matches(rs.metadata.labels or {}):
                    self.controller.enqueue(key_of(d))

    def _on_pod(self, typ: str, pod: Any, old: Any) -> None:
        # Recreate waits for old pods to disappear.
        if typ != "DELETED":
            return
        ref = pod.metadata.controller_ref()
        if ref is None or ref.kind != "ReplicaSet":
            return
        rs = self.ctx.store.get_or_none("ReplicaSet", ref.name, namespace=pod.metadata.namespace)
        dref = rs.metadata.controller_ref() if rs is not None else None
        if dref is not None and dref.kind == "Deployment":
            self.controller.enqueue(f"{pod.metadata.namespace}/{dref.name}")

    # -- reconcile ----------------------------------------------------------------------

    async def reconcile(self, key: str) -> Result | None:
        store = self.ctx.store
        ns, name = split_key(key)
        d = cast("Deployment | None", store.get_or_none("Deployment", name, namespace=ns))
        if d is None or d.metadata.deletion_timestamp is not None:
            return None
        selector = Selector.from_label_selector(d.spec.selector)
        if selector.empty:
            return None
        candidates = {r.metadata.uid: r for r in store.list("ReplicaSet", namespace=ns,
                                                            selector=selector)}
        for r in store.list_owned(d.uid):
            if r.kind == "ReplicaSet":
                candidates.setdefault(r.metadata.uid, r)
        rss = claim_children(store, d, selector, list(candidates.values()))
        new_rs, olds = self._split(d, rss)
        if d.spec.paused:
            if new_rs is not None and not any(_replicas(r) for r in olds) and \
                    _replicas(new_rs) != _replicas(d):
                new_rs = self._scale(d, new_rs, _replicas(d))
            return self._sync_status(d, new_rs, olds, paused=True)
        created = False
        if new_rs is None:
            new_rs = self._create_new_rs(d, olds)
            created = True
        else:
            new_rs = self._sync_revision(d, new_rs, olds)
        d = self._sync_deployment_revision(d, new_rs)
        if (d.spec.strategy.type if d.spec.strategy else "RollingUpdate") == "Recreate":
            self._recreate(d, new_rs, olds)
        else:
            self._rolling(d, new_rs, olds)
        result = self._sync_status(d, new_rs, olds, created=created)
        if self._complete(d, new_rs, olds):
            self._cleanup(d, olds)
        return result

    def _split(self, d: Any, rss: list[Any]) -> tuple[Any, list[Any]]:
        want = _template_without_hash(d.spec.template)
        new = None
        olds = []
        for rs in sorted(rss, key=lambda r: (r.metadata.creation_timestamp or "",
                                             r.metadata.name or "")):
            if new is None and _template_without_hash(rs.spec.template) == want:
                new = rs
            else:
                olds.append(rs)
        return new, olds

    def _create_new_rs(self, d: Any, olds: list[Any]) -> Any:
        from orchestra.objects import ReplicaSet

        store = self.ctx.store
        collision = (d.status.collision_count if d.status else None) or 0
        template = _template_without_hash(d.spec.template)
        h = template_hash(template, collision)
        template.setdefault("metadata", {}).setdefault("labels", {})[HASH_LABEL] = h
        selector = d.spec.selector.to_dict()
        selector.setdefault("matchLabels", {})[HASH_LABEL] = h
        revision = max((revision_of(r) for r in olds), default=0) + 1
        surge, _ = _surge_unavailable(d)
        annotations = {k: v for k, v in (d.metadata.annotations or {}).items()
                       if not k.startswith("kubectl.kubernetes.io/")
                       and k not in (REVISION,)}
        annotations.update({REVISION: str(revision), DESIRED: str(_replicas(d)),
                            MAX_REPLICAS: str(_replicas(d) + surge)})
        rs = ReplicaSet.model_validate({
            "metadata": {
                "name": f"{d.metadata.name}-{h}",
                "namespace": d.metadata.namespace,
                "labels": dict(template["metadata"]["labels"]),
                "annotations": annotations,
                "ownerReferences": [{"apiVersion": d.api_version, "kind": d.kind,
                                     "name": d.metadata.name, "uid": d.metadata.uid,
                                     "controller": True, "blockOwnerDeletion": True}],
            },
            "spec": {"replicas": 0, "minReadySeconds": d.spec.min_ready_seconds or 0,
                     "selector": selector, "template": template},
        })
        try:
            rs = cast("ReplicaSet", store.create(rs))
        except Exception as exc:
            if type(exc).__name__ == "AlreadyExists":
                existing = cast("ReplicaSet | None",
                                store.get_or_none("ReplicaSet", rs.metadata.name,
                                                  namespace=d.metadata.namespace))
                ref = existing.metadata.controller_ref() if existing is not None else None
                if existing is not None and ref is not None and ref.uid == d.metadata.uid and \
                        _template_without_hash(existing.spec.template) == \
                        _template_without_hash(d.spec.template):
                    return existing
                status = d.status.to_dict() if d.status else {}
                status["collisionCount"] = collision + 1
                self._write_status(d, status)
            raise
        return rs

    def _sync_revision(self, d: Any, rs: Any, olds: list[Any]) -> Any:
        max_old = max((revision_of(r) for r in olds), default=0)
        if revision_of(rs) > max_old and revision_of(rs) != 0:
            return rs
        ann = dict(rs.metadata.annotations or {})
        ann[REVISION] = str(max_old + 1)
        cause = (d.metadata.annotations or {}).get(CHANGE_CAUSE)
        if cause:
            ann[CHANGE_CAUSE] = cause
        return self.ctx.store.update(rs.model_copy(update={
            "metadata": rs.metadata.model_copy(update={"annotations": ann})}))

    def _sync_deployment_revision(self, d: Any, rs: Any) -> Any:
        """The Deployment carries its current revision, as Kubernetes sets it."""
        revision = (rs.metadata.annotations or {}).get(REVISION)
        if revision is None or (d.metadata.annotations or {}).get(REVISION) == revision:
            return d
        ann = dict(d.metadata.annotations or {})
        ann[REVISION] = revision
        return self.ctx.store.update(d.model_copy(update={
            "metadata": d.metadata.model_copy(update={"annotations": ann})}))

    def _scale(self, d: Any, rs: Any, replicas: int) -> Any:
        current = _replicas(rs)
        if current == replicas:
            return rs
        surge, _ = _surge_unavailable(d)
        ann = dict(rs.metadata.annotations or {})
        ann[DESIRED] = str(_replicas(d))
        ann[MAX_REPLICAS] = str(_replicas(d) + surge)
        new = self.ctx.store.update(rs.model_copy(update={
            "spec": rs.spec.model_copy(update={"replicas": replicas}),
            "metadata": rs.metadata.model_copy(update={"annotations": ann})}))
        direction = "up" if replicas > current else "down"
        self.ctx.recorder.event(d, "Normal", "ScalingReplicaSet",
                                f"Scaled {direction} replica set {rs.metadata.name} to "
                                f"{replicas} from {current}", component=COMPONENT)
        return new

    # -- strategies ---------------------------------------------------------------------

    def _recreate(self, d: Any, new_rs: Any, olds: list[Any]) -> None:
        for i, rs in enumerate(olds):
            if _replicas(rs):
                olds[i] = self._scale(d, rs, 0)
        store = self.ctx.store
        for rs in olds:
            if any(store.list_owned(rs.metadata.uid)):
                return
        self._scale(d, new_rs, _replicas(d))

    def _rolling(self, d: Any, new_rs: Any, olds: list[Any]) -> None:
        want = _replicas(d)
        surge, unavailable = _surge_unavailable(d)
        # scale up the new replica set
        all_rs = [new_rs, *olds]
        current = sum(_replicas(r) for r in all_rs)
        new_count = _replicas(new_rs)
        if new_count > want:
            new_rs = self._scale(d, new_rs, want)
        elif new_count < want:
            room = want + surge - current
            if room > 0:
                new_rs = self._scale(d, new_rs, new_count + min(room, want - new_count))
        # scale down old replica sets
        olds_active = [r for r in olds if _replicas(r) > 0]
        if not olds_active:
            return
        all_count = _replicas(new_rs) + sum(_replicas(r) for r in olds)
        min_available = want - unavailable
        new_unavailable = _replicas(new_rs) - ((new_rs.status.available_replicas or 0)
                                               if new_rs.status else 0)
        max_down = all_count - min_available - new_unavailable
        if max_down <= 0:
            return
        # first the unhealthy pods of old replica sets
        cleaned = 0
        for i, rs in enumerate(olds):
            if cleaned >= max_down:
                break
            healthy = (rs.status.available_replicas or 0) if rs.status else 0
            unhealthy = _replicas(rs) - healthy
            if unhealthy <= 0:
                continue
            down = min(unhealthy, max_down - cleaned)
            olds[i] = self._scale(d, rs, _replicas(rs) - down)
            cleaned += down
        max_down -= cleaned
        available = ((new_rs.status.available_replicas or 0) if new_rs.status else 0) + sum(
            (r.status.available_replicas or 0) if r.status else 0 for r in olds)
        total_down = min(available - min_available, max_down)
        for i, rs in enumerate(olds):
            if total_down <= 0:
                break
            if not _replicas(rs):
                continue
            down = min(_replicas(rs), total_down)
            olds[i] = self._scale(d, rs, _replicas(rs) - down)
            total_down -= down

    def _complete(self, d: Any, new_rs: Any, olds: list[Any]) -> bool:
        st = new_rs.status
        want = _replicas(d)
        return bool(st is not None and _replicas(new_rs) == want
                    and (st.replicas or 0) == want and (st.available_replicas or 0) >= want
                    and not any((r.status.replicas or 0) if r.status else 0 for r in olds)
                    and not any(_replicas(r) for r in olds))

    def _cleanup(self, d: Any, olds: list[Any]) -> None:
        limit = d.spec.revision_history_limit
        if limit is None:
            limit = 10
        dead = [r for r in olds if not _replicas(r) and not (
            r.status and r.status.replicas) and r.metadata.deletion_timestamp is None]
        dead.sort(key=revision_of)
        for rs in dead[: max(0, len(dead) - limit)]:
            try:
                self.ctx.store.delete("ReplicaSet", rs.metadata.name,
                                      namespace=rs.metadata.namespace)
            except NotFound:
                pass

    # -- status -------------------------------------------------------------------------

    def _sync_status(self, d: Any, new_rs: Any, olds: list[Any], *, created: bool = False,
                     paused: bool = False) -> Result | None:
        now = self.ctx.clock.now()
        stamp = format_time(now)
        all_rs = ([new_rs] if new_rs is not None else []) + olds

        def total(field: str) -> int:
            return sum((getattr(r.status, field) or 0) if r.status else 0 for r in all_rs)

        want = _replicas(d)
        _, unavailable = _surge_unavailable(d)
        updated = (new_rs.status.replicas or 0) if new_rs is not None and new_rs.status else 0
        available = total("available_replicas")
        status: dict[str, Any] = {
            "observedGeneration": d.metadata.generation,
            "replicas": total("replicas"),
            "updatedReplicas": updated,
            "readyReplicas": total("ready_replicas"),
            "availableReplicas": available,
            "unavailableReplicas": max(0, want - available),
        }
        if d.status and d.status.collision_count:
            status["collisionCount"] = d.status.collision_count
        old = d.status
        conds = {c.type: c.to_dict() for c in (old.conditions or ())} if old else {}

        def set_cond(type_: str, value: str, reason: str, message: str,
                     touch: bool = True) -> None:
            prev = conds.get(type_)
            cond = {"type": type_, "status": value, "reason": reason, "message": message,
                    "lastUpdateTime": stamp, "lastTransitionTime": stamp}
            if prev is not None and prev["status"] == value:
                cond["lastTransitionTime"] = prev.get("lastTransitionTime", stamp)
                if not touch:
                    cond["lastUpdateTime"] = prev.get("lastUpdateTime", stamp)
            conds[type_] = cond

        if available >= want - unavailable:
            set_cond("Available", "True", "MinimumReplicasAvailable",
                     "Deployment has minimum availability.", touch=False)
        else:
            set_cond("Available", "False", "MinimumReplicasUnavailable",
                     "Deployment does not have minimum availability.", touch=False)
        requeue: float | None = None
        rs_name = new_rs.metadata.name if new_rs is not None else ""
        deadline = d.spec.progress_deadline_seconds
        prog = conds.get("Progressing")
        if paused:
            if prog is None or prog.get("reason") != "DeploymentPaused":
                set_cond("Progressing", "Unknown", "DeploymentPaused", "Deployment is paused")
        elif prog is not None and prog.get("reason") == "DeploymentPaused":
            set_cond("Progressing", "Unknown", "DeploymentResumed", "Deployment is resumed")
        elif created:
            set_cond("Progressing", "True", "NewReplicaSetCreated",
                     f'Created new replica set "{rs_name}"')
        elif new_rs is not None:
            complete = (updated == want and status["replicas"] == want and available >= want
                        and (d.metadata.generation or 0) <= status["observedGeneration"])
            old_upd = (old.updated_replicas or 0) if old else 0
            old_ready = (old.ready_replicas or 0) if old else 0
            old_avail = (old.available_replicas or 0) if old else 0
            old_old = ((old.replicas or 0) - old_upd) if old else 0
            new_old = status["replicas"] - updated
            progressing = (updated > old_upd or new_old < old_old
                           or status["readyReplicas"] > old_ready or available > old_avail)
            if complete:
                if prog is None or prog.get("reason") != "NewReplicaSetAvailable":
                    set_cond("Progressing", "True", "NewReplicaSetAvailable",
                             f'ReplicaSet "{rs_name}" has successfully progressed.')
            elif prog is None:
                set_cond("Progressing", "True", "FoundNewReplicaSet",
                         f'Found new replica set "{rs_name}"')
            elif progressing or prog.get("reason") == "NewReplicaSetAvailable":
                set_cond("Progressing", "True", "ReplicaSetUpdated",
                         f'ReplicaSet "{rs_name}" is progressing.')
            elif deadline is not None and prog.get("reason") != "ProgressDeadlineExceeded":
                since = parse_time(prog.get("lastUpdateTime") or stamp)
                if now >= since + deadline:
                    set_cond("Progressing", "False", "ProgressDeadlineExceeded",
                             f'ReplicaSet "{rs_name}" has timed out progressing.')
                    self.ctx.recorder.event(d, "Warning", "ProgressDeadlineExceeded",
                                            f'ReplicaSet "{rs_name}" has timed out progressing.',
                                            component=COMPONENT)
                else:
                    requeue = since + deadline - now
            cur = conds.get("Progressing")
            if requeue is None and deadline is not None and not complete and cur is not None \
                    and cur.get("reason") != "ProgressDeadlineExceeded":
                requeue = max(0.001, parse_time(cur["lastUpdateTime"]) + deadline - now)
        # A replica set's failure to create pods (a quota, an admission refusal) shows on
        # the Deployment too, the new replica set's first (kube-controller-manager's
        # getReplicaFailures).
        failure = next((c for r in all_rs if r.status is not None
                        for c in r.status.conditions or () if c.type == "ReplicaFailure"),
                       None)
        if failure is not None:
            conds["ReplicaFailure"] = {
                "type": "ReplicaFailure", "status": failure.status, "reason": failure.reason,
                "message": failure.message, "lastUpdateTime": failure.last_transition_time,
                "lastTransitionTime": failure.last_transition_time}
        else:
            conds.pop("ReplicaFailure", None)
        order = ["Available", "Progressing"]
        status["conditions"] = [conds[t] for t in order if t in conds] + [
            c for t, c in conds.items() if t not in order]
        self._write_status(d, status)
        return Result(requeue_after=requeue) if requeue is not None else None

    def _write_status(self, d: Any, status: dict[str, Any]) -> None:
        from orchestra.objects import DeploymentStatus

        new = DeploymentStatus.model_validate(status)
        if d.status == new:
            return
        try:
            self.ctx.store.update(d.model_copy(update={"status": new}))
        except (Conflict, NotFound):
            raise


def rollout_history(store: Any, ref: Any, *, namespace: str = "default") -> list[dict[str, Any]]:
    """``kubectl rollout history``: one entry per revision, oldest first."""
    d = store.get(ref, namespace=namespace)
    rows = []
    for rs in store.list_owned(d.metadata.uid):
        if rs.kind != "ReplicaSet":
            continue
        rows.append({"revision": revision_of(rs),
                     "change_cause": (rs.metadata.annotations or {}).get(CHANGE_CAUSE),
                     "replicaset": rs.metadata.name,
                     "template": rs.spec.template})
    return sorted(rows, key=lambda r: r["revision"])


def rollout_undo(store: Any, ref: Any, *, to_revision: int | None = None,
                 namespace: str = "default", recorder: Any = None) -> Any:
    """``kubectl rollout undo``: put an earlier revision's template back."""
    d = store.get(ref, namespace=namespace)
    history = rollout_history(store, ref, namespace=namespace)
    if not history:
        raise NotFound(f'no rollout history found for deployment "{d.metadata.name}"')
    if to_revision in (None, 0):
        if len(history) < 2:
            raise Invalid(f'deployment "{d.metadata.name}"', "no previous revision to roll "
                          "back to")
        target = history[-2]
    else:
        matches = [h for h in history if h["revision"] == to_revision]
        if not matches:
            raise NotFound(f"unable to find specified revision {to_revision} in history")
        target = matches[0]
    template = _template_without_hash(target["template"])
    if template == _template_without_hash(d.spec.template):
        return d
    from orchestra.objects import PodTemplateSpec

    new = store.update(d.model_copy(update={"spec": d.spec.model_copy(update={
        "template": PodTemplateSpec.model_validate(template)})}))
    if recorder is not None:
        recorder.event(new, "Normal", "DeploymentRollback",
                       f'Rolled back deployment "{d.metadata.name}" to revision '
                       f"{target['revision']}", component=COMPONENT)
    return new


def setup(ctx: Context) -> list[Runnable]:
    c = DeploymentController(ctx)
    ctx.controllers["deployment"] = c.controller
    return [c.controller.run]
