"""OCI images: references, building OCI image archives, and getting images into
containerd (content store + image record + unpacked snapshots).

Invariants kept for containerd's garbage collector: every blob is written under a lease
and carries ``containerd.io/gc.ref.*`` labels naming its children (index -> manifests,
manifest -> config and layers, config -> the unpacked snapshot), so once the image
record exists and the lease is gone, everything the image needs stays and nothing else
does. Snapshots are named by OCI chain ID, as containerd's own unpacker names them, so
``ctr`` and orchestra share unpacked images.
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import io
import json
import os
import re
import secrets
import subprocess
import tarfile
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from typing import Any

import grpc

from orchestra.runtime._protocol import ImagePullError
from orchestra.runtime.containerd._client import Client, details, is_already_exists, is_not_found
from orchestra.runtime.containerd._gen import (
    content_pb2,
    diff_pb2,
    images_pb2,
    snapshots_pb2,
    types_pb2,
)

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"
INDEX_TYPES = (OCI_INDEX, DOCKER_LIST)
MANIFEST_TYPES = (OCI_MANIFEST, DOCKER_MANIFEST)
NAME_ANNOTATION = "io.containerd.image.name"
REF_ANNOTATION = "org.opencontainers.image.ref.name"
CHUNK = 1 << 20


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


# ---------------------------------------------------------------- references

_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")


@dataclasses.dataclass(frozen=True, slots=True)
class Reference:
    """A Docker-style image reference, normalised as Docker and containerd do
    (``busybox`` -> ``docker.io/library/busybox:latest``)."""

    registry: str
    repository: str
    tag: str | None = None
    digest: str | None = None

    @classmethod
    def parse(cls, ref: str) -> Reference:
        rest = ref.strip()
        if not rest:
            raise ValueError("empty image reference")
        digest = None
        if "@" in rest:
            rest, digest = rest.split("@", 1)
            if not _DIGEST.match(digest):
                raise ValueError(f"invalid digest {digest!r} in image reference {ref!r}")
        first, _, remainder = rest.partition("/")
        if remainder and ("." in first or ":" in first or first == "localhost"):
            registry, path = first, remainder
        else:
            registry, path = "docker.io", rest
        tag = None
        slash = path.rfind("/")
        colon = path.rfind(":")
        if colon > slash:
            path, tag = path[:colon], path[colon + 1 :]
        if registry == "docker.io" and "/" not in path:
            path = "library/" + path
        if not re.fullmatch(
            r"[a-z0-9]+(?:[._-]+[a-z0-9]+)*(?:/[a-z0-9]+(?:[._-]+[a-z0-9]+)*)*", path
        ):
            raise ValueError(f"invalid repository name {path!r} in image reference {ref!r}")
        if tag is None and digest is None:
            tag = "latest"
        return cls(registry, path, tag, digest)

    @property
    def name(self) -> str:
        """The image record's name in containerd."""
        base = f"{self.registry}/{self.repository}"
        if self.digest:
            return f"{base}@{self.digest}"
        return f"{base}:{self.tag}"

    @property
    def reference(self) -> str:
        """What to ask the registry's manifests endpoint for."""
        return self.digest or self.tag or "latest"

    @property
    def is_loopback(self) -> bool:
        host = (
            self.registry.rsplit(":", 1)[0]
            if not self.registry.startswith("[")
            else (self.registry[1:].split("]", 1)[0])
        )
        return host in ("localhost", "::1") or host.startswith("127.")


# ---------------------------------------------------------------- archive building


@dataclasses.dataclass(frozen=True, slots=True)
class BuiltImage:
    name: str
    manifest_digest: str
    size: int


