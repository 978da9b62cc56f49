"""What each object counts toward a ResourceQuota, as Kubernetes' quota evaluators count.

- Pods (unless Succeeded, Failed, or deleted and past their grace period): ``pods``,
  ``count/pods``; ``cpu``/``requests.cpu``, ``memory``/``requests.memory``, ``limits.*``,
  ``ephemeral-storage``, ``hugepages-*`` and ``requests.<extended>`` from the pod's
  effective requests and limits: the larger of the init containers' peak and the sum of
  the containers (sidecars, init containers with ``restartPolicy: Always``, running
  beside both), plus ``spec.overhead``.
- Services: ``services``, ``services.nodeports`` (ports of NodePort and LoadBalancer
  services), ``services.loadbalancers``.
- PersistentVolumeClaims: ``persistentvolumeclaims``, ``requests.storage``, and both per
  storage class (``<class>.storageclass.storage.k8s.io/requests.storage``, ...).
- Every kind: ``count/<resource>.<group>`` (``count/deployments.apps``,
  ``count/configmaps``), and the legacy names ``configmaps``, ``secrets``,
  ``replicationcontrollers``, ``resourcequotas``.
- Scopes apply to pods only (a scoped quota counts nothing else): ``Terminating`` /
  ``NotTerminating`` (``activeDeadlineSeconds`` set or not), ``BestEffort`` /
  ``NotBestEffort`` (QoS), ``PriorityClass`` (through ``scopeSelector``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from orchestra.objects._base import KINDS, KindInfo
from orchestra.objects._quantity import Quantity
from orchestra.objects._scalars import parse_time

if TYPE_CHECKING:
    from orchestra._store import Store

Usage = dict[str, Quantity]
ZERO = Quantity(0)
ONE = Quantity(1)
_LEGACY_COUNTS = {"configmaps": "ConfigMap", "secrets": "Secret",
                  "replicationcontrollers": "ReplicationController",
                  "resourcequotas": "ResourceQuota", "pods": "Pod", "services": "Service",
                  "persistentvolumeclaims": "PersistentVolumeClaim"}
_STORAGE_CLASS = ".storageclass.storage.k8s.io/"
_POD_PREFIXES = ("requests.", "limits.")
_STANDARD = ("cpu", "memory", "ephemeral-storage")


def add(into: dict[str, Quantity], more: Mapping[str, Quantity]) -> None:
    for k, v in more.items():
        into[k] = into.get(k, ZERO) + v


def _as_list(table: Mapping[str, Any] | None) -> dict[str, Quantity]:
    return {k: Quantity(v) for k, v in (table or {}).items()}


def _is_sidecar(c: Any) -> bool:
    return getattr(c, "restart_policy", None) == "Always"


def _effective(pod: Any, which: str) -> dict[str, Quantity]:
    """PodRequests / PodLimits: max(init peak, containers + sidecars) + overhead."""
    total: dict[str, Quantity] = {}
    for c in pod.spec.containers:
        add(total, _as_list(getattr(c.resources, which, None) if c.resources else None))
    sidecars: dict[str, Quantity] = {}
    init_peak: dict[str, Quantity] = {}
    for c in pod.spec.init_containers or ():
        own = _as_list(getattr(c.resources, which, None) if c.resources else None)
        if _is_sidecar(c):
            add(total, own)
            add(sidecars, own)
            step = dict(sidecars)
        else:
            step = dict(own)
            add(step, sidecars)
        for k, v in step.items():
            if v > init_peak.get(k, ZERO):
                init_peak[k] = v
    for k, v in init_peak.items():
        if v > total.get(k, ZERO):
            total[k] = v
    add(total, _as_list(pod.spec.overhead))
    return total


def pod_requests(pod: Any) -> dict[str, Quantity]:
    return _effective(pod, "requests")


def pod_limits(pod: Any) -> dict[str, Quantity]:
    return _effective(pod, "limits")


def compute_usage(requests: Mapping[str, Quantity], limits: Mapping[str, Quantity]) -> Usage:
    """podComputeUsageHelper: the quota resource names a set of requests/limits fills."""
    out: Usage = {}
    for name, v in requests.items():
        if name in _STANDARD:
            out[name] = v
            out[f"requests.{name}"] = v
        elif name.startswith("hugepages-") or "/" in name or "." in name:
            out[f"requests.{name}"] = v
    for name, v in limits.items():
        if name in _STANDARD:
            out[f"limits.{name}"] = v
    return out


def pod_counts(pod: Any, now: float) -> bool:
    """QuotaV1Pod: a pod counts until it ends or its deletion's grace period runs out."""
    st = pod.status
    if st is not None and st.phase in ("Succeeded", "Failed"):
        return False
    meta = pod.metadata
    if meta.deletion_timestamp is not None and meta.deletion_grace_period_seconds is not None:
        return bool(now <= parse_time(meta.deletion_timestamp)
                    + meta.deletion_grace_period_seconds)
    return True


