"""batch/v1: Job and CronJob, and the cron schedule arithmetic the CronJob controller uses.

Invariants:

- A Job gets Kubernetes' defaults (``SetDefaults_Job``): parallelism 1, completions 1
  only when *both* are unset, backoffLimit 6 (MaxInt32 with backoffLimitPerIndex),
  completionMode NonIndexed, suspend false, podReplacementPolicy TerminatingOrFailed
  (Failed with a podFailurePolicy), and the template's labels as the Job's labels when
  it has none. A CronJob's ``jobTemplate.spec`` is *not* defaulted, as in Kubernetes; the
  Job created from it is.
- The Job's selector and the ``controller-uid``/``job-name`` labels are not made here:
  they need the uid the store assigns, so the store (or the Job controller) adds them.
- Schedules are parsed as Kubernetes parses them (robfig/cron ``ParseStandard``): five
  fields, ranges, lists, steps, month and weekday names, ``?``, the ``@`` macros and
  ``@every <duration>``; error messages are robfig's.
"""

from __future__ import annotations

import datetime as _dt
import functools
import math
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, model_validator

from orchestra._errors import FieldError, Invalid
from orchestra.objects._apps import (
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
from orchestra.objects._base import (
    LabelSelector,
    ObjectMeta,
    Time,
    describe_kind,
    dns1123_subdomain_error,
    parse_time,
    register,
)
from orchestra.objects._core import ObjectReference
from orchestra.objects._pod import PodTemplateSpec

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
                errors.append((("onExitCodes", "values"), "Required value"))
            for j, value in enumerate(codes.values):
                if codes.operator == "In" and value == 0:
                    errors.append((("onExitCodes", "values", j), invalid(
                        value, "must not be 0 for the In operator")))
                if j and value == codes.values[j - 1]:
                    errors.append((("onExitCodes", "values", j), "Duplicate value: "
                                   f"{value}"))
                elif j and value < codes.values[j - 1]:
                    errors.append((("onExitCodes", "values", j),
                                   invalid(value, "must be ordered")))
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
        if self.backoff_limit_per_index is not None and not indexed:
            errors.append((("backoffLimitPerIndex",),
                           "Forbidden: requires indexed completion mode"))
        if self.max_failed_indexes is not None:
            if self.backoff_limit_per_index is None:
                errors.append((("backoffLimitPerIndex",),
                               "Required value: when maxFailedIndexes is specified"))
            if self.completions is not None and self.max_failed_indexes > self.completions:
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
            for i, rule in enumerate(self.pod_failure_policy.rules):
                if rule.action == "FailIndex" and self.backoff_limit_per_index is None:
                    errors.append((("podFailurePolicy", "rules", i, "action"), invalid(
                        rule.action, "requires the backoffLimitPerIndex to be set")))
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


# ---------------------------------------------------------------------------
# Cron schedules


def time_zone_error(name: str) -> str | None:
    """Why ``spec.timeZone`` is not usable, or None."""
    if name.lower() == "local":
        return ("timeZone must be an explicit time zone as defined in "
                "https://www.iana.org/time-zones")
    try:
        _zone(name)
    except ValueError:
        return f"unknown time zone {name}"
    return None


@functools.lru_cache(maxsize=256)
def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ValueError(f"unknown time zone {name}") from None


_MONTH_NAMES = {n: i + 1 for i, n in enumerate(
    ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"))}
_DOW_NAMES = {n: i for i, n in enumerate(("sun", "mon", "tue", "wed", "thu", "fri", "sat"))}


@dataclass(frozen=True)
class _Bounds:
    low: int
    high: int
    names: dict[str, int] | None = None


_MINUTE = _Bounds(0, 59)
_HOUR = _Bounds(0, 23)
_DOM = _Bounds(1, 31)
_MONTH = _Bounds(1, 12, _MONTH_NAMES)
_DOW = _Bounds(0, 6, _DOW_NAMES)

_INT = re.compile(r"^[+-]?[0-9]+$")


def _parse_int(text: str) -> int:
    if not _INT.match(text):
        raise ValueError(
            f'failed to parse int from {text}: strconv.Atoi: parsing "{text}": invalid syntax'
        )
    number = int(text)
    if number < 0:
        raise ValueError(f"negative number ({number}) not allowed: {text}")
    return number


def _parse_int_or_name(text: str, bounds: _Bounds) -> int:
    if bounds.names is not None and text.lower() in bounds.names:
        return bounds.names[text.lower()]
    return _parse_int(text)


def _parse_range(expr: str, bounds: _Bounds) -> tuple[set[int], bool]:
    """One comma-separated part: ``*``, ``?``, ``N``, ``N-M``, each with ``/step``."""
    range_and_step = expr.split("/")
    low_and_high = range_and_step[0].split("-")
    single = len(low_and_high) == 1
    star = False
    if low_and_high[0] in ("*", "?"):
        start, end, star = bounds.low, bounds.high, True
    else:
        start = _parse_int_or_name(low_and_high[0], bounds)
        if len(low_and_high) == 1:
            end = start
        elif len(low_and_high) == 2:
            end = _parse_int_or_name(low_and_high[1], bounds)
        else:
            raise ValueError(f"too many hyphens: {expr}")
    if len(range_and_step) == 1:
        step = 1
    elif len(range_and_step) == 2:
        step = _parse_int(range_and_step[1])
        if single:  # "N/step" means "N-max/step"
            end = bounds.high
        if step > 1:
            star = False
    else:
        raise ValueError(f"too many slashes: {expr}")
    if start < bounds.low:
        raise ValueError(f"beginning of range ({start}) below minimum ({bounds.low}): {expr}")
    if end > bounds.high:
        raise ValueError(f"end of range ({end}) above maximum ({bounds.high}): {expr}")
    if start > end:
        raise ValueError(f"beginning of range ({start}) beyond end of range ({end}): {expr}")
    if step == 0:
        raise ValueError(f"step of range should be a positive number: {expr}")
    return set(range(start, end + 1, step)), star


def _parse_field(field: str, bounds: _Bounds) -> tuple[frozenset[int], bool]:
    values: set[int] = set()
    star = False
    for part in field.split(","):
        bits, part_star = _parse_range(part, bounds)
        values |= bits
        star = star or part_star
    return frozenset(values), star


_DURATION_PART = re.compile(r"([0-9]*\.?[0-9]+)(ns|us|µs|ms|s|m|h)")
_DURATION_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0,
                   "h": 3600.0}


def _parse_go_duration(text: str) -> float:
    """Go's ``time.ParseDuration`` (unsigned), in seconds."""
    if text == "0":
        return 0.0
    pos, total = 0, 0.0
    while pos < len(text):
        m = _DURATION_PART.match(text, pos)
        if not m:
            break
        total += float(m.group(1)) * _DURATION_UNITS[m.group(2)]
        pos = m.end()
    if pos != len(text) or not text:
        raise ValueError(f'failed to parse duration @every {text}: time: invalid duration "{text}"')
    return total


_MACROS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}


@dataclass(frozen=True)
class CronSchedule:
    """A parsed schedule. Fire times are whole minutes of wall-clock time in a zone.

    Day matching follows cron (and robfig/cron): when both day-of-month and day-of-week
    are restricted (neither is ``*``/``?``), a day matches if *either* does.
    ``every`` is set (seconds) for ``@every <duration>`` schedules instead.
    """

    minutes: frozenset[int] = frozenset()
    hours: frozenset[int] = frozenset()
    days_of_month: frozenset[int] = frozenset()
    months: frozenset[int] = frozenset()
    days_of_week: frozenset[int] = frozenset()
    dom_star: bool = False
    dow_star: bool = False
    every: float | None = None

    @functools.cached_property
    def sorted_hours(self) -> tuple[int, ...]:
        return tuple(sorted(self.hours))

    @functools.cached_property
    def sorted_minutes(self) -> tuple[int, ...]:
        return tuple(sorted(self.minutes))

    def _day_matches(self, day: _dt.date) -> bool:
        dom = day.day in self.days_of_month
        dow = day.isoweekday() % 7 in self.days_of_week
        if self.dom_star or self.dow_star:
            return dom and dow
        return dom or dow

    def next(self, after: float, tz: str | None = None) -> float:
        """The first fire time strictly after ``after`` (seconds since the epoch).

        ``tz`` is an IANA zone name; None means the process's local time zone, as
        Kubernetes uses the controller manager's. Across a DST change, wall times that
        do not exist are skipped and repeated ones fire twice, as with robfig/cron.
        Returns ``math.inf`` if the schedule never fires (``0 0 30 2 *``).
        """
        if self.every is not None:
            return math.floor(after) + max(1.0, math.floor(self.every))
        to_wall, from_wall = _converters(tz)
        start = to_wall(after)
        # Without a UTC offset change near "after", wall-clock order is time order there.
        steady = to_wall(after + _WINDOW_S) - to_wall(after - _WINDOW_S) == 2 * _WINDOW
        day = start.date()
        last_year = start.year + 5
        while day.year <= last_year:
            if day.month not in self.months:
                day = (_dt.date(day.year + 1, 1, 1) if day.month == 12
                       else _dt.date(day.year, day.month + 1, 1))
                continue
            if self._day_matches(day):
                found = self._first_in_day(day, after, start, steady, to_wall, from_wall)
                if found is not None:
                    return found
            day += _dt.timedelta(days=1)
        return math.inf

    def _first_in_day(
        self,
        day: _dt.date,
        after: float,
        start: _dt.datetime,
        steady: bool,
        to_wall: Callable[[float], _dt.datetime],
        from_wall: Callable[[_dt.datetime, int], float],
    ) -> float | None:
        best: float | None = None
        best_wall: _dt.datetime | None = None
        # A UTC offset change moves wall time by at most a few hours: near one, a wall
        # time a little before "start" may come after it, and order may differ.
        earliest = start if steady else start - _WINDOW
        skip_before = earliest.hour if earliest.date() == day else -1
        for hour in self.sorted_hours:
            if hour < skip_before:
                continue
            for minute in self.sorted_minutes:
                wall = _dt.datetime(day.year, day.month, day.day, hour, minute)
                if wall < earliest:
                    continue
                if best_wall is not None and wall > best_wall + _WINDOW:
                    return best
                first = from_wall(wall, 0)
                if to_wall(first) != wall:
                    continue  # in a DST gap: this wall time does not exist
                for ts in {first, from_wall(wall, 1)}:
                    if ts > after and (best is None or ts < best):
                        best, best_wall = ts, wall
                if steady and best is not None and best <= after + _WINDOW_S:
                    return best
        return best


_WINDOW = _dt.timedelta(hours=3)
_WINDOW_S = _WINDOW.total_seconds()


def _converters(
    tz: str | None,
) -> tuple[Callable[[float], _dt.datetime], Callable[[_dt.datetime, int], float]]:
    if tz is None:
        def to_wall_local(ts: float) -> _dt.datetime:
            return _dt.datetime.fromtimestamp(ts).replace(microsecond=0)

        def from_wall_local(wall: _dt.datetime, fold: int) -> float:
            return wall.replace(fold=fold).timestamp()

        return to_wall_local, from_wall_local
    zone = _zone(tz)

    def to_wall(ts: float) -> _dt.datetime:
        return _dt.datetime.fromtimestamp(ts, zone).replace(tzinfo=None, microsecond=0)

    def from_wall(wall: _dt.datetime, fold: int) -> float:
        return wall.replace(tzinfo=zone, fold=fold).timestamp()

    return to_wall, from_wall


@functools.lru_cache(maxsize=1024)
def parse_cron(schedule: str) -> CronSchedule:
    """Parse a schedule as Kubernetes does; ValueError with robfig/cron's message if bad."""
    spec = schedule.strip()
    if not spec:
        raise ValueError("empty spec string")
    if spec.startswith("TZ=") or spec.startswith("CRON_TZ="):
        raise ValueError("cannot use TZ or CRON_TZ in schedule, use timeZone field instead")
    if spec.startswith("@"):
        if spec.startswith("@every "):
            seconds = _parse_go_duration(spec[len("@every "):].strip())
            return CronSchedule(every=seconds)
        macro = _MACROS.get(spec)
        if macro is None:
            raise ValueError(f"unrecognized descriptor: {spec}")
        spec = macro
    fields = spec.split()
    if len(fields) != 5:
        raise ValueError(
            f"expected exactly 5 fields, found {len(fields)}: [{' '.join(fields)}]"
        )
    minutes, _ = _parse_field(fields[0], _MINUTE)
    hours, _ = _parse_field(fields[1], _HOUR)
    dom, dom_star = _parse_field(fields[2], _DOM)
    months, _ = _parse_field(fields[3], _MONTH)
    dow, dow_star = _parse_field(fields[4], _DOW)
    return CronSchedule(minutes, hours, dom, months, dow, dom_star, dow_star)


def next_cron_time(schedule: str, after: float, tz: str | None = None) -> float:
    """The first time strictly after ``after`` at which ``schedule`` fires in zone ``tz``.

    Seconds since the epoch in, seconds since the epoch out; ``math.inf`` if never.
    Raises ValueError for a bad schedule or an unknown zone.
    """
    return parse_cron(schedule).next(after, tz)


def cron_times_between(
    schedule: str, start: float, end: float, tz: str | None = None, limit: int = 100
) -> Iterable[float]:
    """Fire times in ``(start, end]``, at most ``limit`` of them, oldest first.

    What the CronJob controller needs to find missed schedules (it gives up after 100).
    """
    parsed = parse_cron(schedule)
    t = start
    for _ in range(limit):
        t = parsed.next(t, tz)
        if t > end:
            return
        yield t


@dataclass(frozen=True)
class ScheduleCheck:
    """Where a CronJob stands at ``now`` (Kubernetes' ``mostRecentScheduleTime``).

    ``earliest``: the time scheduling counts from (lastScheduleTime, else the creation
    time, moved up to ``now - startingDeadlineSeconds``). ``most_recent``: the latest
    fire time in ``(earliest, now]``, None if there is none. ``missed``: roughly how many
    fire times passed since ``earliest`` (more than 1: some were missed; more than 100:
    Kubernetes warns ``TooManyMissedTimes``).
    """

    earliest: float
    most_recent: float | None
    missed: int


def most_recent_schedule_time(
    cronjob: CronJob, now: float, *, include_starting_deadline: bool = True
) -> ScheduleCheck:
    """The CronJob controller's view of missed and due runs, computed as Kubernetes does.

    Raises ValueError for a schedule whose fire times are less than a second apart or
    that never fires in a useful way (like Kubernetes' "time difference between two
    schedules is less than 1 second").
    """
    spec = cronjob.spec
    schedule = parse_cron(spec.schedule)
    tz = spec.time_zone
    if cronjob.status is not None and cronjob.status.last_schedule_time:
        earliest = parse_time(cronjob.status.last_schedule_time)
    elif cronjob.metadata.creation_timestamp:
        earliest = parse_time(cronjob.metadata.creation_timestamp)
    else:
        earliest = now
    if include_starting_deadline and spec.starting_deadline_seconds is not None:
        earliest = max(earliest, now - spec.starting_deadline_seconds)
    t1 = schedule.next(earliest, tz)
    if now < t1:
        return ScheduleCheck(earliest, None, 0)
    t2 = schedule.next(t1, tz)
    if now < t2:
        return ScheduleCheck(earliest, t1, 0)
    between = round(t2 - t1)
    if between < 1:
        raise ValueError("time difference between two schedules is less than 1 second")
    missed = int(now - t1) // between + 1
    most_recent: float | None = None
    t = schedule.next(t1 + (missed - 2) * between, tz)
    while t <= now:
        most_recent = t
        t = schedule.next(t, tz)
    return ScheduleCheck(earliest, most_recent, missed)


def next_schedule_time(cronjob: CronJob, now: float) -> float:
    """When the CronJob next fires after ``now``'s most recent due time (for requeueing)."""
    check = most_recent_schedule_time(cronjob, now, include_starting_deadline=False)
    base = check.most_recent if check.most_recent is not None else check.earliest
    return parse_cron(cronjob.spec.schedule).next(base, cronjob.spec.time_zone)


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
