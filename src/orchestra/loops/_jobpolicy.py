"""The Job controller's rules that need no store: which pods count as finished, how a
failed pod matches ``podFailurePolicy``, whether ``successPolicy`` is met, the pod
failure back-off, and the pod a Job creates for a completion index.

These are Kubernetes' (``pkg/controller/job``): a pod counts as failed when its phase is
Failed or, unless only failed pods are replaced (``podReplacementPolicy: Failed``, implied
by a ``podFailurePolicy``), as soon as it is being deleted; rules are tried in order, an
exit-code rule looking at the main containers first, then the init containers, skipping
exit code 0; a failed pod delays the next one by 10 s doubled per consecutive failure,
capped at 10 minutes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from orchestra.loops._podutil import is_ready
from orchestra.objects._batch import (
    CONTROLLER_UID_LABEL,
    JOB_COMPLETION_INDEX_ANNOTATION,
    JOB_COMPLETION_INDEX_LABEL,
    JOB_NAME_LABEL,
    LEGACY_CONTROLLER_UID_LABEL,
    LEGACY_JOB_NAME_LABEL,
    parse_indexes,
)
from orchestra.objects._scalars import parse_time

if TYPE_CHECKING:
    from orchestra.objects import Job, Pod

TRACKING_FINALIZER = "batch.kubernetes.io/job-tracking"
FAILURE_COUNT_ANNOTATION = "batch.kubernetes.io/job-index-failure-count"
IGNORED_COUNT_ANNOTATION = "batch.kubernetes.io/job-index-ignored-failure-count"
INDEX_ENV = "JOB_COMPLETION_INDEX"
BACKOFF_BASE = 10.0
BACKOFF_MAX = 600.0


def completion_index(pod: Pod) -> int | None:
    """The pod's completion index from its annotation (None when missing or malformed)."""
    notes: Mapping[str, str] = pod.metadata.annotations or {}
    value = notes.get(JOB_COMPLETION_INDEX_ANNOTATION)
    return int(value) if value is not None and value.isdigit() else None


def terminal(pod: Pod) -> bool:
    return pod.status is not None and pod.status.phase in ("Succeeded", "Failed")


def succeeded(pod: Pod) -> bool:
    return pod.status is not None and pod.status.phase == "Succeeded"


def active(pod: Pod) -> bool:
    return pod.metadata.deletion_timestamp is None and not terminal(pod)


def terminating(pod: Pod) -> bool:
    return pod.metadata.deletion_timestamp is not None and not terminal(pod)


def tracked(pod: Pod) -> bool:
    return TRACKING_FINALIZER in (pod.metadata.finalizers or ())


def only_replace_failed(job: Job) -> bool:
    return job.spec.pod_replacement_policy == "Failed" or job.spec.pod_failure_policy is not None


def counts_as_failed(pod: Pod, job: Job) -> bool:
    """Kubernetes' isPodFailed: deleted pods count at once, so that orphans count."""
    if pod.status is not None and pod.status.phase == "Failed":
        return True
    if only_replace_failed(job):
        return False
    return pod.metadata.deletion_timestamp is not None and not succeeded(pod)


def finish_time(pod: Pod, now: float) -> float:
    """When the pod's last container finished (or now, when none says)."""
    statuses = (pod.status.container_statuses or ()) if pod.status is not None else ()
    times = [parse_time(cs.state.terminated.finished_at) for cs in statuses
             if cs.state is not None and cs.state.terminated is not None
             and cs.state.terminated.finished_at]
    return float(max(times)) if times else now


def annotation_int(pod: Pod, key: str) -> int:
    notes: Mapping[str, str] = pod.metadata.annotations or {}
    value = notes.get(key, "0")
    return int(value) if value.isdigit() else 0


@dataclass(frozen=True, slots=True)
class PolicyMatch:
    """What a failed pod's first matching rule says: ``action`` (None when no rule
    matched), whether the failure counts toward the limits, and FailJob's message."""

    action: str | None = None
    count: bool = True
    message: str | None = None


