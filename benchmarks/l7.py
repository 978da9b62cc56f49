"""The L7 HTTP data plane against a direct connection, HAProxy and nginx, as JSON.

Three kinds of processes, so that no two share a GIL: the backend (an HTTP/1.1 server
answering ``ok`` with keep-alive, and a bulk sender), the load generator, and this one,
which runs orchestra's ``HttpProxy`` (its own thread). HAProxy (HTTP mode, one thread)
and nginx (one worker, upstream keep-alive) run when installed (``apt-get install
haproxy nginx``); without them the result says they are missing. Everything listens on
127.0.0.1 and every loop is bounded.

Figures, for each path (direct, orchestra, haproxy, nginx), best of ``--rounds``:

- keepalive_rps: ``--requests`` GETs over ``--concurrency`` kept-alive connections;
- newconn_rps: the same with a new connection per request;
- latency_ms: p50/p99 of ``--latency-requests`` sequential requests on one kept-alive
  connection (light load), and the latency each proxy adds to the direct path;
- paced_latency_ms: p50/p99 at moderate load: ``--paced-requests`` at ``--rate``
  requests/s over 4 kept-alive connections, each on a fixed schedule;
- bulk_mb_s: one ``--bulk-mb`` MB response;
- cpu_us_per_request: CPU the proxy process spent per kept-alive request.

orchestra's data plane runs on uvloop (``orchestra``) and on asyncio's own loop
(``orchestra_asyncio``) in the same run (``--loop`` picks one).

Run: ``python benchmarks/l7.py [--requests 20000] [--concurrency 16] [--bulk-mb 100]
[--rounds 3] [--loop both] [--rate 1000] [--no-references]``; ``--quick`` for a smoke run.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from typing import Any

OK = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok"


# -- backend role ------------------------------------------------------------------------

class _Ok(asyncio.Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.t: asyncio.Transport = transport  # type: ignore[assignment]
        self.buf = b""

    def data_received(self, data: bytes) -> None:
        self.buf += data
        n = self.buf.count(b"\r\n\r\n")
        if n:
            closing = b"connection: close" in self.buf.lower()
            self.buf = self.buf[self.buf.rindex(b"\r\n\r\n") + 4:]
            self.t.write(OK * n)
            if closing:
                self.t.close()


def _bulk(sock: socket.socket, size: int) -> None:
    chunk = b"\0" * (1 << 20)
    while True:
        try:
            c, _ = sock.accept()
        except OSError:
            return
        with c, contextlib.suppress(OSError):
            head = b""
            while b"\r\n\r\n" not in head:
                data = c.recv(65536)
                if not data:
                    break
                head += data
            c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n"
                      % size)
            left = size
            while left > 0:
                left -= c.send(chunk[:min(len(chunk), left)])


def backend(size: int) -> None:
    ok, bulk = socket.socket(), socket.socket()
    for s in (ok, bulk):
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", 0))
        s.listen(1024)
    threading.Thread(target=_bulk, args=(bulk, size), daemon=True).start()

    async def main() -> None:
        server = await asyncio.get_running_loop().create_server(_Ok, sock=ok, backlog=1024)
        print(json.dumps({"ok": ok.getsockname()[1], "bulk": bulk.getsockname()[1]}),
              flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
        server.close()

    asyncio.run(main())


# -- client role -------------------------------------------------------------------------

REQ = b"GET / HTTP/1.1\r\nHost: bench\r\n\r\n"
REQ_CLOSE = b"GET / HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n"


async def _one(reader: asyncio.StreamReader) -> None:
    head = await reader.readuntil(b"\r\n\r\n")
    low = head.lower()
    i = low.index(b"content-length:") + 15
    n = int(low[i:low.index(b"\r\n", i)])
    await reader.readexactly(n)


async def client(mode: str, port: int, requests: int, concurrency: int,
                 rate: float = 0.0) -> dict[str, Any]:
    left = requests
    lat: list[float] = []

    async def paced() -> None:
        """Requests at ``rate`` per second over all connections: each connection sends
        on its own schedule (one every concurrency/rate seconds, phases spread). The
        latency counts from the send: the client's own timer wake-ups (asyncio rounds
        epoll's timeout up to a millisecond) are not the proxy's."""
        nonlocal left
        r, w = await asyncio.open_connection("127.0.0.1", port)
        period = concurrency / rate
        i = next(phase)
        due = time.perf_counter() + period * i / concurrency
        try:
            while left > 0:
                left -= 1
                delay = due - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                t0 = time.perf_counter()
                w.write(REQ)
                await _one(r)
                lat.append(time.perf_counter() - t0)
                due += period
        finally:
            w.close()

    phase = iter(range(concurrency))

    async def keepalive() -> None:
        nonlocal left
        r, w = await asyncio.open_connection("127.0.0.1", port)
        try:
            while left > 0:
                left -= 1
                t0 = time.perf_counter()
                w.write(REQ)
                await _one(r)
                lat.append(time.perf_counter() - t0)
        finally:
            w.close()

    async def newconn() -> None:
        nonlocal left
        while left > 0:
            left -= 1
            r, w = await asyncio.open_connection("127.0.0.1", port)
            w.write(REQ_CLOSE)
            await _one(r)
            w.close()

    if mode == "bulk":
        r, w = await asyncio.open_connection("127.0.0.1", port, limit=1 << 20)
        t0 = time.perf_counter()
        w.write(b"GET /bulk HTTP/1.1\r\nHost: bench\r\n\r\n")
        head = await r.readuntil(b"\r\n\r\n")
        low = head.lower()
        i = low.index(b"content-length:") + 15
        n = total = int(low[i:low.index(b"\r\n", i)])
        while n > 0:
            data = await r.read(1 << 20)
            if not data:
                raise ConnectionError("bulk ended early")
            n -= len(data)
        w.close()
        return {"mb_s": round(total / (1 << 20) / (time.perf_counter() - t0), 1)}
    worker = {"keepalive": keepalive, "latency": keepalive, "paced": paced}.get(mode, newconn)
    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - t0
    out: dict[str, Any] = {"rps": round(requests / elapsed)}
    if mode in ("latency", "paced"):
        lat.sort()
        out["p50_ms"] = round(lat[len(lat) // 2] * 1000, 3)
        out["p99_ms"] = round(lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1000, 3)
    return out


def run_client(mode: str, port: int, requests: int, concurrency: int,
               rate: float = 0.0) -> dict[str, Any]:
    r = subprocess.run([sys.executable, __file__, "--role", "client", "--mode", mode,
                        "--port", str(port), "--requests", str(requests),
                        "--concurrency", str(concurrency), "--rate", str(rate)],
                       capture_output=True, text=True, timeout=300, check=False)
    if r.returncode != 0:
        raise RuntimeError(f"client {mode} on port {port} failed: {r.stderr[-2000:]}")
    out: dict[str, Any] = json.loads(r.stdout)
    return out


# -- proxies -----------------------------------------------------------------------------

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _wait_port(port: int, proc: subprocess.Popen[bytes] | None = None) -> None:
    for _ in range(200):
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"exited with {proc.returncode}")
        time.sleep(0.02)
    raise RuntimeError(f"nothing listens on {port}")


@contextlib.contextmanager
def haproxy(ok: int, bulk: int) -> Iterator[tuple[int, int, str]]:
    port = _free_port()
    with tempfile.TemporaryDirectory() as d:
        cfg = os.path.join(d, "haproxy.cfg")
        with open(cfg, "w") as f:
            f.write(f"""global
  maxconn 8192
  nbthread 1
