"""The CronJob controller: Jobs on a cron schedule, on the cluster's clock.

As Kubernetes' CronJob controller (v2):

- Each due schedule time ``t`` gets a Job ``<cronjob>-<t in minutes since the epoch>``
  built from ``jobTemplate``, with the annotation
  ``batch.kubernetes.io/cronjob-scheduled-timestamp``; then the key is requeued for the
  next schedule time, so nothing polls.
- Only the most recent missed time runs. A time more than ``startingDeadlineSeconds``
  old is skipped (``MissSchedule``); more than 100 missed times give
  ``TooManyMissedTimes``.
- ``concurrencyPolicy``: ``Allow`` runs Jobs side by side, ``Forbid`` skips a run while
  one is active (``JobAlreadyActive``), ``Replace`` deletes the active Jobs first.
- ``suspend`` stops new runs (running Jobs go on).
- ``status.active`` lists the running Jobs; a finished one leaves it with
  ``SawCompletedJob``, and a successful one sets ``lastSuccessfulTime``. Finished Jobs
  beyond ``successfulJobsHistoryLimit`` / ``failedJobsHistoryLimit`` are deleted, oldest
  first (``SuccessfulDelete``).
"""

from __future__ import annotations

import logging
from typing import Any

from orchestra._errors import AlreadyExists, NotFound, OrchestraError
from orchestra.loops._context import Context, Runnable
from orchestra.loops._engine import Controller, Result, key_of, split_key
from orchestra.objects._scalars import format_time, parse_time

log = logging.getLogger("orchestra.cronjob")

COMPONENT = "cronjob-controller"
SCHEDULED_ANNOTATION = "batch.kubernetes.io/cronjob-scheduled-timestamp"
NEXT_DELAY = 0.1  # Kubernetes requeues 100 ms after the next schedule time


def finished(job: Any) -> str | None:
    """``"Complete"`` or ``"Failed"`` once the Job has finished, else None."""
    for c in (job.status.conditions or ()) if job.status else ():
        if c.type in ("Complete", "Failed") and c.status == "True":
            return str(c.type)
    return None


def job_name(cronjob_name: str, scheduled: float) -> str:
    return f"{cronjob_name}-{int(scheduled // 60)}"


def _job_ref(job: Any) -> dict[str, Any]:
    return {"apiVersion": "batch/v1", "kind": "Job", "name": job.metadata.name,
            "namespace": job.metadata.namespace, "uid": job.metadata.uid,
            "resourceVersion": job.metadata.resource_version}


def _start(job: Any) -> float:
    ts = (job.status.start_time if job.status else None) or job.metadata.creation_timestamp
    return parse_time(ts) if ts else 0.0