def match_failure_policy(job: Job, pod: Pod) -> PolicyMatch:
    policy = job.spec.pod_failure_policy
    if policy is None:
        return PolicyMatch()
    meta, status = pod.metadata, pod.status
    for i, rule in enumerate(policy.rules):
        message: str | None = None
        if rule.on_exit_codes is not None and status is not None:
            req = rule.on_exit_codes
            for cs in (*(status.container_statuses or ()),
                       *(status.init_container_statuses or ())):
                term = cs.state.terminated if cs.state is not None else None
                if term is None or term.exit_code == 0:
                    continue
                if req.container_name is not None and req.container_name != cs.name:
                    continue
                if (term.exit_code in req.values) == (req.operator == "In"):
                    message = (f"Container {cs.name} for pod {meta.namespace}/{meta.name} "
                               f"failed with exit code {term.exit_code} matching "
                               f"{rule.action} rule at index {i}")
                    break
        elif rule.on_pod_conditions and status is not None:
            for cond in status.conditions or ():
                if any(p.type == cond.type and p.status == cond.status
                       for p in rule.on_pod_conditions):
                    message = (f"Pod {meta.namespace}/{meta.name} has condition {cond.type} "
                               f"matching {rule.action} rule at index {i}")
                    break
        if message is None:
            continue
        if rule.action == "Ignore":
            return PolicyMatch("Ignore", count=False)
        if rule.action == "FailJob":
            return PolicyMatch("FailJob", message=message)
        if rule.action in ("Count", "FailIndex"):
            return PolicyMatch(rule.action)
        # An unknown action is skipped, as Kubernetes' clients must.
    return PolicyMatch()


def success_policy_message(job: Job, succeeded_indexes: frozenset[int]) -> str | None:
    """``Matched rules at index N`` for the first rule the succeeded indexes meet."""
    policy = job.spec.success_policy
    if policy is None or not succeeded_indexes:
        return None
    completions = job.spec.completions or 0
    for i, rule in enumerate(policy.rules):
        if rule.succeeded_indexes is not None:
            try:
                wanted = parse_indexes(rule.succeeded_indexes, completions)
            except ValueError:
                continue
            if not wanted:
                continue
            done = len(wanted & succeeded_indexes)
            if (rule.succeeded_count is None and done == len(wanted)) or (
                    rule.succeeded_count is not None and done >= rule.succeeded_count):
                return f"Matched rules at index {i}"
        elif rule.succeeded_count is not None and \
                len(succeeded_indexes) >= rule.succeeded_count:
            return f"Matched rules at index {i}"
    return None


def backoff_remaining(failures: int, last_failure: float, now: float) -> float:
    """Seconds until a pod may be created after ``failures`` consecutive failures."""
    if failures <= 0:
        return 0.0
    delay = min(BACKOFF_BASE * float(2 ** min(failures - 1, 30)), BACKOFF_MAX)
    return max(0.0, last_failure + delay - now)


def past_backoff_on_failure(job: Job, pods: Iterable[Pod], limit: int) -> bool:
    """restartPolicy OnFailure: the container restarts of running pods reach the limit."""
    if job.spec.template.spec.restart_policy != "OnFailure":
        return False
    restarts = 0
    for p in pods:
        if p.status is not None and p.status.phase in ("Running", "Pending"):
            restarts += sum(cs.restart_count or 0 for cs in (
                *(p.status.init_container_statuses or ()),
                *(p.status.container_statuses or ())))
    return restarts > 0 if limit == 0 else restarts >= limit