def _tarinfo(name: str, kind: bytes, mode: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.mode = mode
    info.mtime = 0
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    return info


def build_layer(
    *,
    rootfs_dir: str | None = None,
    files: Mapping[str, bytes | str] = {},
    symlinks: Mapping[str, str] = {},
    directories: Mapping[str, int] = {},
    executables: Iterable[str] = (),
) -> bytes:
    """An uncompressed, reproducible layer tar. ``files`` values are contents (bytes) or
    a host path to copy (str); paths are relative to the image root."""
    buf = io.BytesIO()
    execs = set(executables)
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        if rootfs_dir:
            for entry in sorted(os.listdir(rootfs_dir)):
                tar.add(os.path.join(rootfs_dir, entry), arcname=entry, filter=_normalise)
        seen: set[str] = set()
        for path in sorted({os.path.dirname(p) for p in [*files, *symlinks]} | set(directories)):
            parts = [p for p in path.split("/") if p]
            for i in range(1, len(parts) + 1):
                d = "/".join(parts[:i])
                if d not in seen:
                    seen.add(d)
                    tar.addfile(_tarinfo(d, tarfile.DIRTYPE, directories.get(d, 0o755)))
        for path, content in sorted(files.items()):
            if isinstance(content, str):
                with open(content, "rb") as f:
                    data = f.read()
                mode = os.stat(content).st_mode & 0o7777
            else:
                data, mode = content, 0o755 if path in execs else 0o644
            info = _tarinfo(path, tarfile.REGTYPE, mode)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for path, target in sorted(symlinks.items()):
            info = _tarinfo(path, tarfile.SYMTYPE, 0o777)
            info.linkname = target
            tar.addfile(info)
    return buf.getvalue()


def _normalise(info: tarfile.TarInfo) -> tarfile.TarInfo:
    info.mtime = 0
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    return info


def gzip_bytes(data: bytes) -> bytes:
    out = io.BytesIO()
    with gzip.GzipFile(fileobj=out, mode="wb", compresslevel=6, mtime=0) as gz:
        gz.write(data)
    return out.getvalue()


def build_image_archive(
    out_path: str,
    ref: str,
    layers: Sequence[bytes],
    *,
    entrypoint: Sequence[str] = (),
    cmd: Sequence[str] = (),
    env: Sequence[str] = ("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",),
    working_dir: str = "",
    user: str = "",
) -> BuiltImage:
    """Write an OCI image archive (a tar of an OCI image layout: ``oci-layout``,
    ``index.json``, ``blobs/sha256/*``) holding one linux/amd64 image named ``ref``.
    ``layers`` are uncompressed layer tars, bottom first; they are stored gzipped."""
    name = Reference.parse(ref)
    blobs: dict[str, bytes] = {}
    layer_descs = []
    diff_ids = []
    for layer in layers:
        gz = gzip_bytes(layer)
        digest = sha256(gz)
        blobs[digest] = gz
        diff_ids.append(sha256(layer))
        layer_descs.append({"mediaType": OCI_LAYER_GZIP, "digest": digest, "size": len(gz)})
    config: dict[str, Any] = {
        "architecture": "amd64",
        "os": "linux",
        "config": {"Env": list(env)},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": [{"created_by": "orchestra build_image_archive"}],
    }
    if entrypoint:
        config["config"]["Entrypoint"] = list(entrypoint)
    if cmd:
        config["config"]["Cmd"] = list(cmd)
    if working_dir:
        config["config"]["WorkingDir"] = working_dir
    if user:
        config["config"]["User"] = user
    config_bytes = json.dumps(config, sort_keys=True).encode()
    config_digest = sha256(config_bytes)
    blobs[config_digest] = config_bytes
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": config_digest, "size": len(config_bytes)},
        "layers": layer_descs,
    }
    manifest_bytes = json.dumps(manifest, sort_keys=True).encode()
    manifest_digest = sha256(manifest_bytes)
    blobs[manifest_digest] = manifest_bytes
    index = {
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [
            {
                "mediaType": OCI_MANIFEST,
                "digest": manifest_digest,
                "size": len(manifest_bytes),
                "platform": {"architecture": "amd64", "os": "linux"},
                "annotations": {NAME_ANNOTATION: name.name, REF_ANNOTATION: name.tag or "latest"},
            }
        ],
    }
    os.makedirs(os.path.dirname(os.path.abspath(out_path)), exist_ok=True)
    tmp = out_path + ".tmp"
    with tarfile.open(tmp, "w", format=tarfile.PAX_FORMAT) as tar:

        def add(path: str, data: bytes, kind: bytes = tarfile.REGTYPE) -> None:
            info = _tarinfo(path, kind, 0o755 if kind == tarfile.DIRTYPE else 0o644)
            info.size = len(data) if kind == tarfile.REGTYPE else 0
            tar.addfile(info, io.BytesIO(data) if kind == tarfile.REGTYPE else None)

        add("oci-layout", json.dumps({"imageLayoutVersion": "1.0.0"}).encode())
        add("index.json", json.dumps(index, sort_keys=True).encode())
        for d in ("blobs", "blobs/sha256"):
            add(d, b"", tarfile.DIRTYPE)
        for digest, data in sorted(blobs.items()):
            add("blobs/sha256/" + digest.split(":", 1)[1], data)
    os.replace(tmp, out_path)
    return BuiltImage(name.name, manifest_digest, len(manifest_bytes))


