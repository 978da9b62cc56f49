# ruff: noqa: ASYNC230, SIM115
"""Images: references, archives, and pulls from a loopback registry the tests push to."""

from __future__ import annotations

import glob
import os
import uuid

import pytest
from containerd_registry import push_archive

from orchestra.runtime import ContainerSpec, ImagePullError, SandboxSpec, State
from orchestra.runtime.containerd import ContainerdRuntime, Reference

pytestmark = pytest.mark.anyio
SB = SandboxSpec(uid="u", namespace="default", name="p", hostname="p", pod_ip="10.0.0.9")


@pytest.mark.parametrize(("ref", "name"), [
    ("busybox", "docker.io/library/busybox:latest"),
    ("user/app:1.2", "docker.io/user/app:1.2"),
    ("127.0.0.1:5000/x:1", "127.0.0.1:5000/x:1"),
    ("localhost/a/b", "localhost/a/b:latest"),
    ("quay.io/a/b@sha256:" + "0" * 64, "quay.io/a/b@sha256:" + "0" * 64),
])
def test_reference_normalisation(ref: str, name: str) -> None:
    assert Reference.parse(ref).name == name


def test_invalid_reference() -> None:
    with pytest.raises(ValueError):
        Reference.parse("UPPER/case")


async def _run(rt: ContainerdRuntime, image: str, policy: str = "IfNotPresent") -> str:
    spec = ContainerSpec(name="c", image=image, command=("sh", "-c", "echo pulled"),
                         image_pull_policy=policy)
    await rt.pull_image(SB, spec)
    sb = await rt.create_sandbox(SandboxSpec(uid=uuid.uuid4().hex, namespace="default", name="p",
                                             hostname="p", pod_ip="10.0.0.9"))
    cid = await rt.create_container(sb, spec)
    await rt.start_container(cid)
    while (await rt.container_status(cid)).state is not State.EXITED:
        import asyncio

        await asyncio.sleep(0.02)
    return await rt.logs(cid)


async def test_pull_by_tag_and_by_digest(runtime: ContainerdRuntime, busybox_archive: str,
                                         registry: tuple[str, str]) -> None:
    host, _ = registry
    repo = f"pulled{uuid.uuid4().hex[:6]}"
    digest = push_archive(host, repo, "1", busybox_archive)
    assert await _run(runtime, f"{host}/{repo}:1") == "pulled\n"
    info = await runtime.pull_image(SB, ContainerSpec(name="c", image=f"{host}/{repo}@{digest}"))
    assert info.id == digest
    assert await _run(runtime, f"{host}/{repo}@{digest}") == "pulled\n"


async def test_pull_image_index_selects_linux_amd64(runtime: ContainerdRuntime,
                                                    busybox_archive: str,
                                                    registry: tuple[str, str]) -> None:
    host, _ = registry
    repo = f"multi{uuid.uuid4().hex[:6]}"
    push_archive(host, repo, "1", busybox_archive, as_index=True)
    assert await _run(runtime, f"{host}/{repo}:1", "Always") == "pulled\n"


