"""``Volumes:`` in ``describe``: each volume's type and source, as kubectl prints them."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from orchestra.present._describe import Out

__all__ = ["source_pairs", "volumes"]


def _bool(value: bool | None) -> str:
    return "true" if value else "false"


def _empty_dir(s: Any) -> list[tuple[str, Any]]:
    limit = s.size_limit
    return [("Type", "EmptyDir (a temporary directory that shares a pod's lifetime)"),
            ("Medium", s.medium or ""),
            ("SizeLimit", str(limit) if limit is not None and str(limit) not in ("0", "")
             else "<unset>")]


def _host_path(s: Any) -> list[tuple[str, Any]]:
    return [("Type", "HostPath (bare host directory volume)"), ("Path", s.path),
            ("HostPathType", s.type or "")]


def _config_map(s: Any) -> list[tuple[str, Any]]:
    return [("Type", "ConfigMap (a volume populated by a ConfigMap)"), ("Name", s.name or ""),
            ("Optional", _bool(s.optional))]


def _secret(s: Any) -> list[tuple[str, Any]]:
    return [("Type", "Secret (a volume populated by a Secret)"),
            ("SecretName", s.secret_name or ""), ("Optional", _bool(s.optional))]


def _claim(s: Any) -> list[tuple[str, Any]]:
    return [("Type", "PersistentVolumeClaim (a reference to a PersistentVolumeClaim in the "
                     "same namespace)"),
            ("ClaimName", s.claim_name), ("ReadOnly", _bool(s.read_only))]


def _projected(s: Any) -> list[tuple[str, Any]]:
    pairs: list[tuple[str, Any]] = [
        ("Type", "Projected (a volume that contains injected data from multiple sources)")]
    for src in s.sources or ():
        if src.secret is not None:
            pairs += [("SecretName", src.secret.name or ""),
                      ("Optional", _bool(src.secret.optional))]
        elif src.downward_api is not None:
            pairs.append(("DownwardAPI", "true"))
        elif src.config_map is not None:
            pairs += [("ConfigMapName", src.config_map.name or ""),
                      ("Optional", _bool(src.config_map.optional))]
        elif src.service_account_token is not None:
            pairs.append(("TokenExpirationSeconds",
                          src.service_account_token.expiration_seconds))
    return pairs


def _nfs(s: Any) -> list[tuple[str, Any]]:
    return [("Type", "NFS (an NFS mount that lasts the lifetime of a pod)"),
            ("Server", s.server), ("Path", s.path), ("ReadOnly", _bool(s.read_only))]


def _csi(s: Any) -> list[tuple[str, Any]]:
    attrs = sorted((s.volume_attributes or {}).items())
    return [("Type", "CSI (a Container Storage Interface (CSI) volume source)"),
            ("Driver", s.driver), ("FSType", s.fs_type or ""), ("ReadOnly", _bool(s.read_only)),
            ("VolumeAttributes", "\n".join(f"{k}={v}" for k, v in attrs) or "<none>")]


def _ephemeral(s: Any) -> list[tuple[str, Any]]:
    """kubectl prints the claim template as a claim not yet made: no volume, capacity or
    access modes."""
    pairs: list[tuple[str, Any]] = [
        ("Type", "EphemeralVolume (an inline specification for a volume that gets created "
                 "and deleted with the pod)")]
    template = s.volume_claim_template
    if template is None:
        return pairs
    meta, spec = template.metadata, template.spec
    labels = sorted(((meta.labels if meta else None) or {}).items())
    notes = sorted(((meta.annotations if meta else None) or {}).items())
    return [*pairs, ("StorageClass", spec.storage_class_name or " "), ("Volume", " "),
            ("Labels", "\n".join(f"{k}={v}" for k, v in labels) or "<none>"),
            ("Annotations", "\n".join(f"{k}: {v}" for k, v in notes) or "<none>"),
            ("Capacity", " "), ("Access Modes", " "), ("VolumeMode", spec.volume_mode)]


def _image(s: Any) -> list[tuple[str, Any]]:
    return [("Type", "Image (a container image or OCI artifact)"),
            ("Reference", s.reference or ""), ("PullPolicy", s.pull_policy or "")]


_DESCRIBERS = {
    "empty_dir": _empty_dir, "host_path": _host_path, "config_map": _config_map,
    "secret": _secret, "persistent_volume_claim": _claim, "projected": _projected,
    "nfs": _nfs, "csi": _csi, "image": _image, "ephemeral": _ephemeral,
}


def volumes(out: Out, vols: Any, *, template: bool = False) -> None:
    """The ``Volumes:`` section of a pod, or of a workload's pod ``template`` (indented
    under ``Pod Template:``)."""
    if not vols:
        out.kv([("Volumes", "<none>")], indent=2 if template else 0)
        return
    out.line("  Volumes:" if template else "Volumes:")
    for v in vols:
        out.line(f"{'   ' if template else '  '}{v.name}:")
        field = next((name for name in type(v).model_fields
                      if name != "name" and getattr(v, name) is not None), None)
        if field is None:
            out.line("    <unknown>")
            continue
        source: Any = getattr(v, field)
        if field == "downward_api":
            out.kv([("Type", "DownwardAPI (a volume populated by information about the pod)")],
                   indent=4)
            out.line("    Items:")
            for item in source.items or ():
                if item.field_ref is not None:
                    out.line(f"      {item.field_ref.field_path} -> {item.path}")
                if item.resource_field_ref is not None:
                    out.line(f"      {item.resource_field_ref.resource} -> {item.path}")
        elif field in _DESCRIBERS:
            out.kv(_DESCRIBERS[field](source), indent=4)
        else:  # a legacy in-tree type: its name and scalar fields
            body = source.to_dict() if hasattr(source, "to_dict") else dict(source)
            kind = type(v).model_fields[field].alias or field  # its manifest key: scaleIO
            out.kv([("Type", kind)] + [(k, val) for k, val in body.items()
                                       if isinstance(val, str | int | float)], indent=4)


def source_pairs(field: str, source: Any) -> list[tuple[str, Any]] | None:
    """kubectl's ``Type:``/source lines for one volume source (``host_path``, ``nfs``,
    ``csi``...), or None for a source it has no printer for; shared with the
    PersistentVolume describer."""
    printer = _DESCRIBERS.get(field)
    return printer(source) if printer is not None else None
