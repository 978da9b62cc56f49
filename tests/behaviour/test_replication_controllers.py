"""ReplicationControllers are managed as Kubernetes manages them, by the ReplicaSet
controller's code: pods from the template, adopted by the equality selector, scaled,
counted in the status, and garbage-collected with their controller."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

import orchestra as oc

pytestmark = pytest.mark.anyio

RC = """apiVersion: v1
kind: ReplicationController
metadata: {name: nginx}
spec:
  replicas: 3
  template:
    metadata: {name: nginx, labels: {app: nginx}}
    spec:
      containers: [{name: nginx, image: nginx, ports: [{containerPort: 80}]}]
"""


async def _until(ok: Any) -> None:
    for _ in range(1000):
        if await ok():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition never held")


async def test_a_replication_controller_keeps_its_replicas() -> None:
    async with oc.Cluster(runtime="fake", nodes=2) as cluster:
        (rc,) = await cluster.apply(RC)

        async def ready(n: int) -> bool:
            got = await cluster.get("rc/nginx")
            pods = await cluster.list("Pod", namespace="default", selector="app=nginx")
            return (len(pods) == n and got.status is not None
                    and got.status.ready_replicas == n and got.status.replicas == n)

        await _until(lambda: ready(3))
        pods = await cluster.list("Pod", namespace="default", selector="app=nginx")
        for pod in pods:
            ref = pod.metadata.controller_ref()
            assert ref is not None and ref.kind == "ReplicationController"
            assert ref.uid == rc.uid and pod.name.startswith("nginx-")
        created = [e for e in cluster.events("rc/nginx") if e.reason == "SuccessfulCreate"]
        assert len(created) == 3 and created[0].source.component == "replication-controller"

        await cluster.scale("rc/nginx", 1)
        await _until(lambda: ready(1))

        await cluster.delete("rc/nginx")

        async def gone() -> bool:
            return not await cluster.list("Pod", namespace="default", selector="app=nginx")

        await _until(gone)