BUSYBOX_PASSWD = (
    "root:x:0:0:root:/root:/bin/sh\n"
    "daemon:x:1:1:daemon:/usr/sbin:/bin/false\n"
    "nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"
)
BUSYBOX_GROUP = "root:x:0:\ndaemon:x:1:\nnogroup:x:65534:\n"


def busybox_layer(busybox: str = "/bin/busybox") -> bytes:
    """A layer with a static busybox and a link for each of its applets."""
    out = subprocess.run(
        [busybox, "--list-full"], check=True, capture_output=True, text=True
    ).stdout
    links = {}
    for applet in out.split():
        if applet != "bin/busybox":
            depth = applet.count("/")
            links[applet] = "../" * depth + "bin/busybox" if depth else "bin/busybox"
    dirs = {
        d: 0o755
        for d in (
            "bin",
            "dev",
            "etc",
            "proc",
            "root",
            "sys",
            "usr/bin",
            "usr/sbin",
            "sbin",
            "var",
            "run",
        )
    }
    dirs["tmp"] = 0o1777
    return build_layer(
        files={
            "bin/busybox": busybox,
            "etc/passwd": BUSYBOX_PASSWD.encode(),
            "etc/group": BUSYBOX_GROUP.encode(),
        },
        symlinks=links,
        directories=dirs,
    )


def build_busybox_archive(
    out_path: str, ref: str = "busybox:latest", busybox: str = "/bin/busybox"
) -> BuiltImage:
    """The test/example image: Debian's busybox-static as a one-layer OCI image whose
    default command is ``sh``."""
    return build_image_archive(out_path, ref, [busybox_layer(busybox)], cmd=["sh"])


# ---------------------------------------------------------------- content store


def descriptor(media_type: str, digest: str, size: int) -> types_pb2.Descriptor:
    return types_pb2.Descriptor(media_type=media_type, digest=digest, size=size)


async def has_blob(client: Client, digest: str) -> bool:
    try:
        await client.content.Info(content_pb2.InfoRequest(digest=digest), metadata=client.md())
    except grpc.aio.AioRpcError as exc:
        if is_not_found(exc):
            return False
        raise
    return True


class DigestMismatch(Exception):
    """Bytes written to the content store do not hash to the expected digest."""


