"""Small builders shared by the store tests."""

from __future__ import annotations

from typing import Any


def pod(name: str | None = "web", *, namespace: str | None = None,
        labels: dict[str, str] | None = None, node: str | None = None,
        **meta: Any) -> dict[str, Any]:
    metadata: dict[str, Any] = dict(meta)
    if name is not None:
        metadata["name"] = name
    if namespace is not None:
        metadata["namespace"] = namespace
    if labels:
        metadata["labels"] = labels
    spec: dict[str, Any] = {"containers": [{"name": "c", "image": "nginx:1.27"}]}
    if node is not None:
        spec["nodeName"] = node
    return {"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": spec}


def configmap(name: str, data: dict[str, str] | None = None, **meta: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, **meta},
            "data": data or {}}
