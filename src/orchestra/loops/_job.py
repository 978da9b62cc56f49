"""The Job controller, as Kubernetes' (1.31+) runs it.

- Pods carry the ``batch.kubernetes.io/job-tracking`` finalizer until the controller has
  counted them: ``status.succeeded``/``failed`` (and ``completedIndexes``/
  ``failedIndexes``) only grow, and the status is written before a finalizer is removed,
  so no pod is counted twice or lost. Pods the controller deletes itself (suspension,
  surplus) lose the finalizer first and are not counted as failures.
- ``NonIndexed`` runs pods to ``completions`` successes (or, without completions, until
  one succeeds and the rest finish), ``parallelism`` at a time. ``Indexed`` gives every
  pod an index (annotation and label ``batch.kubernetes.io/job-completion-index``,
  ``JOB_COMPLETION_INDEX``, hostname ``<job>-<index>``, name ``<job>-<index>-xxxxx``),
  lowest pending indexes first.
- Failures: ``backoffLimit`` (with OnFailure also container restarts),
  ``activeDeadlineSeconds``, ``podFailurePolicy`` (FailJob, Ignore, Count, FailIndex),
  ``backoffLimitPerIndex``/``maxFailedIndexes``. Failed pods are replaced after
  Kubernetes' back-off (10 s doubling, 10 min cap; per index with
  ``backoffLimitPerIndex``). ``podReplacementPolicy: Failed`` waits for a deleted pod to
  be Failed before replacing it; ``status.terminating`` counts such pods.
- Finishing: an interim ``FailureTarget`` or ``SuccessCriteriaMet`` condition (reason
  and message as Kubernetes writes them) is written first; active pods are deleted; once
  none is terminating, ``Failed`` or ``Complete`` follows (and ``completionTime``).
- ``suspend`` deletes active pods and sets ``Suspended`` (``JobSuspended``); resuming
  sets it False (``JobResumed``) and resets ``startTime``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, cast

from orchestra._errors import Conflict, NotFound, OrchestraError
from orchestra.loops import _jobpolicy as jp
from orchestra.loops._context import Context, Runnable
from orchestra.loops._engine import Controller, Expectations, Result, key_of, split_key
from orchestra.loops._podutil import is_ready
from orchestra.objects._batch import CONTROLLER_UID_LABEL, JOB_NAME_LABEL, format_indexes
from orchestra.objects._scalars import format_time, parse_time

if TYPE_CHECKING:
    from orchestra.objects import Job, Pod

COMPONENT = "job-controller"
MANAGED_BY = "kubernetes.io/job-controller"
_COMPLETED = ("CompletionsReached", "Reached expected number of succeeded pods")


def _finished(job: Job) -> bool:
    return any(c.type in ("Complete", "Failed") and c.status == "True"
               for c in (job.status.conditions or ())) if job.status else False


def _cond(type_: str, status: str, reason: str, message: str, stamp: str) -> dict[str, Any]:
    return {"type": type_, "status": status, "reason": reason, "message": message,
            "lastProbeTime": stamp, "lastTransitionTime": stamp}


class JobController:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.expectations = Expectations(ctx.clock)
        # key -> (failures since the last success, time of the last failure): the pod
        # failure back-off, kept in memory as Kubernetes' backoffRecordStore is.
        self.backoff: dict[str, tuple[int, float]] = {}
        self.controller = Controller("job", self.reconcile, ctx.clock)
        ctx.informers["Job"].add_handler(lambda t, j, o: self.controller.enqueue(key_of(j)))
        ctx.informers["Pod"].add_handler(self._on_pod)

    def _on_pod(self, typ: str, pod: Any, old: Any) -> None:
        ref = pod.metadata.controller_ref()
        if ref is None and jp.tracked(pod):
            # An orphan (its Job deleted with propagation Orphan) still holding the
            # finalizer: the sync of its former Job's key releases it.
            job_name = (pod.metadata.labels or {}).get(JOB_NAME_LABEL)
            if job_name:
                self.controller.enqueue(f"{pod.metadata.namespace}/{job_name}")
            return
        if ref is None or ref.kind != "Job":
            return
        key = f"{pod.metadata.namespace}/{ref.name}"
        if typ == "ADDED":
            self.expectations.observed_add(key)
        self.controller.enqueue(key)

    # -- the sync --------------------------------------------------------------------------

    async def reconcile(self, key: str) -> Result | None:
        store = self.ctx.store
        ns, name = split_key(key)
        ns = ns or "default"
        found = cast("Job | None", store.get_or_none("Job", name, namespace=ns))
        if found is None or found.metadata.deletion_timestamp is not None:
            self._release_orphans(ns, name, found)
            self.backoff.pop(key, None)
            return None
        if found.spec.managed_by not in (None, MANAGED_BY):
            return None  # another controller runs it (spec.managedBy), as in Kubernetes
        job = found  # (its selector was generated when it was created)
        self._release_strays(job)
        if _finished(job):
            self.backoff.pop(key, None)
            return None
        return self._sync(key, job)

    def _sync(self, key: str, job: Job) -> Result | None:
        spec, old = job.spec, job.status
        now = self.ctx.clock.now()
        stamp = format_time(now)
        pods = [cast("Pod", p) for p in self.ctx.store.list_owned(job.uid) if p.kind == "Pod"]
        indexed = spec.completion_mode == "Indexed"
        completions = spec.completions
        per_index = spec.backoff_limit_per_index
        satisfied = self.expectations.satisfied(key)

        def valid(p: Pod) -> bool:
            ix = jp.completion_index(p)
            return not indexed or (ix is not None and ix < (completions or 0))

        new_ok = [p for p in pods if jp.tracked(p) and jp.succeeded(p) and valid(p)]
        new_bad = [p for p in pods if jp.tracked(p) and jp.counts_as_failed(p, job)
                   and valid(p)]
        matches = {p.metadata.uid: jp.match_failure_policy(job, p) for p in new_bad}
        counted_failed = (old.failed if old else 0) or 0
        # Decisions see every failed pod; the status counts a pod once it is released.
        failed = counted_failed + sum(1 for p in new_bad if matches[p.metadata.uid].count)
        succeeded = ((old.succeeded if old else 0) or 0) + len(new_ok)
        self._record_backoff(key, new_ok, new_bad, now)
        suspended = bool(spec.suspend)
        start = old.start_time if old else None
        if start is None and not suspended:
            start = stamp
        conds = [c.to_dict() for c in (old.conditions or ())] if old else []
        by_type = {c["type"]: c for c in conds}
        requeue: list[float] = []

        finish, done_ix, failed_ix, indexed_succeeded = self._finish(
            job, pods, by_type, new_ok, new_bad, matches, failed, start, now, requeue)
        if indexed:
            succeeded = indexed_succeeded

        active = [p for p in pods if jp.active(p)]
        n_terminating = sum(1 for p in pods if jp.terminating(p))
        ready = sum(1 for p in active if is_ready(p))
        released: set[str] = set()
        can_finish = False
        if finish is not None:
            gone = self._delete(job, active, keep_finalizer=True)
            can_finish = gone == len(active) and satisfied
            n_terminating += gone
            ready = 0
            active = []
        else:
            if satisfied:
                active, ready, extra = self._manage(key, job, pods, active, ready, succeeded,
                                                   done_ix, failed_ix, released, now, requeue)
                n_terminating += extra
            complete = (succeeded > 0 if completions is None else succeeded >= completions)
            if complete and not active:
                finish = ("SuccessCriteriaMet", *_COMPLETED)
                can_finish = True
            elif satisfied:
                start = self._suspension(job, by_type, conds, suspended, start, stamp)

        # Count: every tracked pod that has finished (or, when the Job fails, every one).
        failing = finish is not None and finish[0] == "FailureTarget"
        delayed = jp.delayed_per_index(job, pods, done_ix, failed_ix) if per_index is not None \
            and finish is None else set()
        to_release: list[Pod] = []
        for p in pods:
            if not jp.tracked(p) or p.metadata.uid in released:
                continue
            bad = jp.counts_as_failed(p, job)
            if finish is None and not jp.succeeded(p) and not bad:
                continue
            if finish is None and p.metadata.uid in delayed:
                continue
            to_release.append(p)
            seen = matches.get(p.metadata.uid)
            if seen is not None and seen.count:
                counted_failed += 1
            elif failing and not bad and not jp.succeeded(p) and valid(p):
                counted_failed += 1  # still running when the Job failed: a failure
        if finish is not None:
            type_, reason, message = finish
            if not by_type.get(type_):
                conds.append(_cond(type_, "True", reason, message, stamp))
        status: dict[str, Any] = {
            "startTime": start, "active": len(active) or None,
            "succeeded": succeeded or None, "failed": counted_failed or None,
            "ready": ready, "terminating": n_terminating, "uncountedTerminatedPods": {}}
        if indexed:
            status["completedIndexes"] = format_indexes(done_ix) or None
            if failed_ix is not None:
                status["failedIndexes"] = format_indexes(failed_ix)
        done_now = finish is not None and can_finish and n_terminating == 0
        if done_now:
            assert finish is not None
            final = "Failed" if finish[0] == "FailureTarget" else "Complete"
            conds.append(_cond(final, "True", finish[1], finish[2], stamp))
            if final == "Complete":
                status["completionTime"] = stamp
        if conds:
            status["conditions"] = conds
        self._write(job, status)
        for p in to_release:
            self._release(p)
        if done_now:
            assert finish is not None
            if finish[0] == "FailureTarget":
                self.ctx.recorder.event(job, "Warning", finish[1], finish[2],
                                        component=COMPONENT)
            else:
                self.ctx.recorder.event(job, "Normal", "Completed", "Job completed",
                                        component=COMPONENT)
        if requeue:
            return Result(requeue_after=max(0.001, min(requeue)))
        return None

    def _finish(self, job: Job, pods: list[Pod], by_type: dict[str, dict[str, Any]],
                new_ok: list[Pod], new_bad: list[Pod], matches: dict[str | None, Any],
                failed: int, start: str | None, now: float, requeue: list[float]
                ) -> tuple[tuple[str, str, str] | None, frozenset[int],
                           frozenset[int] | None, int]:
        """The interim finish condition (type, reason, message), in Kubernetes' order of
        precedence, with the succeeded and failed indexes of an Indexed Job."""
        spec, old = job.spec, job.status
        suspended = bool(spec.suspend)
        finish: tuple[str, str, str] | None = None
        for type_ in ("SuccessCriteriaMet", "FailureTarget"):
            c = by_type.get(type_)
            if c is not None and c.get("status") == "True":
                finish = (type_, c.get("reason", ""), c.get("message", ""))
                break
        else:
            for p in pods:
                if jp.counts_as_failed(p, job):
                    msg = jp.match_failure_policy(job, p).message
                    if msg is not None:
                        finish = ("FailureTarget", "PodFailurePolicy", msg)
                        break
        backoff_limit = spec.backoff_limit if spec.backoff_limit is not None else 6
        if finish is None:
            if failed > backoff_limit or jp.past_backoff_on_failure(job, pods, backoff_limit):
                finish = ("FailureTarget", "BackoffLimitExceeded",
                          "Job has reached the specified backoff limit")
            elif spec.active_deadline_seconds is not None and start and not suspended:
                left = parse_time(start) + spec.active_deadline_seconds - now
                if left <= 0:
                    finish = ("FailureTarget", "DeadlineExceeded",
                              "Job was active longer than specified deadline")
                else:
                    requeue.append(left)
        done_ix: frozenset[int] = frozenset()
        failed_ix: frozenset[int] | None = None
        if spec.completion_mode != "Indexed":
            return finish, done_ix, failed_ix, 0
        size = spec.completions or 0
        done_ix = jp.indexes_in(old.completed_indexes if old else None, size) | {
            cast("int", jp.completion_index(p)) for p in new_ok}
        per_index = spec.backoff_limit_per_index
        if per_index is not None:
            failed_ix = jp.indexes_in(old.failed_indexes if old else None, size)
            for p in new_bad:
                ix = cast("int", jp.completion_index(p))
                m = matches[p.metadata.uid]
                if ix not in done_ix and (m.action == "FailIndex" or (
                        m.count and jp.annotation_int(
                            p, jp.FAILURE_COUNT_ANNOTATION) >= per_index)):
                    failed_ix = failed_ix | {ix}
            if finish is None and spec.max_failed_indexes is not None and \
                    len(failed_ix) > spec.max_failed_indexes:
                finish = ("FailureTarget", "MaxFailedIndexesExceeded",
                          "Job has exceeded the specified maximal number of failed indexes")
            elif finish is None and failed_ix and len(failed_ix | done_ix) >= size:
                finish = ("FailureTarget", "FailedIndexes", "Job has failed indexes")
        if finish is None:
            msg = jp.success_policy_message(job, done_ix)
            if msg is not None:
                finish = ("SuccessCriteriaMet", "SuccessPolicy", msg)
        return finish, done_ix, failed_ix, len(done_ix)

    # -- pods ------------------------------------------------------------------------------

    def _manage(self, key: str, job: Job, pods: list[Pod], active: list[Pod], ready: int,
                succeeded: int, done_ix: frozenset[int], failed_ix: frozenset[int] | None,
                released: set[str], now: float, requeue: list[float]
                ) -> tuple[list[Pod], int, int]:
        """Kubernetes' manageJob: returns the active pods, ready count and how many pods
        it started deleting."""
        spec = job.spec
        if spec.suspend:
            gone = self._delete(job, active, keep_finalizer=False, released=released)
            return [], 0, gone
        parallelism = spec.parallelism if spec.parallelism is not None else 1
        if spec.completions is None:
            want = len(active) if succeeded > 0 else parallelism
        else:
            want = max(0, min(spec.completions - succeeded, parallelism))
        surplus = jp.surplus(job, active, max(0, len(active) - want))
        if surplus:
            gone = self._delete(job, surplus, keep_finalizer=False, released=released)
            left = [p for p in active if p.metadata.uid not in released]
            return left, sum(1 for p in left if is_ready(p)), gone
        waiting = sum(1 for p in pods if jp.terminating(p)) if jp.only_replace_failed(job) else 0
        diff = want - waiting - len(active)
        if diff <= 0:
            return active, ready, 0
        indexes: list[int | None] = [None] * diff
        notes: dict[int, dict[str, str]] = {}
        if spec.completion_mode == "Indexed":
            busy = {jp.completion_index(p) for p in pods if jp.active(p) or (
                jp.only_replace_failed(job) and jp.terminating(p))}
            skip = done_ix | (failed_ix or frozenset())
            pending = [i for i in range(spec.completions or 0) if i not in skip
                       and i not in busy][:diff]
            if spec.backoff_limit_per_index is not None:
                pending, wait = self._index_backoff(job, pods, pending, notes, now)
                if wait > 0:
                    requeue.append(wait)
            indexes = list(pending)
        else:
            failures, last = self.backoff.get(key, (0, 0.0))
            wait = jp.backoff_remaining(failures, last, now)
            if wait > 0:
                requeue.append(wait)
                return active, ready, 0
        if not indexes:
            return active, ready, 0
        self.expectations.expect(key, adds=len(indexes))
        created = list(active)
        for ix in indexes:
            new = self._create(key, job, ix, notes.get(ix, {}) if ix is not None else {})
            if new is None:
                requeue.append(10.0)
                break
            created.append(new)
        return created, ready, 0

    def _index_backoff(self, job: Job, pods: list[Pod], pending: list[int],
                       notes: dict[int, dict[str, str]], now: float
                       ) -> tuple[list[int], float]:
        """Per index: the failure counts the new pod carries, and the back-off after
        the index's last failed pod."""
        last: dict[int, Pod] = {}
        for p in pods:
            ix = jp.completion_index(p)
            if ix is not None and jp.counts_as_failed(p, job) and (
                    ix not in last or jp.created(p) > jp.created(last[ix])):
                last[ix] = p
        ready_now: list[int] = []
        waits: list[float] = []
        for ix in pending:
            prev = last.get(ix)
            if prev is None:
                ready_now.append(ix)
                continue
            m = jp.match_failure_policy(job, prev)
            count = jp.annotation_int(prev, jp.FAILURE_COUNT_ANNOTATION) + int(m.count)
            ignored = jp.annotation_int(prev, jp.IGNORED_COUNT_ANNOTATION) + int(not m.count)
            notes[ix] = {jp.FAILURE_COUNT_ANNOTATION: str(count)}
            if ignored:
                notes[ix][jp.IGNORED_COUNT_ANNOTATION] = str(ignored)
            wait = jp.backoff_remaining(count + ignored, jp.finish_time(prev, now), now)
            if wait > 0:
                waits.append(wait)
            else:
                ready_now.append(ix)
        if ready_now:
            return ready_now, 0.0
        return [], min(waits) if waits else 0.0

    def _create(self, key: str, job: Job, index: int | None,
                notes: dict[str, str]) -> Pod | None:
        from orchestra.objects import Pod

        try:
            pod = Pod.model_validate(jp.pod_manifest(job, index, notes))
            new = cast("Pod", self.ctx.store.create(pod))
        except OrchestraError as exc:
            self.expectations.observed_add(key)
            self.ctx.recorder.event(job, "Warning", "FailedCreate", f"Error creating: {exc}",
                                    component=COMPONENT)
            return None
        self.ctx.recorder.event(job, "Normal", "SuccessfulCreate",
                                f"Created pod: {new.metadata.name}", component=COMPONENT)
        return new

    def _delete(self, job: Job, pods: list[Pod], *, keep_finalizer: bool,
                released: set[str] | None = None) -> int:
        """Delete ``pods``; without ``keep_finalizer`` they are released first, so they
        never count (suspension, surplus). Returns how many deletions went through."""
        gone = 0
        for p in pods:
            if not keep_finalizer:
                self._release(p)
                if released is not None:
                    released.add(p.metadata.uid or "")
            try:
                self.ctx.store.delete("Pod", p.metadata.name, namespace=p.metadata.namespace)
            except NotFound:
                pass
            else:
                self.ctx.recorder.event(job, "Normal", "SuccessfulDelete",
                                        f"Deleted pod: {p.metadata.name}",
                                        component=COMPONENT)
            gone += 1
        return gone

    def _release(self, pod: Pod) -> None:
        """Remove the tracking finalizer (re-reading the pod; a gone pod is fine)."""
        for _ in range(5):
            cur = cast("Pod | None", self.ctx.store.get_or_none(
                "Pod", pod.metadata.name, namespace=pod.metadata.namespace))
            if cur is None or cur.metadata.uid != pod.metadata.uid or not jp.tracked(cur):
                return
            kept = tuple(f for f in cur.metadata.finalizers or ()
                         if f != jp.TRACKING_FINALIZER)
            meta = cur.metadata.model_copy(update={"finalizers": kept or None})
            try:
                self.ctx.store.update(cur.model_copy(update={"metadata": meta}))
                return
            except Conflict:
                continue
            except NotFound:
                return

    def _release_orphans(self, ns: str, name: str, job: Job | None) -> None:
        """Pods of a deleted (or deleting) Job lose their tracking finalizer."""
        if job is not None:
            pods = [p for p in self.ctx.store.list_owned(job.uid) if p.kind == "Pod"]
        else:
            pods = [p for p in self.ctx.store.list("Pod", namespace=ns,
                                                    selector=f"{JOB_NAME_LABEL}={name}")]
        for p in pods:
            pod = cast("Pod", p)
            ref = pod.metadata.controller_ref()
            if jp.tracked(pod) and (ref is None or (ref.kind == "Job" and ref.name == name)):
                self._release(pod)

    def _release_strays(self, job: Job) -> None:
        """Orphans of an earlier Job of this name (no controller, another uid)."""
        for p in self.ctx.store.list("Pod", namespace=job.metadata.namespace,
                                     selector=f"{JOB_NAME_LABEL}={job.metadata.name}"):
            pod = cast("Pod", p)
            labels: Mapping[str, str] = pod.metadata.labels or {}
            if jp.tracked(pod) and pod.metadata.controller_ref() is None and \
                    labels.get(CONTROLLER_UID_LABEL) != job.uid:
                self._release(pod)

    def _record_backoff(self, key: str, ok: list[Pod], bad: list[Pod], now: float) -> None:
        failures, last = self.backoff.get(key, (0, 0.0))
        if ok:
            latest_ok = max(jp.finish_time(p, now) for p in ok)
            later = [jp.finish_time(p, now) for p in bad if jp.finish_time(p, now) > latest_ok]
            failures, last = len(later), max(later, default=0.0)
        elif bad:
            failures += len(bad)
            last = max(last, *(jp.finish_time(p, now) for p in bad))
        self.backoff[key] = (failures, last)

    # -- status ----------------------------------------------------------------------------

    def _suspension(self, job: Job, by_type: dict[str, dict[str, Any]],
                    conds: list[dict[str, Any]], suspended: bool, start: str | None,
                    stamp: str) -> str | None:
        """The Suspended condition and its events; resuming resets ``startTime``."""
        cur = by_type.get("Suspended")
        if suspended:
            want = ("True", "JobSuspended", "Job suspended")
        elif cur is not None:
            want = ("False", "JobResumed", "Job resumed")
        else:
            return start
        if cur is not None and (cur.get("status"), cur.get("reason"),
                                cur.get("message")) == want:
            return start
        new = _cond("Suspended", *want, stamp)
        if cur is not None:
            conds[conds.index(cur)] = new
        else:
            conds.append(new)
        by_type["Suspended"] = new
        if suspended:
            self.ctx.recorder.event(job, "Normal", "Suspended", "Job suspended",
                                    component=COMPONENT)
            return start
        self.ctx.recorder.event(job, "Normal", "Resumed", "Job resumed", component=COMPONENT)
        return stamp

    def _write(self, job: Job, status: dict[str, Any]) -> None:
        from orchestra.objects import JobStatus

        new = JobStatus.model_validate({k: v for k, v in status.items() if v is not None})
        if job.status != new:
            self.ctx.store.update(job.model_copy(update={"status": new}))


def setup(ctx: Context) -> list[Runnable]:
    c = JobController(ctx)
    ctx.controllers["job"] = c.controller
    return [c.controller.run]


__all__ = ["setup"]
