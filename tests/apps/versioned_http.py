"""A small multi-version HTTP/1.1 app for the traffic tests (run as a pod's command, or
started in a thread by the tests).

    python versioned_http.py --version v2 [--host H] [--port P]

``GET /any/path`` answers JSON ``{"version", "path", "method", "host", "headers",
"body_len", "sha", "conn_requests"}`` (headers lower-cased; the last: requests served on
this connection so far), so a test sees what reached the backend.
``/bulk/<n>`` streams ``n`` bytes (chunked unless ``?length=1``), ``/slow/<ms>`` waits
first, ``/status/<code>`` answers that code, ``/flaky`` answers 503 to every other
request (the first fails), ``/counts`` tells how many requests each path got, after
``/fail/on`` every request but ``/ready`` and ``/fail/off`` answers 500, ``/bodies``
tells the sha256 of each non-empty request body per path (what a mirror got); a request
with ``Upgrade: test`` is switched to a byte echo after ``101``. Requests of every method
read their body (Content-Length or chunked) before answering.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import socket
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    version_name = os.environ.get("APP_VERSION", "v1")
    counts: dict[str, int] = {}
    bodies: dict[str, list[str]] = {}
    failing = False

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _body(self) -> bytes:
        if "chunked" in (self.headers.get("transfer-encoding") or "").lower():
            out = bytearray()
            while True:
                line = self.rfile.readline()
                size = int(line.split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return bytes(out)
                out += self.rfile.read(size)
                self.rfile.readline()
        n = int(self.headers.get("content-length") or 0)
        return self.rfile.read(n) if n else b""

    def _conn_count(self) -> int:
        n: int = getattr(self, "_served", 0) + 1  # one handler instance per connection
        self._served = n
        return n

    def _answer(self) -> None:
        body = self._body()
        path = self.path.split("?")[0]
        if (self.headers.get("upgrade") or "").lower() == "test":
            self.send_response(101)
            self.send_header("Connection", "Upgrade")
            self.send_header("Upgrade", "test")
            self.end_headers()
            self.wfile.flush()
            sock: socket.socket = self.connection
            while data := sock.recv(65536):
                sock.sendall(data)
            self.close_connection = True
            return
        if path.startswith("/slow/"):
            time.sleep(int(path.split("/")[2]) / 1000)
        if path.startswith("/bulk/"):
            n = int(path.split("/")[2])
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            chunk = b"x" * 65536
            if "length=1" in self.path:
                self.send_header("Content-Length", str(n))
                self.end_headers()
                while n > 0:
                    self.wfile.write(chunk[:n])
                    n -= len(chunk)
            else:
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                while n > 0:
                    part = chunk[:n]
                    self.wfile.write(b"%x\r\n%b\r\n" % (len(part), part))
                    n -= len(part)
                self.wfile.write(b"0\r\n\r\n")
            return
        counts = Handler.counts
        counts[path] = counts.get(path, 0) + 1
        if body:
            Handler.bodies.setdefault(path, []).append(hashlib.sha256(body).hexdigest())
        code = int(path.split("/")[2]) if path.startswith("/status/") else 200
        if path == "/flaky" and counts[path] % 2 == 1:
            code = 503
        if path in ("/fail/on", "/fail/off"):
            Handler.failing = path == "/fail/on"
        elif Handler.failing and path != "/ready":
            code = 500
        if path in ("/counts", "/bodies"):
            body_counts = json.dumps(counts if path == "/counts" else Handler.bodies).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body_counts)))
            self.end_headers()
            self.wfile.write(body_counts)
            return
        payload = json.dumps({
            "version": self.version_name, "path": self.path, "method": self.command,
            "host": self.headers.get("host"),
            "headers": {k.lower(): v for k, v in self.headers.items()},
            "body_len": len(body), "sha": hashlib.sha256(body).hexdigest(),
            "conn_requests": self._conn_count(),
        }).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("X-App-Version", self.version_name)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = _answer


def serve(version: str, host: str, port: int) -> ThreadingHTTPServer:
    handler = type("H", (Handler,), {"version_name": version})
    server = ThreadingHTTPServer((host, port), handler)
    server.daemon_threads = True
    return server


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--version", default=os.environ.get("APP_VERSION", "v1"))
    p.add_argument("--host", default=os.environ.get("POD_IP", "127.0.0.1"))
    p.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8080")))
    a = p.parse_args()
    server = serve(a.version, a.host, a.port)
    print(f"serving {a.version} on {a.host}:{a.port}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    sys.exit(0)


if __name__ == "__main__":
    main()
