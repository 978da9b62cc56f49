"""A small HTTP server for process-runtime tests, run with ``python3 -c``.

It binds ``$POD_IP:$PORT`` (8080), answers ``/`` with ``<version> <pod name>``,
``/ready`` with 200 only while a file ``ready`` exists in its working directory (the
container root), ``/healthz`` with 500 while a file ``sick`` exists (removed at start),
``/elsewhere`` with a redirect to another host (``localhost:1``),
and on SIGTERM stops accepting and finishes the requests in flight (including the
connections already waiting in its listen queue).
"""

from __future__ import annotations

import sys
from typing import Any

SERVER = r'''
import os, signal, sys, threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
POD = os.environ.get("POD_NAME", "?")
VERSION = os.environ.get("VERSION", "v1")
try:
    os.remove("sick")
except OSError:
    pass
if os.environ.get("READY_AT_START"):
    open("ready", "w").close()
class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_GET(self):
        code, body = 200, f"{VERSION} {POD}".encode()
        if self.path == "/ready" and not os.path.exists("ready"):
            code, body = 503, b"not ready"
        elif self.path == "/healthz" and os.path.exists("sick"):
            code, body = 500, b"sick"
        elif self.path == "/elsewhere":
            code, body = 302, b"moved"
        self.send_response(code)
        if code == 302:
            self.send_header("Location", "http://localhost:1/")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
srv = ThreadingHTTPServer((os.environ.get("BIND") or os.environ["POD_IP"],
                           int(os.environ.get("PORT", "8080"))), H)
srv.daemon_threads = False
signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=srv.shutdown).start())
print("listening", VERSION, POD, flush=True)
srv.serve_forever()
# Connections the kernel accepted before SIGTERM (a busy host may not have picked them up
# yet) are in flight too: serve them before closing, or they are reset.
srv.socket.setblocking(False)
while True:
    try:
        conn, addr = srv.socket.accept()
    except OSError:
        break
    conn.setblocking(True)
    srv.process_request(conn, addr)
srv.server_close()
print("stopped", flush=True)
'''


def server_container(name: str = "main", *, version: str = "v1",
                     env: dict[str, str] | None = None, **extra: Any) -> dict[str, Any]:
    """A container running SERVER, with a named port ``http`` (8080)."""
    envs = [{"name": "VERSION", "value": version},
            *({"name": k, "value": v} for k, v in (env or {}).items())]
    return {"name": name, "image": "python:3", "command": [sys.executable, "-c", SERVER],
            "env": envs, "ports": [{"name": "http", "containerPort": 8080}], **extra}


def http_probe(path: str, port: Any = "http", period: int = 1, failures: int = 1,
               **extra: Any) -> dict[str, Any]:
    return {"httpGet": {"path": path, "port": port}, "periodSeconds": period,
            "failureThreshold": failures, **extra}


async def eventually(fn: Any, timeout: float = 30.0,  # noqa: ASYNC109 - polls real time
                     interval: float = 0.05) -> Any:
    """Poll ``fn()`` (real time) until it returns something truthy; fail after ``timeout``."""
    import anyio

    with anyio.fail_after(timeout):
        while True:
            value = fn()
            if value:
                return value
            await anyio.sleep(interval)
