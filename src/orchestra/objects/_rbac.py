"""ServiceAccount (v1) and the RBAC kinds (rbac.authorization.k8s.io/v1): Role,
ClusterRole, RoleBinding, ClusterRoleBinding.

They load, validate with the API server's messages and are stored, so the manifests that
ship them beside workloads apply unchanged. orchestra does not authorize requests:
roles and bindings are recorded, never enforced. ServiceAccounts matter to pods: a pod
naming one that does not exist is refused at admission, and every namespace gets a
``default`` one (the serviceaccounts controller, ``loops/_serviceaccounts``).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from orchestra.objects._apps import Checked, CheckedKind, ErrorList, label_selector_errors
from orchestra.objects._base import register
from orchestra.objects._core_shared import LocalObjectReference, ObjectReference
from orchestra.objects._messages import unsupported
from orchestra.objects._meta import LabelSelector

RBAC_GROUP = "rbac.authorization.k8s.io"


@register(plural="serviceaccounts", short_names=("sa",), namespaced=True)
class ServiceAccount(CheckedKind):
    api_version: Literal["v1"] = Field("v1", alias="apiVersion")
    kind: Literal["ServiceAccount"] = "ServiceAccount"
    secrets: tuple[ObjectReference, ...] | None = None
    image_pull_secrets: tuple[LocalObjectReference, ...] | None = None
    automount_service_account_token: bool | None = None


class PolicyRule(Checked):
    verbs: tuple[str, ...] = ()
    api_groups: tuple[str, ...] | None = None
    resources: tuple[str, ...] | None = None
    resource_names: tuple[str, ...] | None = None
    non_resource_urls: tuple[str, ...] | None = Field(None, alias="nonResourceURLs")

    def field_errors(self) -> ErrorList:
        """``ValidatePolicyRule`` (the namespaced check is the Role's)."""
        errors: ErrorList = []
        if not self.verbs:
            errors.append((("verbs",), "Required value: verbs must contain at least one "
                                       "value"))
        if self.non_resource_urls and (self.api_groups or self.resources
                                       or self.resource_names):
            errors.append((("nonResourceURLs",), "Invalid value: "
                           f"{list(self.non_resource_urls)!r}: rules cannot apply to both "
                           "regular resources and non-resource URLs"))
        if not self.non_resource_urls:
            if not self.api_groups:
                errors.append((("apiGroups",), "Required value: resource rules must supply "
                                               "at least one api group"))
            if not self.resources:
                errors.append((("resources",), "Required value: resource rules must supply "
                                               "at least one resource"))
        return errors


class Subject(Checked):
    kind: str
    name: str
    api_group: str | None = None
    namespace: str | None = None

    def field_errors(self) -> ErrorList:
        errors: ErrorList = []
        if not self.name:
            errors.append((("name",), "Required value"))
        if self.kind not in ("ServiceAccount", "User", "Group"):
            errors.append((("kind",), unsupported(self.kind, ["ServiceAccount", "User",
                                                               "Group"])))
        elif self.kind == "ServiceAccount" and self.api_group:
            errors.append((("apiGroup",), unsupported(self.api_group, [""])))
        elif self.kind in ("User", "Group") and self.api_group != RBAC_GROUP:
            errors.append((("apiGroup",), unsupported(self.api_group or "", [RBAC_GROUP])))
        return errors


class RoleRef(Checked):
    api_group: str
    kind: str
    name: str


def _role_ref_errors(ref: RoleRef, kinds: list[str]) -> ErrorList:
    errors: ErrorList = []
    if ref.api_group != RBAC_GROUP:
        errors.append((("roleRef", "apiGroup"), unsupported(ref.api_group, [RBAC_GROUP])))
    if ref.kind not in kinds:
        errors.append((("roleRef", "kind"), unsupported(ref.kind, kinds)))
    if not ref.name:
        errors.append((("roleRef", "name"), "Required value"))
    return errors


def _subject_namespace_errors(subjects: tuple[Subject, ...] | None) -> ErrorList:
    return [(("subjects", i, "namespace"), "Required value")
            for i, s in enumerate(subjects or ())
            if s.kind == "ServiceAccount" and not s.namespace]


@register(plural="roles", namespaced=True)
class Role(CheckedKind):
    api_version: Literal["rbac.authorization.k8s.io/v1"] = Field(
        "rbac.authorization.k8s.io/v1", alias="apiVersion")
    kind: Literal["Role"] = "Role"
    rules: tuple[PolicyRule, ...] | None = None

    def field_errors(self) -> ErrorList:
        return [(("rules", i, "nonResourceURLs"), "Invalid value: "
                 f"{list(r.non_resource_urls)!r}: namespaced rules cannot apply to "
                 "non-resource URLs")
                for i, r in enumerate(self.rules or ()) if r.non_resource_urls]


class AggregationRule(Checked):
    cluster_role_selectors: tuple[LabelSelector, ...] | None = None

    def field_errors(self) -> ErrorList:
        errors: ErrorList = []
        for i, selector in enumerate(self.cluster_role_selectors or ()):
            errors += label_selector_errors(selector, ("clusterRoleSelectors", i))
        return errors


@register(plural="clusterroles", namespaced=False)
class ClusterRole(CheckedKind):
    api_version: Literal["rbac.authorization.k8s.io/v1"] = Field(
        "rbac.authorization.k8s.io/v1", alias="apiVersion")
    kind: Literal["ClusterRole"] = "ClusterRole"
    rules: tuple[PolicyRule, ...] | None = None
    aggregation_rule: AggregationRule | None = None


@register(plural="rolebindings", namespaced=True)
class RoleBinding(CheckedKind):
    api_version: Literal["rbac.authorization.k8s.io/v1"] = Field(
        "rbac.authorization.k8s.io/v1", alias="apiVersion")
    kind: Literal["RoleBinding"] = "RoleBinding"
    subjects: tuple[Subject, ...] | None = None
    role_ref: RoleRef

    def field_errors(self) -> ErrorList:
        return _role_ref_errors(self.role_ref, ["Role", "ClusterRole"])


@register(plural="clusterrolebindings", namespaced=False)
class ClusterRoleBinding(CheckedKind):
    api_version: Literal["rbac.authorization.k8s.io/v1"] = Field(
        "rbac.authorization.k8s.io/v1", alias="apiVersion")
    kind: Literal["ClusterRoleBinding"] = "ClusterRoleBinding"
    subjects: tuple[Subject, ...] | None = None
    role_ref: RoleRef

    def field_errors(self) -> ErrorList:
        return (_role_ref_errors(self.role_ref, ["ClusterRole"])
                + _subject_namespace_errors(self.subjects))


__all__ = [
    "AggregationRule",
    "ClusterRole",
    "ClusterRoleBinding",
    "PolicyRule",
    "Role",
    "RoleBinding",
    "RoleRef",
    "ServiceAccount",
    "Subject",
]
