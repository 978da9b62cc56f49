"""HTTP backends, clients and test certificates for the L7 tests (all on loopback)."""

from __future__ import annotations

import contextlib
import datetime
import http.client
import importlib.util
import json
import os
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

APP = Path(__file__).resolve().parent.parent / "apps" / "versioned_http.py"
Container = Callable[[str, int], dict[str, Any]]
"""A pod's container spec running the versioned app: ``(version, port) -> container``."""


def python_app(version: str, port: int) -> dict[str, Any]:
    """The versioned app (``APP``) as a process-runtime container named ``app`` with a
    port named ``http`` and a readiness probe on ``/ready``."""
    return {"name": "app", "image": "python:3",
            "command": [sys.executable, str(APP), "--version", version, "--port", str(port)],
            "ports": [{"name": "http", "containerPort": port}],
            "readinessProbe": {"httpGet": {"path": "/ready", "port": "http"},
                               "periodSeconds": 1}}


_spec = importlib.util.spec_from_file_location("versioned_http", APP)
assert _spec is not None and _spec.loader is not None
app = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(app)


@contextlib.contextmanager
def backends(*versions: str, host: str = "127.0.0.1") -> Iterator[list[tuple[str, int]]]:
    """One versioned app per name, on free ports of ``host``; yields their addresses."""
    servers = [app.serve(v, host, 0) for v in versions]
    threads = [threading.Thread(target=s.serve_forever, daemon=True) for s in servers]
    for t in threads:
        t.start()
    try:
        yield [s.server_address[:2] for s in servers]
    finally:
        for s in servers:
            s.shutdown()
            s.server_close()


def get(addr: tuple[str, int], path: str = "/", *, host: str | None = None,
        headers: dict[str, str] | None = None, method: str = "GET",
        body: bytes | None = None, conn: http.client.HTTPConnection | None = None,
        timeout: float = 5.0) -> tuple[int, dict[str, str], bytes]:
    """One request (on ``conn`` if given, kept open); returns status, headers, body."""
    own = conn is None
    c = conn or http.client.HTTPConnection(*addr, timeout=timeout)
    try:
        hdrs = dict(headers or {})
        if host is not None:
            hdrs["Host"] = host
        c.request(method, path, body=body, headers=hdrs)
        r = c.getresponse()
        data = r.read()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, data
    finally:
        if own:
            c.close()


def version_of(body: bytes) -> str:
    return str(json.loads(body)["version"])


def seen(body: bytes) -> dict[str, Any]:
    """What the versioned app saw of the request; header names lower-cased (the apps
    that cannot lower-case them cheaply send them as they came)."""
    out: dict[str, Any] = json.loads(body)
    if isinstance(out.get("headers"), dict):
        out["headers"] = {k.lower(): v for k, v in out["headers"].items()}
    return out


def raw_exchange(addr: tuple[str, int], data: bytes, *, until: int,
                 timeout: float = 5.0) -> bytes:
    """Send ``data`` on a new connection and read until ``until`` responses' worth of
    ``HTTP/1.1 `` status lines arrived and the last body is complete (Content-Length)."""
    with socket.create_connection(addr, timeout=timeout) as s:
        s.sendall(data)
        buf = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                return buf
            buf += chunk
            if _complete(buf) >= until:
                return buf


def _complete(buf: bytes) -> int:
    n, pos = 0, 0
    while True:
        end = buf.find(b"\r\n\r\n", pos)
        if end < 0:
            return n
        head = buf[pos:end].decode("latin-1").lower()
        length = 0
        for line in head.split("\r\n")[1:]:
            if line.startswith("content-length:"):
                length = int(line.split(":", 1)[1])
        if len(buf) < end + 4 + length:
            return n
        n += 1
        pos = end + 4 + length


def make_cert(*hosts: str) -> tuple[bytes, bytes]:
    """A self-signed certificate (PEM) for ``hosts`` and its key."""
    try:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID
    except ImportError:
        return _openssl_cert(*hosts)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0])])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=2))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(h) for h in hosts]),
                           critical=False)
            .sign(key, hashes.SHA256()))
    return (cert.public_bytes(serialization.Encoding.PEM),
            key.private_bytes(serialization.Encoding.PEM,
                              serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption()))


def _openssl_cert(*hosts: str) -> tuple[bytes, bytes]:
    with tempfile.TemporaryDirectory() as d:
        crt, key = os.path.join(d, "c.pem"), os.path.join(d, "k.pem")
        san = ",".join(f"DNS:{h}" for h in hosts)
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2",
                        "-subj", f"/CN={hosts[0]}", "-addext", f"subjectAltName={san}",
                        "-keyout", key, "-out", crt], check=True, capture_output=True)
        return Path(crt).read_bytes(), Path(key).read_bytes()


def peer_cert(addr: tuple[str, int], server_name: str | None) -> bytes:
    """The certificate (PEM) the server presents for ``server_name`` (SNI)."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with socket.create_connection(addr, timeout=5) as raw, \
            ctx.wrap_socket(raw, server_hostname=server_name) as s:
        der = s.getpeercert(binary_form=True)
    assert der is not None
    return ssl.DER_cert_to_PEM_cert(der).encode()


def same_cert(a: bytes, b: bytes) -> bool:
    return ssl.PEM_cert_to_DER_cert(a.decode()) == ssl.PEM_cert_to_DER_cert(b.decode())


def https_get(addr: tuple[str, int], host: str, path: str = "/",
              cafile_pem: bytes | None = None) -> tuple[int, bytes]:
    """GET over TLS with SNI ``host``, verifying against ``cafile_pem`` when given."""
    if cafile_pem is not None:
        ctx = ssl.create_default_context(cadata=cafile_pem.decode())
    else:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    c = http.client.HTTPSConnection(host, addr[1], context=ctx, timeout=5)
    c._create_connection = lambda *a, **k: socket.create_connection(addr, timeout=5)  # type: ignore[attr-defined]
    try:
        c.request("GET", path, headers={"Host": host})
        r = c.getresponse()
        return r.status, r.read()
    finally:
        c.close()
