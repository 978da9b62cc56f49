"""batch/v1: Job and CronJob.

The cron schedule arithmetic the CronJob controller uses lives in ``_cron`` and is
re-exported here.

Invariants:

- A Job gets Kubernetes' defaults (``SetDefaults_Job``): parallelism 1, completions 1
  only when *both* are unset, backoffLimit 6 (MaxInt32 with backoffLimitPerIndex),
  completionMode NonIndexed, suspend false, podReplacementPolicy TerminatingOrFailed
  (Failed with a podFailurePolicy), and the template's labels as the Job's labels when
  it has none. A CronJob's ``jobTemplate.spec`` is *not* defaulted, as in Kubernetes; the
  Job created from it is.
- The Job's selector and the ``controller-uid``/``job-name`` labels are not made here:
  they need the uid the store assigns, so the store (or the Job controller) adds them.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Literal

from pydantic import Field, model_validator

from orchestra._errors import FieldError, Invalid
from orchestra.objects._base import register
from orchestra.objects._checks import (
    Checked,
    CheckedKind,
    ConditionBase,
    ErrorList,
    fill_defaults,
    get_raw,
    invalid,
    label_selector_errors,
    nonnegative,
    selector_matches,
    unsupported,
)
from orchestra.objects._core import ObjectReference
from orchestra.objects._cron import (
    CronSchedule,
    ScheduleCheck,
    cron_times_between,
    most_recent_schedule_time,
    next_cron_time,
    next_schedule_time,
    parse_cron,
    time_zone_error,
)
from orchestra.objects._field_errors import describe_kind
from orchestra.objects._meta import LabelSelector, ObjectMeta
from orchestra.objects._names import dns1123_subdomain_error
from orchestra.objects._pod import PodTemplateSpec
from orchestra.objects._scalars import Time

MAX_INT32 = 2**31 - 1

# ---------------------------------------------------------------------------
# Job


class JobCondition(ConditionBase):
    last_probe_time: Time | None = None


class PodFailurePolicyOnExitCodesRequirement(Checked):
    container_name: str | None = None
    operator: str
    values: tuple[int, ...]


class PodFailurePolicyOnPodConditionsPattern(Checked):
    type: str
    status: str = "True"


class PodFailurePolicyRule(Checked):
    action: str
    on_exit_codes: PodFailurePolicyOnExitCodesRequirement | None = None
    on_pod_conditions: tuple[PodFailurePolicyOnPodConditionsPattern, ...] | None = None

    def field_errors(self) -> ErrorList:
        errors: ErrorList = []
        if self.action not in _FAILURE_ACTIONS:
            errors.append((("action",), unsupported(self.action, _FAILURE_ACTIONS)))
        if self.on_exit_codes is not None and self.on_pod_conditions:
            errors.append(((), invalid(self, "specifying both OnExitCodes and "
                                             "OnPodConditions is not supported")))
        elif self.on_exit_codes is None and not self.on_pod_conditions:
            errors.append(((), invalid(self, "specifying one of OnExitCodes and "
                                             "OnPodConditions is required")))
        codes = self.on_exit_codes
        if codes is not None:
            if codes.operator not in ("In", "NotIn"):
                errors.append((("onExitCodes", "operator"),
                               unsupported(codes.operator, ["In", "NotIn"])))
            if not codes.values:
                errors.append((("onExitCodes", "values"),
                               invalid(list(codes.values), "at least one value is required")))
            for j, value in enumerate(codes.values):
                if codes.operator == "In" and value == 0:
                    errors.append((("onExitCodes", "values", j), invalid(
                        value, "must not be 0 for the In operator")))
                if value in codes.values[:j]:
                    errors.append((("onExitCodes", "values", j), "Duplicate value: "
                                   f"{value}"))
            if list(codes.values) != sorted(codes.values):
                errors.append((("onExitCodes", "values"),
                               invalid(list(codes.values), "must be ordered")))
        return errors


def parse_indexes(text: str | None, completions: int | None = None) -> frozenset[int]:
    """Indexes written as Kubernetes writes ``completedIndexes``: ``"1,3-5,7"``.

    Raises ValueError for a malformed list, or an index >= ``completions`` when given.
    """
    out: set[int] = set()
    if not text:
        return frozenset()
    for part in text.split(","):
        low, dash, high = part.partition("-")
        if not low.isdigit() or (dash and not high.isdigit()):
            raise ValueError(f"cannot convert string to integer for index: {part!r}")
        first, last = int(low), int(high) if dash else int(low)
        if last < first:
            raise ValueError(f"first index {first} is greater than last index {last}")
        if completions is not None and last >= completions:
            raise ValueError(f"too large: {last}")
        out.update(range(first, last + 1))
    return frozenset(out)


def format_indexes(indexes: Iterable[int]) -> str:
    """The compact interval form of a set of indexes (``{1, 3, 4, 5, 7}`` -> ``"1,3-5,7"``)."""
    parts: list[str] = []
    run: list[int] = []
    for i in sorted(set(indexes)):
        if run and i == run[-1] + 1:
            run.append(i)
            continue
        if run:
            parts.append(str(run[0]) if len(run) == 1 else f"{run[0]}-{run[-1]}")
        run = [i]
    if run:
        parts.append(str(run[0]) if len(run) == 1 else f"{run[0]}-{run[-1]}")
    return ",".join(parts)


class PodFailurePolicy(Checked):
    rules: tuple[PodFailurePolicyRule, ...]


class SuccessPolicyRule(Checked):
    succeeded_indexes: str | None = None
    succeeded_count: int | None = None

    def field_errors(self) -> ErrorList:
        errors: ErrorList = []
        if self.succeeded_indexes is None and self.succeeded_count is None:
            errors.append(((), "Required value: at least one of succeededCount or "
                           "succeededIndexes must be specified"))
        if self.succeeded_indexes is not None:
            try:
                parse_indexes(self.succeeded_indexes)
            except ValueError as exc:
                errors.append((("succeededIndexes",), invalid(self.succeeded_indexes,
                                                               f"error parsing indexes: {exc}")))
        if self.succeeded_count is not None and self.succeeded_count < 0:
            errors.append((("succeededCount",), invalid(
                self.succeeded_count, "must be greater than or equal to 0")))
        return errors


class SuccessPolicy(Checked):
    rules: tuple[SuccessPolicyRule, ...]


class UncountedTerminatedPods(Checked):
    succeeded: tuple[str, ...] | None = None
    failed: tuple[str, ...] | None = None


_COMPLETION_MODES = ("NonIndexed", "Indexed")
_REPLACEMENT_POLICIES = ("TerminatingOrFailed", "Failed")
_FAILURE_ACTIONS = ("FailJob", "FailIndex", "Ignore", "Count")
_MAX_INDEXED = 100_000


class JobSpec(Checked):
    """A Job's spec; also the spec in a CronJob's ``jobTemplate`` (not defaulted there)."""

    parallelism: int | None = None
    completions: int | None = None
    active_deadline_seconds: int | None = None
    pod_failure_policy: PodFailurePolicy | None = None
    success_policy: SuccessPolicy | None = None
    backoff_limit: int | None = None
    backoff_limit_per_index: int | None = None
    max_failed_indexes: int | None = None
    selector: LabelSelector | None = None
    manual_selector: bool | None = None
    template: PodTemplateSpec
    ttl_seconds_after_finished: int | None = None
    completion_mode: str | None = None
    suspend: bool | None = None
    pod_replacement_policy: str | None = None
    managed_by: str | None = None

    def field_errors(self) -> ErrorList:
        errors: ErrorList = []
        for alias, value in (
            ("parallelism", self.parallelism),
            ("completions", self.completions),
            ("activeDeadlineSeconds", self.active_deadline_seconds),
            ("backoffLimit", self.backoff_limit),
            ("backoffLimitPerIndex", self.backoff_limit_per_index),
            ("maxFailedIndexes", self.max_failed_indexes),
            ("ttlSecondsAfterFinished", self.ttl_seconds_after_finished),
        ):
            nonnegative(errors, (alias,), value)
        indexed = self.completion_mode == "Indexed"
        if self.completion_mode is not None and self.completion_mode not in _COMPLETION_MODES:
            errors.append((("completionMode",),
                           unsupported(self.completion_mode, _COMPLETION_MODES)))
        if indexed:
            if self.completions is None:
                errors.append((("completions",),
                               "Required value: when completion mode is Indexed"))
            elif self.completions > _MAX_INDEXED:
                errors.append((("completions",), invalid(
                    self.completions,
                    f"must be less than or equal to {_MAX_INDEXED} when completion mode "
                    "is Indexed")))
            if self.parallelism is not None and self.parallelism > _MAX_INDEXED:
                errors.append((("parallelism",), invalid(
                    self.parallelism,
                    f"must be less than or equal to {_MAX_INDEXED} when completion mode "
                    "is Indexed")))
        if not indexed:
            for alias, value in (("backoffLimitPerIndex", self.backoff_limit_per_index),
                                 ("maxFailedIndexes", self.max_failed_indexes)):
                if value is not None:
                    errors.append(((alias,), invalid(value, "requires indexed completion mode")))
        if self.max_failed_indexes is not None:
            if self.backoff_limit_per_index is None:
                errors.append((("backoffLimitPerIndex",),
                               "Required value: when maxFailedIndexes is specified"))
            if indexed and self.completions is not None and \
                    self.max_failed_indexes > self.completions:
                errors.append((("maxFailedIndexes",), invalid(
                    self.max_failed_indexes, "must be less than or equal to completions")))
        if self.success_policy is not None and not indexed:
            errors.append((("successPolicy",), invalid(
                self.success_policy, "requires indexed completion mode")))
        if self.pod_replacement_policy is not None:
            if self.pod_replacement_policy not in _REPLACEMENT_POLICIES:
                errors.append((("podReplacementPolicy",),
                               unsupported(self.pod_replacement_policy, _REPLACEMENT_POLICIES)))
            elif self.pod_failure_policy is not None and self.pod_replacement_policy != "Failed":
                errors.append((("podReplacementPolicy",),
                               unsupported(self.pod_replacement_policy, ["Failed"])))
        if self.pod_failure_policy is not None:
            spec = self.template.spec
            names = {c.name for c in (*spec.containers, *(spec.init_containers or ()))}
            for i, rule in enumerate(self.pod_failure_policy.rules):
                if rule.action == "FailIndex" and self.backoff_limit_per_index is None:
                    errors.append((("podFailurePolicy", "rules", i, "action"), invalid(
                        rule.action, "requires the backoffLimitPerIndex to be set")))
                codes = rule.on_exit_codes
                if codes is not None and codes.container_name is not None and \
                        codes.container_name not in names:
                    errors.append((("podFailurePolicy", "rules", i, "onExitCodes",
                                    "containerName"), invalid(
                        codes.container_name, "must be one of the container or "
                        "initContainer names in the pod template")))
        if self.selector is not None:
            sel_errors = label_selector_errors(self.selector, ("selector",))
            errors += sel_errors
            labels = self.template.metadata.labels
            if not sel_errors and not selector_matches(self.selector, labels):
                errors.append((("template", "metadata", "labels"), invalid(
                    labels or {}, "`selector` does not match template `labels`")))
        policy = self.template.spec.restart_policy
        if policy not in ("OnFailure", "Never"):
            if not policy:
                errors.append((("template", "spec", "restartPolicy"),
                               'Required value: valid values: "OnFailure", "Never"'))
            else:
                errors.append((("template", "spec", "restartPolicy"),
                               unsupported(policy, ["OnFailure", "Never"])))
        elif self.pod_failure_policy is not None and policy != "Never":
            errors.append((("template", "spec", "restartPolicy"), invalid(
                policy, 'only "Never" is supported when podFailurePolicy is specified')))
        return errors


class JobStatus(Checked):
    conditions: tuple[JobCondition, ...] | None = None
    start_time: Time | None = None
    completion_time: Time | None = None
    active: int | None = None
    succeeded: int | None = None
    failed: int | None = None
    terminating: int | None = None
    completed_indexes: str | None = None
    failed_indexes: str | None = None
    uncounted_terminated_pods: UncountedTerminatedPods | None = None
    ready: int | None = None


def _default_job_spec(spec: Any) -> Any:
    """``SetDefaults_Job`` on a raw spec dict."""
    if isinstance(spec, JobSpec):
        spec = spec.to_dict()
    if not isinstance(spec, dict):
        return spec
    defaults: dict[str, Any] = {}
    if get_raw(spec, "completions") is None and get_raw(spec, "parallelism") is None:
        defaults["completions"] = 1
    defaults["parallelism"] = 1
    per_index = get_raw(spec, "backoffLimitPerIndex") is not None
    defaults["backoffLimit"] = MAX_INT32 if per_index else 6
    defaults["completionMode"] = "NonIndexed"
    defaults["suspend"] = False
    has_failure_policy = get_raw(spec, "podFailurePolicy") is not None
    defaults["podReplacementPolicy"] = "Failed" if has_failure_policy else "TerminatingOrFailed"
    return fill_defaults(spec, defaults)


@register(plural="jobs", namespaced=True)
class Job(CheckedKind):
    api_version: Literal["batch/v1"] = Field("batch/v1", alias="apiVersion")
    kind: Literal["Job"] = "Job"
    spec: JobSpec
    status: JobStatus | None = None

    @model_validator(mode="before")
    @classmethod
    def _defaults(cls, data: Any) -> Any:
        if isinstance(data, dict) and "spec" in data:
            data = dict(data)
            data["spec"] = _default_job_spec(data["spec"])
        return data

    @model_validator(mode="after")
    def _default_labels(self) -> Job:
        # The Job takes its template's labels when it has none of its own.
        template_labels = self.spec.template.metadata.labels
        if template_labels and not self.metadata.labels:
            meta = self.metadata.model_copy(update={"labels": template_labels})
            return self.model_copy(update={"metadata": meta})
        return self


CONTROLLER_UID_LABEL = "batch.kubernetes.io/controller-uid"
JOB_NAME_LABEL = "batch.kubernetes.io/job-name"
LEGACY_CONTROLLER_UID_LABEL = "controller-uid"
LEGACY_JOB_NAME_LABEL = "job-name"
JOB_COMPLETION_INDEX_LABEL = "batch.kubernetes.io/job-completion-index"
JOB_COMPLETION_INDEX_ANNOTATION = "batch.kubernetes.io/job-completion-index"


def generate_job_selector(job: Job) -> Job:
    """What the API server does to a new Job once it has a uid (``generateSelector``).

    Unless ``spec.manualSelector`` is true: the template gets the ``job-name`` and
    ``controller-uid`` labels (both the ``batch.kubernetes.io/`` and the legacy names,
    keeping labels the user set), and the selector gets
    ``batch.kubernetes.io/controller-uid: <uid>``. Raises :class:`orchestra.Invalid`
    (``spec.selector: ... `selector` not auto-generated``) if a user-written selector
    does not select that uid, and ValueError if the Job has no uid yet.
    """
    if job.spec.manual_selector:
        return job
    uid = job.metadata.uid
    if not uid:
        raise ValueError("generate_job_selector needs a Job with metadata.uid")
    data = job.to_dict()
    spec = data["spec"]
    template_meta = spec["template"].setdefault("metadata", {})
    labels = template_meta.setdefault("labels", {})
    for key in (LEGACY_JOB_NAME_LABEL, JOB_NAME_LABEL):
        labels.setdefault(key, job.name)
    for key in (LEGACY_CONTROLLER_UID_LABEL, CONTROLLER_UID_LABEL):
        labels.setdefault(key, uid)
    selector = spec.setdefault("selector", {})
    selector.setdefault("matchLabels", {}).setdefault(CONTROLLER_UID_LABEL, uid)
    new = Job.model_validate(data)
    assert new.spec.selector is not None
    if not selector_matches(new.spec.selector, {CONTROLLER_UID_LABEL: uid}):
        raise Invalid(describe_kind(Job, data), [FieldError(
            "spec.selector", invalid(new.spec.selector, "`selector` not auto-generated"))])
    return new


# ---------------------------------------------------------------------------
# CronJob


class JobTemplateSpec(Checked):
    metadata: ObjectMeta | None = None
    spec: JobSpec


class CronJobStatus(Checked):
    active: tuple[ObjectReference, ...] | None = None
    last_schedule_time: Time | None = None
    last_successful_time: Time | None = None


_CONCURRENCY = ("Allow", "Forbid", "Replace")


class CronJobSpec(Checked):
    schedule: str
    time_zone: str | None = None
    starting_deadline_seconds: int | None = None
    concurrency_policy: str = "Allow"
    suspend: bool = False
    job_template: JobTemplateSpec
    successful_jobs_history_limit: int = 3
    failed_jobs_history_limit: int = 1

    def field_errors(self) -> ErrorList:
        errors: ErrorList = []
        if not self.schedule:
            errors.append((("schedule",), "Required value"))
        elif "TZ" in self.schedule:
            errors.append((("schedule",), invalid(
                self.schedule,
                "cannot use TZ or CRON_TZ in schedule, use timeZone field instead")))
        else:
            try:
                parse_cron(self.schedule)
            except ValueError as exc:
                errors.append((("schedule",), invalid(self.schedule, str(exc))))
        if self.time_zone is not None:
            err = time_zone_error(self.time_zone)
            if err:
                errors.append((("timeZone",), invalid(self.time_zone, err)))
        if self.concurrency_policy not in _CONCURRENCY:
            if not self.concurrency_policy:
                errors.append((("concurrencyPolicy",), "Required value"))
            else:
                errors.append((("concurrencyPolicy",),
                               unsupported(self.concurrency_policy, _CONCURRENCY)))
        nonnegative(errors, ("startingDeadlineSeconds",), self.starting_deadline_seconds)
        nonnegative(errors, ("successfulJobsHistoryLimit",), self.successful_jobs_history_limit)
        nonnegative(errors, ("failedJobsHistoryLimit",), self.failed_jobs_history_limit)
        if self.job_template.spec.manual_selector:
            errors.append((("jobTemplate", "spec", "manualSelector"),
                           unsupported(True, ["nil", "false"])))
        return errors


def _cronjob_name_error(name: str) -> str | None:
    # Job names get an 11-character suffix (-<minutes since epoch>), so 63 - 11.
    if len(name) > 52:
        return "must be no more than 52 characters"
    return dns1123_subdomain_error(name)


@register(plural="cronjobs", short_names=("cj",), namespaced=True,
          name_check=_cronjob_name_error)
class CronJob(CheckedKind):
    api_version: Literal["batch/v1"] = Field("batch/v1", alias="apiVersion")
    kind: Literal["CronJob"] = "CronJob"
    spec: CronJobSpec
    status: CronJobStatus | None = None


__all__ = [
    "CronJob",
    "CronJobSpec",
    "CronJobStatus",
    "CronSchedule",
    "Job",
    "JobCondition",
    "JobSpec",
    "JobStatus",
    "JobTemplateSpec",
    "PodFailurePolicy",
    "PodFailurePolicyOnExitCodesRequirement",
    "PodFailurePolicyOnPodConditionsPattern",
    "PodFailurePolicyRule",
    "ScheduleCheck",
    "SuccessPolicy",
    "SuccessPolicyRule",
    "UncountedTerminatedPods",
    "cron_times_between",
    "format_indexes",
    "generate_job_selector",
    "most_recent_schedule_time",
    "next_cron_time",
    "next_schedule_time",
    "parse_cron",
    "parse_indexes",
    "time_zone_error",
]
