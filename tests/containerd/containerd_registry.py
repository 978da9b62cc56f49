"""A small registry client for the tests: pushes an OCI archive's blobs and manifests
through the distribution v2 API (monolithic blob uploads + manifest PUT)."""

from __future__ import annotations

import json
import tarfile

import httpx


def read_archive(path: str) -> tuple[dict, dict[str, bytes]]:  # type: ignore[type-arg]
    blobs: dict[str, bytes] = {}
    index: dict = {}  # type: ignore[type-arg]
    with tarfile.open(path) as tar:
        for m in tar.getmembers():
            f = tar.extractfile(m) if m.isfile() else None
            if f is None:
                continue
            if m.name == "index.json":
                index = json.loads(f.read())
            elif m.name.startswith("blobs/sha256/"):
                blobs["sha256:" + m.name.rsplit("/", 1)[1]] = f.read()
    return index, blobs


def push_blob(registry: str, repo: str, digest: str, data: bytes) -> None:
    base = f"http://{registry}/v2/{repo}"
    if httpx.head(f"{base}/blobs/{digest}").status_code == 200:
        return
    start = httpx.post(f"{base}/blobs/uploads/")
    assert start.status_code == 202, start.text
    location = start.headers["location"]
    if location.startswith("/"):
        location = f"http://{registry}{location}"
    sep = "&" if "?" in location else "?"
    done = httpx.put(f"{location}{sep}digest={digest}", content=data,
                     headers={"Content-Type": "application/octet-stream"})
    assert done.status_code == 201, done.text


def push_manifest(registry: str, repo: str, ref: str, data: bytes, media_type: str) -> None:
    resp = httpx.put(f"http://{registry}/v2/{repo}/manifests/{ref}", content=data,
                     headers={"Content-Type": media_type})
    assert resp.status_code == 201, resp.text


def push_archive(registry: str, repo: str, tag: str, archive: str, *,
                 as_index: bool = False) -> str:
    """Push the archive's image as ``repo:tag``; returns the digest of what the tag
    points at (an image index wrapping the manifest when ``as_index``)."""
    index, blobs = read_archive(archive)
    entry = index["manifests"][0]
    manifest_bytes = blobs[entry["digest"]]
    manifest = json.loads(manifest_bytes)
    for layer in manifest["layers"]:
        push_blob(registry, repo, layer["digest"], blobs[layer["digest"]])
    push_blob(registry, repo, manifest["config"]["digest"], blobs[manifest["config"]["digest"]])
    push_manifest(registry, repo, entry["digest"], manifest_bytes, manifest["mediaType"])
    if not as_index:
        push_manifest(registry, repo, tag, manifest_bytes, manifest["mediaType"])
        return str(entry["digest"])
    idx = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [
            {"mediaType": manifest["mediaType"], "digest": entry["digest"],
             "size": len(manifest_bytes), "platform": {"architecture": "arm64", "os": "linux"}},
            {"mediaType": manifest["mediaType"], "digest": entry["digest"],
             "size": len(manifest_bytes), "platform": {"architecture": "amd64", "os": "linux"}},
        ],
    }
    data = json.dumps(idx).encode()
    push_manifest(registry, repo, tag, data, idx["mediaType"])
    import hashlib

    return "sha256:" + hashlib.sha256(data).hexdigest()
