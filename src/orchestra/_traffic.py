"""The cluster's view of its L7 data plane: where an Ingress listens, and the data
plane's counters and access log filtered by the object they were compiled from."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from orchestra.loops._gateway import listener_name
from orchestra.loops._gateway_compile import route_prefix as httproute_prefix
from orchestra.loops._ingress import HTTP_LISTENER, HTTPS_LISTENER
from orchestra.loops._ingress_compile import route_prefix
from orchestra.loops._istio import listener_name as istio_listener
from orchestra.loops._istio_compile import route_prefix as vs_prefix
from orchestra.loops._istio_compile import serves

if TYPE_CHECKING:
    from orchestra._store import Store
    from orchestra.net.l7 import HttpProxy

__all__ = ["access_log", "route_filter", "traffic_endpoint", "traffic_stats"]


def traffic_endpoint(proxy: HttpProxy | None, obj: Any,
                     port: int | str | None) -> tuple[str, int]:
    """Where the embedding process reaches an Ingress or a Gateway on ``port``."""
    if obj.kind == "Gateway" and obj.api_version.startswith("networking.istio.io/"):
        return istio_gateway_endpoint(proxy, obj, port)
    if obj.kind == "Gateway":
        return gateway_endpoint(proxy, obj, port)
    return ingress_endpoint(proxy, obj, port)


def gateway_endpoint(proxy: HttpProxy | None, gw: Any,
                     port: int | str | None) -> tuple[str, int]:
    """The listener serving the Gateway's ``port`` (its first listener's by default)."""
    ns, name = gw.metadata.namespace or "default", gw.metadata.name
    ports = [lis.port for lis in gw.spec.listeners]
    want = ports[0] if port is None and ports else int(port) if port is not None else 0
    if want not in ports:
        raise ValueError(f"gateway {ns}/{name} has no listener on port {port!r}")
    addr = proxy.address(listener_name(ns, name, want)) if proxy is not None else None
    if addr is None:
        raise ValueError(f"gateway {ns}/{name} is not programmed on port {want} yet")
    return addr


def istio_gateway_endpoint(proxy: HttpProxy | None, gw: Any,
                           port: int | str | None) -> tuple[str, int]:
    """The built-in ingress gateway's listener for the Istio Gateway's server ``port``
    (its first server's by default)."""
    ns, name = gw.metadata.namespace or "default", gw.metadata.name
    if not serves(gw):
        raise ValueError(f"gateway {ns}/{name} selects no gateway of this cluster "
                         "(the built-in one has labels istio=ingressgateway)")
    numbers = [s.port.number for s in gw.spec.servers or ()]
    want = numbers[0] if port is None and numbers else int(port) if port is not None else 0
    if want not in numbers:
        raise ValueError(f"gateway {ns}/{name} has no server on port {port!r}")
    addr = proxy.address(istio_listener(want)) if proxy is not None else None
    if addr is None:
        raise ValueError(f"gateway {ns}/{name} is not programmed on port {want} yet")
    return addr


def ingress_endpoint(proxy: HttpProxy | None, ingress: Any,
                     port: int | str | None) -> tuple[str, int]:
    """Where the embedding process reaches ``ingress`` for its port 80 (HTTP, the
    default) or 443 (HTTPS). ValueError while nothing serves it yet."""
    name = f"{ingress.metadata.namespace or 'default'}/{ingress.metadata.name}"
    if port in (None, 80, "80", "http"):
        listener = HTTP_LISTENER
    elif port in (443, "443", "https"):
        listener = HTTPS_LISTENER
    else:
        raise ValueError(f"ingress {name} listens on ports 80 and 443, not {port!r}")
    served = ingress.status is not None and ingress.status.load_balancer is not None \
        and ingress.status.load_balancer.ingress
    addr = proxy.address(listener) if proxy is not None else None
    if not served or addr is None:
        what = "HTTPS (no TLS certificate is served)" if listener == HTTPS_LISTENER \
            and served else "traffic"
        raise ValueError(f"ingress {name} does not serve {what} yet "
                         "(status.loadBalancer is empty or no listener is up)")
    return addr


def route_filter(store: Store, ref: Any, namespace: str) -> str:
    """The route-name prefix of the object ``ref`` names ("" for every route)."""
    if ref is None:
        return ""
    from orchestra.objects._registry import parse_ref

    info, name = parse_ref(ref)
    if info.kind == "Ingress" and name:
        return route_prefix(namespace, name)
    if info.kind == "HTTPRoute" and name:
        return httproute_prefix(namespace, name)
    if info.kind == "VirtualService" and name:
        return vs_prefix(namespace, name)
    raise ValueError(f"no traffic statistics for {info.kind}: name an ingress, an "
                     "httproute or a virtualservice, or none")


def traffic_stats(proxy: HttpProxy | None, store: Store, ref: Any,
                  namespace: str) -> dict[str, Any]:
    prefix = route_filter(store, ref, namespace)
    return proxy.traffic_stats(prefix) if proxy is not None else {}


def access_log(proxy: HttpProxy | None, store: Store, ref: Any, namespace: str,
               tail: int | None) -> list[str]:
    prefix = route_filter(store, ref, namespace)
    lines = proxy.access_log(prefix) if proxy is not None else []
    return lines[-tail:] if tail else lines
