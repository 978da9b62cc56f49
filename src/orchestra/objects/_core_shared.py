"""What the core/v1 types share: the ``Opaque`` and ``ResourceList`` field types, unique
names, object references and field selectors.

Pods, their parts and the other core/v1 kinds all build on these. This module imports
nothing of orchestra but ``_model``, ``_scalars`` and ``_field_errors``, so every core
module may use it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated, Any

from orchestra.objects._field_errors import fail
from orchestra.objects._model import FrozenDict, Model, json_object
from orchestra.objects._scalars import QuantityValue


def check_unique_names(
    items: Iterable[Any], seen: set[str] | None = None, field: str = "name"
) -> None:
    """Fail with ``[i].name: Duplicate value`` for each repeated ``name``."""
    seen = set() if seen is None else seen
    dups: list[tuple[tuple[int | str, ...], str]] = []
    for i, item in enumerate(items):
        name = getattr(item, field)
        if name in seen:
            dups.append(((i, field), f'Duplicate value: "{name}"'))
        seen.add(name)
    if dups:
        fail(dups)


def _freeze(v: Any) -> Any:
    if isinstance(v, dict):
        return FrozenDict({k: _freeze(x) for k, x in v.items()})
    if isinstance(v, list | tuple):
        return tuple(_freeze(x) for x in v)
    return v


Opaque = Annotated[FrozenDict[str, Any], json_object(_freeze)]
"""A structure orchestra carries but never interprets (legacy in-tree volume sources, alpha
fields): any JSON object, deeply frozen (nested maps are FrozenDicts, lists tuples)."""

ResourceList = FrozenDict[str, QuantityValue]
"""Resource name -> quantity (``{"cpu": "500m", "memory": "128Mi"}``)."""


# ---------------------------------------------------------------------------
# References and selectors


class ObjectReference(Model):
    """A reference to any object (an event's subject, an endpoint's pod, a PV's claim)."""

    api_version: str | None = None
    kind: str | None = None
    namespace: str | None = None
    name: str | None = None
    uid: str | None = None
    resource_version: str | None = None
    field_path: str | None = None


class SecretReference(Model):
    name: str | None = None
    namespace: str | None = None


class LocalObjectReference(Model):
    name: str | None = None


class TypedLocalObjectReference(Model):
    api_group: str | None = None
    kind: str
    name: str


class TypedObjectReference(Model):
    api_group: str | None = None
    kind: str
    name: str
    namespace: str | None = None


class ObjectFieldSelector(Model):
    api_version: str = "v1"
    field_path: str


class ResourceFieldSelector(Model):
    container_name: str | None = None
    resource: str
    divisor: QuantityValue | None = None
