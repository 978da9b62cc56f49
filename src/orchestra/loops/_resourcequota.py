"""The resource quota controller: writes each ResourceQuota's ``status.hard`` (its spec's
limits) and ``status.used`` (what its namespace uses of each, see ``_quotausage``),
whenever the quota or an object it may count changes; a terminating pod's usage is
recounted when its grace period runs out."""

from __future__ import annotations

from typing import Any, cast

from orchestra.loops._context import Context, Runnable
from orchestra.loops._engine import Controller, Result, key_of, split_key
from orchestra.loops._quotausage import namespace_usage
from orchestra.objects._scalars import parse_time

# kinds whose changes are followed as they happen; anything else a quota counts
# (count/<resource>) is recounted on the periodic resync
FOLLOWED = ("Pod", "Service", "ConfigMap", "Secret", "PersistentVolumeClaim", "Deployment",
            "ReplicaSet", "StatefulSet", "DaemonSet", "Job", "CronJob")
RESYNC = 300.0


class QuotaController:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.controller = Controller("resourcequota", self.reconcile, ctx.clock)
        ctx.informers["ResourceQuota"].add_handler(
            lambda t, q, o: self.controller.enqueue(key_of(q)))
        for kind in FOLLOWED:
            ctx.informers[kind].add_handler(self._on_object)

    def _on_object(self, typ: str, obj: Any, old: Any) -> None:
        if typ == "MODIFIED" and obj.INFO.kind == "Pod" and old is not None and (
                obj.spec == old.spec
                and obj.metadata.deletion_timestamp == old.metadata.deletion_timestamp
                and (obj.status.phase if obj.status else None)
                == (old.status.phase if old.status else None)):
            return  # a status-only change counts for nothing
        for q in self.ctx.store.list("ResourceQuota", namespace=obj.metadata.namespace):
            self.controller.enqueue(key_of(q))

    async def reconcile(self, key: str) -> Result | None:
        from orchestra.objects import ResourceQuotaStatus

        ns, name = split_key(key)
        store = self.ctx.store
        quota: Any = store.get_or_none("ResourceQuota", name, namespace=ns)
        if quota is None:
            return None
        now = self.ctx.clock.now()
        used = namespace_usage(store, quota, now)
        status = ResourceQuotaStatus.model_validate({
            "hard": dict(quota.spec.hard or {}),
            "used": {k: str(v) for k, v in used.items()}})
        if quota.status != status:
            store.update(quota.model_copy(update={"status": status}))
        return Result(requeue_after=self._next_expiry(ns, now) or RESYNC)

    def _next_expiry(self, ns: str | None, now: float) -> float | None:
        """Seconds until the first terminating pod's grace period ends (it stops counting)."""
        soonest: float | None = None
        for p in cast("list[Any]", self.ctx.store.list("Pod", namespace=ns)):
            meta = p.metadata
            if meta.deletion_timestamp is None or meta.deletion_grace_period_seconds is None:
                continue
            left = parse_time(meta.deletion_timestamp) + meta.deletion_grace_period_seconds \
                - now
            if left >= 0 and (soonest is None or left < soonest):
                soonest = left + 1.0
        return soonest


def setup(ctx: Context) -> list[Runnable]:
    c = QuotaController(ctx)
    ctx.controllers["resourcequota"] = c.controller
    return [c.controller.run]
