"""The API server's rules that the store applies to single objects, and its error
messages: what a create fills in (uid, a new pod's status, a Secret's ``stringData``),
what an update cannot change, which finalizers a deletion's propagation policy sets.
None of these touches the store's tables.
"""

from __future__ import annotations

import base64
import random
from typing import Any

from orchestra._errors import AlreadyExists, Conflict, FieldError, Invalid, NotFound
from orchestra._store._meta import replace
from orchestra.objects._base import KindInfo, KubeObject
from orchestra.objects._messages import unsupported
from orchestra.objects._model import FrozenDict

_getrandbits = random.getrandbits


def _new_uid() -> str:
    """A random version-4 UUID, as ``str(uuid.uuid4())`` but without a system call each."""
    n = _getrandbits(128)
    n = (n & ~(0xF000 << 64)) | (0x4000 << 64)
    n = (n & ~(0xC000 << 48)) | (0x8000 << 48)
    h = f"{n:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def _what(info: KindInfo, name: str) -> str:
    """``Deployment.apps "web"``: how the API server names an object in an Invalid error."""
    kind = f"{info.kind}.{info.group}" if info.group else info.kind
    return f'{kind} "{name}"'


def _not_found(info: KindInfo, name: str) -> NotFound:
    return NotFound(f'{info.resource} "{name}" not found')


def _already_exists(info: KindInfo, name: str, existing: KubeObject) -> AlreadyExists:
    deleting = existing.metadata.deletion_timestamp is not None
    prefix = "object is being deleted: " if deleting else ""
    return AlreadyExists(f'{prefix}{info.resource} "{name}" already exists')


def _conflict(info: KindInfo, name: str) -> Conflict:
    return Conflict(
        f'Operation cannot be fulfilled on {info.resource} "{name}": the object has been '
        "modified; please apply your changes to the latest version and try again"
    )


def _carry_system_fields(new: KubeObject, old: KubeObject) -> KubeObject:
    """``new`` with the metadata only the store sets copied from ``old``."""
    meta = new.metadata
    om = old.metadata
    changes: dict[str, Any] = {}
    for field in ("uid", "resource_version", "generation", "creation_timestamp",
                  "deletion_timestamp", "deletion_grace_period_seconds", "namespace"):
        value = getattr(om, field)
        if getattr(meta, field) != value:
            changes[field] = value
    if not changes:
        return new
    return replace(new, {"metadata": replace(meta, changes)})


_PENDING: dict[str, Any] = {}


def _pending_status(pod: KubeObject) -> Any:
    """A new pod's status, as the API server sets it: Pending, with its QoS class.

    The three possible values are shared between pods: they are immutable.
    """
    from orchestra.objects._pod import PodStatus, pod_qos_class

    qos = pod_qos_class(pod.spec)  # type: ignore[attr-defined]
    status = _PENDING.get(qos)
    if status is None:
        status = _PENDING[qos] = PodStatus(phase="Pending", qos_class=qos)
    return status


def _spec_finalizers(ns: KubeObject) -> tuple[str, ...]:
    return getattr(ns.__dict__.get("spec"), "finalizers", None) or ()


def _finalizers_for(info: KindInfo, current: tuple[str, ...],
                    propagation: str | None) -> tuple[str, ...]:
    if propagation is None:
        return tuple(current)
    drop: tuple[str, ...]
    if propagation == "Foreground":
        add, drop = "foregroundDeletion", ("orphan",)
    elif propagation == "Orphan":
        add, drop = "orphan", ("foregroundDeletion",)
    elif propagation == "Background":
        add, drop = "", ("orphan", "foregroundDeletion")
    else:
        raise Invalid("", [FieldError("propagationPolicy", unsupported(
            propagation, ("Orphan", "Foreground", "Background")))])
    out = [f for f in current if f not in drop]
    if add and add not in out:
        out.append(add)
    return tuple(out)


def _merge_string_data(obj: KubeObject) -> KubeObject:
    """A Secret's ``stringData`` merged into ``data`` (base64), as the API server stores it."""
    string_data = getattr(obj, "string_data", None)
    if not string_data:
        return obj
    data = dict(getattr(obj, "data", None) or {})
    for k, v in string_data.items():
        data[k] = base64.b64encode(v.encode()).decode("ascii")
    return replace(obj, {"data": FrozenDict(data), "string_data": None})
