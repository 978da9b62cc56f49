"""``kubectl describe`` for Ingress and IngressClass (kubectl's describers, line for line
where orchestra has the data)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from orchestra.present._describe import Out, annotations_text, events_section, map_text
from orchestra.present._describe_kinds import endpoint_addresses

if TYPE_CHECKING:
    from orchestra.present._view import ClusterView


def _backend(cluster: ClusterView, ns: str, backend: Any) -> str:
    """``svc:port (endpoints)`` as kubectl shows an Ingress backend."""
    if backend.service is not None:
        ref = backend.service
        port = ref.port
        shown = (port.number if port.number is not None else port.name) if port else ""
        text = f"{ref.name}:{shown}"
        svc = cluster.store.get_or_none("Service", ref.name, namespace=ns)
        if svc is None:
            return f'{text} (<error: services "{ref.name}" not found>)'
        port_name = None
        for sp in svc.spec.ports or ():  # type: ignore[attr-defined]
            if port is not None and ((port.number is not None and sp.port == port.number)
                                     or (port.name and sp.name == port.name)):
                port_name = sp.name
        eps = cluster.store.get_or_none("Endpoints", ref.name, namespace=ns)
        return f"{text} ({endpoint_addresses(eps, port_name)})"
    if backend.resource is not None:
        r = backend.resource
        return f"APIGroup: {r.api_group or '<none>'}, Kind: {r.kind}, Name: {r.name}"
    return ""


def ingress(cluster: ClusterView, ing: Any, out: Out) -> None:
    meta, spec, ns = ing.metadata, ing.spec, ing.metadata.namespace or "default"
    lb = ing.status.load_balancer if ing.status is not None else None
    address = ",".join(i.ip or i.hostname or "" for i in (lb.ingress or ())) if lb else ""
    default = _backend(cluster, ns, spec.default_backend) \
        if spec.default_backend is not None else "<default>"
    out.kv([("Name", meta.name), ("Labels", map_text(meta.labels)), ("Namespace", ns),
            ("Address", address or ""), ("Ingress Class", spec.ingress_class_name or "<none>"),
            ("Default backend", default)])
    if spec.tls:
        out.line("TLS:")
        for t in spec.tls:
            hosts = ",".join(t.hosts or ())
            out.line(f"  {t.secret_name} terminates {hosts}" if t.secret_name
                     else f"  SNI routes {hosts}")
    out.line("Rules:")
    rows: list[list[str]] = []
    for rule in spec.rules or ():
        if rule.http is None:
            continue
        rows.append([rule.host or "*", ""])
        rows += [["", f"{p.path} ", _backend(cluster, ns, p.backend)] for p in rule.http.paths]
    if not rows:
        rows.append(["*", "*", default])
    out.table(["Host", "Path", "Backends"], rows)
    out.kv([("Annotations", annotations_text(meta.annotations))])
    events_section(cluster, ing, out)


def ingress_class(cluster: ClusterView, ic: Any, out: Out) -> None:
    meta = ic.metadata
    out.kv([("Name", meta.name), ("Labels", map_text(meta.labels)),
            ("Annotations", annotations_text(meta.annotations)),
            ("Controller", ic.spec.controller)])
    params = ic.spec.parameters
    if params is not None:
        out.line("Parameters:")
        pairs = [("APIGroup", params.api_group)] if params.api_group else []
        out.kv([*pairs, ("Kind", params.kind), ("Name", params.name)], indent=2)
    events_section(cluster, ic, out)


DESCRIBERS: dict[str, Callable[[ClusterView, Any, Out], None]] = {
    "Ingress": ingress,
    "IngressClass": ingress_class,
}
