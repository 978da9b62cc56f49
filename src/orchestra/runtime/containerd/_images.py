"""OCI images: references, building OCI image archives, and getting images into
containerd (content store + image record + unpacked snapshots).

This module imports OCI archives and resolves an image record to what a container needs
(:class:`ImageConfig`); the rest lives beside it and is imported back, so that
``_images.X`` names all of it: ``_oci`` (media types, digests, references), ``_build``
(building archives), ``_content`` (content store, unpacking, image records). Pulling
from a registry is ``_pull``.

Invariants kept for containerd's garbage collector: every blob is written under a lease
and carries ``containerd.io/gc.ref.*`` labels naming its children (index -> manifests,
manifest -> config and layers, config -> the unpacked snapshot), so once the image
record exists and the lease is gone, everything the image needs stays and nothing else
does. Snapshots are named by OCI chain ID, as containerd's own unpacker names them, so
``ctr`` and orchestra share unpacked images.
"""

from __future__ import annotations

import dataclasses
import json
import tarfile
from collections.abc import Mapping
from typing import Any

import grpc

from orchestra.runtime._protocol import ImagePullError
from orchestra.runtime.containerd._build import (
    BUSYBOX_GROUP,
    BUSYBOX_PASSWD,
    BuiltImage,
    build_busybox_archive,
    build_image_archive,
    build_layer,
    busybox_layer,
    gzip_bytes,
)
from orchestra.runtime.containerd._client import Client, is_not_found
from orchestra.runtime.containerd._content import (
    CHUNK,
    DigestMismatch,
    chain_ids,
    descriptor,
    gc_labels_for_index,
    gc_labels_for_manifest,
    has_blob,
    read_blob,
    snapshot_exists,
    store_image,
    store_manifest_blobs,
    unpack,
    write_blob,
)
from orchestra.runtime.containerd._gen import images_pb2, types_pb2
from orchestra.runtime.containerd._oci import (
    DOCKER_LAYER_GZIP,
    DOCKER_LIST,
    DOCKER_MANIFEST,
    INDEX_TYPES,
    MANIFEST_TYPES,
    NAME_ANNOTATION,
    OCI_CONFIG,
    OCI_INDEX,
    OCI_LAYER,
    OCI_LAYER_GZIP,
    OCI_MANIFEST,
    REF_ANNOTATION,
    Reference,
    sha256,
)

__all__ = [
    "BUSYBOX_GROUP",
    "BUSYBOX_PASSWD",
    "CHUNK",
    "DOCKER_LAYER_GZIP",
    "DOCKER_LIST",
    "DOCKER_MANIFEST",
    "INDEX_TYPES",
    "MANIFEST_TYPES",
    "NAME_ANNOTATION",
    "OCI_CONFIG",
    "OCI_INDEX",
    "OCI_LAYER",
    "OCI_LAYER_GZIP",
    "OCI_MANIFEST",
    "REF_ANNOTATION",
    "BuiltImage",
    "DigestMismatch",
    "ImageConfig",
    "ImportedImage",
    "Reference",
    "build_busybox_archive",
    "build_image_archive",
    "build_layer",
    "busybox_layer",
    "chain_ids",
    "descriptor",
    "gc_labels_for_index",
    "gc_labels_for_manifest",
    "get_image",
    "gzip_bytes",
    "has_blob",
    "image_config",
    "import_archive",
    "read_blob",
    "sha256",
    "snapshot_exists",
    "store_image",
    "store_manifest_blobs",
    "unpack",
    "write_blob",
]


# ---------------------------------------------------------------- archives


@dataclasses.dataclass(frozen=True, slots=True)
class ImportedImage:
    name: str
    digest: str  # the manifest digest
    size: int


def _read_archive(path: str) -> tuple[dict[str, Any], dict[str, bytes]]:
    blobs: dict[str, bytes] = {}
    index: dict[str, Any] | None = None
    with tarfile.open(path, "r:*") as tar:
        for member in tar.getmembers():
            if not member.isfile():
                continue
            name = member.name.removeprefix("./")
            f = tar.extractfile(member)
            if f is None:
                continue
            data = f.read()
            if name == "index.json":
                index = json.loads(data)
            elif name.startswith("blobs/"):
                algo, _, hexd = name[len("blobs/") :].partition("/")
                blobs[f"{algo}:{hexd}"] = data
    if index is None:
        raise ValueError(f"{path} is not an OCI image archive (no index.json)")
    return index, blobs