def pod_manifest(job: Job, index: int | None,
                 annotations: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The pod the Job creates (for ``index`` when Indexed): the template with the
    Job's labels, the tracking finalizer and, for an index, its annotation, label,
    hostname ``<job>-<index>``, ``JOB_COMPLETION_INDEX`` and name ``<job>-<index>-``."""
    name = job.metadata.name or ""
    template = job.spec.template.to_dict()
    tmeta = template.get("metadata") or {}
    labels = dict(tmeta.get("labels") or {})
    labels.update({JOB_NAME_LABEL: name, LEGACY_JOB_NAME_LABEL: name,
                   CONTROLLER_UID_LABEL: job.uid, LEGACY_CONTROLLER_UID_LABEL: job.uid})
    notes = dict(tmeta.get("annotations") or {})
    notes.update(annotations or {})
    spec = template["spec"]
    generate_name = f"{name}-"
    if index is not None:
        notes[JOB_COMPLETION_INDEX_ANNOTATION] = str(index)
        labels[JOB_COMPLETION_INDEX_LABEL] = str(index)
        spec["hostname"] = f"{name}-{index}"
        generate_name = f"{name}-{index}-"
        ref = {"fieldRef": {"fieldPath":
                            f"metadata.annotations['{JOB_COMPLETION_INDEX_ANNOTATION}']"}}
        for key in ("initContainers", "containers"):
            for c in spec.get(key) or ():
                env = c.setdefault("env", [])
                if not any(e.get("name") == INDEX_ENV for e in env):
                    env.append({"name": INDEX_ENV, "valueFrom": ref})
    finalizers = [f for f in tmeta.get("finalizers") or () if f != TRACKING_FINALIZER]
    meta: dict[str, Any] = {
        "generateName": generate_name, "namespace": job.metadata.namespace,
        "labels": labels, "finalizers": [*finalizers, TRACKING_FINALIZER],
        "ownerReferences": [{"apiVersion": job.api_version, "kind": "Job", "name": name,
                             "uid": job.uid, "controller": True,
                             "blockOwnerDeletion": True}]}
    if notes:
        meta["annotations"] = notes
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec}


def indexes_in(text: str | None, size: int) -> frozenset[int]:
    try:
        return frozenset(i for i in parse_indexes(text) if i < size)
    except ValueError:
        return frozenset()


def created(pod: Pod) -> str:
    return pod.metadata.creation_timestamp or ""


def surplus(job: Job, active: list[Pod], at_least: int) -> list[Pod]:
    """Pods to remove: for an Indexed Job, duplicates and out-of-range indexes first;
    then the least advanced (not ready before ready, newest first)."""
    remove: list[Pod] = []
    left = list(active)
    if job.spec.completion_mode == "Indexed":
        seen: set[int] = set()
        left = []
        for p in sorted(active, key=lambda p: (not is_ready(p), created(p))):
            ix = completion_index(p)
            if ix is None or ix >= (job.spec.completions or 0) or ix in seen:
                remove.append(p)
            else:
                seen.add(ix)
                left.append(p)
    if len(remove) < at_least:
        left.sort(key=lambda p: (is_ready(p), created(p)), reverse=False)
        remove += left[: at_least - len(remove)]
    return remove


def delayed_per_index(job: Job, pods: list[Pod], done: frozenset[int],
                       failed: frozenset[int] | None) -> set[str]:
    """Failed pods whose finalizer stays until their index has a replacement, so that
    the replacement can carry the index's failure count (Kubernetes does the same)."""
    latest: dict[int, Pod] = {}
    for p in pods:
        ix = completion_index(p)
        if ix is not None and (ix not in latest or created(p) > created(latest[ix])):
            latest[ix] = p
    return {p.metadata.uid or "" for ix, p in latest.items()
            if tracked(p) and counts_as_failed(p, job) and ix not in done
            and ix not in (failed or frozenset())}


__all__ = [
    "FAILURE_COUNT_ANNOTATION",
    "IGNORED_COUNT_ANNOTATION",
    "TRACKING_FINALIZER",
    "PolicyMatch",
    "active",
    "annotation_int",
    "backoff_remaining",
    "completion_index",
    "counts_as_failed",
    "created",
    "delayed_per_index",
    "finish_time",
    "indexes_in",
    "match_failure_policy",
    "only_replace_failed",
    "past_backoff_on_failure",
    "pod_manifest",
    "succeeded",
    "success_policy_message",
    "surplus",
    "terminal",
    "terminating",
    "tracked",
]
