"""policy/v1: PodDisruptionBudget.

As in Kubernetes, ``minAvailable`` and ``maxUnavailable`` may not both be set, and a
budget with neither is accepted (the API server does not require one). An empty selector
(``{}``) matches every pod in the namespace; a missing one matches none.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from orchestra.objects._apps import (
    Checked,
    CheckedKind,
    ConditionBase,
    ErrorList,
    invalid,
    label_selector_errors,
    positive_int_or_percent,
    unsupported,
)
from orchestra.objects._base import register
from orchestra.objects._meta import LabelSelector
from orchestra.objects._model import FrozenDict
from orchestra.objects._scalars import IntOrString, Time

_EVICTION_POLICIES = ("IfHealthyBudget", "AlwaysAllow")


class PodDisruptionBudgetSpec(Checked):
    min_available: IntOrString | None = None
    selector: LabelSelector | None = None
    max_unavailable: IntOrString | None = None
    unhealthy_pod_eviction_policy: str | None = None

    def field_errors(self) -> ErrorList:
        errors: ErrorList = []
        if self.min_available is not None and self.max_unavailable is not None:
            errors.append(((), invalid(self, "minAvailable and maxUnavailable cannot be both "
                                       "set")))
        positive_int_or_percent(errors, ("minAvailable",), self.min_available)
        positive_int_or_percent(errors, ("maxUnavailable",), self.max_unavailable)
        if self.selector is not None:
            errors += label_selector_errors(self.selector, ("selector",))
        policy = self.unhealthy_pod_eviction_policy
        if policy is not None and policy not in _EVICTION_POLICIES:
            errors.append((("unhealthyPodEvictionPolicy",),
                           unsupported(policy, _EVICTION_POLICIES)))
        return errors


class PodDisruptionBudgetCondition(ConditionBase):
    observed_generation: int | None = None


class PodDisruptionBudgetStatus(Checked):
    observed_generation: int | None = None
    disrupted_pods: FrozenDict[str, Time] | None = None
    disruptions_allowed: int = 0
    current_healthy: int = 0
    desired_healthy: int = 0
    expected_pods: int = 0
    conditions: tuple[PodDisruptionBudgetCondition, ...] | None = None


@register(plural="poddisruptionbudgets", short_names=("pdb",), namespaced=True)
class PodDisruptionBudget(CheckedKind):
    api_version: Literal["policy/v1"] = Field("policy/v1", alias="apiVersion")
    kind: Literal["PodDisruptionBudget"] = "PodDisruptionBudget"
    spec: PodDisruptionBudgetSpec = Field(default_factory=PodDisruptionBudgetSpec)
    status: PodDisruptionBudgetStatus | None = None


__all__ = [
    "PodDisruptionBudget",
    "PodDisruptionBudgetCondition",
    "PodDisruptionBudgetSpec",
    "PodDisruptionBudgetStatus",
]
