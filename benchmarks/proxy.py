"""Service proxy throughput vs a direct connection, printed as JSON.

Three processes, so that no two of them share a GIL: the backend (minimal HTTP servers
and a bulk sender), the clients, and this one, which runs the ``ServiceProxy``. Each
figure is measured direct and through the proxy in the same run:

- short: HTTP/1.1 requests with ``Connection: close`` (a new TCP connection each),
  ``--requests`` per round, from each of the ``--concurrency`` client counts;
- short_keepalive: the same number of requests on that many kept-alive connections (how
  HTTP clients and load generators usually send them);
- bulk: ``--bulk-mb`` MB on one connection; MB/s and the ratio.

Throughput is a path's capacity, so each request figure is the path's best rate over the
client counts (the default sweep 4, 16, 64 takes every path to saturation), and the ratio
is proxied peak over direct peak. Each client count's own figures and ratios are under
``by_concurrency``: with few clients a proxy, which adds a hop to every request, looks
worse than at saturation, because the cores then wait on each other's wake-ups.

References, in the same rounds: a plain asyncio streams proxy in a process of its own (the
baseline the issue names: ``read``, ``write``, ``drain``), and, when ``haproxy`` is
installed, HAProxy (one thread, TCP mode; splice for bulk): what a userspace TCP proxy
written in C reaches on the same host.

Run: ``python benchmarks/proxy.py [--requests 3000] [--concurrency 4,16,64]
[--bulk-mb 100] [--rounds 5] [--no-haproxy]``. Rounds are interleaved and the best of each
path is kept: the host is shared, and two cores run three busy processes.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import json
import multiprocessing as mp
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from multiprocessing.connection import Connection
from typing import Any

from orchestra.net.l4 import ServiceProxy

RESPONSE = (b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n"
            b"Connection: close\r\n\r\nok")
REQUEST = b"GET / HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n"
KEEP_RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok"
KEEP_REQUEST = b"GET / HTTP/1.1\r\nHost: bench\r\n\r\n"
WORKLOADS = ("short", "keepalive", "bulk")


# -- backend process ---------------------------------------------------------------------

class _Http(asyncio.Protocol):
    """One response per connection, then close (``Connection: close``)."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.t: asyncio.Transport = transport  # type: ignore[assignment]
        self.buf = b""

    def data_received(self, data: bytes) -> None:
        self.buf += data
        if b"\r\n\r\n" in self.buf:
            self.t.write(RESPONSE)
            self.t.close()


class _KeepAlive(_Http):
    """One response per request, on the same connection."""

    def data_received(self, data: bytes) -> None:
        self.buf += data
        n = self.buf.count(b"\r\n\r\n")
        if n:
            self.buf = self.buf[self.buf.rindex(b"\r\n\r\n") + 4:]
            self.t.write(KEEP_RESPONSE * n)


def _bulk_server(sock: socket.socket, size: int) -> None:
    chunk = b"\0" * (1 << 20)
    while True:
        try:
            c, _ = sock.accept()
        except OSError:
            return
        with c, contextlib.suppress(OSError):  # a probe that hung up
            left = size
            while left > 0:
                left -= c.send(chunk[: min(len(chunk), left)])
            c.shutdown(socket.SHUT_WR)
            c.recv(1)


def backend_main(socks: dict[str, socket.socket], size: int, ready: Connection) -> None:
    threading.Thread(target=_bulk_server, args=(socks["bulk"], size), daemon=True).start()

    async def main() -> None:
        loop = asyncio.get_running_loop()
        servers = [await loop.create_server(_Http, sock=socks["short"], backlog=1024),
                   await loop.create_server(_KeepAlive, sock=socks["keepalive"])]
        ready.send("ok")
        await loop.run_in_executor(None, ready.recv)
        for server in servers:
            server.close()

    asyncio.run(main())


# -- client process ----------------------------------------------------------------------

async def _rate(worker: Callable[[], Awaitable[None]], requests: int,
                concurrency: int) -> float:
    """Requests per second of ``concurrency`` copies of ``worker`` sharing ``requests``."""
    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return requests / (time.perf_counter() - t0)


