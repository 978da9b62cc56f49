"""Claims on containerd: the bound volume's directory is bind-mounted into the container,
so what it writes is in the volume's directory and outlives the pod; a claim mounted
``readOnly`` is a read-only bind mount."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from typing import Any

import anyio
import pytest

import orchestra as oc

pytestmark = pytest.mark.anyio


def pod(name: str, script: str, *, read_only: bool = False) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"terminationGracePeriodSeconds": 1,
                     "containers": [{"name": "main", "image": "busybox",
                                     "imagePullPolicy": "IfNotPresent",
                                     "command": ["sh", "-c", script],
                                     "volumeMounts": [{"name": "data",
                                                       "mountPath": "/data"}]}],
                     "volumes": [{"name": "data", "persistentVolumeClaim": {
                         "claimName": "data", "readOnly": read_only}}]}}


@pytest.fixture
async def cluster(containerd_socket: str, busybox_archive: str) -> AsyncIterator[oc.Cluster]:
    async with oc.Cluster(runtime="containerd", network="loopback", nodes=1,
                          clock=oc.ScaledClock(4.0),
                          runtime_options={"address": containerd_socket,
                                           "image_archives": [busybox_archive]}) as c:
        yield c


async def test_a_claim_is_bind_mounted_and_its_data_outlives_the_pod(
        cluster: oc.Cluster) -> None:
    await cluster.apply([
        {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "data"},
         "spec": {"accessModes": ["ReadWriteOnce"],
                  "resources": {"requests": {"storage": "1Gi"}}}},
        pod("writer", "echo persisted > /data/f && sleep 3600"),
    ])
    await cluster.wait_for("pod/writer", "Running", timeout=60)
    claim = await cluster.get("pvc/data")
    volume = await cluster.get("pv/" + claim.spec.volume_name)
    host_file = os.path.join(volume.spec.host_path.path, "f")
    r = await cluster.exec("writer", ["cat", "/data/f"])
    assert r.stdout == "persisted\n", r
    assert await anyio.Path(host_file).read_text() == "persisted\n"
    await cluster.delete("pod/writer")
    await cluster.wait_for("pod/writer", "Deleted", timeout=60)
    await cluster.apply(pod("reader", "sleep 3600", read_only=True))
    await cluster.wait_for("pod/reader", "Running", timeout=60)
    r = await cluster.exec("reader", ["sh", "-c", "cat /data/f; "
                                      "touch /data/x 2>/dev/null || echo read-only"])
    assert r.stdout == "persisted\nread-only\n", r
