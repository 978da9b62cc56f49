"""Kubernetes' service environment variables (the kubelet's docker-link style names).

A container learns the Services that existed when its pod started from variables named
after them, exactly as the kubelet builds them: for Service ``web`` with clusterIP
``10.0.0.5`` and port ``80/TCP`` named ``http``::

    WEB_SERVICE_HOST=10.0.0.5          WEB_PORT=tcp://10.0.0.5:80
    WEB_SERVICE_PORT=80                WEB_PORT_80_TCP=tcp://10.0.0.5:80
    WEB_SERVICE_PORT_HTTP=80           WEB_PORT_80_TCP_PROTO=tcp
                                       WEB_PORT_80_TCP_PORT=80
                                       WEB_PORT_80_TCP_ADDR=10.0.0.5

Headless services (clusterIP ``None``) and services without a clusterIP (ExternalName)
contribute nothing, as in Kubernetes.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

__all__ = ["env_name", "service_env", "services_for_pod"]

# The kubelet always exposes these from the master namespace (enableServiceLinks or not).
_MASTER_NAMESPACE = "default"
_MASTER_SERVICES = frozenset({"kubernetes"})


def env_name(name: str) -> str:
    """A service or port name as the kubelet puts it in a variable name."""
    return name.upper().replace("-", "_")


def _cluster_ip(service: Any) -> str | None:
    ip = getattr(service.spec, "cluster_ip", None)
    if not ip or ip == "None":
        return None
    return str(ip)


def _join(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def service_env(services: Iterable[Any]) -> list[tuple[str, str]]:
    """The variables for ``services`` (``objects.Service``), in the kubelet's order."""
    out: list[tuple[str, str]] = []
    for service in services:
        ip = _cluster_ip(service)
        ports = tuple(getattr(service.spec, "ports", None) or ())
        if ip is None or not ports:
            continue
        prefix = env_name(service.metadata.name)
        out.append((f"{prefix}_SERVICE_HOST", ip))
        out.append((f"{prefix}_SERVICE_PORT", str(ports[0].port)))
        for sp in ports:
            if sp.name:
                out.append((f"{prefix}_SERVICE_PORT_{env_name(sp.name)}", str(sp.port)))
        for i, sp in enumerate(ports):
            protocol = str(sp.protocol or "TCP")
            url = f"{protocol.lower()}://{_join(ip, sp.port)}"
            if i == 0:
                out.append((f"{prefix}_PORT", url))  # docker special-cases the first port
            pp = f"{prefix}_PORT_{sp.port}_{protocol.upper()}"
            out.append((pp, url))
            out.append((f"{pp}_PROTO", protocol.lower()))
            out.append((f"{pp}_PORT", str(sp.port)))
            out.append((f"{pp}_ADDR", ip))
    return out


def services_for_pod(services: Iterable[Any], namespace: str, *,
                     enable_service_links: bool = True) -> list[Any]:
    """The services whose variables a pod in ``namespace`` gets, as the kubelet picks
    them: those of its own namespace (when ``enableServiceLinks``, the default) plus the
    master service ``default/kubernetes``; a same-named service of the pod's namespace
    wins. Sorted by name so the environment is deterministic."""
    chosen: dict[str, Any] = {}
    for service in services:
        if _cluster_ip(service) is None:
            continue
        name = service.metadata.name
        ns = service.metadata.namespace or "default"
        if ns == _MASTER_NAMESPACE and name in _MASTER_SERVICES:
            chosen.setdefault(name, service)
        elif ns == namespace and enable_service_links:
            chosen[name] = service
    return [chosen[k] for k in sorted(chosen)]
