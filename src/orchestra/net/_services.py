"""Reading a Service and its Endpoints the way kube-proxy does: which ports a Service
exposes, whether it is headless, its session affinity, and which Ready addresses back
each port. The loopback and bridge networks program their data planes from these, and
the traffic controllers use the same rules to resolve an Ingress or route backend.

Everything here is a pure function of the objects passed in (duck-typed, so a data
plane never needs the models): no store, no state.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "DEFAULT_AFFINITY_TIMEOUT",
    "affinity_timeout",
    "headless",
    "pick_port",
    "port_protocol",
    "ports",
    "ready_backends",
    "service_key",
]

DEFAULT_AFFINITY_TIMEOUT = 10800  # Kubernetes' default for sessionAffinity: ClientIP

Backend = tuple[str, int]


def headless(service: Any) -> bool:
    """True when the Service has no ClusterIP (``clusterIP: None`` or unset)."""
    ip = getattr(service.spec, "cluster_ip", None)
    return not ip or ip == "None"


def ports(service: Any) -> tuple[Any, ...]:
    return tuple(getattr(service.spec, "ports", None) or ())


def port_protocol(port: Any) -> str:
    """A Service or Endpoints port's protocol; Kubernetes defaults it to TCP."""
    return str(getattr(port, "protocol", None) or "TCP")


def ready_backends(endpoints: Any | None, port_name: str | None,
                   protocol: str = "TCP") -> list[Backend]:
    """Ready addresses of ``endpoints`` with the port named ``port_name``, in order,
    without duplicates: kube-proxy matches an Endpoints port to a Service port by name."""
    if endpoints is None:
        return []
    want = port_name or ""
    out: list[Backend] = []
    seen: set[Backend] = set()
    for subset in getattr(endpoints, "subsets", None) or ():
        match = None
        for ep in getattr(subset, "ports", None) or ():
            if (ep.name or "") == want and port_protocol(ep) == protocol:
                match = ep
                break
        if match is None:
            continue
        for addr in getattr(subset, "addresses", None) or ():
            b = (str(addr.ip), int(match.port))
            if b not in seen:
                seen.add(b)
                out.append(b)
    return out


def affinity_timeout(service: Any) -> float | None:
    """Seconds of ClientIP session affinity, or None when the Service has none."""
    if getattr(service.spec, "session_affinity", None) != "ClientIP":
        return None
    cfg = getattr(service.spec, "session_affinity_config", None)
    client_ip = getattr(cfg, "client_ip", None) if cfg is not None else None
    seconds = getattr(client_ip, "timeout_seconds", None) if client_ip is not None else None
    return float(seconds) if seconds else float(DEFAULT_AFFINITY_TIMEOUT)


def service_key(service: Any) -> tuple[str, str]:
    return (service.metadata.namespace or "default", service.metadata.name)


def pick_port(service: Any, port: int | str | None) -> Any:
    """The Service port numbered or named ``port`` (the first when None); ValueError
    when there is none."""
    sports = ports(service)
    if not sports:
        raise ValueError(f'service "{service.metadata.name}" has no ports')
    if port is None:
        return sports[0]
    for sp in sports:
        if (isinstance(port, int) and sp.port == port) or \
                (isinstance(port, str) and sp.name == port):
            return sp
    if isinstance(port, str) and port.isdigit():
        return pick_port(service, int(port))
    raise ValueError(f'service "{service.metadata.name}" has no port {port!r}')
