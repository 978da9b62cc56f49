"""Ingress objects on the fake runtime: which classes are served, and `describe`."""

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


async def test_only_ingresses_of_our_classes_are_served() -> None:
    async with oc.Cluster(runtime="fake", ingress_ports=(0, 0)) as c:
        await c.apply({"apiVersion": "networking.k8s.io/v1", "kind": "IngressClass",
                       "metadata": {"name": "other"}, "spec": {"controller": "example.com/x"}})

        def ing(name: str, **extra: object) -> dict[str, object]:
            meta: dict[str, object] = {"name": name}
            if "annotations" in extra:
                meta["annotations"] = extra.pop("annotations")
            return {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": meta,
                    "spec": {"defaultBackend": {"service": {"name": "s",
                                                            "port": {"number": 80}}},
                             **extra}}

        await c.apply([ing("unnamed"), ing("named", ingressClassName="orchestra"),
                       ing("legacy", annotations={"kubernetes.io/ingress.class": "orchestra"}),
                       ing("foreign", ingressClassName="other")])
        for name in ("unnamed", "named", "legacy"):
            await c.wait_for(f"ingress/{name}", lambda i: bool(
                i.status and i.status.load_balancer and i.status.load_balancer.ingress),
                timeout=10)
        foreign = await c.get("ingress/foreign")  # compiled with the three above
        assert foreign.status is None or not foreign.status.load_balancer
        # the built-in class stops being the default: unnamed Ingresses are not ours then
        await c.patch("ingressclass/orchestra", {"metadata": {"annotations": {
            "ingressclass.kubernetes.io/is-default-class": "false"}}})
        await c.apply(ing("later"))
        # one reconcile compiles every Ingress: once "marker" (created after "later") is
        # served, "later" was looked at too
        await c.apply(ing("marker", ingressClassName="orchestra"))
        await c.wait_for("ingress/marker", lambda i: bool(
            i.status and i.status.load_balancer and i.status.load_balancer.ingress),
            timeout=10)
        later = await c.get("ingress/later")
        assert later.status is None or not later.status.load_balancer


async def test_a_tls_secret_that_does_not_load_is_an_event() -> None:
    import base64

    async with oc.Cluster(runtime="fake", ingress_ports=(0, 0)) as c:
        junk = base64.b64encode(b"not a certificate").decode()
        await c.apply({"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
                       "metadata": {"name": "bad-tls"},
                       "data": {"tls.crt": junk, "tls.key": junk}})
        await c.apply({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
                       "metadata": {"name": "bad"},
                       "spec": {"tls": [{"hosts": ["b.example.com"], "secretName": "bad-tls"}],
                                "defaultBackend": {"service": {"name": "s",
                                                               "port": {"number": 80}}}}})
        await c.wait_for("ingress/bad", lambda i: bool(i.status and i.status.load_balancer),
                         timeout=10)
        events = [e for e in c.events("ingress/bad") if e.reason == "InvalidSecret"]
        assert len(events) == 1 and events[0].type == "Warning"
        assert events[0].message.startswith(
            'secret "default/bad-tls": cannot load the certificate and key')
        assert "not a certificate" not in events[0].message  # never the Secret's data
        with pytest.raises(ValueError, match="HTTPS"):
            c.endpoint("ingress/bad", 443)
        assert c.endpoint("ingress/bad", 80)[0] == "127.0.0.1"
