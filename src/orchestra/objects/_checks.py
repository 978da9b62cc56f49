"""Semantic validation shared by the workload groups (apps, batch, policy, autoscaling,
networking): Kubernetes' messages (``Invalid value: ...``, ``Unsupported value: ...``), the
field checks (non-negative, int-or-percent, label selectors, pod templates), raw-dict
defaulting, and the :class:`Checked` / :class:`CheckedKind` models that collect every
semantic error of an object and raise them together, as the API server does.

Also :func:`resolve_int_or_percent`, which the controllers use to turn ``maxSurge: 25%``
into a pod count.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping, Sequence
from typing import Any, Self, get_args

from pydantic import model_validator

from orchestra.objects._base import KubeObject
from orchestra.objects._field_errors import fail
from orchestra.objects._messages import go_value as go_value
from orchestra.objects._messages import invalid as invalid
from orchestra.objects._messages import unsupported as unsupported
from orchestra.objects._meta import LabelSelector
from orchestra.objects._model import Model
from orchestra.objects._names import label_key_error, label_value_error
from orchestra.objects._pod_spec import PodTemplateSpec
from orchestra.objects._scalars import Time
from orchestra.objects._selector import Selector

Loc = tuple[str | int, ...]
"""A field path relative to the model being validated, in wire (camelCase) names."""

ErrorList = list[tuple[Loc, str]]


def check(errors: Sequence[tuple[Loc, str]]) -> None:
    """Raise every error at its own path below the model being validated, if there are
    any (:func:`~orchestra.objects._field_errors.fail`): pydantic nests them under the
    validator's own location, so ``invalid_from`` reports ``spec.template.metadata.labels``
    and not just ``spec``."""
    if errors:
        fail(errors)


def nonnegative(errors: ErrorList, loc: Loc, value: int | None) -> None:
    """Kubernetes' ``ValidateNonnegativeField``."""
    if value is not None and value < 0:
        errors.append((loc, invalid(value, "must be greater than or equal to 0")))


_PERCENT = re.compile(r"^[0-9]+%$")
_PERCENT_MSG = (
    "a valid percent string must be a numeric string followed by an ending '%' "
    "(e.g. '1%',  or '93%', regex used for validation is '[0-9]+%')"
)


def int_or_percent_value(value: int | str) -> int:
    """The number in an int-or-percent (``"25%"`` -> 25); 0 if it is not a valid one."""
    if isinstance(value, int):
        return value
    if _PERCENT.match(value):
        return int(value[:-1])
    return 0


def positive_int_or_percent(
    errors: ErrorList, loc: Loc, value: int | str | None, *, max_100_percent: bool = True
) -> None:
    """Kubernetes' ``ValidatePositiveIntOrPercent`` (+ ``IsNotMoreThan100Percent``)."""
    if value is None:
        return
    if isinstance(value, str):
        if not _PERCENT.match(value):
            errors.append((loc, invalid(value, _PERCENT_MSG)))
        elif max_100_percent and int(value[:-1]) > 100:
            errors.append((loc, invalid(value, "must not be greater than 100%")))
    else:
        nonnegative(errors, loc, value)


