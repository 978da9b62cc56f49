"""scheduling.k8s.io/v1 PriorityClass: a cluster-wide name for a pod priority.

Validated as the API server validates it: a name starting with ``system-`` is reserved
for the two system classes (and their exact values), a user class may not exceed
1000000000, and ``preemptionPolicy`` is ``PreemptLowerPriority`` (the default) or
``Never``. The system classes themselves are created by the cluster, as the API server
bootstraps them.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from orchestra.objects._apps import CheckedKind, ErrorList, unsupported
from orchestra.objects._base import register

HIGHEST_USER_DEFINABLE_PRIORITY = 1_000_000_000
SYSTEM_CRITICAL_PRIORITY = 2 * HIGHEST_USER_DEFINABLE_PRIORITY
# name -> value, as kube-apiserver creates them at start
SYSTEM_PRIORITY_CLASSES = {
    "system-cluster-critical": SYSTEM_CRITICAL_PRIORITY,
    "system-node-critical": SYSTEM_CRITICAL_PRIORITY + 1000,
}
SYSTEM_DESCRIPTIONS = {
    "system-cluster-critical": "Used for system critical pods that must run in the cluster, "
                               "but can be moved to another node if necessary.",
    "system-node-critical": "Used for system critical pods that must not be moved from "
                            "their current node.",
}
PREEMPTION_POLICIES = ("Never", "PreemptLowerPriority")


@register(plural="priorityclasses", short_names=("pc",), namespaced=False)
class PriorityClass(CheckedKind):
    api_version: Literal["scheduling.k8s.io/v1"] = Field("scheduling.k8s.io/v1",
                                                         alias="apiVersion")
    kind: Literal["PriorityClass"] = "PriorityClass"
    value: int
    global_default: bool | None = None
    description: str | None = None
    preemption_policy: str | None = "PreemptLowerPriority"

    def field_errors(self) -> ErrorList:
        errors: ErrorList = []
        name = self.metadata.name or ""
        if name.startswith("system-"):
            problem = _system_class_problem(name, self.value, bool(self.global_default))
            if problem:
                errors.append((("metadata", "name"),
                               "Forbidden: priority class names with 'system-' prefix are "
                               f"reserved for system use only. error: {problem}"))
        elif self.value > HIGHEST_USER_DEFINABLE_PRIORITY:
            errors.append((("value",), "Forbidden: maximum allowed value of a user defined "
                           f"priority is {HIGHEST_USER_DEFINABLE_PRIORITY}"))
        if self.preemption_policy is not None and \
                self.preemption_policy not in PREEMPTION_POLICIES:
            errors.append((("preemptionPolicy",),
                           unsupported(self.preemption_policy, PREEMPTION_POLICIES)))
        return errors


def _system_class_problem(name: str, value: int, global_default: bool) -> str | None:
    want = SYSTEM_PRIORITY_CLASSES.get(name)
    if want is None:
        return f"{name} is not a known system priority class"
    if value != want:
        return f"value of {name} PriorityClass must be {want}"
    if global_default:
        return f"globalDefault of {name} PriorityClass must be false"
    return None


__all__ = ["PriorityClass"]