def _pick_platform(index: Mapping[str, Any]) -> Mapping[str, Any]:
    for m in index.get("manifests", ()):
        plat = m.get("platform") or {}
        if plat.get("os", "linux") == "linux" and plat.get("architecture", "amd64") == "amd64":
            chosen: Mapping[str, Any] = m
            return chosen
    raise ImagePullError("no matching manifest for linux/amd64 in the manifest list entries")


async def import_archive(
    client: Client, path: str, snapshotter: str, name: str | None = None
) -> list[ImportedImage]:
    """Import every image of an OCI archive into containerd and unpack it."""
    import asyncio

    index, blobs = await asyncio.to_thread(_read_archive, path)
    out = []
    async with client.lease("import") as lease:
        for entry in index.get("manifests", ()):
            ann = entry.get("annotations") or {}
            image_name = name or ann.get(NAME_ANNOTATION) or ann.get(REF_ANNOTATION)
            if not image_name:
                continue
            image_name = Reference.parse(image_name).name
            desc = entry
            if entry["mediaType"] in INDEX_TYPES:
                sub = json.loads(blobs[entry["digest"]])
                desc = _pick_platform(sub)
            manifest_bytes = blobs[desc["digest"]]
            manifest = json.loads(manifest_bytes)
            config_bytes = blobs[manifest["config"]["digest"]]
            config = json.loads(config_bytes)
            for layer in manifest["layers"]:
                data = blobs[layer["digest"]]
                await write_blob(client, lease, layer["digest"], len(data), data)
            # Config and manifest are written after unpacking so that the config can
            # carry the gc label of the snapshot; the snapshot is held by the lease.
            chain = await unpack(client, lease, manifest, config, snapshotter)
            await store_manifest_blobs(
                client, lease, manifest_bytes, manifest, config_bytes, snapshotter, chain
            )
            if entry is not desc:
                idx_bytes = blobs[entry["digest"]]
                await write_blob(
                    client,
                    lease,
                    entry["digest"],
                    len(idx_bytes),
                    idx_bytes,
                    labels=gc_labels_for_index(json.loads(idx_bytes)),
                )
            target = descriptor(entry["mediaType"], entry["digest"], int(entry["size"]))
            await store_image(client, lease, image_name, target)
            out.append(ImportedImage(image_name, desc["digest"], int(desc["size"])))
    return out


# ---------------------------------------------------------------- image config


@dataclasses.dataclass(frozen=True, slots=True)
class ImageConfig:
    """What a container needs from its image."""

    name: str
    digest: str  # manifest digest (the image id Kubernetes shows)
    chain_id: str
    entrypoint: tuple[str, ...] = ()
    cmd: tuple[str, ...] = ()
    env: tuple[str, ...] = ()
    working_dir: str = ""
    user: str = ""


async def get_image(client: Client, name: str) -> types_pb2.Descriptor | None:
    try:
        resp = await client.images.Get(images_pb2.GetImageRequest(name=name), metadata=client.md())
    except grpc.aio.AioRpcError as exc:
        if is_not_found(exc):
            return None
        raise
    target: types_pb2.Descriptor = resp.image.target
    return target


async def image_config(client: Client, name: str, target: types_pb2.Descriptor) -> ImageConfig:
    """Resolve an image record to its platform manifest and config."""
    digest = target.digest
    data = await read_blob(client, digest)
    if target.media_type in INDEX_TYPES:
        desc = _pick_platform(json.loads(data))
        digest = desc["digest"]
        data = await read_blob(client, digest)
    manifest = json.loads(data)
    config = json.loads(await read_blob(client, manifest["config"]["digest"]))
    diff_ids = config.get("rootfs", {}).get("diff_ids", [])
    cfg = config.get("config") or {}
    return ImageConfig(
        name=name,
        digest=digest,
        chain_id=chain_ids(diff_ids)[-1] if diff_ids else "",
        entrypoint=tuple(cfg.get("Entrypoint") or ()),
        cmd=tuple(cfg.get("Cmd") or ()),
        env=tuple(cfg.get("Env") or ()),
        working_dir=cfg.get("WorkingDir") or "",
        user=cfg.get("User") or "",
    )
