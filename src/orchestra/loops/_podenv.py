"""What the kubelet resolves before it asks a runtime to run a container: environment
variables (``value`` with ``$(VAR)`` expansion, ``valueFrom``, ``envFrom``, service
links, orchestra's ``POD_IP``/``POD_NAME``/``POD_NAMESPACE``/``NODE_NAME``) and
downward-API values.

Missing ConfigMaps, Secrets or keys raise :class:`ConfigError` with the kubelet's
message; the agent reports it as ``CreateContainerConfigError``. Secret values never
appear in a message.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, cast

from orchestra._errors import OrchestraError
from orchestra.objects._quantity import Quantity

if TYPE_CHECKING:
    from orchestra._store import Store
    from orchestra.objects import ConfigMap, Container, Pod, Secret


class ConfigError(OrchestraError):
    """A container's configuration refers to something missing (CreateContainerConfigError)."""


_VAR_REF = re.compile(r"\$\$|\$\(([A-Za-z_][-._A-Za-z0-9]*)\)")


def expand(text: str, env: Mapping[str, str]) -> str:
    """Kubernetes' ``$(VAR)`` expansion: known names are replaced, unknown references are
    left as written, and ``$$`` is an escaped ``$``."""

    def sub(m: re.Match[str]) -> str:
        if m.group(0) == "$$":
            return "$"
        name = m.group(1)
        return env[name] if name in env else m.group(0)

    return _VAR_REF.sub(sub, text)


def field_value(pod: Pod, path: str, node_ip: str = "", pod_ip: str = "") -> str:
    """A downward-API ``fieldRef.fieldPath`` value."""
    meta = pod.metadata
    m = re.fullmatch(r"metadata\.(labels|annotations)\['([^']+)'\]", path)
    if m:
        source: Mapping[str, str] = (
            meta.labels if m.group(1) == "labels" else meta.annotations) or {}
        return source.get(m.group(2), "")
    status = pod.status
    simple: dict[str, Any] = {
        "metadata.name": meta.name,
        "metadata.namespace": meta.namespace,
        "metadata.uid": meta.uid,
        "spec.nodeName": pod.spec.node_name,
        "spec.serviceAccountName": pod.spec.service_account_name or "default",
        "status.hostIP": (status.host_ip if status else None) or node_ip,
        "status.hostIPs": (status.host_ip if status else None) or node_ip,
        "status.podIP": pod_ip or (status.pod_ip if status else None),
        "status.podIPs": pod_ip or (status.pod_ip if status else None),
    }
    if path in ("metadata.labels", "metadata.annotations"):
        source = (meta.labels if path == "metadata.labels" else meta.annotations) or {}
        return "\n".join(f'{k}="{v}"' for k, v in sorted(source.items()))
    if path not in simple:
        raise ConfigError(f'unsupported fieldPath "{path}"')
    value = simple[path]
    return "" if value is None else str(value)


