"""The example front end: calls the backend Service and reports who answered.

It finds the backend through Kubernetes' service environment variables
(BACKEND_SERVICE_HOST/PORT), reads an API token from a Secret (never printing it), and
binds $POD_IP. Readiness (/ready) fails until the backend has answered once.
"""

import json
import os
import signal
import threading
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

POD = os.environ.get("POD_NAME", "frontend")
BACKEND = f"http://{os.environ['BACKEND_SERVICE_HOST']}:{os.environ['BACKEND_SERVICE_PORT']}/"
TOKEN = os.environ.get("API_TOKEN", "")
state = {"backend_seen": False}


def call_backend() -> dict[str, object]:
    req = urllib.request.Request(BACKEND, headers={"Authorization": f"Bearer {TOKEN}"})
    with urllib.request.urlopen(req, timeout=5) as resp:
        state["backend_seen"] = True
        return json.loads(resp.read())


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        status = 200
        if self.path == "/healthz":
            body = b"ok"
        elif self.path == "/ready":
            if not state["backend_seen"]:
                try:
                    call_backend()
                except OSError:
                    status = 503
            body = b"ready" if status == 200 else b"waiting for backend"
        else:
            try:
                reply = {"frontend": POD, "backend": call_backend(), "token_set": bool(TOKEN)}
            except OSError as exc:
                status, reply = 502, {"frontend": POD, "error": str(exc)}
            body = json.dumps(reply).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


def main() -> None:
    server = ThreadingHTTPServer((os.environ["POD_IP"], 8080), Handler)
    server.daemon_threads = False
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    print(f"frontend listening on {server.server_address}, backend at {BACKEND}", flush=True)
    server.serve_forever()
    server.server_close()


if __name__ == "__main__":
    main()
