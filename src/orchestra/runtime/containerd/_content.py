"""containerd's content store and snapshots as the image code uses them: writing
blobs (resumably, checked against their digest) under a lease with the GC labels that
keep an image's parts alive, unpacking layers into snapshots named by chain ID, and
creating image records.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import AsyncIterator, Mapping, Sequence
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
from orchestra.runtime.containerd._oci import sha256

CHUNK = 1 << 20


def descriptor(media_type: str, digest: str, size: int) -> types_pb2.Descriptor:
    return types_pb2.Descriptor(media_type=media_type, digest=digest, size=size)


async def blob_info(client: Client, digest: str) -> content_pb2.Info | None:
    """The blob's record in this namespace (size, labels), or None if it has none."""
    try:
        resp = await client.content.Info(
            content_pb2.InfoRequest(digest=digest), metadata=client.md()
        )
    except grpc.aio.AioRpcError as exc:
        if is_not_found(exc):
            return None
        raise
    info: content_pb2.Info = resp.info
    return info


async def has_blob(client: Client, digest: str) -> bool:
    return await blob_info(client, digest) is not None


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
    derived from the digest, so a retry finds the partial data). An ingest containerd
    reports complete (a blob another namespace holds: containerd shares content
    between namespaces) is committed without reading ``source``. Raises
    :class:`DigestMismatch` when the bytes are not ``digest``."""
    md = client.md(lease)
    info = await blob_info(client, digest)
    if info is not None:
        if labels:
            await _label_blob(client, digest, labels, dict(info.labels))
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
        if offset == size:
            # Complete already: another namespace holds the blob (containerd shares
            # content between namespaces) or an earlier ingest wrote it all. Nothing is
            # fetched; the commit below checks the digest and records it here.
            chunks: AsyncIterator[bytes] = _chunks(b"")
        elif isinstance(source, bytes):
            chunks = _chunks(source[offset:])
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


async def _label_blob(
    client: Client,
    digest: str,
    labels: Mapping[str, str],
    current: Mapping[str, str] | None = None,
) -> None:
    """Set ``labels`` on a blob this namespace already holds (Content.Update with one
    ``labels.<key>`` path each, so its other labels stay). A blob written before (by
    ``ctr content fetch``, an interrupted pull, an image whose layers were unpacked
    under another snapshot chain) may lack the GC references that keep what the image
    needs, its snapshots above all; without them containerd's GC removes those as soon
    as the pull's lease goes."""
    if current is None:
        info = await blob_info(client, digest)
        current = dict(info.labels) if info is not None else {}
    missing = {k: v for k, v in labels.items() if current.get(k) != v}
    if not missing:
        return
    from google.protobuf import field_mask_pb2

    await client.content.Update(
        content_pb2.UpdateRequest(
            info=content_pb2.Info(digest=digest, labels=missing),
            update_mask=field_mask_pb2.FieldMask(paths=[f"labels.{k}" for k in missing]),
        ),
        metadata=client.md(),
    )


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