async def write_blob(
    client: Client,
    lease: str,
    digest: str,
    size: int,
    source: bytes | Any,
    *,
    labels: Mapping[str, str] | None = None,
) -> None:
    """Write one blob through Content.Write (stat, write chunks, commit with the expected
    digest). ``source`` is the bytes, or a callable ``(offset) -> async iterator of
    chunks`` so that an interrupted ingest resumes where containerd has it (the ref is
    derived from the digest, so a retry finds the partial data). Raises
    :class:`DigestMismatch` when the bytes are not ``digest``."""
    md = client.md(lease)
    if await has_blob(client, digest):
        if labels:
            await _label_blob(client, digest, labels)
        return
    ref = f"orchestra-{digest}"
    call = client.content.Write(metadata=md)
    try:
        await call.write(
            content_pb2.WriteContentRequest(
                action=content_pb2.STAT, ref=ref, total=size, expected=digest
            )
        )
        stat = await call.read()
        offset = int(stat.offset)
        if offset > size:
            offset = 0
        hasher = hashlib.sha256() if offset == 0 else None
        if isinstance(source, bytes):
            chunks: AsyncIterator[bytes] = _chunks(source[offset:])
        else:
            chunks = source(offset)
        async for chunk in chunks:
            if hasher is not None:
                hasher.update(chunk)
            await call.write(
                content_pb2.WriteContentRequest(
                    action=content_pb2.WRITE,
                    ref=ref,
                    offset=offset,
                    data=chunk,
                    total=size,
                    expected=digest,
                )
            )
            await call.read()
            offset += len(chunk)
        if hasher is not None and ("sha256:" + hasher.hexdigest() != digest or offset != size):
            got = "sha256:" + hasher.hexdigest()
            await call.done_writing()
            await _abort(client, ref)
            raise DigestMismatch(f"unexpected commit digest {got}, expected {digest}")
        await call.write(
            content_pb2.WriteContentRequest(
                action=content_pb2.COMMIT,
                ref=ref,
                total=size,
                expected=digest,
                offset=offset,
                labels=dict(labels or {}),
            )
        )
        await call.read()
        await call.done_writing()
    except grpc.aio.AioRpcError as exc:
        if is_already_exists(exc):
            if labels:
                await _label_blob(client, digest, labels)
            return
        if exc.code() == grpc.StatusCode.FAILED_PRECONDITION:
            await _abort(client, ref)
            raise DigestMismatch(details(exc)) from exc
        raise


async def _chunks(data: bytes) -> AsyncIterator[bytes]:
    for i in range(0, len(data), CHUNK):
        yield data[i : i + CHUNK]


async def _abort(client: Client, ref: str) -> None:
    try:
        await client.content.Abort(content_pb2.AbortRequest(ref=ref), metadata=client.md())
    except grpc.aio.AioRpcError:
        pass


async def _label_blob(client: Client, digest: str, labels: Mapping[str, str]) -> None:
    """Content.Update is not in our proto subset; existing blobs keep the labels they
    were committed with, which for orchestra's own writes are the same labels."""
    return None


async def read_blob(client: Client, digest: str) -> bytes:
    parts = []
    stream = client.content.Read(
        content_pb2.ReadContentRequest(digest=digest), metadata=client.md()
    )
    async for resp in stream:
        parts.append(resp.data)
    return b"".join(parts)


def gc_labels_for_manifest(manifest: Mapping[str, Any]) -> dict[str, str]:
    labels = {"containerd.io/gc.ref.content.config": manifest["config"]["digest"]}
    for i, layer in enumerate(manifest.get("layers", ())):
        labels[f"containerd.io/gc.ref.content.l.{i}"] = layer["digest"]
    return labels


def gc_labels_for_index(index: Mapping[str, Any]) -> dict[str, str]:
    return {
        f"containerd.io/gc.ref.content.m.{i}": m["digest"]
        for i, m in enumerate(index.get("manifests", ()))
    }


def chain_ids(diff_ids: Sequence[str]) -> list[str]:
    out: list[str] = []
    for diff_id in diff_ids:
        out.append(diff_id if not out else sha256(f"{out[-1]} {diff_id}".encode()))
    return out


async def snapshot_exists(client: Client, snapshotter: str, key: str) -> bool:
    try:
        await client.snapshots.Stat(
            snapshots_pb2.StatSnapshotRequest(snapshotter=snapshotter, key=key),
            metadata=client.md(),
        )
    except grpc.aio.AioRpcError as exc:
        if is_not_found(exc):
            return False
        raise
    return True