def resolve_int_or_percent(value: int | str, total: int, round_up: bool) -> int:
    """Kubernetes' ``intstr.GetScaledValueFromIntOrPercent``.

    An int is returned as is; ``"N%"`` is N percent of ``total``, rounded up or down.
    Raises ValueError for a string that is not a percentage.
    """
    if isinstance(value, bool):
        raise ValueError("invalid type: neither int nor percentage")
    if isinstance(value, int):
        return value
    if not value.endswith("%"):
        raise ValueError("invalid type: string is not a percentage")
    digits = value[:-1]
    try:
        percent = int(digits, 10)
    except ValueError:
        raise ValueError(
            f'invalid value "{value}": strconv.Atoi: parsing "{digits}": invalid syntax'
        ) from None
    scaled = percent * total
    return -(-scaled // 100) if round_up else scaled // 100


def label_selector_errors(selector: LabelSelector, loc: Loc) -> ErrorList:
    """Kubernetes' ``ValidateLabelSelector``: keys, values and operators."""
    errors: ErrorList = []
    for key, value in (selector.match_labels or {}).items():
        err = label_key_error(key)
        if err:
            errors.append(((*loc, "matchLabels"), invalid(key, err)))
        err = label_value_error(value)
        if err:
            errors.append(((*loc, "matchLabels"), invalid(value, err)))
    for i, req in enumerate(selector.match_expressions or ()):
        here: Loc = (*loc, "matchExpressions", i)
        if req.operator in ("In", "NotIn"):
            if not req.values:
                errors.append(((*here, "values"), "Required value: must be specified when "
                               "`operator` is 'In' or 'NotIn'"))
        elif req.operator in ("Exists", "DoesNotExist"):
            if req.values:
                errors.append(((*here, "values"), "Forbidden: may not be specified when "
                               "`operator` is 'Exists' or 'DoesNotExist'"))
        else:
            errors.append(((*here, "operator"),
                           invalid(req.operator, "not a valid selector operator")))
        err = label_key_error(req.key)
        if err:
            errors.append(((*here, "key"), invalid(req.key, err)))
        if req.operator in ("In", "NotIn"):
            for value in req.values or ():
                err = label_value_error(value)
                if err:
                    errors.append(((*here, "values"), invalid(value, err)))
    return errors


def selector_is_empty(selector: LabelSelector) -> bool:
    return not selector.match_labels and not selector.match_expressions


def selector_matches(selector: LabelSelector, labels: Mapping[str, str] | None) -> bool:
    """``metav1.LabelSelectorAsSelector(selector).Matches(labels)``: empty matches all."""
    return Selector.from_label_selector(selector).matches(labels or {})


def template_errors(
    template: PodTemplateSpec, selector: LabelSelector, loc: Loc, kind: str
) -> ErrorList:
    """``ValidatePodTemplateSpecForReplicaSet``: labels match, restartPolicy Always.

    ``kind`` names the owner in "activeDeadlineSeconds in <kind> is not Supported".
    """
    errors: ErrorList = []
    labels = template.metadata.labels
    if (
        not selector_is_empty(selector)
        and not label_selector_errors(selector, ())
        and not selector_matches(selector, labels)
    ):
        shown = go_value(labels) if labels else "map[string]string(nil)"
        errors.append(((*loc, "metadata", "labels"),
                       f"Invalid value: {shown}: `selector` does not match template `labels`"))
    policy = template.spec.restart_policy
    if policy != "Always":
        errors.append(((*loc, "spec", "restartPolicy"), unsupported(policy, ["Always"])))
    if template.spec.active_deadline_seconds is not None:
        errors.append(((*loc, "spec", "activeDeadlineSeconds"),
                       invalid(template.spec.active_deadline_seconds,
                               f"activeDeadlineSeconds in {kind} is not Supported")))
    return errors


def selector_errors(selector: LabelSelector, loc: Loc, kind: str) -> ErrorList:
    """The selector is valid and not empty (``empty selector is invalid for ...``)."""
    errors = label_selector_errors(selector, loc)
    if selector_is_empty(selector):
        errors.append((loc, invalid(selector, f"empty selector is invalid for {kind}")))
    return errors


def fill_defaults(data: Any, defaults: Mapping[str, Any]) -> Any:
    """A copy of a raw dict with ``defaults`` (wire name -> value) set where absent or null.

    Accepts the snake_case attribute name as well (models populate by name). Anything but
    a dict (an already-built model) is returned unchanged.
    """
    if not isinstance(data, dict):
        return data
    out = dict(data)
    for alias, value in defaults.items():
        name = _snake(alias)
        if out.get(alias) is None and out.get(name) is None:
            out.pop(name, None)
            out[alias] = value() if callable(value) else value
    return out


def get_raw(data: Mapping[str, Any], alias: str) -> Any:
    """A raw dict's value by wire name or attribute name."""
    value = data.get(alias)
    return data.get(_snake(alias)) if value is None else value


@functools.cache
def _snake(alias: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", alias).lower()


class Checked(Model):
    """A nested model with semantic checks (``field_errors``) beyond its field types.

    The checks run once, from the kind that contains the model (:class:`CheckedKind`), so
    that every semantic error in an object is reported together, each at its full path,
    the way the API server reports them.
    """

    def field_errors(self) -> ErrorList:
        """Errors at paths relative to this model; nested Checked models report their own."""
        return []

    @model_validator(mode="before")
    @classmethod
    def _null_is_absent(cls, data: Any) -> Any:
        return drop_nulls(data)


def drop_nulls(data: Any) -> Any:
    """A raw dict without its ``null`` values: to the API server, null means "not set"."""
    if isinstance(data, dict) and any(v is None for v in data.values()):
        return {k: v for k, v in data.items() if v is not None}
    return data


def collect_errors(model: Model) -> ErrorList:
    """``field_errors`` of ``model`` and of every Checked model below it, with full paths."""
    errors: ErrorList = []
    if isinstance(model, Checked | CheckedKind):
        errors += model.field_errors()
    for name, key in _checked_fields(type(model)):
        value = model.__dict__.get(name)
        if isinstance(value, Checked):
            errors += [((key, *loc), msg) for loc, msg in collect_errors(value)]
        elif isinstance(value, tuple):
            for i, item in enumerate(value):
                if isinstance(item, Checked):
                    errors += [((key, i, *loc), msg) for loc, msg in collect_errors(item)]
    return errors


@functools.cache
def _checked_fields(cls: type[Model]) -> tuple[tuple[str, str], ...]:
    """(attribute, wire name) of the fields that may hold a Checked model with checks."""
    return tuple(
        (name, info.alias or name)
        for name, info in cls.model_fields.items()
        if any(_has_checks(t) for t in _model_types(info.annotation))
    )


@functools.cache
def _has_checks(cls: type[Model]) -> bool:
    if not issubclass(cls, Checked):
        return False
    return cls.field_errors is not Checked.field_errors or bool(_checked_fields(cls))


def _model_types(annotation: Any) -> list[type[Model]]:
    if isinstance(annotation, type):
        return [annotation] if issubclass(annotation, Model) else []
    return [t for arg in get_args(annotation) for t in _model_types(arg)]


class CheckedKind(KubeObject):
    """A kind whose validation ends with every semantic check below it (see Checked)."""

    def field_errors(self) -> ErrorList:
        return []

    @model_validator(mode="before")
    @classmethod
    def _null_is_absent(cls, data: Any) -> Any:
        return drop_nulls(data)

    @model_validator(mode="after")
    def _check_fields(self) -> Self:
        check(collect_errors(self))
        return self


class ConditionBase(Checked):
    """Fields every workload condition carries (``type``, ``status``, ``reason``, ...)."""

    type: str
    status: str
    last_transition_time: Time | None = None
    reason: str | None = None
    message: str | None = None
