"""Building OCI image archives (an OCI image layout in a tar), reproducibly: every
file owned by root with mtime 0, layers gzipped with mtime 0. The test and example
image is a static busybox (:func:`build_busybox_archive`)."""

from __future__ import annotations

import dataclasses
import gzip
import io
import json
import os
import subprocess
import tarfile
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from orchestra.runtime.containerd._oci import (
    NAME_ANNOTATION,
    OCI_CONFIG,
    OCI_INDEX,
    OCI_LAYER_GZIP,
    OCI_MANIFEST,
    REF_ANNOTATION,
    Reference,
    sha256,
)


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
