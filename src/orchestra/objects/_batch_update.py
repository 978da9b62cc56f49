"""What an update of a Job may change, as the API server's ``ValidateJobSpecUpdate``
says: ``completionMode``, ``podFailurePolicy`` and ``backoffLimitPerIndex`` never;
``completions`` only for an Indexed Job and only together with an equal
``parallelism`` (elastic Indexed Jobs); the pod template only while the Job is
suspended and has never started, and then only its scheduling directives (node
selector, affinity, tolerations, scheduling gates, labels and annotations).

(``spec.selector`` is checked with the other kinds' immutable selectors.)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from orchestra._errors import FieldError
from orchestra.objects._messages import invalid

if TYPE_CHECKING:
    from orchestra.objects._batch import Job

_IMMUTABLE = (("completionMode", "completion_mode"),
              ("podFailurePolicy", "pod_failure_policy"),
              ("backoffLimitPerIndex", "backoff_limit_per_index"))
_SCHEDULING = ("nodeSelector", "affinity", "tolerations", "schedulingGates")


def _value(v: Any) -> Any:
    return v.to_dict() if hasattr(v, "to_dict") else v


def _template_without_directives(template: dict[str, Any]) -> dict[str, Any]:
    out = dict(template)
    meta = {k: v for k, v in (out.get("metadata") or {}).items()
            if k not in ("labels", "annotations")}
    out["metadata"] = meta
    out["spec"] = {k: v for k, v in (out.get("spec") or {}).items() if k not in _SCHEDULING}
    return out


def job_update_errors(new: Job, old: Job) -> list[FieldError]:
    """The errors of updating ``old`` into ``new`` (empty when allowed)."""
    errors: list[FieldError] = []
    spec, prev = new.spec, old.spec
    if spec.completions != prev.completions:
        if spec.completion_mode != "Indexed":
            errors.append(FieldError("spec.completions",
                                     invalid(spec.completions, "field is immutable")))
        elif spec.completions is not None and spec.completions != spec.parallelism:
            errors.append(FieldError("spec.completions", invalid(
                spec.completions, "can only be modified in tandem with spec.parallelism")))
    for alias, attr in _IMMUTABLE:
        now, was = getattr(spec, attr), getattr(prev, attr)
        if _value(now) != _value(was):
            errors.append(FieldError(f"spec.{alias}", invalid(_value(now),
                                                              "field is immutable")))
    template, old_template = spec.template.to_dict(), prev.template.to_dict()
    if template != old_template:
        never_started = old.status is None or old.status.start_time is None
        if bool(prev.suspend) and never_started:
            template = _template_without_directives(template)
            old_template = _template_without_directives(old_template)
        if template != old_template:
            errors.append(FieldError("spec.template",
                                     invalid(spec.template.to_dict(), "field is immutable")))
    return errors


__all__ = ["job_update_errors"]
