"""The ResourceQuota admission plugin: a write that would take a namespace past a
quota's ``hard`` limits is refused with the API server's message.

``exceeded quota: q, requested: pods=1, used: pods=2, limited: pods=2`` names only the
resources that would be exceeded, sorted. A quota on ``cpu``/``memory`` (requests or
limits) also requires every container to state them: ``failed quota: q: must specify
limits.cpu for: nginx; requests.cpu for: nginx``. Creates are checked for every kind but
Event and Lease; updates of Services and PersistentVolumeClaims are checked for what they
add (a type change, a larger claim).

Unlike kube-apiserver, which checks against the ``status.used`` the quota controller
last wrote (and refuses with "status unknown" until it has), usage is counted from the
store at admission, so a quota holds from the moment it exists.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from orchestra._errors import Forbidden
from orchestra.loops._quotausage import (
    ZERO,
    compute_usage,
    kind_of_resource,
    namespace_usage,
    object_usage,
    quota_counts,
)
from orchestra.objects._base import KINDS
from orchestra.objects._quantity import Quantity

if TYPE_CHECKING:
    from orchestra._clock import Clock
    from orchestra._store import Store
    from orchestra.objects import ResourceQuota
    from orchestra.objects._base import KubeObject

_VALIDATED = ("cpu", "memory", "requests.cpu", "requests.memory", "limits.cpu",
              "limits.memory")
_NOT_HOOKED = ("Event", "Lease")


def _pretty(usage: dict[str, Quantity], names: list[str]) -> str:
    return ",".join(f"{n}={usage.get(n, ZERO)}" for n in names)


def _missing(pod: Any, required: set[str]) -> str | None:
    """The pod evaluator's Constraints: containers that do not state a quota'd cpu or
    memory request/limit."""
    need = required.intersection(_VALIDATED)
    if not need:
        return None
    missing: dict[str, set[str]] = {}
    for c in (*pod.spec.containers, *(pod.spec.init_containers or ())):
        res = c.resources
        have = compute_usage(
            {k: Quantity(v) for k, v in ((res.requests if res else None) or {}).items()},
            {k: Quantity(v) for k, v in ((res.limits if res else None) or {}).items()})
        for r in need - set(have):
            missing.setdefault(r, set()).add(c.name)
    if not missing:
        return None
    return "must specify " + "; ".join(
        f"{r} for: {', '.join(sorted(names))}" for r, names in sorted(missing.items()))


def _hook(store: Store, clock: Clock) -> Any:
    def hook(op: str, new: KubeObject | None, old: KubeObject | None) -> KubeObject | None:
        if new is None or op not in ("CREATE", "UPDATE"):
            return None
        kind = new.INFO.kind
        if op == "UPDATE" and kind not in ("Service", "PersistentVolumeClaim"):
            return None
        ns = new.metadata.namespace
        quotas = cast("list[ResourceQuota]", store.list("ResourceQuota", namespace=ns))
        if not quotas:
            return None
        now = clock.now()
        delta = object_usage(kind, new, now)
        if op == "UPDATE" and old is not None:
            before = object_usage(kind, old, now)
            delta = {k: v - before.get(k, ZERO) for k, v in delta.items()}
        what = f'{new.INFO.resource} "{new.metadata.name}" is forbidden'
        for quota in sorted(quotas, key=lambda q: q.metadata.name or ""):
            hard = {k: Quantity(v) for k, v in (quota.spec.hard or {}).items()}
            if not quota_counts(quota, kind, new):
                continue
            if kind == "Pod" and op == "CREATE":
                problem = _missing(new, set(hard))
                if problem:
                    raise Forbidden(f"{what}: failed quota: {quota.metadata.name}: {problem}")
            requested = {k: v for k, v in delta.items() if k in hard
                         and kind_of_resource(k) == kind and v > ZERO}
            if not requested:
                continue
            used = namespace_usage(store, quota, now)
            if op == "UPDATE" and old is not None and quota_counts(quota, kind, old):
                pass  # (the old version is what the store holds: already in used)
            exceeded = sorted(k for k, v in requested.items() if used.get(k, ZERO) + v > hard[k])
            if exceeded:
                raise Forbidden(
                    f"{what}: exceeded quota: {quota.metadata.name}, requested: "
                    f"{_pretty(requested, exceeded)}, used: {_pretty(used, exceeded)}, "
                    f"limited: {_pretty(hard, exceeded)}")
        return None

    return hook


def install(store: Store, clock: Clock) -> None:
    kinds = [k for k, info in KINDS.items() if info.namespaced and k not in _NOT_HOOKED]
    store.add_admission(_hook(store, clock), kinds=kinds)