async def test_corrupted_layer_is_rejected(runtime: ContainerdRuntime, busybox_archive: str,
                                           registry: tuple[str, str]) -> None:
    host, storage = registry
    # A fresh layer (not yet in containerd's content store), corrupted in the registry.
    from orchestra.runtime.containerd import build_image_archive, build_layer

    archive = os.path.join(os.path.dirname(busybox_archive), f"c{uuid.uuid4().hex}.tar")
    build_image_archive(archive, "corrupt:1",
                        [build_layer(files={"data": os.urandom(64 << 10)})], cmd=["x"])
    repo = f"corrupt{uuid.uuid4().hex[:6]}"
    push_archive(host, repo, "1", archive)
    import json

    from containerd_registry import read_archive

    index, blobs = read_archive(archive)
    layer = json.loads(blobs[index["manifests"][0]["digest"]])["layers"][0]["digest"]
    [data] = glob.glob(f"{storage}/docker/registry/v2/blobs/sha256/*/{layer[7:]}/data")
    raw = bytearray(open(data, "rb").read())
    raw[len(raw) // 2] ^= 0xFF
    open(data, "wb").write(bytes(raw))
    with pytest.raises(ImagePullError) as err:
        await runtime.pull_image(SB, ContainerSpec(name="c", image=f"{host}/{repo}:1"))
    message = str(err.value)
    assert message.startswith(f'failed to pull and unpack image "{host}/{repo}:1"')
    assert layer in message and "expected" in message


async def test_pull_policies_and_missing_images(runtime: ContainerdRuntime,
                                                registry: tuple[str, str]) -> None:
    host, _ = registry
    with pytest.raises(ImagePullError) as err:
        await runtime.pull_image(SB, ContainerSpec(name="c", image=f"{host}/absent:1",
                                                   image_pull_policy="Never"))
    assert str(err.value) == (f'Container image "{host}/absent:1" is not present with pull '
                              "policy of Never")
    with pytest.raises(ImagePullError) as err:
        await runtime.pull_image(SB, ContainerSpec(name="c", image=f"{host}/absent:1"))
    assert str(err.value) == (f'failed to pull and unpack image "{host}/absent:1": failed to '
                              f'resolve reference "{host}/absent:1": {host}/absent:1: not found')
    # Present (imported from the archive): Never and IfNotPresent need no registry.
    for policy in ("Never", "IfNotPresent"):
        info = await runtime.pull_image(SB, ContainerSpec(name="c", image="busybox",
                                                          image_pull_policy=policy))
        assert info.ref == "docker.io/library/busybox:latest"


async def _collect_garbage(rt: ContainerdRuntime) -> None:
    """Run containerd's garbage collector now: deleting a lease with ``sync`` waits for a
    full collection, which removes every blob and snapshot nothing references."""
    from orchestra.runtime.containerd._gen import leases_pb2

    lease = f"gc-{uuid.uuid4().hex[:8]}"
    await rt.client.leases.Create(leases_pb2.CreateRequest(id=lease), metadata=rt.client.md())
    await rt.client.leases.Delete(leases_pb2.DeleteRequest(id=lease, sync=True),
                                  metadata=rt.client.md())


def _fresh_image(busybox_archive: str, host: str) -> tuple[str, list[str], str]:
    """Push busybox plus a layer of its own; returns (image, blob digests, top chain ID)."""
    import json

    from containerd_registry import read_archive

    from orchestra.runtime.containerd import build_image_archive, build_layer
    from orchestra.runtime.containerd._build import busybox_layer
    from orchestra.runtime.containerd._content import chain_ids

    tag = uuid.uuid4().hex[:8]
    archive = os.path.join(os.path.dirname(busybox_archive), f"gc{tag}.tar")
    build_image_archive(archive, f"gc:{tag}",
                        [busybox_layer(), build_layer(files={"tag": tag.encode()})], cmd=["sh"])
    repo = f"gc{tag}"
    push_archive(host, repo, "1", archive)
    index, blobs = read_archive(archive)
    os.unlink(archive)
    manifest_digest = index["manifests"][0]["digest"]
    manifest = json.loads(blobs[manifest_digest])
    config = json.loads(blobs[manifest["config"]["digest"]])
    digests = [manifest_digest, manifest["config"]["digest"],
               *(layer["digest"] for layer in manifest["layers"])]
    return f"{host}/{repo}:1", digests, chain_ids(config["rootfs"]["diff_ids"])[-1]


async def _assert_image_intact(rt: ContainerdRuntime, image: str, digests: list[str],
                               chain: str) -> None:
    from orchestra.runtime.containerd._content import has_blob, snapshot_exists

    await _collect_garbage(rt)
    assert [d for d in digests if not await has_blob(rt.client, d)] == []
    assert await snapshot_exists(rt.client, rt.snapshotter, chain)
    assert await _run(rt, image, "Never") == "pulled\n"


async def test_a_pulled_image_survives_containerd_gc(runtime: ContainerdRuntime,
                                                     busybox_archive: str,
                                                     registry: tuple[str, str]) -> None:
    image, digests, chain = _fresh_image(busybox_archive, registry[0])
    await runtime.pull_image(SB, ContainerSpec(name="c", image=image))
    await _assert_image_intact(runtime, image, digests, chain)


async def test_blobs_already_held_get_the_pulls_gc_labels(runtime: ContainerdRuntime,
                                                          busybox_archive: str,
                                                          registry: tuple[str, str]) -> None:
    """``ctr content fetch`` leaves the image's blobs in the namespace, unpacked nowhere:
    the pull that unpacks them must add the config's reference to its snapshots, or the
    GC removes the snapshots once the pull's lease is gone."""
    import asyncio
    import subprocess

    image, digests, chain = _fresh_image(busybox_archive, registry[0])
    await asyncio.to_thread(
        subprocess.run, ["ctr", "-a", runtime.address, "-n", runtime.namespace, "content",
                         "fetch", "--plain-http", image], check=True, capture_output=True,
        timeout=60)
    from orchestra.runtime.containerd._content import blob_info

    config = await blob_info(runtime.client, digests[1])
    assert config is not None and not any(k.startswith("containerd.io/gc.ref.snapshot")
                                          for k in config.labels)
    await runtime.pull_image(SB, ContainerSpec(name="c", image=image,
                                               image_pull_policy="Always"))
    config = await blob_info(runtime.client, digests[1])
    assert config is not None
    assert config.labels[f"containerd.io/gc.ref.snapshot.{runtime.snapshotter}"] == chain
    await _assert_image_intact(runtime, image, digests, chain)
