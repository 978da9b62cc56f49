"""The Job controller: runs pods to ``completions`` successes, ``parallelism`` at a
time, and fails the Job after ``backoffLimit`` failed pods or past
``activeDeadlineSeconds``, with Kubernetes' conditions (``Complete``, ``Failed`` with
``BackoffLimitExceeded``/``DeadlineExceeded``; ``SuccessCriteriaMet``/``FailureTarget``
first, as Kubernetes 1.31 does)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from orchestra._errors import NotFound, OrchestraError
from orchestra.loops._context import Context, Runnable
from orchestra.loops._engine import Controller, Expectations, Result, key_of, split_key
from orchestra.loops._podutil import is_ready, pod_from_template
from orchestra.objects._base import format_time, parse_time
from orchestra.objects._selector import Selector

if TYPE_CHECKING:
    from orchestra.objects import Job, Pod

COMPONENT = "job-controller"


class JobController:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.expectations = Expectations(ctx.clock)
        self.controller = Controller("job", self.reconcile, ctx.clock)
        ctx.informers["Job"].add_handler(lambda t, j, o: self.controller.enqueue(key_of(j)))
        ctx.informers["Pod"].add_handler(self._on_pod)

    def _on_pod(self, typ: str, pod: Any, old: Any) -> None:
        ref = pod.metadata.controller_ref()
        if ref is None or ref.kind != "Job":
            return
        key = f"{pod.metadata.namespace}/{ref.name}"
        if typ == "ADDED":
            self.expectations.observed_add(key)
        self.controller.enqueue(key)

    async def reconcile(self, key: str) -> Result | None:
        store = self.ctx.store
        ns, name = split_key(key)
        found = cast("Job | None", store.get_or_none("Job", name, namespace=ns))
        if found is None or found.metadata.deletion_timestamp is not None:
            return None
        job = self._ensure_selector(found)
        conds = {c.type: c for c in (job.status.conditions or ())} if job.status else {}
        if any(c in conds and conds[c].status == "True" for c in ("Complete", "Failed")):
            return None
        now = self.ctx.clock.now()
        pods = [cast("Pod", p) for p in store.list_owned(job.uid) if p.kind == "Pod"]
        succeeded = sum(1 for p in pods if p.status and p.status.phase == "Succeeded")
        failed = sum(1 for p in pods if p.status and p.status.phase == "Failed")
        active = [p for p in pods if p.metadata.deletion_timestamp is None and not (
            p.status and p.status.phase in ("Succeeded", "Failed"))]
        completions = job.spec.completions
        parallelism = job.spec.parallelism if job.spec.parallelism is not None else 1
        backoff = job.spec.backoff_limit if job.spec.backoff_limit is not None else 6
        start = job.status.start_time if job.status and job.status.start_time else None
        start = start or format_time(now)
        failure: tuple[str, str] | None = None
        if failed > backoff:
            failure = ("BackoffLimitExceeded", "Job has reached the specified backoff limit")
        elif job.spec.active_deadline_seconds is not None and \
                now - parse_time(start) >= job.spec.active_deadline_seconds:
            failure = ("DeadlineExceeded", "Job was active longer than specified deadline")
        done = (succeeded >= completions) if completions is not None else (
            succeeded > 0 and not active)
        requeue: float | None = None
        if failure is not None or done:
            for p in active:
                try:
                    store.delete("Pod", p.metadata.name, namespace=ns)
                except NotFound:
                    pass
            active = []
        elif not job.spec.suspend and self.expectations.satisfied(key):
            want = parallelism if completions is None else min(parallelism,
                                                               completions - succeeded)
            missing = want - len(active)
            if missing > 0:
                self.expectations.expect(key, adds=missing)
                for _ in range(missing):
                    pod = pod_from_template(job.spec.template, namespace=ns,
                                            generate_name=f"{name}-", owner=job,
                                            extra_labels={"batch.kubernetes.io/job-name": name,
                                                          "job-name": name,
                                                          "controller-uid": job.uid,
                                                          "batch.kubernetes.io/controller-uid":
                                                          job.uid})
                    try:
                        new = store.create(pod)
                    except OrchestraError as exc:
                        self.expectations.observed_add(key)
                        self.ctx.recorder.event(job, "Warning", "FailedCreate",
                                                f"Error creating: {exc}", component=COMPONENT)
                        requeue = 10.0
                        break
                    self.ctx.recorder.event(job, "Normal", "SuccessfulCreate",
                                            f"Created pod: {new.metadata.name}",
                                            component=COMPONENT)
            if job.spec.active_deadline_seconds is not None:
                requeue = max(0.001, parse_time(start) + job.spec.active_deadline_seconds - now)
        self._status(job, start, now, len(active), succeeded, failed,
                     sum(1 for p in active if is_ready(p)), failure, done)
        return Result(requeue_after=requeue) if requeue is not None else None

    def _ensure_selector(self, job: Job) -> Job:
        if job.spec.selector is not None and not job.spec.manual_selector and (
                job.spec.template.metadata and job.spec.template.metadata.labels
                and job.spec.template.metadata.labels.get("batch.kubernetes.io/controller-uid")):
            return job
        if job.spec.manual_selector:
            return job
        from orchestra.objects import Job

        d = job.to_dict()
        uid = job.metadata.uid
        labels = {"batch.kubernetes.io/controller-uid": uid, "controller-uid": uid,
                  "batch.kubernetes.io/job-name": job.metadata.name,
                  "job-name": job.metadata.name}
        tmeta = d["spec"]["template"].setdefault("metadata", {})
        tmeta["labels"] = {**tmeta.get("labels", {}), **labels}
        d["spec"]["selector"] = {"matchLabels": {"batch.kubernetes.io/controller-uid": uid}}
        return cast("Job", self.ctx.store.update(Job.model_validate(d)))

    def _status(self, job: Job, start: str, now: float, active: int, succeeded: int,
                failed: int, ready: int, failure: tuple[str, str] | None, done: bool) -> None:
        from orchestra.objects import JobStatus

        stamp = format_time(now)
        status: dict[str, Any] = {"startTime": start, "active": active or None,
                                  "succeeded": succeeded or None, "failed": failed or None,
                                  "ready": ready, "terminating": 0,
                                  "uncountedTerminatedPods": {}}
        conds = [c.to_dict() for c in (job.status.conditions or ())] if job.status else []
        if failure is not None:
            reason, message = failure
            conds += [
                {"type": "FailureTarget", "status": "True", "reason": reason,
                 "message": message, "lastProbeTime": stamp, "lastTransitionTime": stamp},
                {"type": "Failed", "status": "True", "reason": reason, "message": message,
                 "lastProbeTime": stamp, "lastTransitionTime": stamp}]
            self.ctx.recorder.event(job, "Warning", reason, message, component=COMPONENT)
        elif done:
            conds += [
                {"type": "SuccessCriteriaMet", "status": "True",
                 "reason": "CompletionsReached", "message": "Reached expected number of "
                 "succeeded pods", "lastProbeTime": stamp, "lastTransitionTime": stamp},
                {"type": "Complete", "status": "True", "reason": "CompletionsReached",
                 "message": "Reached expected number of succeeded pods",
                 "lastProbeTime": stamp, "lastTransitionTime": stamp}]
            status["completionTime"] = stamp
            self.ctx.recorder.event(job, "Normal", "Completed", "Job completed",
                                    component=COMPONENT)
        if conds:
            status["conditions"] = conds
        status = {k: v for k, v in status.items() if v is not None}
        new = JobStatus.model_validate(status)
        if job.status != new:
            self.ctx.store.update(job.model_copy(update={"status": new}))


def setup(ctx: Context) -> list[Runnable]:
    c = JobController(ctx)
    ctx.controllers["job"] = c.controller
    return [c.controller.run]


__all__ = ["Selector", "setup"]
