"""How soon a routing change takes effect, and what kept-alive clients see meanwhile; JSON.

A cluster on the process runtime and the loopback network runs two versions of a tiny
HTTP app (``web-v1``, ``web-v2``, a Service each) behind the built-in Gateway, routed by
one HTTPRoute with weights. A client process keeps ``--conns`` kept-alive connections
busy through the gateway (a request every ``--interval`` seconds on each), while this
process flips the route's weights ``--changes`` times (100/0 -> 0/100 -> 100/0 ...),
``--gap`` seconds apart.

For each change: ``write_to_effect_ms``, from the moment ``apply`` is called to the send
time of the first request after which every request sent (until the next change) got
the new version. Both processes read ``CLOCK_MONOTONIC``, which is system-wide. Also:
``failed``, requests that got an error or a status other than 200, on connections that
were never re-opened (must be 0), and ``apply_ms``, how long the write itself took.
Aim: every change within 100 ms, none failed.

    python benchmarks/l7_change.py [--changes 20] [--gap 0.4] [--conns 4] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
from typing import Any

GW = "gateway.networking.k8s.io/v1"
GATEWAY_REF = "gateways.gateway.networking.k8s.io/web"

APP = """
import http.server, os, sys
body = os.environ["VERSION"].encode()
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_GET(self):  # one write: no Nagle / delayed-ACK stall between head and body
        self.wfile.write(b"HTTP/1.1 200 OK\\r\\nContent-Length: %d\\r\\n\\r\\n%b"
                         % (len(body), body))
    def log_message(self, *a):
        pass
http.server.ThreadingHTTPServer((os.environ.get("POD_IP", "127.0.0.1"), int(sys.argv[1])),
                                H).serve_forever()