async def unpack(
    client: Client,
    lease: str,
    manifest: Mapping[str, Any],
    config: Mapping[str, Any],
    snapshotter: str,
) -> str:
    """Apply the layers (Snapshots.Prepare + Diff.Apply + Snapshots.Commit per layer,
    committed under their chain IDs); returns the top chain ID. Layers already unpacked
    are skipped. Each applied layer's diff ID must match the config's."""
    diff_ids = list(config.get("rootfs", {}).get("diff_ids", ()))
    layers = list(manifest.get("layers", ()))
    if len(diff_ids) != len(layers):
        raise ImagePullError("image config and manifest disagree on the number of layers")
    chains = chain_ids(diff_ids)
    md = client.md(lease)
    parent = ""
    for layer, diff_id, chain in zip(layers, diff_ids, chains, strict=True):
        if not await snapshot_exists(client, snapshotter, chain):
            key = f"extract-{secrets.token_hex(6)} {chain}"
            prep = await client.snapshots.Prepare(
                snapshots_pb2.PrepareSnapshotRequest(
                    snapshotter=snapshotter,
                    key=key,
                    parent=parent,
                    labels={"containerd.io/snapshot.ref": chain},
                ),
                metadata=md,
            )
            try:
                applied = await client.diff.Apply(
                    diff_pb2.ApplyRequest(
                        diff=descriptor(layer["mediaType"], layer["digest"], layer["size"]),
                        mounts=list(prep.mounts),
                    ),
                    metadata=md,
                )
                if applied.applied.digest != diff_id:
                    raise ImagePullError(
                        f"wrong diff id calculated on extraction "
                        f'"{applied.applied.digest}", expected "{diff_id}"'
                    )
                await client.snapshots.Commit(
                    snapshots_pb2.CommitSnapshotRequest(
                        snapshotter=snapshotter,
                        name=chain,
                        key=key,
                        labels={"containerd.io/snapshot.ref": chain},
                    ),
                    metadata=md,
                )
            except grpc.aio.AioRpcError as exc:
                await _remove_snapshot(client, snapshotter, key)
                if not is_already_exists(exc):
                    raise
            except BaseException:
                await _remove_snapshot(client, snapshotter, key)
                raise
        parent = chain
    return parent


async def _remove_snapshot(client: Client, snapshotter: str, key: str) -> None:
    try:
        await client.snapshots.Remove(
            snapshots_pb2.RemoveSnapshotRequest(snapshotter=snapshotter, key=key),
            metadata=client.md(),
        )
    except grpc.aio.AioRpcError:
        pass


async def store_image(client: Client, lease: str, name: str, target: types_pb2.Descriptor) -> None:
    """Create (or repoint) the image record ``name``."""
    image = images_pb2.Image(name=name, target=target)
    try:
        await client.images.Create(
            images_pb2.CreateImageRequest(image=image), metadata=client.md(lease)
        )
    except grpc.aio.AioRpcError as exc:
        if not is_already_exists(exc):
            raise
        from google.protobuf import field_mask_pb2

        await client.images.Update(
            images_pb2.UpdateImageRequest(
                image=image, update_mask=field_mask_pb2.FieldMask(paths=["target"])
            ),
            metadata=client.md(lease),
        )


async def store_manifest_blobs(
    client: Client,
    lease: str,
    manifest_bytes: bytes,
    manifest: Mapping[str, Any],
    config_bytes: bytes,
    snapshotter: str,
    chain: str | None,
) -> None:
    config_labels = {f"containerd.io/gc.ref.snapshot.{snapshotter}": chain} if chain else {}
    cfg = manifest["config"]
    await write_blob(
        client, lease, cfg["digest"], len(config_bytes), config_bytes, labels=config_labels
    )
    await write_blob(
        client,
        lease,
        sha256(manifest_bytes),
        len(manifest_bytes),
        manifest_bytes,
        labels=gc_labels_for_manifest(manifest),
    )


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
