"""``describe`` of an Ingress and of the built-in IngressClass, as kubectl shows them."""

from __future__ import annotations

import pytest

import orchestra as oc

pytestmark = pytest.mark.anyio


async def test_describe_ingress_and_class() -> None:
    async with oc.Cluster(runtime="fake", ingress_ports=(0, 0)) as c:
        await c.apply({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
                       "spec": {"selector": {"app": "web"},
                                "ports": [{"name": "http", "port": 80}]}})
        await c.apply({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
                       "metadata": {"name": "shop"},
                       "spec": {"tls": [{"hosts": ["a.example.com"], "secretName": "a-tls"}],
                                "rules": [{"host": "a.example.com", "http": {"paths": [
                                    {"path": "/", "pathType": "Prefix", "backend": {
                                        "service": {"name": "x", "port": {"number": 80}}}},
                                    {"path": "/web", "pathType": "Prefix", "backend": {
                                        "service": {"name": "web",
                                                    "port": {"name": "http"}}}}]}}]}})
        await c.wait_for("ingress/shop", lambda i: bool(i.status and i.status.load_balancer),
                         timeout=10)
        lines = c.describe("ingress/shop").splitlines()
        assert "Address:          127.0.0.1" in lines
        assert "Default backend:  <default>" in lines
        assert "  a-tls terminates a.example.com" in lines
        assert "  Host           Path  Backends" in lines
        assert any(line.split() == ["/", "x:80", "(<error:", "services", '"x"', "not",
                                    "found>)"] for line in lines)
        assert any(line.split() == ["/web", "web:http", "(<none>)"] for line in lines)
        text = c.describe("ingressclass/orchestra")
        assert "Controller:   orchestra.dev/ingress" in text
        assert "ingressclass.kubernetes.io/is-default-class: true" in text
