"""Builders for scheduler tests: Nodes and Pods as the store would hold them."""

from __future__ import annotations

import itertools
from typing import Any

from orchestra.objects._core import Node
from orchestra.objects._pod import Pod

_uids = itertools.count()


def node(
    name: str,
    *,
    cpu: str = "4",
    memory: str = "32Gi",
    pods: str = "110",
    labels: dict[str, str] | None = None,
    taints: list[dict[str, str]] | None = None,
    unschedulable: bool = False,
    extra: dict[str, str] | None = None,
) -> Node:
    capacity = {"cpu": cpu, "memory": memory, "pods": pods, **(extra or {})}
    spec: dict[str, Any] = {}
    if taints:
        spec["taints"] = taints
    if unschedulable:
        spec["unschedulable"] = True
    return Node.model_validate({
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name, **(labels or {})},
                     "uid": f"node-{name}"},
        "spec": spec,
        "status": {"capacity": capacity, "allocatable": capacity},
    })


def pod(
    name: str,
    *,
    cpu: str | None = None,
    memory: str | None = None,
    labels: dict[str, str] | None = None,
    namespace: str = "default",
    node_name: str | None = None,
    init: list[dict[str, str]] | None = None,
    containers: list[dict[str, str]] | None = None,
    **spec: Any,
) -> Pod:
    def resources(req: dict[str, str]) -> dict[str, Any]:
        return {"requests": req} if req else {}

    main: dict[str, str] = {}
    if cpu:
        main["cpu"] = cpu
    if memory:
        main["memory"] = memory
    conts = [{"name": f"c{i}", "image": "pause", "resources": resources(r)}
             for i, r in enumerate(containers or [main])]
    body: dict[str, Any] = {"containers": conts, **spec}
    if init:
        body["initContainers"] = [
            {"name": f"i{i}", "image": "pause", "resources": resources(r)}
            for i, r in enumerate(init)
        ]
    if node_name:
        body["nodeName"] = node_name
    return Pod.model_validate({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, "labels": labels or {},
                     "uid": f"uid-{name}-{next(_uids)}"},
        "spec": body,
    })
