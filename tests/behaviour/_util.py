"""Manifests and helpers shared by the behavioural tests."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

import orchestra as oc

MakeCluster = Callable[..., oc.Cluster]  # the make_cluster fixture (conftest)


def offline(runtime: str, path: Path) -> Path | list[dict[str, Any]]:
    """A docs manifest as it can run here. On containerd, images come from the session's
    archives (busybox under the tags the docs use, tests/_containerd_env.py), never from
    a registry: every container gets ``imagePullPolicy: IfNotPresent`` (``:latest``
    would mean Always, a pull from Docker Hub). Other runtimes have no images: as is."""
    if runtime != "containerd":
        return path
    docs = [d for d in yaml.safe_load_all(path.read_text()) if d]
    for doc in docs:
        spec = doc.get("spec", {})
        pod = spec.get("template", {}).get("spec") or spec.get("jobTemplate", {}).get(
            "spec", {}).get("template", {}).get("spec") or spec
        for key in ("containers", "initContainers"):
            for c in pod.get(key) or ():
                c["imagePullPolicy"] = "IfNotPresent"
    return docs


def deployment(name: str = "web", replicas: int = 3, *, image: str = "busybox:1.36",
               command: list[str] | None = None, annotations: dict[str, str] | None = None,
               strategy: dict[str, Any] | None = None, requests: dict[str, str] | None = None,
               **spec: Any) -> dict[str, Any]:
    container: dict[str, Any] = {"name": "main", "image": image,
                                 "command": command or ["sleep", "3600"]}
    if requests:
        container["resources"] = {"requests": requests}
    template: dict[str, Any] = {"metadata": {"labels": {"app": name}},
                                "spec": {"containers": [container],
                                         "terminationGracePeriodSeconds": 2}}
    if annotations:
        template["metadata"]["annotations"] = annotations
    body: dict[str, Any] = {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                            "template": template, **spec}
    if strategy:
        body["strategy"] = strategy
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
            "spec": body}


def pods_of(pods: list[Any], app: str) -> list[Any]:
    return [p for p in pods if (p.metadata.labels or {}).get("app") == app]


def ready(pod: Any) -> bool:
    return bool(pod.status and any(c.type == "Ready" and c.status == "True"
                                   for c in pod.status.conditions or ()))