defaults
  mode http
  option http-keep-alive
  timeout connect 5s
  timeout client 60s
  timeout server 60s
frontend f
  bind 127.0.0.1:{port}
  use_backend bulk if {{ path_beg /bulk }}
  default_backend ok
backend ok
  server s1 127.0.0.1:{ok}
backend bulk
  server s1 127.0.0.1:{bulk}
""")
        proc = subprocess.Popen(["haproxy", "-db", "-f", cfg], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        try:
            _wait_port(port, proc)
            version = subprocess.run(["haproxy", "-v"], capture_output=True, text=True,
                                     check=False).stdout.split("\n")[0]
            yield port, proc.pid, version
        finally:
            proc.terminate()
            proc.wait(10)


@contextlib.contextmanager
def nginx(ok: int, bulk: int) -> Iterator[tuple[int, int, str]]:
    port = _free_port()
    with tempfile.TemporaryDirectory() as d:
        os.chmod(d, 0o755)
        cfg = os.path.join(d, "nginx.conf")
        temps = " ".join(f"{k}_temp_path {d}/{k};" for k in
                         ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
        user = "user root;" if os.geteuid() == 0 else ""
        with open(cfg, "w") as f:
            f.write(f"""{user}
worker_processes 1;
daemon off;
pid {d}/nginx.pid;
error_log {d}/error.log;
events {{ worker_connections 8192; }}
http {{
  access_log off;
  keepalive_requests 1000000;
  {temps}
  upstream ok {{ server 127.0.0.1:{ok}; keepalive 64; }}
  server {{
    listen 127.0.0.1:{port};
    location / {{ proxy_pass http://ok; proxy_http_version 1.1;
                 proxy_set_header Connection ""; }}
    location /bulk {{ proxy_pass http://127.0.0.1:{bulk}; proxy_buffering off; }}
  }}
}}
""")
        proc = subprocess.Popen(["nginx", "-c", cfg, "-p", d], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        try:
            _wait_port(port, proc)
            version = subprocess.run(["nginx", "-v"], capture_output=True, text=True,
                                     check=False).stderr.strip()
            # nginx's worker is a child of the master: its CPU is what the proxy spends
            with open(f"/proc/{proc.pid}/task/{proc.pid}/children") as f:
                children = f.read().split()
            yield port, int(children[0]) if children else proc.pid, version
        finally:
            proc.terminate()
            proc.wait(10)


async def _orchestra(ok: int, bulk: int, loop: str = "auto") -> tuple[Any, int]:
    from orchestra.net.l7 import (
        Cluster,
        HttpProxy,
        Match,
        PathMatch,
        Route,
        RouteTable,
        VirtualHost,
        WeightedCluster,
    )

    proxy = HttpProxy(loop=loop)
    table = RouteTable((VirtualHost("bench", ("*",), (
        Route("bulk", (Match(path=PathMatch("Prefix", "/bulk")),),
              (WeightedCluster(Cluster("bulk", (("127.0.0.1", bulk),))),)),
        Route("ok", destinations=(WeightedCluster(Cluster("ok", (("127.0.0.1", ok),))),)),
    )),))
    _, port = await proxy.listen("bench", ("127.0.0.1", 0), table=table)
    return proxy, port


def measure(port: int, pid: int | None, args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {}
    cpu0 = _cpu_seconds(pid) if pid else time.process_time()
    out["keepalive_rps"] = run_client("keepalive", port, args.requests, args.concurrency)["rps"]
    cpu1 = _cpu_seconds(pid) if pid else time.process_time()
    out["cpu_us_per_request"] = round((cpu1 - cpu0) / args.requests * 1e6, 1)
    out["newconn_rps"] = run_client("newconn", port, args.requests // 4,
                                    args.concurrency)["rps"]
    lat = run_client("latency", port, args.latency_requests, 1)
    out["latency_ms"] = {"p50": lat["p50_ms"], "p99": lat["p99_ms"]}
    lat = run_client("paced", port, args.paced_requests, 4, args.rate)
    out["paced_latency_ms"] = {"p50": lat["p50_ms"], "p99": lat["p99_ms"]}
    out["bulk_mb_s"] = run_client("bulk", port, 1, 1)["mb_s"]
    return out


def _best(runs: list[dict[str, Any]]) -> dict[str, Any]:
    best = dict(runs[0])
    for r in runs[1:]:
        for k in ("keepalive_rps", "newconn_rps", "bulk_mb_s"):
            best[k] = max(best[k], r[k])
        best["cpu_us_per_request"] = min(best["cpu_us_per_request"], r["cpu_us_per_request"])
        for key in ("latency_ms", "paced_latency_ms"):
            for q in ("p50", "p99"):
                best[key][q] = min(best[key][q], r[key][q])
    return best


def _start_backend(args: argparse.Namespace) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, __file__, "--role", "backend", "--bulk-mb",
                             str(args.bulk_mb)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)


async def main(args: argparse.Namespace) -> dict[str, Any]:
    back = await asyncio.to_thread(_start_backend, args)
    assert back.stdout is not None and back.stdin is not None
    ports = json.loads(back.stdout.readline())
    ok, bulk = ports["ok"], ports["bulk"]
    loops = ("uvloop", "asyncio") if args.loop == "both" else (args.loop,)
    proxies = {("orchestra" if loop == loops[0] else f"orchestra_{loop}"):
               await _orchestra(ok, bulk, loop) for loop in loops}
    result: dict[str, Any] = {"requests": args.requests, "concurrency": args.concurrency,
                              "bulk_mb": args.bulk_mb, "rounds": args.rounds,
                              "paced_rate": args.rate, "paced_concurrency": 4,
                              "orchestra_loops": {
                                  name: type(p._loop).__module__.split(".")[0]
                                  for name, (p, _) in proxies.items()},
                              "references": {}}
    runs: dict[str, list[dict[str, Any]]] = {"direct": [], **{n: [] for n in proxies}}
    refs: dict[str, Any] = {}
    stack = contextlib.ExitStack()
    try:
        if not args.no_references:
            for name, start in (("haproxy", haproxy), ("nginx", nginx)):
                if shutil.which(name) is None:
                    result["references"][f"{name}_missing"] = f"{name} is not installed"
                    continue
                try:
                    port, pid, version = stack.enter_context(start(ok, bulk))
                except (OSError, RuntimeError) as e:
                    result["references"][f"{name}_missing"] = f"{name} did not start: {e}"
                    continue
                refs[name] = (port, pid)
                result["references"][name] = version
                runs[name] = []
        else:
            result["references"]["skipped"] = "--no-references"

        # a direct path needs the bulk on the same port: the client asks /bulk of "ok"
        # for every other path, so the direct bulk figure is measured on the bulk port
        def direct() -> dict[str, Any]:
            out = measure(ok, None, args)
            out["bulk_mb_s"] = run_client("bulk", bulk, 1, 1)["mb_s"]
            out.pop("cpu_us_per_request")
            return out

        for _ in range(args.rounds):
            runs["direct"].append(await asyncio.to_thread(direct))
            for name, (_, oport) in proxies.items():
                runs[name].append(await asyncio.to_thread(measure, oport, None, args))
            for name, (port, pid) in refs.items():
                runs[name].append(await asyncio.to_thread(measure, port, pid, args))
    finally:
        stack.close()
        for proxy, _ in proxies.values():
            await proxy.close()
        back.stdin.write("stop\n")
        back.stdin.flush()
        back.wait(10)
    paths: dict[str, Any] = {}
    for name, rs in runs.items():
        if not rs:
            continue
        if name == "direct":
            for r in rs:
                r["cpu_us_per_request"] = 0.0
        paths[name] = _best(rs)
    d = paths["direct"]
    for name, p in paths.items():
        if name == "direct":
            p.pop("cpu_us_per_request")
            continue
        p["added_latency_ms"] = {q: round(p["latency_ms"][q] - d["latency_ms"][q], 3)
                                 for q in ("p50", "p99")}
        p["paced_added_latency_ms"] = {
            q: round(p["paced_latency_ms"][q] - d["paced_latency_ms"][q], 3)
            for q in ("p50", "p99")}
        p["vs_direct"] = {k: round(p[k] / d[k], 2)
                          for k in ("keepalive_rps", "newconn_rps", "bulk_mb_s")}
    for oname in proxies:
        o = paths[oname]
        for name in refs:
            o[f"vs_{name}"] = {k: round(o[k] / paths[name][k], 2)
                               for k in ("keepalive_rps", "newconn_rps", "bulk_mb_s")}
            ref_cpu = paths[name]["cpu_us_per_request"]  # (0: below /proc's 10 ms tick)
            o[f"vs_{name}"]["cpu_per_request"] = round(
                o["cpu_us_per_request"] / ref_cpu, 2) if ref_cpu else None
    result["paths"] = paths
    return result


def cli() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--role", choices=("main", "backend", "client"), default="main")
    p.add_argument("--mode", default="keepalive")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--requests", type=int, default=20000)
    p.add_argument("--latency-requests", type=int, default=2000)
    p.add_argument("--concurrency", type=int, default=16)
    p.add_argument("--bulk-mb", type=int, default=100)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--no-references", action="store_true")
    p.add_argument("--loop", choices=("uvloop", "asyncio", "both"), default="both",
                   help="the orchestra data plane's event loop(s), measured in the same run")
    p.add_argument("--rate", type=float, default=1000.0,
                   help="requests/s of the paced (moderate load) latency figure")
    p.add_argument("--paced-requests", type=int, default=3000)
    p.add_argument("--quick", action="store_true")
    args = p.parse_args()
    if args.role == "backend":
        backend(args.bulk_mb << 20)
        return
    if args.role == "client":
        print(json.dumps(asyncio.run(client(args.mode, args.port, args.requests,
                                            args.concurrency, args.rate))))
        return
    if args.quick:
        args.requests, args.latency_requests, args.bulk_mb, args.rounds = 400, 100, 4, 1
        args.paced_requests = 200
        args.concurrency = min(args.concurrency, 4)
    print(json.dumps(asyncio.run(main(args)), indent=2))


if __name__ == "__main__":
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src"))
    cli()
