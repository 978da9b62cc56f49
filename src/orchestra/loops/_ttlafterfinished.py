"""The TTL-after-finished controller: a finished Job (``Complete`` or ``Failed``) with
``ttlSecondsAfterFinished`` is deleted that many seconds after it finished, with
foreground propagation so that its pods go first, as Kubernetes' controller does. The
finish time is the terminal condition's ``lastTransitionTime``; changing the TTL of a
finished Job moves the deadline."""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from orchestra._errors import NotFound
from orchestra.loops._context import Context, Runnable
from orchestra.loops._engine import Controller, Result, key_of, split_key
from orchestra.objects._scalars import parse_time

if TYPE_CHECKING:
    from orchestra.objects import Job
    from orchestra.objects._base import KubeObject


def finished_at(job: Job) -> float | None:
    for c in (job.status.conditions or ()) if job.status else ():
        if c.type in ("Complete", "Failed") and c.status == "True" and c.last_transition_time:
            return parse_time(c.last_transition_time)
    return None


class TTLAfterFinishedController:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.controller = Controller("ttl-after-finished", self.reconcile, ctx.clock)
        ctx.informers["Job"].add_handler(self._on_job)

    def _on_job(self, typ: str, obj: KubeObject, old: KubeObject | None) -> None:
        job = cast("Job", obj)
        if typ != "DELETED" and job.spec.ttl_seconds_after_finished is not None:
            self.controller.enqueue(key_of(job))

    async def reconcile(self, key: str) -> Result | None:
        ns, name = split_key(key)
        job = cast("Job | None", self.ctx.store.get_or_none("Job", name, namespace=ns))
        if job is None or job.metadata.deletion_timestamp is not None:
            return None
        ttl = job.spec.ttl_seconds_after_finished
        done = finished_at(job)
        if ttl is None or done is None:
            return None
        left = done + ttl - self.ctx.clock.now()
        if left > 0:
            return Result(requeue_after=left)
        try:
            self.ctx.store.delete("Job", name, namespace=ns, propagation="Foreground")
        except NotFound:
            pass
        return None


def setup(ctx: Context) -> list[Runnable]:
    c = TTLAfterFinishedController(ctx)
    ctx.controllers["ttl-after-finished"] = c.controller
    return [c.controller.run]


__all__ = ["finished_at", "setup"]
