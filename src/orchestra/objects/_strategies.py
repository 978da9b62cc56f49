"""apps/v1 update strategies: how a Deployment, DaemonSet or StatefulSet rolls out a new
template, with Kubernetes' defaults and checks.

Defaults are applied to the raw manifest before validation, as ``SetDefaults_Deployment``
and friends do: ``RollingUpdate`` with 25%/25% for a Deployment, maxUnavailable 1 and
maxSurge 0 for a DaemonSet, partition 0 for a StatefulSet.
"""

from __future__ import annotations

from typing import Any

from pydantic import model_validator

from orchestra.objects._checks import (
    Checked,
    ErrorList,
    Loc,
    fill_defaults,
    get_raw,
    int_or_percent_value,
    invalid,
    nonnegative,
    positive_int_or_percent,
    unsupported,
)
from orchestra.objects._model import Model
from orchestra.objects._scalars import IntOrString


def _default_rolling_update(data: Any, rolling_update: dict[str, Any] | None) -> Any:
    """Default ``type`` to RollingUpdate and, for that type, ``rollingUpdate`` to an
    object; then fill ``rolling_update``'s fields into it, when given."""
    data = fill_defaults(data, {"type": "RollingUpdate"})
    if isinstance(data, dict) and get_raw(data, "type") == "RollingUpdate":
        data = fill_defaults(data, {"rollingUpdate": dict})
        if rolling_update is None:
            return data
        ru = get_raw(data, "rollingUpdate")
        if isinstance(ru, Model):
            ru = ru.to_dict()
        if isinstance(ru, dict):
            data["rollingUpdate"] = fill_defaults(ru, rolling_update)
            data.pop("rolling_update", None)
    return data


# ---------------------------------------------------------------------------
# Deployment


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
        return _default_rolling_update(data, {"maxUnavailable": "25%", "maxSurge": "25%"})

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


# ---------------------------------------------------------------------------
# DaemonSet


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
        return _default_rolling_update(data, {"maxUnavailable": 1, "maxSurge": 0})

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


# ---------------------------------------------------------------------------
# StatefulSet


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
        return _default_rolling_update(data, None)

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
