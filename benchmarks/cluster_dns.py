# ruff: noqa: ASYNC240
# (a sequential script: its path handling runs outside the measured windows)
"""Cluster DNS figures, as JSON: queries/s and latency percentiles of the cluster DNS
server against the number of Services (100 and 10,000 by default), loopback only. (Not
named dns.py: a file of that name here would hide the dnspython package from every
benchmark script in this folder.)

For each size a fake-runtime cluster gets that many ClusterIP Services (one named port
each); once every name resolves, a client in a separate process (so that it does not
share the server's interpreter) sends A queries for random Service FQDNs over UDP from
``--clients`` sockets, each waiting for its answer before the next, for ``--queries``
queries in all or ``--seconds`` at most. Also reported: how long the DNS controller took
to have every record served after the Services were created.

Usage: .venv/bin/python benchmarks/cluster_dns.py [--sizes 100 10000] [--queries 20000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import socket
import subprocess
import sys
import threading
import time

import dns.message
import dns.rcode

import orchestra as oc


def client_main(host: str, port: int, names: list[str], queries: int, clients: int,
                seconds: float) -> dict[str, object]:
    """Runs in the client process: blocking sockets in threads, bounded by count and
    time. Returns latencies (ms) percentiles and the rate."""
    wires = [dns.message.make_query(n, "A").to_wire() for n in names]
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()
    deadline = time.monotonic() + seconds
    per_client = max(1, queries // clients)

    def run(seed: int) -> None:
        rng = random.Random(seed)
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.settimeout(2.0)
        sock.connect((host, port))
        mine: list[float] = []
        bad = 0
        for _ in range(per_client):
            if time.monotonic() > deadline:
                break
            wire = bytearray(rng.choice(wires))
            wire[0:2] = rng.randrange(65536).to_bytes(2, "big")
            t0 = time.perf_counter()
            sock.send(bytes(wire))
            try:
                reply = sock.recv(4096)
            except TimeoutError:
                bad += 1
                continue
            mine.append((time.perf_counter() - t0) * 1000)
            if dns.message.from_wire(reply).rcode() != dns.rcode.NOERROR:
                bad += 1
        sock.close()
        with lock:
            latencies.extend(mine)
            errors[0] += bad

    threads = [threading.Thread(target=run, args=(i,)) for i in range(clients)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - t0
    latencies.sort()

    def pct(q: float) -> float:
        return round(latencies[min(len(latencies) - 1, int(q * len(latencies)))], 3)

    return {"queries": len(latencies), "errors": errors[0],
            "queries_per_second": round(len(latencies) / elapsed, 1),
            "p50_ms": pct(0.50), "p90_ms": pct(0.90), "p99_ms": pct(0.99),
            "max_ms": round(latencies[-1], 3)}


async def one_size(n: int, queries: int, clients: int, seconds: float) -> dict[str, object]:
    async with oc.Cluster(runtime="fake", network="fake", nodes=1, events=False,
                          dns_upstreams=[]) as cluster:
        t0 = time.perf_counter()
        for i in range(n):
            await cluster.create(oc.objects.Service.model_validate({
                "metadata": {"name": f"svc-{i}"},
                "spec": {"ports": [{"name": "http", "port": 80}]}}))
        created = time.perf_counter()
        last = f"svc-{n - 1}.default.svc.cluster.local."
        for _ in range(6000):  # bounded: at most ~60 s
            if await cluster.resolve(last):
                break
            await asyncio.sleep(0.01)
        else:
            raise RuntimeError(f"{last} never resolved")
        served = time.perf_counter()
        names = [f"svc-{i}.default.svc.cluster.local." for i in range(n)]
        host, port = cluster.dns_address
        proc = await asyncio.create_subprocess_exec(
            sys.executable, os.path.abspath(__file__), "--client", host, str(port),
            str(queries), str(clients), str(seconds),
            stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        out, _ = await proc.communicate(json.dumps(names).encode())
        if proc.returncode != 0:
            raise RuntimeError("the client failed")
        result: dict[str, object] = json.loads(out)
        return {"services": n, "create_seconds": round(created - t0, 3),
                "records_served_seconds_after_create": round(served - created, 3),
                **result}


async def main(args: argparse.Namespace) -> None:
    out = [await one_size(n, args.queries, args.clients, args.seconds) for n in args.sizes]
    print(json.dumps({"clients": args.clients, "by_services": out}, indent=2))


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--client":
        host, port, queries, clients, seconds = sys.argv[2:7]
        names = json.loads(sys.stdin.read())
        print(json.dumps(client_main(host, int(port), names, int(queries), int(clients),
                                     float(seconds))))
        sys.exit(0)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 10000])
    parser.add_argument("--queries", type=int, default=20000)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--quick", action="store_true", help="small sizes, for the tests")
    args = parser.parse_args()
    if args.quick:
        args.sizes, args.queries, args.seconds = [10, 100], 500, 10.0
    asyncio.run(main(args))