def resource_value(container: Container, resource: str, divisor: str | None) -> str:
    """A downward-API ``resourceFieldRef`` value (``limits.cpu`` with a divisor)."""
    kind, _, name = resource.partition(".")
    res = container.resources
    table = (res.limits if kind == "limits" else res.requests) if res else None
    raw = table.get(name) if table else None
    if raw is None and kind == "limits":
        raw = "0"  # Kubernetes reports node allocatable; we report "unlimited" as 0
    q = Quantity(raw or "0")
    d = Quantity(divisor or "1")
    value = q.fraction / d.fraction
    whole = -(-value.numerator // value.denominator)  # ceil, as the kubelet rounds up
    return str(max(int(whole), 1 if q.fraction > 0 and name == "cpu" else int(whole)))


def config_map(store: Store, namespace: str, name: str, optional: bool) -> ConfigMap | None:
    cm = cast("ConfigMap | None", store.get_or_none("ConfigMap", name, namespace=namespace))
    if cm is None and not optional:
        raise ConfigError(f'configmap "{name}" not found')
    return cm


def secret(store: Store, namespace: str, name: str, optional: bool) -> Secret | None:
    sec = cast("Secret | None", store.get_or_none("Secret", name, namespace=namespace))
    if sec is None and not optional:
        raise ConfigError(f'secret "{name}" not found')
    return sec


def secret_value(secret: Secret, key: str) -> str | None:
    data: Mapping[str, str] = secret.data or {}
    if key not in data:
        return None
    return base64.b64decode(data[key]).decode("utf-8", "replace")


def container_env(
    store: Store,
    pod: Pod,
    container: Container,
    *,
    pod_ip: str,
    node_ip: str,
    service_env: Mapping[str, str] | list[tuple[str, str]],
) -> list[tuple[str, str]]:
    """The container's environment, in the kubelet's order: service links, then
    ``envFrom``, then ``env`` (later entries win; ``$(VAR)`` sees earlier ones)."""
    ns = pod.metadata.namespace or "default"
    base = {
        "POD_IP": pod_ip,
        "POD_NAME": pod.metadata.name or "",
        "POD_NAMESPACE": ns,
        "NODE_NAME": pod.spec.node_name or "",
        "HOSTNAME": pod.spec.hostname or pod.metadata.name or "",
    }
    env: dict[str, str]
    if pod.spec.enable_service_links is not False:
        # Copying the (shared, often thousands of entries) service links and adding
        # the five pod variables is several times cheaper than the other way round;
        # no service variable (``*_SERVICE_HOST``, ``*_PORT...``) can have their names.
        env = dict(service_env)
        env.update(base)
    else:
        env = base
    for source in container.env_from or ():
        prefix = source.prefix or ""
        if source.config_map_ref is not None:
            ref = source.config_map_ref
            cm = config_map(store, ns, ref.name or "", bool(ref.optional))
            if cm is not None:
                for k, v in (cm.data or {}).items():
                    env[prefix + k] = v
        if source.secret_ref is not None:
            ref2 = source.secret_ref
            sec = secret(store, ns, ref2.name or "", bool(ref2.optional))
            if sec is not None:
                for k in sec.data or {}:
                    env[prefix + k] = secret_value(sec, k) or ""
    for var in container.env or ():
        if var.value_from is None:
            env[var.name] = expand(var.value or "", env)
            continue
        vf = var.value_from
        if vf.field_ref is not None:
            env[var.name] = field_value(pod, vf.field_ref.field_path, node_ip, pod_ip)
        elif vf.resource_field_ref is not None:
            rf = vf.resource_field_ref
            target = container
            if rf.container_name:
                target = next(
                    (c for c in pod.spec.containers if c.name == rf.container_name), container
                )
            env[var.name] = resource_value(target, rf.resource, rf.divisor)
        elif vf.config_map_key_ref is not None:
            ck = vf.config_map_key_ref
            cm = config_map(store, ns, ck.name or "", bool(ck.optional))
            if cm is not None:
                value = cm.data.get(ck.key) if cm.data else None
                if value is None and not ck.optional:
                    raise ConfigError(f"couldn't find key {ck.key} in ConfigMap {ns}/{ck.name}")
                if value is not None:
                    env[var.name] = value
        elif vf.secret_key_ref is not None:
            sk = vf.secret_key_ref
            sec = secret(store, ns, sk.name or "", bool(sk.optional))
            if sec is not None:
                svalue = secret_value(sec, sk.key)
                if svalue is None and not sk.optional:
                    raise ConfigError(f"couldn't find key {sk.key} in Secret {ns}/{sk.name}")
                if svalue is not None:
                    env[var.name] = svalue
    return list(env.items())


def expand_args(values: tuple[str, ...] | None, env: list[tuple[str, str]]) -> tuple[str, ...]:
    if not values:
        return ()
    table = dict(env)
    return tuple(expand(v, table) for v in values)
