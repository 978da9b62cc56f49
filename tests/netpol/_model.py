"""The upstream netpol e2e suite's model: namespaces x, y, z, each with pods a, b, c
serving ports 80 and 81 (named serve-80, serve-81), and helpers to build policies and
compare a truth table with the one expected."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orchestra as oc

NAMESPACES = ("x", "y", "z")
PODS = ("a", "b", "c")
PORTS = (80, 81)
ALL = [f"{ns}/{p}" for ns in NAMESPACES for p in PODS]


def model_objects(image: str = "app", command: list[str] | None = None
                  ) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for ns in NAMESPACES:
        out.append({"apiVersion": "v1", "kind": "Namespace",
                    "metadata": {"name": ns, "labels": {"ns": ns}}})
        for p in PODS:
            container: dict[str, Any] = {
                "name": "c", "image": image,
                "ports": [{"name": f"serve-{port}", "containerPort": port}
                          for port in PORTS]}
            if command:
                container["command"] = command
                container["imagePullPolicy"] = "IfNotPresent"
            out.append({"apiVersion": "v1", "kind": "Pod",
                        "metadata": {"name": p, "namespace": ns, "labels": {"pod": p}},
                        "spec": {"containers": [container],
                                 "terminationGracePeriodSeconds": 0}})
    return out


def policy(name: str, namespace: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": name, "namespace": namespace}, "spec": spec}


Expect = Callable[[str, str, int], bool]


def table(expect: Expect, ports: tuple[int, ...] = PORTS
          ) -> dict[tuple[str, str, int, str], bool]:
    return {(a, b, port, "TCP"): a == b or expect(a, b, port)
            for a in ALL for b in ALL for port in ports}


def disagreements(got: dict[tuple[str, str, int, str], bool],
                  want: dict[tuple[str, str, int, str], bool]) -> list[str]:
    return [f"{k[0]} -> {k[1]}:{k[2]} got {got.get(k)} want {v}"
            for k, v in sorted(want.items()) if got.get(k) != v]


async def ready_model(cluster: oc.Cluster) -> None:
    for ns in NAMESPACES:
        for p in PODS:
            await cluster.wait_for(f"pod/{p}", "Ready", namespace=ns, timeout=60)
