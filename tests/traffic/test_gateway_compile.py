"""Gateway API compilation on its own (no cluster): filters and timeouts become the
routing table's fields, and listener hostnames intersect route hostnames."""

from __future__ import annotations

from typing import Any

from orchestra.loops._gateway_compile import compile_gateways
from orchestra.net.l7 import Mirror
from orchestra.objects import Endpoints, Gateway, HTTPRoute, Service

GW = "gateway.networking.k8s.io/v1"


def _objects() -> dict[tuple[str, str], Any]:
    objs: dict[tuple[str, str], Any] = {}
    for name, ip in (("a", "10.0.0.1"), ("b", "10.0.0.2")):
        objs[("Service", name)] = Service.model_validate({
            "metadata": {"name": name, "namespace": "default"},
            "spec": {"clusterIP": "10.96.0.1", "ports": [{"port": 80, "targetPort": 8080}]}})
        objs[("Endpoints", name)] = Endpoints.model_validate({
            "metadata": {"name": name, "namespace": "default"},
            "subsets": [{"addresses": [{"ip": ip}], "ports": [{"port": 8080}]}]})
    return objs


def _compile(route_spec: dict[str, Any], listeners: list[dict[str, Any]]) -> Any:
    objs = _objects()
    gw = Gateway.model_validate({"apiVersion": GW, "kind": "Gateway",
                                 "metadata": {"name": "gw", "namespace": "default"},
                                 "spec": {"gatewayClassName": "orchestra",
                                          "listeners": listeners}})
    route = HTTPRoute.model_validate({"apiVersion": GW, "kind": "HTTPRoute",
                                      "metadata": {"name": "r", "namespace": "default"},
                                      "spec": {"parentRefs": [{"name": "gw"}], **route_spec}})
    return compile_gateways([gw], [route], [],
                            lambda kind, ns, name: objs.get((kind, name)))


def test_mirror_and_timeout_filters_compile_into_the_route() -> None:
    out = _compile({"rules": [{
        "backendRefs": [{"name": "a", "port": 80}],
        "filters": [{"type": "RequestMirror", "requestMirror": {
            "backendRef": {"name": "b", "port": 80}, "percent": 25}}],
        "timeouts": {"request": "1m30s"},
        "retry": {"attempts": 3, "codes": [503], "backoff": "100ms"}}]},
        [{"name": "http", "protocol": "HTTP", "port": 80}])
    table = out.gateways[("default", "gw")].ports[80].table()
    (route,) = table.vhost("x.example.com").routes  # type: ignore[union-attr]
    assert route.timeout == 90
    assert route.retry is not None and route.retry.attempts == 3
    assert route.retry.on_status(503) and not route.retry.on_status(500)
    assert route.retry.backoff_base == 0.1  # the minimum wait: Envoy's base interval
    assert route.mirrors == (Mirror(route.mirrors[0].cluster, 25.0),)
    assert route.mirrors[0].cluster.backends == (("10.0.0.2", 8080),)
    assert route.destinations[0].cluster.backends == (("10.0.0.1", 8080),)


def test_hostnames_intersect_and_wildcards_span_labels() -> None:
    out = _compile({"hostnames": ["*.example.com", "exact.other.org"],
                    "rules": [{"backendRefs": [{"name": "a", "port": 80}]}]},
                   [{"name": "web", "protocol": "HTTP", "port": 80,
                     "hostname": "*.shop.example.com"}])
    plan = out.gateways[("default", "gw")]
    assert plan.attached == {"web": 1}
    table = plan.ports[80].table()
    assert table.vhost("a.b.shop.example.com") is not None  # Gateway API: any labels
    assert table.vhost("exact.other.org") is None
    assert table.vhost("x.example.com") is None


def test_listeners_that_are_not_distinct_conflict() -> None:
    out = _compile({"rules": [{"backendRefs": [{"name": "a", "port": 80}]}]},
                   [{"name": "one", "protocol": "HTTP", "port": 80, "hostname": "a.example"},
                    {"name": "two", "protocol": "HTTP", "port": 80, "hostname": "a.example"},
                    {"name": "three", "protocol": "HTTP", "port": 80}])
    plan = out.gateways[("default", "gw")]
    conds = {n: {c[0]: (c[1], c[2]) for c in cs} for n, cs in plan.listeners.items()}
    assert conds["one"]["Conflicted"] == ("False", "NoConflicts")
    assert conds["two"]["Conflicted"] == ("True", "HostnameConflict")
    assert conds["two"]["Programmed"] == ("False", "Invalid")
    assert conds["three"]["Conflicted"] == ("False", "NoConflicts")
    assert plan.attached == {"one": 1, "two": 0, "three": 1}


def test_allowed_routes_by_namespace_selector() -> None:
    from orchestra.objects import Namespace

    objs = _objects()
    objs[("Namespace", "team-a")] = Namespace.model_validate(
        {"metadata": {"name": "team-a", "labels": {"shared": "yes"}}})
    objs[("Namespace", "team-b")] = Namespace.model_validate({"metadata": {"name": "team-b"}})
    gw = Gateway.model_validate({"apiVersion": GW, "kind": "Gateway",
                                 "metadata": {"name": "gw", "namespace": "default"},
                                 "spec": {"gatewayClassName": "orchestra", "listeners": [
                                     {"name": "shared", "protocol": "HTTP", "port": 80,
                                      "allowedRoutes": {"namespaces": {
                                          "from": "Selector",
                                          "selector": {"matchLabels": {"shared": "yes"}}}}}]}})
    routes = [HTTPRoute.model_validate({
        "apiVersion": GW, "kind": "HTTPRoute", "metadata": {"name": "r", "namespace": ns},
        "spec": {"parentRefs": [{"name": "gw", "namespace": "default"}],
                 "rules": [{"backendRefs": [{"name": "a", "port": 80,
                                             "namespace": "default"}]}]}})
        for ns in ("team-a", "team-b")]
    out = compile_gateways([gw], routes, [], lambda kind, ns, name: objs.get((kind, name)))
    accepted = {ns: next(c for c in out.routes[(ns, "r")][0][1] if c[0] == "Accepted")
                for ns in ("team-a", "team-b")}
    assert accepted["team-a"][1:3] == ("True", "Accepted")
    assert accepted["team-b"][1:3] == ("False", "NotAllowedByListeners")
    assert out.gateways[("default", "gw")].attached == {"shared": 1}
