"""``describe`` for PersistentVolumes and StorageClasses, as kubectl prints them (claims
are in ``_describe_config``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from orchestra.objects._meta import LAST_APPLIED
from orchestra.objects._scalars import parse_time
from orchestra.present._describe import Out, annotations_text, events_section, map_text
from orchestra.present._describe_volumes import source_pairs
from orchestra.present._kubectl import human_duration as _age

if TYPE_CHECKING:
    from orchestra.present._view import ClusterView

__all__ = ["ACCESS_MODES", "DESCRIBERS", "access_modes"]

ACCESS_MODES = (("ReadWriteOnce", "RWO"), ("ReadOnlyMany", "ROX"), ("ReadWriteMany", "RWX"),
                ("ReadWriteOncePod", "RWOP"))


def access_modes(modes: Any) -> str:
    """kubectl's ``GetAccessModesAsString``: ``RWO,ROX``."""
    have = set(modes or ())
    return ",".join(short for mode, short in ACCESS_MODES if mode in have)


def _expressions(title: str, exprs: list[str], indent: int) -> list[str]:
    """``Term 0:  key in [a, b]`` with further expressions aligned under the first."""
    pad = " " * indent
    if not exprs:
        return [f"{pad}{title}:\t<none>"]
    return [f"{pad}{title}:\t{exprs[0]}", *(f"{pad}\t{e}" for e in exprs[1:])]


def _node_affinity(pv: Any) -> list[str]:
    aff = pv.spec.node_affinity
    if aff is None or aff.required is None:
        return ["Node Affinity:\t<none>"]
    lines = ["Node Affinity:\t"]
    terms = aff.required.node_selector_terms
    if not terms:
        return [*lines, "  Required Terms:\t<none>"]
    lines.append("  Required Terms:\t")
    for i, term in enumerate(terms):
        exprs = []
        for r in term.match_expressions or ():
            text = f"{r.key} {r.operator.lower()}"
            if r.values:
                text += f" [{', '.join(r.values)}]"
            exprs.append(text)
        lines.extend(_expressions(f"Term {i}", exprs, 4))
    return lines


def persistent_volume(cluster: ClusterView, pv: Any, out: Out) -> None:
    spec, st, meta = pv.spec, pv.status, pv.metadata
    ref = spec.claim_ref
    if meta.deletion_timestamp:
        lasts = _age(cluster.clock.now() - parse_time(meta.deletion_timestamp))
        status = f"Terminating (lasts {lasts})"
    else:
        status = st.phase if st else "Pending"
    out.kv([("Name", meta.name), ("Labels", map_text(meta.labels)),
            ("Annotations", annotations_text(meta.annotations)),
            ("Finalizers", f"[{' '.join(meta.finalizers or ())}]"),
            ("StorageClass", spec.storage_class_name or " "), ("Status", status),
            ("Claim", f"{ref.namespace}/{ref.name}" if ref is not None else " "),
            ("Reclaim Policy", spec.persistent_volume_reclaim_policy),
            ("Access Modes", access_modes(spec.access_modes) or " "),
            ("VolumeMode", spec.volume_mode),
            ("Capacity", str((spec.capacity or {}).get("storage", "0")))])
    out.lines.extend(_node_affinity(pv))
    out.kv([("Message", (st.message if st else None) or " ")])
    out.line("Source:")
    field = next((name for name in ("host_path", "local", "nfs", "csi")
                  if getattr(spec, name) is not None), None)
    pairs = None
    if field == "local":
        pairs = [("Type", "LocalVolume (a persistent volume backed by local storage on a "
                          "node)"), ("Path", spec.local.path)]
    elif field is not None:
        pairs = source_pairs(field, getattr(spec, field))
    if pairs is not None:
        out.kv(pairs, indent=4)
    events_section(cluster, pv, out)


def _labels(d: Any) -> str:
    """Go's ``labels.FormatLabels``: ``k=v,k2=v2`` sorted, ``<none>`` when empty. (kubectl
    prints the last-applied annotation here too; orchestra never shows it in describe.)"""
    return ",".join(f"{k}={v}" for k, v in sorted((d or {}).items())
                    if k != LAST_APPLIED) or "<none>"


def storage_class(cluster: ClusterView, sc: Any, out: Out) -> None:
    out.kv([("Name", sc.metadata.name),
            ("IsDefaultClass", "Yes" if sc.is_default else "No"),
            ("Annotations", _labels(sc.metadata.annotations)),
            ("Provisioner", sc.provisioner),
            ("Parameters", _labels(sc.parameters)),
            ("AllowVolumeExpansion", "<unset>" if sc.allow_volume_expansion is None
             else str(sc.allow_volume_expansion))])
    if sc.mount_options:
        out.line("MountOptions:")
        out.lines.extend(f"  {o}" for o in sc.mount_options)
    else:
        out.kv([("MountOptions", "<none>")])
    out.kv([("ReclaimPolicy", sc.reclaim_policy), ("VolumeBindingMode", sc.volume_binding_mode)])
    if sc.allowed_topologies is not None:
        if not sc.allowed_topologies:
            out.kv([("AllowedTopologies", "<none>")])
        else:
            out.line("AllowedTopologies:\t")
            for i, term in enumerate(sc.allowed_topologies):
                exprs = [f"{r.key} in [{', '.join(r.values)}]" if r.values else f"{r.key} in"
                         for r in term.match_label_expressions or ()]
                out.lines.extend(_expressions(f"Term {i}", exprs, 2))
    events_section(cluster, sc, out)


DESCRIBERS: dict[str, Callable[[ClusterView, Any, Out], None]] = {
    "PersistentVolume": persistent_volume,
    "StorageClass": storage_class,
}
