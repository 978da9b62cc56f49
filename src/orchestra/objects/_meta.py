"""Object metadata: ObjectMeta (names, labels and annotations checked as the API server
checks them, the last-applied annotation kept out of reprs), owner references, managed
fields, ListMeta, and the label selector every selecting kind embeds."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pydantic import Field, field_validator

from orchestra.objects._field_errors import fail
from orchestra.objects._messages import invalid
from orchestra.objects._model import FrozenDict, Model
from orchestra.objects._names import label_key_error, label_value_error
from orchestra.objects._scalars import Time


def check_labels(v: FrozenDict[str, str] | None) -> FrozenDict[str, str] | None:
    """A field validator's body for a label map (``metadata.labels``, a pod's
    ``nodeSelector``): every key a qualified name, every value a label value."""
    if v:
        errors: list[tuple[tuple[int | str, ...], str]] = []
        for key, value in v.items():
            err = label_key_error(key)
            if err:
                errors.append(((), invalid(key, err)))
            err = label_value_error(value)
            if err:
                errors.append(((), invalid(value, err)))
        if errors:
            fail(errors)  # (one field error each, at the map's path, as Kubernetes lists them)
    return v


class OwnerReference(Model):
    api_version: str
    kind: str
    name: str
    uid: str
    controller: bool | None = None
    block_owner_deletion: bool | None = None


class ManagedFieldsEntry(Model):
    api_version: str | None = None
    fields_type: str | None = None
    fields_v1: FrozenDict[str, Any] | None = None
    manager: str | None = None
    operation: str | None = None
    subresource: str | None = None
    time: Time | None = None


LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
"""The annotation ``kubectl apply`` (and ``Cluster.apply``) keeps the applied manifest in:
for a Secret, its data, so its value is never part of a repr."""


def _hide_last_applied(annotations: dict[str, str]) -> dict[str, str]:
    return {k: f"<{len(v)} bytes, not shown>" if k == LAST_APPLIED else v
            for k, v in annotations.items()}


class Annotations(FrozenDict[str, str]):
    """A FrozenDict of annotations whose repr (and so str, and the repr of the metadata
    holding it) shows the size of :data:`LAST_APPLIED`, never its value."""

    __slots__ = ()

    def __repr__(self) -> str:
        return f"FrozenDict({_hide_last_applied(self)!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (Annotations, (dict(self),))


MAX_ANNOTATIONS_SIZE = 256 * 1024
"""Kubernetes' TotalAnnotationSizeLimitB: keys and values together, in bytes."""


def _text_size(m: dict[str, str]) -> int:
    """Bytes of a string map's keys and values (as UTF-8, as Go counts ``len``)."""
    total = 0
    for k, v in m.items():
        total += (len(k) if k.isascii() else len(k.encode("utf-8", "surrogatepass"))) + (
            len(v) if v.isascii() else len(v.encode("utf-8", "surrogatepass")))
    return total


class ObjectMeta(Model):
    name: str | None = None
    generate_name: str | None = None
    namespace: str | None = None
    uid: str | None = None
    resource_version: str | None = None
    generation: int | None = None
    creation_timestamp: Time | None = None
    deletion_timestamp: Time | None = None
    deletion_grace_period_seconds: int | None = None
    labels: FrozenDict[str, str] | None = None
    annotations: FrozenDict[str, str] | None = None
    owner_references: tuple[OwnerReference, ...] | None = None
    finalizers: tuple[str, ...] | None = None
    managed_fields: tuple[ManagedFieldsEntry, ...] | None = None
    self_link: str | None = None

    @field_validator("labels")
    @classmethod
    def _check_labels(cls, v: FrozenDict[str, str] | None) -> FrozenDict[str, str] | None:
        return check_labels(v)

    def __repr_args__(self) -> Iterable[tuple[str | None, Any]]:
        for name, value in super().__repr_args__():
            if name == "annotations" and isinstance(value, dict) and LAST_APPLIED in value:
                value = Annotations(value)
            yield name, value

    @field_validator("annotations")
    @classmethod
    def _check_annotations(
        cls, v: FrozenDict[str, str] | None
    ) -> FrozenDict[str, str] | None:
        if v:
            errors = [((), invalid(key, err)) for key in v if (err := label_key_error(key))]
            if _text_size(v) > MAX_ANNOTATIONS_SIZE:  # (ValidateAnnotationsSize)
                errors.append(((), f"Too long: may not be more than {MAX_ANNOTATIONS_SIZE} "
                                   "bytes"))
            if errors:
                fail(errors)
            if LAST_APPLIED in v:
                return Annotations(v)
        return v

    def controller_ref(self) -> OwnerReference | None:
        """The owner reference with ``controller: true``, if any."""
        for ref in self.owner_references or ():
            if ref.controller:
                return ref
        return None


class ListMeta(Model):
    resource_version: str | None = None
    continue_: str | None = Field(None, alias="continue")
    remaining_item_count: int | None = None


class LabelSelectorRequirement(Model):
    key: str
    operator: str
    values: tuple[str, ...] | None = None


class LabelSelector(Model):
    match_labels: FrozenDict[str, str] | None = None
    match_expressions: tuple[LabelSelectorRequirement, ...] | None = None