"""


def _app(version: str) -> list[dict[str, Any]]:
    labels = {"app": "web", "version": version}
    container = {"name": "app", "image": "python:3",
                 "command": [sys.executable, "-c", APP, "8080"],
                 "env": [{"name": "VERSION", "value": version}],
                 "ports": [{"name": "http", "containerPort": 8080}],
                 "readinessProbe": {"tcpSocket": {"port": "http"}, "periodSeconds": 1}}
    return [{"apiVersion": "apps/v1", "kind": "Deployment",
             "metadata": {"name": f"web-{version}"},
             "spec": {"replicas": 1, "selector": {"matchLabels": labels},
                      "template": {"metadata": {"labels": labels},
                                   "spec": {"containers": [container],
                                            "terminationGracePeriodSeconds": 1}}}},
            {"apiVersion": "v1", "kind": "Service", "metadata": {"name": f"web-{version}"},
             "spec": {"selector": labels,
                      "ports": [{"name": "http", "port": 80, "targetPort": "http"}]}}]


def _route(w1: int, w2: int) -> dict[str, Any]:
    return {"apiVersion": GW, "kind": "HTTPRoute", "metadata": {"name": "web"},
            "spec": {"parentRefs": [{"name": "web"}], "rules": [{"backendRefs": [
                {"name": "web-v1", "port": 80, "weight": w1},
                {"name": "web-v2", "port": 80, "weight": w2}]}]}}


# -- client role -------------------------------------------------------------------------

async def poll(port: int, conns: int, interval: float, duration: float) -> dict[str, Any]:
    """Each connection: a GET every ``interval`` seconds until ``duration`` is over.
    Records (send time, version or "!error") per request; a failed connection stops."""
    records: list[tuple[float, str]] = []
    deadline = time.monotonic() + duration

    async def one() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            while time.monotonic() < deadline:
                t0 = time.monotonic()
                try:
                    writer.write(b"GET / HTTP/1.1\r\nHost: bench\r\n\r\n")
                    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
                    low = head.lower()
                    i = low.index(b"content-length:") + 15
                    body = await reader.readexactly(int(low[i:low.index(b"\r\n", i)]))
                except (OSError, asyncio.IncompleteReadError, TimeoutError, ValueError) as e:
                    records.append((t0, f"!{type(e).__name__}"))
                    return
                status = head.split(b" ", 2)[1]
                records.append((t0, body.decode() if status == b"200" else f"!{status!r}"))
                await asyncio.sleep(max(0.0, t0 + interval - time.monotonic()))
        finally:
            writer.close()

    print("ready", flush=True)
    await asyncio.gather(*(one() for _ in range(conns)))
    return {"records": sorted(records)}


# -- main role ---------------------------------------------------------------------------

def effect_times(records: list[tuple[float, str]], changes: list[tuple[float, str]],
                 horizon: float) -> list[float | None]:
    """For each change (time, new version): seconds until the first send after which
    every send of the next ``horizon`` seconds got the new version (None: it never did).
    The horizon stops short of the next change: a client stalled between reading the
    clock and sending may send after the next change a request stamped before it."""
    out: list[float | None] = []
    for k, (t, version) in enumerate(changes):
        end = changes[k + 1][0] if k + 1 < len(changes) else float("inf")
        end = min(end, t + horizon)
        window = [(s, v) for s, v in records if t <= s < end]
        first: float | None = None
        for s, v in window:
            if v == version:
                if first is None:
                    first = s
            else:
                first = None
        out.append(None if first is None else max(0.0, first - t))
    return out


async def main(args: argparse.Namespace) -> dict[str, Any]:
    import orchestra as oc

    async with oc.Cluster(runtime="process", nodes=1) as c:
        await c.apply([*_app("v1"), *_app("v2")])
        await c.apply({"apiVersion": GW, "kind": "Gateway", "metadata": {"name": "web"},
                       "spec": {"gatewayClassName": "orchestra", "listeners": [
                           {"name": "http", "protocol": "HTTP", "port": 80}]}})
        await c.apply(_route(100, 0))
        for v in ("v1", "v2"):
            await c.wait_for(f"deployment/web-{v}", "Available", timeout=60)
            await c.wait_for(f"endpoints/web-{v}", lambda e: any(
                s.addresses for s in e.subsets or ()), timeout=60)
        port = c.endpoint(GATEWAY_REF, 80)[1]
        for _ in range(200):  # bounded: the route is programmed and v1 answers
            if await asyncio.to_thread(_probe, port) == "v1":
                break
            await asyncio.sleep(0.05)
        else:
            raise RuntimeError("the gateway never answered v1")
        duration = args.changes * args.gap + 1.0
        proc = await asyncio.create_subprocess_exec(
            sys.executable, __file__, "--role", "client", "--port", str(port),
            "--conns", str(args.conns), "--interval", str(args.interval),
            "--duration", str(duration), stdout=subprocess.PIPE)
        assert proc.stdout is not None
        await proc.stdout.readline()  # "ready"
        await asyncio.sleep(0.3)
        changes: list[tuple[float, str]] = []
        apply_ms: list[float] = []
        for k in range(args.changes):
            version = "v2" if k % 2 == 0 else "v1"
            t0 = time.monotonic()
            await c.apply(_route(0, 100) if version == "v2" else _route(100, 0))
            apply_ms.append((time.monotonic() - t0) * 1000)
            changes.append((t0, version))
            await asyncio.sleep(args.gap)
        out, _ = await asyncio.wait_for(proc.communicate(), duration + 30)
    records = [(s, v) for s, v in json.loads(out.decode().splitlines()[-1])["records"]]
    effects = effect_times(records, changes, args.gap * 0.75)
    done = sorted(e * 1000 for e in effects if e is not None)
    failed = sum(1 for _, v in records if v.startswith("!"))
    return {"changes": args.changes, "conns": args.conns, "interval_s": args.interval,
            "requests": len(records), "failed": failed,
            "not_switched": sum(1 for e in effects if e is None),
            "write_to_effect_ms": {"p50": round(done[len(done) // 2], 1) if done else None,
                                   "max": round(done[-1], 1) if done else None,
                                   "each": [round(e, 1) for e in done]},
            "apply_ms": {"p50": round(sorted(apply_ms)[len(apply_ms) // 2], 1),
                         "max": round(max(apply_ms), 1)},
            "within_100ms": bool(done) and done[-1] <= 100 and len(done) == args.changes}


def _probe(port: int) -> str:
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
    try:
        conn.request("GET", "/", headers={"Host": "bench"})
        r = conn.getresponse()
        body = r.read().decode()
        return body if r.status == 200 else ""
    except OSError:
        return ""
    finally:
        conn.close()


def cli() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--role", choices=("main", "client"), default="main")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--changes", type=int, default=20)
    p.add_argument("--gap", type=float, default=0.4)
    p.add_argument("--conns", type=int, default=4)
    p.add_argument("--interval", type=float, default=0.002)
    p.add_argument("--duration", type=float, default=10.0)
    p.add_argument("--quick", action="store_true")
    args = p.parse_args()
    if args.role == "client":
        args.duration = min(args.duration, 120.0)
        print(json.dumps(asyncio.run(poll(args.port, args.conns, args.interval,
                                          args.duration))))
        return
    if args.quick:
        args.changes = 4
    args.changes = min(args.changes, 200)
    print(json.dumps(asyncio.run(main(args)), indent=2))


if __name__ == "__main__":
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src"))
    cli()
