"""Service proxy throughput vs a direct connection, printed as JSON.

Three processes, so that no two of them share a GIL: the backend (a minimal HTTP server
and a bulk sender), the clients, and this one, which runs the ``ServiceProxy`` on its
event loop. Each figure is measured direct and through the proxy in the same run:

- short: HTTP/1.1 requests with ``Connection: close`` (a new TCP connection each),
  ``--requests`` in all from ``--concurrency`` clients; requests/s and the ratio;
- bulk: ``--bulk-mb`` MB on one connection; MB/s and the ratio.

Run: ``python benchmarks/proxy.py [--requests 2000] [--concurrency 4] [--bulk-mb 100]
[--rounds 5]``. Rounds are interleaved and the best of each path is kept: the host is
shared, and two cores run three busy processes.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import socket
import sys
import threading
import time
from multiprocessing.connection import Connection
from typing import Any

from orchestra.net._proxy import ServiceProxy

RESPONSE = (b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n"
            b"Connection: close\r\n\r\nok")
REQUEST = b"GET / HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n"


# -- backend process ---------------------------------------------------------------------

class _Http(asyncio.Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.t: asyncio.Transport = transport  # type: ignore[assignment]
        self.buf = b""

    def data_received(self, data: bytes) -> None:
        self.buf += data
        if b"\r\n\r\n" in self.buf:
            self.t.write(RESPONSE)
            self.t.close()


def _bulk_server(sock: socket.socket, size: int) -> None:
    chunk = b"\0" * (1 << 20)
    while True:
        try:
            c, _ = sock.accept()
        except OSError:
            return
        with c:
            left = size
            while left > 0:
                left -= c.send(chunk[: min(len(chunk), left)])
            c.shutdown(socket.SHUT_WR)
            c.recv(1)


def backend_main(http_sock: socket.socket, bulk_sock: socket.socket, size: int,
                 ready: Connection) -> None:
    threading.Thread(target=_bulk_server, args=(bulk_sock, size), daemon=True).start()

    async def main() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(_Http, sock=http_sock, backlog=1024)
        ready.send("ok")
        async with server:
            await asyncio.get_running_loop().run_in_executor(None, ready.recv)

    asyncio.run(main())


# -- client process ----------------------------------------------------------------------

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

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return requests / (time.perf_counter() - t0)


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
        else:
            conn.send(_bulk(tuple(addr), *rest))


# -- this process: the proxy -------------------------------------------------------------

def _cpu() -> float:
    t = os.times()
    return t.user + t.system


def _listen(host: str) -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((host, 0))
    return s


async def run(args: argparse.Namespace) -> dict[str, Any]:
    size = args.bulk_mb * 1_000_000
    http_sock, bulk_sock = _listen("127.0.0.1"), _listen("127.0.0.1")
    http_sock.listen(1024)
    bulk_sock.listen(16)
    http_addr, bulk_addr = http_sock.getsockname(), bulk_sock.getsockname()
    ctx = mp.get_context("fork")
    b_parent, b_child = ctx.Pipe()
    backend = ctx.Process(target=backend_main, args=(http_sock, bulk_sock, size, b_child),
                          daemon=True)
    backend.start()
    http_sock.close()
    bulk_sock.close()
    c_parent, c_child = ctx.Pipe()
    client = ctx.Process(target=client_main, args=(c_child,), daemon=True)
    client.start()
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, b_parent.recv)

    proxy = ServiceProxy()
    p_http, p_bulk = _listen("127.0.0.1"), _listen("127.0.0.1")
    px_http, px_bulk = p_http.getsockname(), p_bulk.getsockname()
    await proxy.set_backends(px_http, [http_addr], sock=p_http)
    await proxy.set_backends(px_bulk, [bulk_addr], sock=p_bulk)

    async def ask(job: tuple[Any, ...]) -> float:
        c_parent.send(job)
        result: float = await loop.run_in_executor(None, c_parent.recv)
        return result

    try:
        await ask(("short", http_addr, 200, args.concurrency))  # warm up both paths
        await ask(("short", px_http, 200, args.concurrency))
        short_direct = short_proxy = 0.0
        cpu = 0.0
        for _ in range(args.rounds):  # interleaved, best of: the host is shared
            short_direct = max(short_direct,
                               await ask(("short", http_addr, args.requests, args.concurrency)))
            t0 = _cpu()
            short_proxy = max(short_proxy,
                              await ask(("short", px_http, args.requests, args.concurrency)))
            cpu += _cpu() - t0
        bulk_direct = bulk_proxy = 0.0
        for _ in range(args.rounds * 3):  # a transfer takes only tens of milliseconds
            bulk_direct = max(bulk_direct, await ask(("bulk", bulk_addr, size)))
            bulk_proxy = max(bulk_proxy, await ask(("bulk", px_bulk, size)))
    finally:
        c_parent.send(None)
        b_parent.send("stop")
        await proxy.close()
        await loop.run_in_executor(None, client.join, 10)
        await loop.run_in_executor(None, backend.join, 10)
        for p in (client, backend):
            if p.is_alive():
                p.kill()
                p.join()
    return {
        "short_http": {"requests": args.requests, "concurrency": args.concurrency,
                       "direct_rps": round(short_direct), "proxy_rps": round(short_proxy),
                       "ratio": round(short_proxy / short_direct, 3),
                       "proxy_cpu_us_per_request": round(cpu / args.rounds / args.requests * 1e6,
                                                         1)},
        "bulk": {"megabytes": args.bulk_mb, "rounds": args.rounds * 3,
                 "direct_mb_s": round(bulk_direct), "proxy_mb_s": round(bulk_proxy),
                 "ratio": round(bulk_proxy / bulk_direct, 3)},
        "rounds": args.rounds, "cpus": os.cpu_count(), "python": sys.version.split()[0],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--requests", type=int, default=2000)
    ap.add_argument("--concurrency", type=int, default=4)
    ap.add_argument("--bulk-mb", type=int, default=100)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    print(json.dumps(asyncio.run(run(args)), indent=2))


if __name__ == "__main__":
    main()
