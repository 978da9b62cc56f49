"""apps/v1 workload kinds: ReplicaSet, Deployment, DaemonSet, StatefulSet.

Also the validation helpers the other workload groups (batch, policy, autoscaling,
networking) share, and :func:`resolve_int_or_percent`, which the controllers use to turn
``maxSurge: 25%`` into a pod count.

Invariants:

- Defaults are applied at validation, exactly where Kubernetes' API server applies them
  (``SetDefaults_Deployment`` and friends), so a stored object reads like
  ``kubectl get -o yaml``: ``replicas: 1``, ``strategy.rollingUpdate.maxSurge: 25%`` ...
- A semantic error (selector does not match the template labels, negative replicas, ...)
  is reported at the path Kubernetes names with Kubernetes' message. Nested models
  (:class:`Checked`) only *describe* their errors; the kind (:class:`CheckedKind`)
  collects and raises them all at once, so several errors in one object are reported
  together, as the API server does.
- ``null`` in a manifest means "not set", as it does to the API server.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Annotated, Any, Literal, NoReturn, Self, get_args

from pydantic import AfterValidator, Field, ValidationError, field_validator, model_validator
from pydantic_core import InitErrorDetails, PydanticCustomError

from orchestra.objects._base import (
    FrozenDict,
    IntOrString,
    KubeObject,
    LabelSelector,
    Model,
    Time,
    label_key_error,
    label_value_error,
    register,
)
from orchestra.objects._core import PersistentVolumeClaim
from orchestra.objects._pod import Container, PodSpec, PodTemplateSpec, check_unique_names
from orchestra.objects._selector import Selector

# ---------------------------------------------------------------------------
# Shared helpers (also used by _batch, _policy, _autoscaling, _networking)

Loc = tuple[str | int, ...]
"""A field path relative to the model being validated, in wire (camelCase) names."""

ErrorList = list[tuple[Loc, str]]


def raise_field_errors(title: str, errors: Sequence[tuple[Loc, str]]) -> NoReturn:
    """Raise every error at its own path below the model being validated.

    pydantic nests the locations of a ``ValidationError`` raised inside a validator under
    the validator's own location, so ``objects._base.invalid_from`` reports
    ``spec.template.metadata.labels`` and not just ``spec``.
    """
    raise ValidationError.from_exception_data(
        title,
        [
            InitErrorDetails(
                type=PydanticCustomError("value_error", "{message}", {"message": msg}),
                loc=loc,
                input=None,
            )
            for loc, msg in errors
        ],
    )


def check(title: str, errors: Sequence[tuple[Loc, str]]) -> None:
    """Raise :func:`raise_field_errors` if there are any errors."""
    if errors:
        raise_field_errors(title, errors)


def go_value(value: Any) -> str:
    """A value as Kubernetes prints it after ``Invalid value:`` (Go's ``%v``/``%q``/``%#v``)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, Mapping):
        inner = ", ".join(
            f"{json.dumps(str(k))}:{json.dumps(str(v))}" for k, v in sorted(value.items())
        )
        return f"map[string]string{{{inner}}}"
    if isinstance(value, Model):
        return json.dumps(value.to_dict(), separators=(",", ":"), sort_keys=True)
    return repr(value)


def invalid(value: Any, message: str) -> str:
    return f"Invalid value: {go_value(value)}: {message}"


def unsupported(value: Any, supported: Iterable[str]) -> str:
    values = ", ".join(json.dumps(s) for s in supported)
    return f"Unsupported value: {go_value(value)}: supported values: {values}"


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
        check(type(self).__name__, collect_errors(self))
        return self


class ConditionBase(Checked):
    """Fields every workload condition carries (``type``, ``status``, ``reason``, ...)."""

    type: str
    status: str
    last_transition_time: Time | None = None
    reason: str | None = None
    message: str | None = None


# ---------------------------------------------------------------------------
# ReplicaSet


class ReplicaSetCondition(ConditionBase):
    pass


class ReplicaSetSpec(Checked):
    replicas: int = 1
    min_ready_seconds: int | None = None
    selector: LabelSelector
    template: PodTemplateSpec

    def field_errors(self) -> ErrorList:
        errors: ErrorList = []
        nonnegative(errors, ("replicas",), self.replicas)
        nonnegative(errors, ("minReadySeconds",), self.min_ready_seconds)
        # Kubernetes really says "deployment" here.
        errors += selector_errors(self.selector, ("selector",), "deployment")
        errors += template_errors(self.template, self.selector, ("template",), "ReplicaSet")
        return errors


class ReplicaSetStatus(Checked):
    replicas: int = 0
    fully_labeled_replicas: int | None = None
    ready_replicas: int | None = None
    available_replicas: int | None = None
    terminating_replicas: int | None = None
    observed_generation: int | None = None
    conditions: tuple[ReplicaSetCondition, ...] | None = None


@register(plural="replicasets", short_names=("rs",), namespaced=True)
class ReplicaSet(CheckedKind):
    api_version: Literal["apps/v1"] = Field("apps/v1", alias="apiVersion")
    kind: Literal["ReplicaSet"] = "ReplicaSet"
    spec: ReplicaSetSpec
    status: ReplicaSetStatus | None = None


# ---------------------------------------------------------------------------
# Deployment


class DeploymentCondition(ConditionBase):
    last_update_time: Time | None = None


class RollingUpdateDeployment(Checked):
    max_unavailable: IntOrString | None = None
    max_surge: IntOrString | None = None


class DeploymentStrategy(Checked):
    """``type`` defaults to RollingUpdate, whose ``rollingUpdate`` defaults to 25%/25%."""

    type: str = "RollingUpdate"
    rolling_update: RollingUpdateDeployment | None = None

    @model_validator(mode="before")
    @classmethod
    def _defaults(cls, data: Any) -> Any:
        data = fill_defaults(data, {"type": "RollingUpdate"})
        if isinstance(data, dict) and get_raw(data, "type") == "RollingUpdate":
            data = fill_defaults(data, {"rollingUpdate": dict})
            ru = get_raw(data, "rollingUpdate")
            if isinstance(ru, Model):
                ru = ru.to_dict()
            if isinstance(ru, dict):
                data["rollingUpdate"] = fill_defaults(
                    ru, {"maxUnavailable": "25%", "maxSurge": "25%"}
                )
                data.pop("rolling_update", None)
        return data

    def field_errors(self) -> ErrorList:
        errors: ErrorList = []
        if self.type == "Recreate":
            if self.rolling_update is not None:
                errors.append((("rollingUpdate",), "Forbidden: may not be specified when "
                               "strategy `type` is 'Recreate'"))
        elif self.type == "RollingUpdate":
            ru = self.rolling_update
            if ru is None:
                errors.append((("rollingUpdate",),
                               "Required value: this should be defaulted and never be nil"))
            else:
                here: Loc = ("rollingUpdate",)
                positive_int_or_percent(errors, (*here, "maxUnavailable"), ru.max_unavailable,
                                        max_100_percent=False)
                positive_int_or_percent(errors, (*here, "maxSurge"), ru.max_surge,
                                        max_100_percent=False)
                unavailable = int_or_percent_value(ru.max_unavailable or 0)
                if unavailable == 0 and int_or_percent_value(ru.max_surge or 0) == 0:
                    errors.append(((*here, "maxUnavailable"),
                                   invalid(ru.max_unavailable or 0,
                                           "may not be 0 when `maxSurge` is 0")))
                if isinstance(ru.max_unavailable, str) and unavailable > 100:
                    errors.append(((*here, "maxUnavailable"),
                                   invalid(ru.max_unavailable, "must not be greater than 100%")))
        else:
            errors.append((("type",), unsupported(self.type, ["Recreate", "RollingUpdate"])))
        return errors


class DeploymentSpec(Checked):
    replicas: int = 1
    selector: LabelSelector
    template: PodTemplateSpec
    strategy: DeploymentStrategy = Field(default_factory=DeploymentStrategy)
    min_ready_seconds: int | None = None
    revision_history_limit: int = 10
    paused: bool | None = None
    progress_deadline_seconds: int = 600

    def field_errors(self) -> ErrorList:
        errors: ErrorList = []
        nonnegative(errors, ("replicas",), self.replicas)
        errors += selector_errors(self.selector, ("selector",), "deployment")
        errors += template_errors(self.template, self.selector, ("template",), "Deployment")
        nonnegative(errors, ("minReadySeconds",), self.min_ready_seconds)
        nonnegative(errors, ("revisionHistoryLimit",), self.revision_history_limit)
        nonnegative(errors, ("progressDeadlineSeconds",), self.progress_deadline_seconds)
        if self.progress_deadline_seconds <= (self.min_ready_seconds or 0):
            errors.append((("progressDeadlineSeconds",),
                           invalid(self.progress_deadline_seconds,
                                   "must be greater than minReadySeconds")))
        return errors


class DeploymentStatus(Checked):
    observed_generation: int | None = None
    replicas: int | None = None
    updated_replicas: int | None = None
    ready_replicas: int | None = None
    available_replicas: int | None = None
    unavailable_replicas: int | None = None
    terminating_replicas: int | None = None
    conditions: tuple[DeploymentCondition, ...] | None = None
    collision_count: int | None = None


@register(plural="deployments", short_names=("deploy",), namespaced=True)
class Deployment(CheckedKind):
    api_version: Literal["apps/v1"] = Field("apps/v1", alias="apiVersion")
    kind: Literal["Deployment"] = "Deployment"
    spec: DeploymentSpec
    status: DeploymentStatus | None = None


# ---------------------------------------------------------------------------
# DaemonSet


class DaemonSetCondition(ConditionBase):
    pass


class RollingUpdateDaemonSet(Checked):
    max_unavailable: IntOrString | None = None
    max_surge: IntOrString | None = None


class DaemonSetUpdateStrategy(Checked):
    """``type`` defaults to RollingUpdate with maxUnavailable 1 and maxSurge 0."""

    type: str = "RollingUpdate"
    rolling_update: RollingUpdateDaemonSet | None = None

    @model_validator(mode="before")
    @classmethod
    def _defaults(cls, data: Any) -> Any:
        data = fill_defaults(data, {"type": "RollingUpdate"})
        if isinstance(data, dict) and get_raw(data, "type") == "RollingUpdate":
            data = fill_defaults(data, {"rollingUpdate": dict})
            ru = get_raw(data, "rollingUpdate")
            if isinstance(ru, Model):
                ru = ru.to_dict()
            if isinstance(ru, dict):
                data["rollingUpdate"] = fill_defaults(ru, {"maxUnavailable": 1, "maxSurge": 0})
                data.pop("rolling_update", None)
        return data

    def field_errors(self) -> ErrorList:
        errors: ErrorList = []
        if self.type == "RollingUpdate":
            ru = self.rolling_update
            if ru is None:
                errors.append((("rollingUpdate",), "Required value"))
            else:
                here: Loc = ("rollingUpdate",)
                positive_int_or_percent(errors, (*here, "maxUnavailable"), ru.max_unavailable)
                positive_int_or_percent(errors, (*here, "maxSurge"), ru.max_surge)
                if (int_or_percent_value(ru.max_unavailable or 0) == 0
                        and int_or_percent_value(ru.max_surge or 0) == 0):
                    errors.append(((*here, "maxUnavailable"),
                                   invalid(ru.max_unavailable or 0,
                                           "may not be 0 when `maxSurge` is 0")))
        elif self.type != "OnDelete":
            errors.append((("type",), unsupported(self.type, ["RollingUpdate", "OnDelete"])))
        return errors


class DaemonSetSpec(Checked):
    selector: LabelSelector
    template: PodTemplateSpec
    update_strategy: DaemonSetUpdateStrategy = Field(default_factory=DaemonSetUpdateStrategy)
    min_ready_seconds: int | None = None
    revision_history_limit: int = 10

    def field_errors(self) -> ErrorList:
        errors: ErrorList = []
        errors += selector_errors(self.selector, ("selector",), "daemonset")
        errors += template_errors(self.template, self.selector, ("template",), "DaemonSet")
        nonnegative(errors, ("minReadySeconds",), self.min_ready_seconds)
        nonnegative(errors, ("revisionHistoryLimit",), self.revision_history_limit)
        return errors


class DaemonSetStatus(Checked):
    current_number_scheduled: int = 0
    number_misscheduled: int = 0
    desired_number_scheduled: int = 0
    number_ready: int = 0
    observed_generation: int | None = None
    updated_number_scheduled: int | None = None
    number_available: int | None = None
    number_unavailable: int | None = None
    collision_count: int | None = None
    conditions: tuple[DaemonSetCondition, ...] | None = None


@register(plural="daemonsets", short_names=("ds",), namespaced=True)
class DaemonSet(CheckedKind):
    api_version: Literal["apps/v1"] = Field("apps/v1", alias="apiVersion")
    kind: Literal["DaemonSet"] = "DaemonSet"
    spec: DaemonSetSpec
    status: DaemonSetStatus | None = None


# ---------------------------------------------------------------------------
# StatefulSet


class StatefulSetCondition(ConditionBase):
    pass


class RollingUpdateStatefulSetStrategy(Checked):
    partition: int = 0
    max_unavailable: IntOrString | None = None


class StatefulSetUpdateStrategy(Checked):
    """``type`` defaults to RollingUpdate with partition 0."""

    type: str = "RollingUpdate"
    rolling_update: RollingUpdateStatefulSetStrategy | None = None

    @model_validator(mode="before")
    @classmethod
    def _defaults(cls, data: Any) -> Any:
        data = fill_defaults(data, {"type": "RollingUpdate"})
        if isinstance(data, dict) and get_raw(data, "type") == "RollingUpdate":
            data = fill_defaults(data, {"rollingUpdate": dict})
        return data

    def field_errors(self) -> ErrorList:
        errors: ErrorList = []
        if self.type == "OnDelete":
            if self.rolling_update is not None:
                errors.append((("rollingUpdate",), invalid(
                    self.rolling_update, "only allowed for updateStrategy 'RollingUpdate'")))
        elif self.type == "RollingUpdate":
            ru = self.rolling_update
            if ru is not None:
                here: Loc = ("rollingUpdate",)
                nonnegative(errors, (*here, "partition"), ru.partition)
                if ru.max_unavailable is not None:
                    positive_int_or_percent(errors, (*here, "maxUnavailable"),
                                            ru.max_unavailable)
                    if int_or_percent_value(ru.max_unavailable) == 0:
                        errors.append(((*here, "maxUnavailable"),
                                       invalid(ru.max_unavailable, "cannot be 0")))
        else:
            errors.append((("type",), invalid(
                self.type, "must be 'RollingUpdate' or 'OnDelete'")))
        return errors


_RETENTION = ("Retain", "Delete")


class StatefulSetPersistentVolumeClaimRetentionPolicy(Checked):
    when_deleted: str = "Retain"
    when_scaled: str = "Retain"

    def field_errors(self) -> ErrorList:
        errors: ErrorList = []
        if self.when_deleted not in _RETENTION:
            errors.append((("whenDeleted",), unsupported(self.when_deleted, _RETENTION)))
        if self.when_scaled not in _RETENTION:
            errors.append((("whenScaled",), unsupported(self.when_scaled, _RETENTION)))
        return errors


class StatefulSetOrdinals(Checked):
    start: int = 0


class StatefulSetPodSpec(PodSpec):
    """A StatefulSet's pod spec: volume mounts may name ``volumeClaimTemplates``.

    Kubernetes does not check a StatefulSet template's mounts against its volumes
    (``ValidatePodTemplateSpecForStatefulSet``): the controller adds one volume per claim
    template to each pod. These validators replace PodSpec's of the same name.
    """

    @field_validator("containers")
    @classmethod
    def _check_containers(cls, v: tuple[Container, ...], info: Any) -> tuple[Container, ...]:
        if not v:
            raise ValueError("Required value")
        init = info.data.get("init_containers")
        if len(v) > 1 or init:
            check_unique_names(v, {c.name for c in init} if init else set())
        return v

    @field_validator("init_containers")
    @classmethod
    def _check_init_containers(
        cls, v: tuple[Container, ...] | None, info: Any
    ) -> tuple[Container, ...] | None:
        if v and len(v) > 1:
            check_unique_names(v)
        return v


class StatefulSetPodTemplateSpec(PodTemplateSpec):
    spec: StatefulSetPodSpec


class StatefulSetSpec(Checked):
    replicas: int = 1
    selector: LabelSelector
    template: StatefulSetPodTemplateSpec
    volume_claim_templates: tuple[PersistentVolumeClaim, ...] | None = None
    service_name: str | None = None
    pod_management_policy: str = "OrderedReady"
    update_strategy: StatefulSetUpdateStrategy = Field(
        default_factory=StatefulSetUpdateStrategy
    )
    revision_history_limit: int = 10
    min_ready_seconds: int | None = None
    persistent_volume_claim_retention_policy: StatefulSetPersistentVolumeClaimRetentionPolicy = (
        Field(default_factory=StatefulSetPersistentVolumeClaimRetentionPolicy)
    )
    ordinals: StatefulSetOrdinals | None = None

    def field_errors(self) -> ErrorList:
        errors: ErrorList = []
        if not self.pod_management_policy:
            errors.append((("podManagementPolicy",), "Required value"))
        elif self.pod_management_policy not in ("OrderedReady", "Parallel"):
            errors.append((("podManagementPolicy",), invalid(
                self.pod_management_policy, "must be 'OrderedReady' or 'Parallel'")))
        nonnegative(errors, ("replicas",), self.replicas)
        nonnegative(errors, ("minReadySeconds",), self.min_ready_seconds)
        nonnegative(errors, ("revisionHistoryLimit",), self.revision_history_limit)
        if self.ordinals is not None:
            nonnegative(errors, ("ordinals", "start"), self.ordinals.start)
        errors += selector_errors(self.selector, ("selector",), "statefulset")
        errors += template_errors(self.template, self.selector, ("template",), "StatefulSet")
        return errors


class StatefulSetStatus(Checked):
    observed_generation: int | None = None
    replicas: int = 0
    ready_replicas: int | None = None
    current_replicas: int | None = None
    updated_replicas: int | None = None
    available_replicas: int | None = None
    current_revision: str | None = None
    update_revision: str | None = None
    collision_count: int | None = None
    conditions: tuple[StatefulSetCondition, ...] | None = None


@register(plural="statefulsets", short_names=("sts",), namespaced=True)
class StatefulSet(CheckedKind):
    api_version: Literal["apps/v1"] = Field("apps/v1", alias="apiVersion")
    kind: Literal["StatefulSet"] = "StatefulSet"
    spec: StatefulSetSpec
    status: StatefulSetStatus | None = None


# ControllerRevision is what Deployment-like controllers of DaemonSets and StatefulSets
# record their template history in.


def freeze_json(value: Any) -> Any:
    """Arbitrary JSON made deeply immutable: dicts become FrozenDicts, lists tuples."""
    if isinstance(value, dict):
        return FrozenDict({k: freeze_json(v) for k, v in value.items()})
    if isinstance(value, list | tuple):
        return tuple(freeze_json(v) for v in value)
    return value


FrozenJSON = Annotated[FrozenDict[str, Any], AfterValidator(freeze_json)]
"""A JSON object (RawExtension) that is immutable all the way down."""


@register(plural="controllerrevisions", namespaced=True)
class ControllerRevision(CheckedKind):
    api_version: Literal["apps/v1"] = Field("apps/v1", alias="apiVersion")
    kind: Literal["ControllerRevision"] = "ControllerRevision"
    data: FrozenJSON | None = None
    revision: int

    def field_errors(self) -> ErrorList:
        errors: ErrorList = []
        nonnegative(errors, ("revision",), self.revision)
        return errors


__all__ = [
    "ControllerRevision",
    "DaemonSet",
    "DaemonSetCondition",
    "DaemonSetSpec",
    "DaemonSetStatus",
    "DaemonSetUpdateStrategy",
    "Deployment",
    "DeploymentCondition",
    "DeploymentSpec",
    "DeploymentStatus",
    "DeploymentStrategy",
    "ReplicaSet",
    "ReplicaSetCondition",
    "ReplicaSetSpec",
    "ReplicaSetStatus",
    "RollingUpdateDaemonSet",
    "RollingUpdateDeployment",
    "RollingUpdateStatefulSetStrategy",
    "StatefulSet",
    "StatefulSetCondition",
    "StatefulSetOrdinals",
    "StatefulSetPersistentVolumeClaimRetentionPolicy",
    "StatefulSetPodSpec",
    "StatefulSetPodTemplateSpec",
    "StatefulSetSpec",
    "StatefulSetStatus",
    "StatefulSetUpdateStrategy",
    "resolve_int_or_percent",
]