async def _short(addr: tuple[str, int], requests: int, concurrency: int) -> float:
    loop = asyncio.get_running_loop()
    counter = iter(range(requests))

    async def worker() -> None:
        for _ in counter:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setblocking(False)
            try:
                await loop.sock_connect(s, addr)
                await loop.sock_sendall(s, REQUEST)
                got = b""
                while True:
                    part = await loop.sock_recv(s, 4096)
                    if not part:
                        break
                    got += part
                if not got.endswith(b"ok"):
                    raise RuntimeError(f"bad response {got!r}")
            finally:
                s.close()

    return await _rate(worker, requests, concurrency)


async def _keepalive(addr: tuple[str, int], requests: int, concurrency: int) -> float:
    loop = asyncio.get_running_loop()
    counter = iter(range(requests))

    async def worker() -> None:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            await loop.sock_connect(s, addr)
            for _ in counter:
                await loop.sock_sendall(s, KEEP_REQUEST)
                got = b""
                while len(got) < len(KEEP_RESPONSE):
                    part = await loop.sock_recv(s, 4096)
                    if not part:
                        raise RuntimeError(f"connection closed after {got!r}")
                    got += part
                if got != KEEP_RESPONSE:
                    raise RuntimeError(f"bad response {got!r}")
        finally:
            s.close()

    return await _rate(worker, requests, concurrency)


def _bulk(addr: tuple[str, int], size: int) -> float:
    buf = bytearray(1 << 20)
    with socket.create_connection(addr) as s:
        t0 = time.perf_counter()
        got = 0
        while True:
            n = s.recv_into(buf)
            if not n:
                break
            got += n
        dt = time.perf_counter() - t0
    if got != size:
        raise RuntimeError(f"bulk: got {got} bytes of {size}")
    return size / dt / 1e6


def client_main(conn: Connection) -> None:
    while True:
        job = conn.recv()
        if job is None:
            return
        kind, addr, *rest = job
        if kind == "short":
            conn.send(asyncio.run(_short(tuple(addr), *rest)))
        elif kind == "keepalive":
            conn.send(asyncio.run(_keepalive(tuple(addr), *rest)))
        else:
            conn.send(_bulk(tuple(addr), *rest))


# -- the plain asyncio proxy reference ---------------------------------------------------

async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(ConnectionError):
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()


async def _plain_forward(backend: tuple[str, int], reader: asyncio.StreamReader,
                         writer: asyncio.StreamWriter) -> None:
    try:
        b_reader, b_writer = await asyncio.open_connection(*backend)
    except OSError:
        writer.close()
        return
    await asyncio.gather(_pipe(reader, b_writer), _pipe(b_reader, writer))
    b_writer.close()
    writer.close()


def plain_proxy_main(socks: dict[str, socket.socket], backends: dict[str, tuple[str, int]],
                     ready: Connection) -> None:
    """The baseline the issue names: a plain asyncio streams proxy, one per process."""

    async def main() -> None:
        loop = asyncio.get_running_loop()
        servers = [await asyncio.start_server(functools.partial(_plain_forward, backends[k]),
                                              sock=sock, backlog=1024)
                   for k, sock in socks.items()]
        ready.send("ok")
        await loop.run_in_executor(None, ready.recv)
        for server in servers:
            server.close()

    asyncio.run(main())


