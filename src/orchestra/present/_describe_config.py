"""``describe`` for configuration, storage and namespaces: ConfigMaps, Secrets (sizes,
never values), PersistentVolumeClaims, ResourceQuotas and Namespaces, as kubectl prints
them."""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

from orchestra.objects._scalars import parse_time
from orchestra.present._describe import Out, annotations_text, events_section, map_text
from orchestra.present._describe_kinds import object_head
from orchestra.present._describe_storage import DESCRIBERS as STORAGE
from orchestra.present._describe_storage import access_modes
from orchestra.present._kubectl import human_duration as _age

if TYPE_CHECKING:
    from orchestra.objects import Pod
    from orchestra.present._view import ClusterView

__all__ = ["DESCRIBERS"]


def config_map(cluster: ClusterView, cm: Any, out: Out) -> None:
    out.kv([*object_head(cm), ("Labels", map_text(cm.metadata.labels)),
            ("Annotations", annotations_text(cm.metadata.annotations))])
    out.line()
    out.line("Data")
    out.line("====")
    for key in sorted(cm.data or {}):
        out.line(f"{key}:")
        out.line("----")
        out.lines.extend(str(cm.data[key]).split("\n"))
        out.line()
    out.line()
    out.line("BinaryData")
    out.line("====")
    for key in sorted(cm.binary_data or {}):
        out.line(f"{key}: {len(base64.b64decode(cm.binary_data[key]))} bytes")
    out.line()
    events_section(cluster, cm, out)


def secret(cluster: ClusterView, s: Any, out: Out) -> None:
    """Each key's size, never its value."""
    out.kv([*object_head(s), ("Labels", map_text(s.metadata.labels)),
            ("Annotations", annotations_text(s.metadata.annotations))])
    out.line()
    out.kv([("Type", s.type or "Opaque")])
    out.line()
    out.line("Data")
    out.line("====")
    for key in sorted(s.data or {}):
        out.line(f"{key}:\t{len(base64.b64decode(s.data[key]))} bytes")
    events_section(cluster, s, out)


def claim(cluster: ClusterView, pvc: Any, out: Out) -> None:
    spec, st, meta = pvc.spec, pvc.status, pvc.metadata
    now = cluster.clock.now()
    bound = bool(spec.volume_name)
    capacity = (st.capacity or {}).get("storage", "") if bound and st else ""
    modes = set(st.access_modes or ()) if bound and st else set()
    pods = cast("list[Pod]", cluster.store.list("Pod", namespace=meta.namespace))
    users = sorted(str(p.metadata.name) for p in pods
                   if any(v.persistent_volume_claim is not None
                          and v.persistent_volume_claim.claim_name == meta.name
                          for v in p.spec.volumes or ()))
    pairs: list[tuple[str, Any]] = [
        *object_head(pvc), ("StorageClass", spec.storage_class_name or " "),
        ("Status", f"Terminating (lasts {_age(now - parse_time(meta.deletion_timestamp))})"
         if meta.deletion_timestamp else (st.phase if st else "Pending")),
        ("Volume", spec.volume_name or " "),
        ("Labels", map_text(meta.labels)), ("Annotations", annotations_text(meta.annotations)),
        ("Finalizers", f"[{' '.join(meta.finalizers or ())}]"),
        ("Capacity", capacity or " "),
        ("Access Modes", access_modes(modes) or " "),
        ("VolumeMode", spec.volume_mode),
        ("Used By", "\n".join(users) or "<none>"),
    ]
    out.kv(pairs)
    events_section(cluster, pvc, out)


def _quota_rows(cluster: ClusterView, q: Any) -> list[list[str]]:
    """``Resource  Used  Hard`` rows of a quota: the status the quota controller wrote
    (what the namespace uses now, until it has)."""
    from orchestra.loops._quotausage import namespace_usage

    used: dict[str, Any] = dict((q.status.used or {}) if q.status else {})
    if set(used) != set(q.spec.hard or {}):
        used = dict(namespace_usage(cluster.store, q, cluster.clock.now()))
    hard = q.spec.hard or {}
    return [[r, str(used.get(r, 0)), str(hard[r])] for r in sorted(hard)]


def resource_quota(cluster: ClusterView, q: Any, out: Out) -> None:
    out.kv(object_head(q))
    if q.spec.scopes:
        out.kv([("Scopes", ", ".join(sorted(q.spec.scopes)))])
    out.table(["Resource", "Used", "Hard"], _quota_rows(cluster, q), indent=0)
    events_section(cluster, q, out)


def namespace(cluster: ClusterView, ns: Any, out: Out) -> None:
    name = ns.metadata.name
    out.kv([("Name", name), ("Labels", map_text(ns.metadata.labels)),
            ("Annotations", annotations_text(ns.metadata.annotations)),
            ("Status", ns.status.phase if ns.status and ns.status.phase else "Active")])
    out.line()
    quotas = sorted(cluster.store.list("ResourceQuota", namespace=name),
                    key=lambda q: str(q.metadata.name))
    if not quotas:
        out.line("No resource quota.")
    else:
        out.line("Resource Quotas")
        for q in quotas:
            out.kv([("Name", q.metadata.name)], indent=2)
            out.table(["Resource", "Used", "Hard"], _quota_rows(cluster, q))
    out.line()
    ranges = sorted(cluster.store.list("LimitRange", namespace=name),
                    key=lambda r: str(r.metadata.name))
    rows = [[item.type, res, *(str(table[res]) if table and res in table else "-"
                               for table in (item.min, item.max, item.default_request,
                                             item.default, item.max_limit_request_ratio))]
            for r in ranges for item in cast("Any", r).spec.limits or ()
            for res in sorted({k for table in (item.min, item.max, item.default_request,
                                               item.default, item.max_limit_request_ratio)
                               for k in table or {}})]
    if not ranges:
        out.line("No LimitRange resource.")
    else:
        out.line("Resource Limits")
        out.table(["Type", "Resource", "Min", "Max", "Default Request", "Default Limit",
                   "Max Limit/Request Ratio"], rows, indent=1)



def priority_class(cluster: ClusterView, pc: Any, out: Out) -> None:
    out.kv([("Name", pc.metadata.name), ("Value", pc.value),
            ("GlobalDefault", "true" if pc.global_default else "false"),
            ("PreemptionPolicy", pc.preemption_policy or "PreemptLowerPriority"),
            ("Description", pc.description or ""),
            ("Annotations", map_text(pc.metadata.annotations))])
    events_section(cluster, pc, out)


DESCRIBERS: dict[str, Callable[[ClusterView, Any, Out], None]] = {
    "ConfigMap": config_map,
    "Secret": secret,
    "PersistentVolumeClaim": claim,
    "Namespace": namespace,
    "ResourceQuota": resource_quota,
    "PriorityClass": priority_class,
    **STORAGE,
}
