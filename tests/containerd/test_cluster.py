# ruff: noqa: ASYNC110, ASYNC210, ASYNC230, ASYNC240
"""The Cluster on containerd: Deployments of real busybox containers, rolling updates
through a Service without a failed request, restarts, probes, logs, exec, volumes,
images from the loopback registry, OOM kills, isolation and recovery after a crash."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

import orchestra as oc
from containerd_registry import push_archive  # type: ignore[import-not-found]

pytestmark = pytest.mark.anyio

HTTPD = ("mkdir -p /www && echo \"$VERSION $POD_NAME\" > /www/index.html && "
         "exec httpd -f -p $POD_IP:8080 -h /www")


def options(socket: str, archive: str, registry: str | None = None) -> dict[str, Any]:
    return {"address": socket, "image_archives": [archive],
            "insecure_registries": [registry] if registry else []}


def web(name: str = "web", replicas: int = 2, version: str = "v1", *,
        image: str = "busybox") -> dict[str, Any]:
    container = {
        "name": "httpd", "image": image, "imagePullPolicy": "IfNotPresent",
        "command": ["sh", "-c", HTTPD], "env": [{"name": "VERSION", "value": version}],
        "ports": [{"containerPort": 8080}],
        "readinessProbe": {"httpGet": {"path": "/", "port": 8080}, "periodSeconds": 1},
    }
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                     "strategy": {"rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"containers": [container],
                                           "terminationGracePeriodSeconds": 2}}}}


def service(name: str = "web") -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name},
            "spec": {"selector": {"app": name}, "ports": [{"port": 80, "targetPort": 8080}]}}


def pod(name: str, script: str, **container: Any) -> dict[str, Any]:
    spec = container.pop("spec", {})
    c = {"name": "main", "image": "busybox", "command": ["sh", "-c", script], **container}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"containers": [c], "terminationGracePeriodSeconds": 1, **spec}}


@pytest.fixture
async def cluster(containerd_socket: str, busybox_archive: str, registry: tuple[str, str]
                  ) -> AsyncIterator[oc.Cluster]:
    async with oc.Cluster(runtime="containerd", network="loopback", nodes=1,
                          clock=oc.ScaledClock(4.0),
                          runtime_options=options(containerd_socket, busybox_archive,
                                                  registry[0])) as c:
        yield c


async def traffic(url: str, stop: asyncio.Event, minimum: int = 500,
                  maximum: int = 20000) -> tuple[int, list[str]]:
    """Sequential requests until ``stop`` is set and ``minimum`` were sent (at most
    ``maximum``); returns (successes, failures)."""
    ok, failed = 0, []
    async with httpx.AsyncClient(timeout=5) as client:
        for n in range(maximum):
            if stop.is_set() and n >= minimum:
                break
            try:
                r = await client.get(url, headers={"Connection": "close"})
                if r.status_code == 200:
                    ok += 1
                else:
                    failed.append(f"status {r.status_code}")
            except httpx.HTTPError as exc:
                failed.append(repr(exc))
    return ok, failed


async def test_deployment_rolling_update_without_failed_requests(cluster: oc.Cluster) -> None:
    await cluster.apply([web(replicas=2), service()])
    d = await cluster.wait_for("deployment/web", "Available", timeout=60)
    assert d.status.available_replicas == 2
    pods = await cluster.list("pods", selector="app=web")
    assert all(p.status.phase == "Running" for p in pods)
    st = pods[0].status.container_statuses[0]
    assert st.container_id.startswith("containerd://") and st.ready
    host, port = cluster.endpoint("service/web", 80)
    url = f"http://{host}:{port}/"
    async with httpx.AsyncClient() as client:
        assert (await client.get(url)).text.startswith("v1 web-")
    stop = asyncio.Event()
    load = asyncio.create_task(traffic(url, stop))
    await asyncio.sleep(0.2)
    await cluster.apply(web(replicas=2, version="v2"))
    await cluster.wait_for(
        "deployment/web",
        lambda d: d is not None and d.status is not None
        and d.status.updated_replicas == 2 and d.status.replicas == 2
        and d.status.available_replicas == 2, timeout=90)
    stop.set()
    ok, failed = await load
    assert failed == [], failed[:5]
    assert ok >= 500
    async with httpx.AsyncClient() as client:
        assert (await client.get(url)).text.startswith("v2 web-")
