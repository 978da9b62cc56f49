"""Service environment variables, as the kubelet writes them."""

from __future__ import annotations

from orchestra.net._env import service_env, services_for_pod
from orchestra.objects._core import Service


def svc(name: str, cluster_ip: str | None, ports: list[dict[str, object]],
        namespace: str = "default") -> Service:
    spec: dict[str, object] = {"ports": ports}
    if cluster_ip is not None:
        spec["clusterIP"] = cluster_ip
    return Service.model_validate(
        {"metadata": {"name": name, "namespace": namespace}, "spec": spec})


def test_one_named_port() -> None:
    env = service_env([svc("web", "127.2.0.5", [{"name": "http", "port": 80}])])
    assert env == [
        ("WEB_SERVICE_HOST", "127.2.0.5"),
        ("WEB_SERVICE_PORT", "80"),
        ("WEB_SERVICE_PORT_HTTP", "80"),
        ("WEB_PORT", "tcp://127.2.0.5:80"),
        ("WEB_PORT_80_TCP", "tcp://127.2.0.5:80"),
        ("WEB_PORT_80_TCP_PROTO", "tcp"),
        ("WEB_PORT_80_TCP_PORT", "80"),
        ("WEB_PORT_80_TCP_ADDR", "127.2.0.5"),
    ]


def test_dashes_several_ports_and_udp() -> None:
    env = dict(service_env([svc("my-db", "127.2.0.9", [
        {"name": "pg-main", "port": 5432},
        {"name": "dns", "port": 53, "protocol": "UDP"},
    ])]))
    assert env["MY_DB_SERVICE_PORT"] == "5432"
    assert env["MY_DB_SERVICE_PORT_PG_MAIN"] == "5432"
    assert env["MY_DB_SERVICE_PORT_DNS"] == "53"
    assert env["MY_DB_PORT"] == "tcp://127.2.0.9:5432"
    assert env["MY_DB_PORT_53_UDP"] == "udp://127.2.0.9:53"
    assert env["MY_DB_PORT_53_UDP_PROTO"] == "udp"
    assert len(env) == 3 + 1 + 1 + 4 + 4


def test_unnamed_port_has_no_named_variable() -> None:
    env = dict(service_env([svc("api", "127.2.0.7", [{"port": 8080}])]))
    assert env["API_SERVICE_PORT"] == "8080"
    assert not [k for k in env if k.startswith("API_SERVICE_PORT_")]


def test_headless_and_ip_less_services_give_nothing() -> None:
    assert service_env([svc("db", "None", [{"port": 5432}]), svc("x", None, [{"port": 1}])]) \
        == []


def test_services_for_pod_namespace_and_master_service() -> None:
    mine = svc("web", "127.2.0.5", [{"port": 80}], namespace="shop")
    other = svc("cache", "127.2.0.6", [{"port": 6379}], namespace="other")
    master = svc("kubernetes", "127.2.0.1", [{"name": "https", "port": 443}])
    headless = svc("db", "None", [{"port": 5432}], namespace="shop")
    chosen = services_for_pod([other, mine, master, headless], "shop")
    assert [s.metadata.name for s in chosen] == ["kubernetes", "web"]
    assert [s.metadata.name for s in services_for_pod([mine, master], "shop",
                                                       enable_service_links=False)] \
        == ["kubernetes"]
