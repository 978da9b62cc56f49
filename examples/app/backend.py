"""The example backend: answers JSON with its pod name, version and configured greeting.

Binds $POD_IP (not 0.0.0.0): replicas of one pod share the host's network on the process
runtime, so each must listen on its own pod address. On SIGTERM it stops accepting and
finishes the requests in flight, so rolling updates lose nothing.
"""

import json
import os
import signal
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

POD = os.environ.get("POD_NAME", "backend")
VERSION = os.environ.get("VERSION", "v1")
CONFIG_DIR = os.environ.get("CONFIG_DIR", "etc/config")


def greeting() -> str:
    try:
        with open(os.path.join(CONFIG_DIR, "greeting")) as f:
            return f.read().strip()
    except OSError:
        return "hello"


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        if self.path == "/healthz":
            body = b"ok"
        else:
            body = json.dumps({"pod": POD, "version": VERSION, "greeting": greeting()}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        print(f"{self.address_string()} {format % args}", flush=True)


def main() -> None:
    server = ThreadingHTTPServer((os.environ["POD_IP"], int(os.environ.get("PORT", "8080"))),
                                 Handler)
    server.daemon_threads = False
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    print(f"backend {VERSION} listening on {server.server_address}", flush=True)
    server.serve_forever()
    server.server_close()
    print("backend stopped", flush=True)


if __name__ == "__main__":
    main()
