"""Pulling images from an OCI registry (distribution API v2) into containerd.

Token auth as Docker does it: a 401 with ``WWW-Authenticate: Bearer realm=...,
service=...,scope=...`` is answered by fetching a token from the realm (with basic
credentials if configured) and retrying. Image indexes / manifest lists resolve to the
linux/amd64 manifest. Every blob is verified against its digest (ours while streaming,
containerd's again at commit); a mismatch aborts the ingest and fails the pull with the
digests in the message. Blobs stream into Content.Write under a ref derived from their
digest, so an interrupted pull resumes from containerd's offset with an HTTP Range
request. Loopback registries (and ``insecure`` hosts) are reached over plain HTTP.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Mapping
from typing import Any

import httpx

from orchestra.runtime._protocol import ImagePullError
from orchestra.runtime.containerd import _images
from orchestra.runtime.containerd._client import Client

ACCEPT = ", ".join(
    [_images.OCI_INDEX, _images.DOCKER_LIST, _images.OCI_MANIFEST, _images.DOCKER_MANIFEST]
)
_CHALLENGE = re.compile(r'(\w+)="([^"]*)"')


class _NotFound(Exception):
    pass


class Puller:
    def __init__(
        self,
        client: Client,
        snapshotter: str,
        *,
        insecure: tuple[str, ...] = (),
        auth: Mapping[str, tuple[str, str]] | None = None,
    ) -> None:
        self.client = client
        self.snapshotter = snapshotter
        self.insecure = set(insecure)
        self.auth = dict(auth or {})
        self._tokens: dict[tuple[str, str], str] = {}

    def _base(self, ref: _images.Reference) -> str:
        registry = "registry-1.docker.io" if ref.registry == "docker.io" else ref.registry
        scheme = "http" if ref.is_loopback or ref.registry in self.insecure else "https"
        return f"{scheme}://{registry}/v2/{ref.repository}"

    async def pull(self, ref: _images.Reference) -> str:
        """Pull ``ref`` and unpack it; returns the platform manifest digest."""
        what = f'failed to pull and unpack image "{ref.name}"'
        try:
            async with httpx.AsyncClient(timeout=httpx.Timeout(30.0, connect=10.0)) as http:
                return await self._pull(http, ref)
        except _NotFound as exc:
            raise ImagePullError(
                f'{what}: failed to resolve reference "{ref.name}": {ref.name}: not found'
            ) from exc
        except _images.DigestMismatch as exc:
            raise ImagePullError(f"{what}: failed to copy: {exc}") from None
        except httpx.HTTPError as exc:
            raise ImagePullError(
                f'{what}: failed to resolve reference "{ref.name}": {type(exc).__name__}: {exc}'
            ) from None
        except ImagePullError as exc:
            if str(exc).startswith("failed to pull"):
                raise
            raise ImagePullError(f"{what}: {exc}") from None

    async def _request(
        self,
        http: httpx.AsyncClient,
        ref: _images.Reference,
        url: str,
        headers: dict[str, str],
        *,
        stream: bool = False,
    ) -> httpx.Response:
        key = (ref.registry, ref.repository)
        for _ in range(2):
            hdrs = dict(headers)
            if key in self._tokens:
                hdrs["Authorization"] = self._tokens[key]
            req = http.build_request("GET", url, headers=hdrs)
            resp = await http.send(req, stream=stream, follow_redirects=True)
            if resp.status_code != 401:
                return resp
            challenge = resp.headers.get("www-authenticate", "")
            await resp.aclose()
            self._tokens[key] = await self._authenticate(http, ref, challenge)
        raise ImagePullError(f"pulling from host {ref.registry} failed: 401 Unauthorized")

    async def _authenticate(
        self, http: httpx.AsyncClient, ref: _images.Reference, challenge: str
    ) -> str:
        scheme, _, params = challenge.partition(" ")
        fields = dict(_CHALLENGE.findall(params))
        creds = self.auth.get(ref.registry)
        if scheme.lower() == "basic":
            if creds is None:
                raise ImagePullError(
                    f"pulling from host {ref.registry} failed: 401 Unauthorized (no credentials)"
                )
            import base64

            return "Basic " + base64.b64encode(":".join(creds).encode()).decode()
        realm = fields.get("realm")
        if scheme.lower() != "bearer" or not realm:
            raise ImagePullError(f"unsupported authentication challenge {challenge!r}")
        query = {"scope": fields.get("scope") or f"repository:{ref.repository}:pull"}
        if "service" in fields:
            query["service"] = fields["service"]
        resp = await http.get(realm, params=query, auth=httpx.BasicAuth(*creds) if creds else None)
        if resp.status_code != 200:
            raise ImagePullError(
                f"failed to fetch anonymous token: unexpected status "
                f"from GET request to {realm}: {resp.status_code}"
            )
        body = resp.json()
        token = body.get("token") or body.get("access_token")
        if not token:
            raise ImagePullError(f"token server {realm} returned no token")
        return f"Bearer {token}"

    async def _get_bytes(
        self, http: httpx.AsyncClient, ref: _images.Reference, url: str, accept: str | None = None
    ) -> tuple[bytes, str]:
        resp = await self._request(http, ref, url, {"Accept": accept} if accept else {})
        if resp.status_code == 404:
            raise _NotFound(url)
        if resp.status_code != 200:
            raise ImagePullError(
                f"unexpected status from GET request to {url}: "
                f"{resp.status_code} {resp.reason_phrase}"
            )
        return resp.content, resp.headers.get("content-type", "").split(";")[0]

    async def _pull(self, http: httpx.AsyncClient, ref: _images.Reference) -> str:
        base = self._base(ref)
        top_bytes, top_type = await self._get_bytes(
            http, ref, f"{base}/manifests/{ref.reference}", ACCEPT
        )
        top_digest = _images.sha256(top_bytes)
        if ref.digest and top_digest != ref.digest:
            raise _images.DigestMismatch(
                f"manifest {ref.digest}: unexpected digest {top_digest}, expected {ref.digest}"
            )
        top = json.loads(top_bytes)
        top_type = top.get("mediaType") or top_type
        manifest_bytes, manifest = top_bytes, top
        if top_type in _images.INDEX_TYPES or "manifests" in top:
            top_type = top_type if top_type in _images.INDEX_TYPES else _images.OCI_INDEX
            desc = _images._pick_platform(top)
            manifest_bytes, _ = await self._get_bytes(
                http, ref, f"{base}/manifests/{desc['digest']}", desc.get("mediaType", ACCEPT)
            )
            got = _images.sha256(manifest_bytes)
            if got != desc["digest"]:
                raise _images.DigestMismatch(f"manifest {desc['digest']}: unexpected digest {got}")
            manifest = json.loads(manifest_bytes)
        elif top_type not in _images.MANIFEST_TYPES:
            top_type = _images.OCI_MANIFEST
        cfg = manifest["config"]
        config_bytes, _ = await self._get_bytes(http, ref, f"{base}/blobs/{cfg['digest']}")
        if _images.sha256(config_bytes) != cfg["digest"]:
            raise _images.DigestMismatch(
                f"config {cfg['digest']}: unexpected digest {_images.sha256(config_bytes)}"
            )
        config = json.loads(config_bytes)
        async with self.client.lease(f"pull {ref.name}") as lease:
            for layer in manifest["layers"]:
                await self._fetch_blob(http, ref, base, lease, layer)
            chain = await _images.unpack(self.client, lease, manifest, config, self.snapshotter)
            await _images.store_manifest_blobs(
                self.client, lease, manifest_bytes, manifest, config_bytes, self.snapshotter, chain
            )
            if manifest_bytes is not top_bytes:
                await _images.write_blob(
                    self.client,
                    lease,
                    top_digest,
                    len(top_bytes),
                    top_bytes,
                    labels=_images.gc_labels_for_index(top),
                )
            await _images.store_image(
                self.client,
                lease,
                ref.name,
                _images.descriptor(top_type, top_digest, len(top_bytes)),
            )
        return _images.sha256(manifest_bytes)

    async def _fetch_blob(
        self,
        http: httpx.AsyncClient,
        ref: _images.Reference,
        base: str,
        lease: str,
        layer: Mapping[str, Any],
    ) -> None:
        digest, size = layer["digest"], int(layer["size"])
        url = f"{base}/blobs/{digest}"

        def source(offset: int) -> AsyncIterator[bytes]:
            return self._stream(http, ref, url, offset)

        try:
            await _images.write_blob(self.client, lease, digest, size, source)
        except _images.DigestMismatch as exc:
            raise _images.DigestMismatch(f"layer {digest}: {exc}") from None

    async def _stream(
        self, http: httpx.AsyncClient, ref: _images.Reference, url: str, offset: int
    ) -> AsyncIterator[bytes]:
        headers = {"Range": f"bytes={offset}-"} if offset else {}
        resp = await self._request(http, ref, url, headers, stream=True)
        try:
            if resp.status_code == 404:
                raise _NotFound(url)
            if offset and resp.status_code == 200:
                # The registry ignored the range: skip what containerd already has.
                skip = offset
                async for chunk in resp.aiter_bytes(_images.CHUNK):
                    if skip >= len(chunk):
                        skip -= len(chunk)
                        continue
                    yield chunk[skip:]
                    skip = 0
                return
            if resp.status_code not in (200, 206):
                raise ImagePullError(
                    f"unexpected status from GET request to {url}: "
                    f"{resp.status_code} {resp.reason_phrase}"
                )
            async for chunk in resp.aiter_bytes(_images.CHUNK):
                yield chunk
        finally:
            await resp.aclose()
