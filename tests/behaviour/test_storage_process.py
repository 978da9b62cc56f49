"""Storage on the process runtime: what a container writes through a claim lands in the
bound volume's directory and outlives the pod (a replacement pod reads it back); a
StatefulSet's pods keep their own data across restarts."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import pytest

import orchestra as oc
from orchestra.objects import load
from tests.behaviour._servers import eventually

pytestmark = pytest.mark.anyio

DOCS = Path(__file__).parent.parent / "manifests" / "docs"


@pytest.fixture
async def proc() -> AsyncIterator[oc.Cluster]:
    if shutil.which("sh") is None:
        pytest.skip("needs a POSIX sh")
    async with oc.Cluster(runtime="process", nodes=1) as c:
        yield c


async def sh(cluster: oc.Cluster, pod: str, command: str) -> str:
    r = await cluster.exec(pod, ["sh", "-c", command])
    assert r.exit_code == 0, (command, r.stdout, r.stderr)
    return r.stdout


def docs_pod(command: str) -> Any:
    """task-pv-pod with a shell instead of nginx (the process runtime has no images)."""
    (pod,) = load(DOCS / "storage-task-pv-pod.yaml")
    d = pod.to_dict()
    d["spec"]["containers"][0]["command"] = ["sh", "-c", command]
    d["spec"]["terminationGracePeriodSeconds"] = 1
    return d


async def test_data_written_through_a_claim_is_in_the_volume_and_survives_the_pod(
        proc: oc.Cluster, tmp_path: Path) -> None:
    (volume,) = load(DOCS / "storage-task-pv-volume.yaml")
    d = volume.to_dict()
    d["spec"]["hostPath"]["path"] = str(tmp_path / "data")  # not /mnt/data on this host
    await proc.apply([d, *load(DOCS / "storage-task-pv-claim.yaml")])
    await proc.apply(docs_pod("echo 'Hello from Kubernetes storage' > "
                              "usr/share/nginx/html/index.html && sleep 3600"))
    await proc.wait_for("pod/task-pv-pod", "Running", timeout=30)
    written = tmp_path / "data" / "index.html"
    await eventually(lambda: written.exists())
    assert await anyio.Path(written).read_text() == "Hello from Kubernetes storage\n"
    # The pod goes; a new one reads the same data through the same claim.
    await proc.delete("pod/task-pv-pod")
    await proc.wait_for("pod/task-pv-pod", "Deleted", timeout=30)
    await proc.apply(docs_pod("sleep 3600"))
    await proc.wait_for("pod/task-pv-pod", "Running", timeout=30)
    assert await sh(proc, "task-pv-pod", "cat usr/share/nginx/html/index.html") == \
        "Hello from Kubernetes storage\n"
    await sh(proc, "task-pv-pod", "echo more >> usr/share/nginx/html/index.html")
    assert (await anyio.Path(written).read_text()).endswith("more\n")


async def test_statefulset_pods_keep_their_own_data_across_restarts(
        proc: oc.Cluster) -> None:
    (svc, sts) = load(DOCS / "storage-statefulset-web.yaml")
    d = sts.to_dict()
    d["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] = 1
    container = d["spec"]["template"]["spec"]["containers"][0]
    container["env"] = [{"name": "POD_NAME",
                         "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}]
    container["command"] = [
        "sh", "-c", "cd usr/share/nginx/html && { [ -f first ] || echo $POD_NAME > first; } "
        "&& echo start >> starts && sleep 3600"]
    await proc.apply([svc, d])
    await proc.wait_for("sts/web", "Ready", timeout=60)
    paths = {}
    for i in range(2):
        claim = await proc.get(f"pvc/www-web-{i}")
        volume = await proc.get("pv/" + claim.spec.volume_name)
        paths[i] = anyio.Path(volume.spec.host_path.path)
        await eventually(lambda p=Path(paths[i]) / "starts": p.exists())  # written, then sleep
        assert await (paths[i] / "first").read_text() == f"web-{i}\n"
    # web-0 is deleted; the controller recreates it with the same claim.
    old_uid = (await proc.get("pod/web-0")).metadata.uid
    await proc.delete("pod/web-0")
    await eventually(lambda: (p := proc.store.get_or_none("Pod", "web-0")) is not None
                     and p.metadata.uid != old_uid, timeout=30)
    await proc.wait_for("sts/web", "Ready", timeout=60)
    assert await sh(proc, "web-0", "cat usr/share/nginx/html/first") == "web-0\n"
    await eventually(lambda: (Path(paths[0]) / "starts").read_text().split() ==
                     ["start", "start"])
    assert (await (paths[1] / "starts").read_text()).split() == ["start"]
