"""``kubectl apply`` semantics: create what is missing; for what exists, set the fields
the caller set and remove the fields the caller set last time but not now (the
``kubectl.kubernetes.io/last-applied-configuration`` annotation remembers them).
Fields other writers own (status, controller-managed fields) are left alone."""

from __future__ import annotations

import json
import os
from typing import Any

from orchestra.objects._base import LAST_APPLIED as LAST_APPLIED
from orchestra.objects._base import KubeObject
from orchestra.objects._registry import load, to_object


def as_objects(x: Any) -> list[KubeObject]:
    """An object, a dict, a YAML/JSON text, a path, or a list of these -> objects."""
    if isinstance(x, KubeObject):
        return [x]
    if isinstance(x, dict):
        return [to_object(x)]
    if isinstance(x, str | os.PathLike):
        return load(x)
    if isinstance(x, list | tuple):
        out: list[KubeObject] = []
        for item in x:
            out.extend(as_objects(item))
        return out
    raise TypeError(f"cannot apply {type(x).__name__}: give an object, a dict, YAML/JSON "
                    "text, a path or a list of these")


def applied_config(obj: KubeObject) -> dict[str, Any]:
    """What the caller set: the manifest without defaults and without system fields."""
    d = obj.model_dump(mode="json", by_alias=True, exclude_unset=True, exclude_none=True,
                       warnings=False)
    d["apiVersion"] = obj.api_version
    d["kind"] = obj.kind
    meta = d.setdefault("metadata", {})
    for k in ("uid", "resourceVersion", "generation", "creationTimestamp",
              "deletionTimestamp", "managedFields", "selfLink"):
        meta.pop(k, None)
    d.pop("status", None)
    annotations = meta.get("annotations")
    if annotations:
        annotations.pop(LAST_APPLIED, None)
        if not annotations:
            meta.pop("annotations")
    return d


def three_way_patch(last: dict[str, Any] | None, desired: dict[str, Any]) -> dict[str, Any]:
    """A JSON merge patch: ``desired``, plus ``null`` for keys in ``last`` that
    ``desired`` no longer has (recursively through maps)."""
    patch: dict[str, Any] = {}
    for k, v in desired.items():
        prev = (last or {}).get(k)
        if isinstance(v, dict) and isinstance(prev, dict):
            patch[k] = three_way_patch(prev, v)
        else:
            patch[k] = v
    for k in last or {}:
        if k not in desired:
            patch[k] = None
    return patch


def apply_patch(obj: KubeObject, last_applied: str | None) -> dict[str, Any]:
    desired = applied_config(obj)
    last = json.loads(last_applied) if last_applied else None
    patch = three_way_patch(last, desired)
    patch.setdefault("metadata", {}).setdefault("annotations", {})[LAST_APPLIED] = json.dumps(
        desired, sort_keys=True, separators=(",", ":"))
    return patch


def with_last_applied(obj: KubeObject) -> dict[str, Any]:
    """The object to create, carrying its last-applied annotation."""
    desired = applied_config(obj)
    d = obj.to_dict()
    d.setdefault("metadata", {}).setdefault("annotations", {})[LAST_APPLIED] = json.dumps(
        desired, sort_keys=True, separators=(",", ":"))
    return d
