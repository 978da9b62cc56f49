"""What an update of a Job may change, as the API server's ``ValidateJobSpecUpdate``
says: ``completionMode``, ``podFailurePolicy`` and ``backoffLimitPerIndex`` never;
``completions`` only for an Indexed Job and only together with an equal
``parallelism`` (elastic Indexed Jobs).

(``spec.selector`` and ``spec.template`` are checked with the other kinds' immutable
fields, in ``_store._immutable``, before this runs.)
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


def _value(v: Any) -> Any:
    return v.to_dict() if hasattr(v, "to_dict") else v


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
    return errors


__all__ = ["job_update_errors"]