def best_effort(pod: Any) -> bool:
    for c in (*pod.spec.containers, *(pod.spec.init_containers or ())):
        res = c.resources
        if res is not None and (res.requests or res.limits):
            return False
    return True


def _scope_matches(scope: str, operator: str | None, values: Iterable[str], pod: Any) -> bool:
    spec = pod.spec
    if scope == "Terminating":
        return spec.active_deadline_seconds is not None and spec.active_deadline_seconds >= 0
    if scope == "NotTerminating":
        return spec.active_deadline_seconds is None or spec.active_deadline_seconds < 0
    if scope == "BestEffort":
        return best_effort(pod)
    if scope == "NotBestEffort":
        return not best_effort(pod)
    if scope == "PriorityClass":
        name = spec.priority_class_name
        if operator in (None, "Exists"):
            return bool(name)
        if operator == "DoesNotExist":
            return not name
        if operator == "In":
            return name in set(values)
        if operator == "NotIn":
            return name not in set(values)
    return False


def quota_counts(quota: Any, kind: str, obj: Any) -> bool:
    """Whether ``quota``'s scopes let it count ``obj`` (scoped quotas count pods only)."""
    spec = quota.spec
    scopes = list(spec.scopes or ())
    exprs = list((spec.scope_selector.match_expressions or ()) if spec.scope_selector else ())
    if not scopes and not exprs:
        return True
    if kind != "Pod":
        return False
    if not all(_scope_matches(s, None, (), obj) for s in scopes):
        return False
    return all(_scope_matches(e.scope_name, e.operator, e.values or (), obj) for e in exprs)


def _count_name(info: KindInfo) -> str:
    return f"count/{info.plural}.{info.group}" if info.group else f"count/{info.plural}"


def object_usage(kind: str, obj: Any, now: float) -> Usage:
    """Everything ``obj`` counts toward (every resource name it fills)."""
    info = KINDS.get(kind)
    out: Usage = {}
    if info is not None:
        out[_count_name(info)] = ONE
        if info.plural in _LEGACY_COUNTS and _LEGACY_COUNTS[info.plural] == kind:
            out[info.plural] = ONE
    if kind == "Pod":
        if not pod_counts(obj, now):
            return {}
        out.update(compute_usage(pod_requests(obj), pod_limits(obj)))
    elif kind == "Service":
        spec = obj.spec
        if spec.type in ("NodePort", "LoadBalancer") and not (
                spec.type == "LoadBalancer" and spec.allocate_load_balancer_node_ports is False):
            out["services.nodeports"] = Quantity(len(spec.ports or ()))
        if spec.type == "LoadBalancer":
            out["services.loadbalancers"] = ONE
    elif kind == "PersistentVolumeClaim":
        res = obj.spec.resources
        storage = Quantity((res.requests or {}).get("storage", 0)) if res else ZERO
        out["requests.storage"] = storage
        sc = obj.spec.storage_class_name
        if sc:
            out[f"{sc}{_STORAGE_CLASS}requests.storage"] = storage
            out[f"{sc}{_STORAGE_CLASS}persistentvolumeclaims"] = ONE
    return out


def kind_of_resource(name: str) -> str | None:
    """Which kind fills quota resource ``name`` (None: not one orchestra counts)."""
    if name.startswith("count/"):
        plural, _, group = name[6:].partition(".")
        for info in KINDS.values():
            if info.plural == plural and info.group == group and info.namespaced:
                return info.kind
        return None
    if name in _LEGACY_COUNTS:
        return _LEGACY_COUNTS[name] if _LEGACY_COUNTS[name] in KINDS else None
    if name == "requests.storage" or _STORAGE_CLASS in name:
        return "PersistentVolumeClaim"
    if name.startswith("services."):
        return "Service"
    if name in _STANDARD or name.startswith(_POD_PREFIXES) or name.startswith("hugepages-"):
        return "Pod"
    return None


def namespace_usage(store: Store, quota: Any, now: float) -> Usage:
    """What the quota's namespace uses of each of its hard resources now."""
    hard = quota.spec.hard or {}
    kinds = {k for k in (kind_of_resource(r) for r in hard) if k is not None}
    used: Usage = {r: ZERO for r in hard}
    for kind in sorted(kinds):
        for obj in store.list(kind, namespace=quota.metadata.namespace):
            if not quota_counts(quota, kind, obj):
                continue
            for r, v in object_usage(kind, obj, now).items():
                if r in used and kind_of_resource(r) == kind:
                    used[r] = used[r] + v
    return used
