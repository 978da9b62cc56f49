"""storage.k8s.io/v1: StorageClass.

Defaults are the API server's: ``reclaimPolicy: Delete`` and ``volumeBindingMode:
Immediate``. A class with the annotation ``storageclass.kubernetes.io/is-default-class:
"true"`` is given to claims that name no class (the DefaultStorageClass admission
plugin; see ``orchestra.admission``).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from orchestra.objects._base import register
from orchestra.objects._checks import CheckedKind, ErrorList, invalid, unsupported
from orchestra.objects._model import FrozenDict, Model
from orchestra.objects._names import label_key_error

DEFAULT_STORAGE_CLASS_ANNOTATION = "storageclass.kubernetes.io/is-default-class"
"""A StorageClass with this annotation ``"true"`` is given to claims without a class."""

_RECLAIM_POLICIES = ("Delete", "Retain")
_BINDING_MODES = ("Immediate", "WaitForFirstConsumer")


class TopologySelectorLabelRequirement(Model):
    key: str
    values: tuple[str, ...]


class TopologySelectorTerm(Model):
    match_label_expressions: tuple[TopologySelectorLabelRequirement, ...] | None = None


@register(plural="storageclasses", short_names=("sc",), namespaced=False)
class StorageClass(CheckedKind):
    """How volumes of a class are provisioned; cluster-scoped and, like Kubernetes',
    without ``spec``/``status``."""

    api_version: Literal["storage.k8s.io/v1"] = Field("storage.k8s.io/v1", alias="apiVersion")
    kind: Literal["StorageClass"] = "StorageClass"
    provisioner: str = ""
    parameters: FrozenDict[str, str] | None = None
    reclaim_policy: str = "Delete"
    mount_options: tuple[str, ...] | None = None
    allow_volume_expansion: bool | None = None
    volume_binding_mode: str = "Immediate"
    allowed_topologies: tuple[TopologySelectorTerm, ...] | None = None

    @property
    def is_default(self) -> bool:
        return self.annotations.get(DEFAULT_STORAGE_CLASS_ANNOTATION) == "true"

    def field_errors(self) -> ErrorList:
        errors: ErrorList = []
        if not self.provisioner:
            errors.append((("provisioner",), "Required value"))
        else:
            err = label_key_error(self.provisioner.lower())
            if err:
                errors.append((("provisioner",), invalid(self.provisioner, err)))
        if self.reclaim_policy not in _RECLAIM_POLICIES:
            errors.append((("reclaimPolicy",), unsupported(self.reclaim_policy,
                                                           _RECLAIM_POLICIES)))
        if self.volume_binding_mode not in _BINDING_MODES:
            errors.append((("volumeBindingMode",), unsupported(self.volume_binding_mode,
                                                               _BINDING_MODES)))
        return errors


__all__ = [
    "DEFAULT_STORAGE_CLASS_ANNOTATION",
    "StorageClass",
    "TopologySelectorLabelRequirement",
    "TopologySelectorTerm",
]