class CronJobController:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.controller = Controller("cronjob", self.reconcile, ctx.clock)
        ctx.informers["CronJob"].add_handler(lambda t, c, o: self.controller.enqueue(key_of(c)))
        ctx.informers["Job"].add_handler(self._on_job)

    def _on_job(self, typ: str, job: Any, old: Any) -> None:
        ref = job.metadata.controller_ref()
        if ref is not None and ref.kind == "CronJob":
            self.controller.enqueue(f"{job.metadata.namespace}/{ref.name}")

    def _event(self, cj: Any, type_: str, reason: str, message: str) -> None:
        self.ctx.recorder.event(cj, type_, reason, message, component=COMPONENT)

    async def reconcile(self, key: str) -> Result | None:
        from orchestra.objects._batch import most_recent_schedule_time, next_schedule_time

        store = self.ctx.store
        ns, name = split_key(key)
        cj: Any = store.get_or_none("CronJob", name, namespace=ns)
        if cj is None:
            return None
        now = self.ctx.clock.now()
        jobs: list[Any] = [j for j in store.list_owned(cj.metadata.uid) if j.kind == "Job"
                and (ref := j.metadata.controller_ref()) is not None and ref.uid == cj.metadata.uid]
        status = cj.status.to_dict() if cj.status else {}
        status = self._sync_active(cj, jobs, status)
        self._cleanup(cj, jobs)
        if cj.metadata.deletion_timestamp is not None or cj.spec.suspend:
            self._write(cj, status)
            return None
        cj = self._write(cj, status)
        status = cj.status.to_dict() if cj.status else {}
        try:
            check = most_recent_schedule_time(cj, now)
        except ValueError as exc:
            self._event(cj, "Warning", "InvalidSchedule",
                        f"invalid schedule: {cj.spec.schedule} : {exc}")
            return None
        if check.missed > 100:
            self._event(cj, "Warning", "TooManyMissedTimes",
                        f"too many missed start times: {check.missed}. Set or decrease "
                        ".spec.startingDeadlineSeconds or check clock skew")

        def requeue() -> Result:
            nxt = next_schedule_time(cj, now)
            return Result(requeue_after=max(0.0, nxt - now) + NEXT_DELAY)

        scheduled = check.most_recent
        if scheduled is None:
            return requeue()
        deadline = cj.spec.starting_deadline_seconds
        if deadline is not None and scheduled + deadline < now:
            self._event(cj, "Warning", "MissSchedule", "Missed scheduled time to start a "
                        f"job: {format_time(scheduled)}")
            return requeue()
        jname = job_name(name, scheduled)
        active = status.get("active") or []
        if any(a.get("name") == jname for a in active) or (
                status.get("lastScheduleTime") and
                parse_time(status["lastScheduleTime"]) >= scheduled):
            return requeue()
        policy = cj.spec.concurrency_policy
        if policy == "Forbid" and active:
            self._event(cj, "Normal", "JobAlreadyActive", "Not starting job because prior "
                        "execution is running and concurrency policy is Forbid")
            return requeue()
        if policy == "Replace":
            for ref in active:
                try:
                    store.delete("Job", ref["name"], namespace=ns, propagation="Background")
                except NotFound:
                    pass
                else:
                    self._event(cj, "Normal", "SuccessfulDelete",
                                f"Deleted job {ref['name']}")
            active = []
        job = self._create_job(cj, jname, scheduled)
        if job is None:
            return Result(requeue=True)
        if not any(a.get("uid") == job.metadata.uid for a in active):
            active = [*active, _job_ref(job)]
        status["active"] = active
        status["lastScheduleTime"] = format_time(scheduled)
        cj = self._write(cj, status)
        return requeue()

    def _create_job(self, cj: Any, jname: str, scheduled: float) -> Any:
        from orchestra.objects import Job

        store = self.ctx.store
        ns = cj.metadata.namespace
        tmeta = cj.spec.job_template.metadata
        annotations = dict((tmeta.annotations if tmeta else None) or {})
        annotations[SCHEDULED_ANNOTATION] = format_time(scheduled)
        labels = dict((tmeta.labels if tmeta else None) or {})
        meta: dict[str, Any] = {
            "name": jname, "namespace": ns, "annotations": annotations,
            "ownerReferences": [{"apiVersion": cj.api_version, "kind": cj.kind,
                                 "name": cj.metadata.name, "uid": cj.metadata.uid,
                                 "controller": True, "blockOwnerDeletion": True}],
        }
        if labels:
            meta["labels"] = labels
        job = Job.model_validate({"metadata": meta,
                                  "spec": cj.spec.job_template.spec.to_dict()})
        try:
            new = store.create(job)
        except AlreadyExists:
            existing = store.get_or_none("Job", jname, namespace=ns)
            ref = existing.metadata.controller_ref() if existing is not None else None
            if ref is not None and ref.uid == cj.metadata.uid:
                return existing
            self._event(cj, "Warning", "FailedCreate",
                        f"Error creating job: jobs.batch \"{jname}\" already exists")
            return None
        except OrchestraError as exc:
            self._event(cj, "Warning", "FailedCreate", f"Error creating job: {exc}")
            return None
        self._event(cj, "Normal", "SuccessfulCreate", f"Created job {jname}")
        return new

    def _sync_active(self, cj: Any, jobs: list[Any], status: dict[str, Any]
                     ) -> dict[str, Any]:
        by_uid = {j.metadata.uid: j for j in jobs}
        active: list[dict[str, Any]] = []
        listed = {a.get("uid") for a in status.get("active") or []}
        last_success = status.get("lastSuccessfulTime")
        for ref in status.get("active") or []:
            job = by_uid.get(ref.get("uid"))
            if job is None:
                if self.ctx.store.get_or_none("Job", ref.get("name"),
                                              namespace=cj.metadata.namespace) is None:
                    self._event(cj, "Normal", "MissingJob",
                                f"Active job went missing: {ref.get('name')}")
                continue
            done = finished(job)
            if done is None:
                active.append(ref)
                continue
            self._event(cj, "Normal", "SawCompletedJob",
                        f"Saw completed job: {job.metadata.name}, condition: {done}")
            if done == "Complete" and job.status and job.status.completion_time:
                t = job.status.completion_time
                if last_success is None or parse_time(t) > parse_time(last_success):
                    last_success = t
        # Jobs we own but had not listed (e.g. after a conflict) are active too.
        for job in jobs:
            if job.metadata.uid not in listed and finished(job) is None and \
                    job.metadata.deletion_timestamp is None:
                active.append(_job_ref(job))
        status = dict(status)
        status["active"] = active
        if last_success is not None:
            status["lastSuccessfulTime"] = last_success
        return status

    def _cleanup(self, cj: Any, jobs: list[Any]) -> None:
        ok = sorted((j for j in jobs if finished(j) == "Complete"), key=_start)
        bad = sorted((j for j in jobs if finished(j) == "Failed"), key=_start)
        for group, limit in ((ok, cj.spec.successful_jobs_history_limit),
                             (bad, cj.spec.failed_jobs_history_limit)):
            for job in group[: max(0, len(group) - limit)]:
                if job.metadata.deletion_timestamp is not None:
                    continue
                try:
                    self.ctx.store.delete("Job", job.metadata.name,
                                          namespace=job.metadata.namespace,
                                          propagation="Background")
                except NotFound:
                    continue
                self._event(cj, "Normal", "SuccessfulDelete",
                            f"Deleted job {job.metadata.name}")

    def _write(self, cj: Any, status: dict[str, Any]) -> Any:
        from orchestra.objects import CronJobStatus

        status = {k: v for k, v in status.items() if v not in (None, [])}
        new = CronJobStatus.model_validate(status)
        if cj.status == new or (cj.status is None and not status):
            return cj
        return self.ctx.store.update(cj.model_copy(update={"status": new}))


def setup(ctx: Context) -> list[Runnable]:
    c = CronJobController(ctx)
    ctx.controllers["cronjob"] = c.controller
    return [c.controller.run]