# -- the HAProxy reference ---------------------------------------------------------------

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _proc_cpu(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` (from /proc, in clock ticks)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextlib.contextmanager
def _haproxy(backends: dict[str, tuple[str, int]]
             ) -> Iterator[tuple[int, dict[str, tuple[str, int]]]]:
    """HAProxy forwarding a free loopback port to each backend: its pid and its addresses
    by workload. One thread (as the orchestra proxy has one event thread), TCP mode,
    splice for bulk."""
    front = {kind: ("127.0.0.1", _free_port()) for kind in backends}
    lines = ["global", "    nbthread 1", "    maxconn 256",
             "defaults", "    mode tcp", "    timeout connect 5s", "    timeout client 60s",
             "    timeout server 60s"]
    for kind, (host, port) in backends.items():
        fhost, fport = front[kind]
        lines += [f"listen {kind}", f"    bind {fhost}:{fport}",
                  f"    server backend {host}:{port}"]
        if kind == "bulk":
            lines += ["    option splice-request", "    option splice-response"]
    with tempfile.TemporaryDirectory(prefix="orch-bench-") as tmp:
        cfg = os.path.join(tmp, "haproxy.cfg")
        with open(cfg, "w") as f:
            f.write("\n".join(lines) + "\n")
        proc = subprocess.Popen(["haproxy", "-db", "-f", cfg], stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE)
        try:
            deadline = time.monotonic() + 10
            for addr in front.values():
                while True:
                    if proc.poll() is not None:
                        err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
                        raise RuntimeError(f"haproxy exited: {err.strip()}")
                    try:
                        socket.create_connection(addr, timeout=1).close()
                        break
                    except OSError:
                        if time.monotonic() > deadline:
                            raise RuntimeError(f"haproxy is not listening on {addr}") from None
                        time.sleep(0.02)
            yield proc.pid, front
        finally:
            proc.terminate()
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            if proc.stderr is not None:
                proc.stderr.close()


def _haproxy_version() -> str:
    out = subprocess.run(["haproxy", "-v"], capture_output=True, text=True, check=False)
    words = out.stdout.split()
    return words[2] if len(words) > 2 else "unknown"


# -- this process: the proxy -------------------------------------------------------------

def _cpu() -> float:
    t = os.times()
    return t.user + t.system


def _listen(host: str) -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((host, 0))
    return s


def _serve(ctx: Any, target: Callable[..., None], arg: Any
           ) -> tuple[Any, Connection, dict[str, tuple[str, int]]]:
    """Start ``target(sockets, arg, pipe)`` in a forked process, with a listening loopback
    socket per workload: the process, this end of the pipe, and the addresses."""
    socks = {kind: _listen("127.0.0.1") for kind in WORKLOADS}
    for s in socks.values():
        s.listen(1024)
    addrs = {kind: s.getsockname() for kind, s in socks.items()}
    parent, child = ctx.Pipe()
    proc = ctx.Process(target=target, args=(socks, arg, child), daemon=True)
    proc.start()
    for s in socks.values():
        s.close()
    return proc, parent, addrs


async def run(args: argparse.Namespace) -> dict[str, Any]:
    size = args.bulk_mb * 1_000_000
    ctx = mp.get_context("fork")
    backend, b_parent, direct = _serve(ctx, backend_main, size)
    c_parent, c_child = ctx.Pipe()
    client = ctx.Process(target=client_main, args=(c_child,), daemon=True)
    client.start()
    plain_proxy, p_parent, plain = _serve(ctx, plain_proxy_main, direct)
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, b_parent.recv)
    await loop.run_in_executor(None, p_parent.recv)

    proxy = ServiceProxy()
    proxied: dict[str, tuple[str, int]] = {}
    for kind in WORKLOADS:
        sock = _listen("127.0.0.1")
        proxied[kind] = sock.getsockname()
        await proxy.set_backends(proxied[kind], [direct[kind]], sock=sock)

    async def ask(job: tuple[Any, ...]) -> float:
        c_parent.send(job)
        result: float = await loop.run_in_executor(None, c_parent.recv)
        return result

    use_haproxy = args.haproxy and shutil.which("haproxy") is not None
    references: dict[str, str | None] = {
        "asyncio": "a plain asyncio streams proxy in a process of its own",
        "haproxy": f"haproxy {_haproxy_version()}, one thread" if use_haproxy else None}
    if not use_haproxy:
        references["haproxy_missing"] = ("haproxy is not installed" if args.haproxy
                                         else "--no-haproxy")
    levels = _levels(args.concurrency)
    best: dict[tuple[str, str, int], float] = {}  # (workload, path, clients): best rate
    cpu: dict[tuple[str, int], float] = {}  # CPU seconds on the short rounds, by proxy
    try:
        with contextlib.ExitStack() as stack:
            paths = {"direct": direct, "proxy": proxied, "asyncio": plain}
            assert plain_proxy.pid is not None
            cpus: dict[str, Callable[[], float]] = {
                "proxy": _cpu, "asyncio": functools.partial(_proc_cpu, plain_proxy.pid)}
            if use_haproxy:
                pid, paths["haproxy"] = stack.enter_context(_haproxy(direct))
                cpus["haproxy"] = functools.partial(_proc_cpu, pid)
            for addrs in paths.values():  # warm up every path
                await ask(("short", addrs["short"], 200, levels[0]))
                await ask(("keepalive", addrs["keepalive"], 200, levels[0]))
            for kind in WORKLOADS:
                # Interleaved, best of: the host is shared. A bulk transfer takes only
                # tens of milliseconds, so it gets three times the rounds.
                for clients in (levels if kind != "bulk" else (1,)):
                    for _ in range(args.rounds * (3 if kind == "bulk" else 1)):
                        for path, addrs in paths.items():
                            job = ((kind, addrs[kind], size) if kind == "bulk" else
                                   (kind, addrs[kind], args.requests, clients))
                            measure = cpus.get(path) if kind == "short" else None
                            t0 = measure() if measure else 0.0
                            got = await ask(job)
                            if measure:
                                cpu[path, clients] = cpu.get((path, clients), 0.0) \
                                    + measure() - t0
                            key = (kind, path, clients)
                            best[key] = max(best.get(key, 0.0), got)
    finally:
        c_parent.send(None)
        b_parent.send("stop")
        p_parent.send("stop")
        await proxy.close()
        for p in (client, backend, plain_proxy):
            await loop.run_in_executor(None, p.join, 10)
        for p in (client, backend, plain_proxy):
            if p.is_alive():
                p.kill()
                p.join()

    def rates(kind: str, clients: int, unit: str) -> dict[str, Any]:
        """Each path's best rate with ``clients`` clients, and its ratio to direct."""
        direct_rate = best[kind, "direct", clients]
        out: dict[str, Any] = {f"direct_{unit}": round(direct_rate)}
        for path in ("proxy", "asyncio", "haproxy"):
            if (kind, path, clients) in best:
                rate = best[kind, path, clients]
                out[f"{path}_{unit}"] = round(rate)
                out["ratio" if path == "proxy" else f"{path}_ratio"] = \
                    round(rate / direct_rate, 3)
            if kind == "short" and (path, clients) in cpu:
                out[f"{path}_cpu_us_per_request"] = round(
                    cpu[path, clients] / args.rounds / args.requests * 1e6, 1)
        return out

    def figures(kind: str, unit: str) -> dict[str, Any]:
        """Each path's peak against direct's peak (with the client count of each peak),
        and every client count's own figures."""
        counts = levels if kind != "bulk" else (1,)
        by = {c: rates(kind, c, unit) for c in counts}
        peak_at = {path: max(counts, key=functools.partial(_rate_of, best, kind, path))
                   for path in ("direct", "proxy", "asyncio", "haproxy")
                   if (kind, path, counts[0]) in best}
        direct_peak = best[kind, "direct", peak_at["direct"]]
        out: dict[str, Any] = {}
        for path, c in peak_at.items():
            out[f"{path}_{unit}"] = round(best[kind, path, c])
            if path != "direct":
                out["ratio" if path == "proxy" else f"{path}_ratio"] = \
                    round(best[kind, path, c] / direct_peak, 3)
            if f"{path}_cpu_us_per_request" in by[c]:
                out[f"{path}_cpu_us_per_request"] = by[c][f"{path}_cpu_us_per_request"]
        if kind != "bulk":
            out["peak_at_concurrency"] = peak_at
            out["by_concurrency"] = {str(c): by[c] for c in counts}
        return out

    return {
        "short_http": {"requests": args.requests, "concurrency": list(levels),
                       **figures("short", "rps")},
        "short_http_keepalive": {"requests": args.requests, "connections": list(levels),
                                 **figures("keepalive", "rps")},
        "bulk": {"megabytes": args.bulk_mb, "rounds": args.rounds * 3,
                 **figures("bulk", "mb_s")},
        "references": references,
        "rounds": args.rounds, "cpus": os.cpu_count(), "python": sys.version.split()[0],
    }


def _rate_of(best: dict[tuple[str, str, int], float], kind: str, path: str,
             clients: int) -> float:
    return best[kind, path, clients]


def _levels(concurrency: str | int) -> tuple[int, ...]:
    """``"4,16,64"`` (or one number) as client counts."""
    levels = tuple(int(c) for c in str(concurrency).split(","))
    if min(levels) < 1:
        raise ValueError(f"--concurrency: client counts of 1 or more, not {concurrency!r}")
    return levels


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--requests", type=int, default=3000, help="per round")
    ap.add_argument("--concurrency", default="4,16,64",
                    help="comma-separated client counts (default 4,16,64)")
    ap.add_argument("--bulk-mb", type=int, default=100)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--no-haproxy", dest="haproxy", action="store_false", default=True,
                    help="skip the HAProxy reference even when haproxy is installed")
    args = ap.parse_args()
    print(json.dumps(asyncio.run(run(args)), indent=2))


if __name__ == "__main__":
    main()
