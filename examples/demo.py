"""The README's demo: a real two-tier application on the embedded default.

Starts a cluster with the process runtime and the loopback network (no root, no daemon),
applies examples/app (front end + backend Deployments, Services, a ConfigMap, a Secret,
probes), sends traffic through the front end's Service, rolls the backend to a new
version under continuous traffic, prints what happened, and tears everything down.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import orchestra as oc

APP = Path(__file__).resolve().parent / "app"


def fetch(url: str) -> dict[str, object] | None:
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:
            return json.loads(resp.read())  # type: ignore[no-any-return]
    except (urllib.error.URLError, OSError, ValueError):
        return None


async def traffic(url: str, count: int, stop: asyncio.Event | None = None,
                  workers: int = 4) -> tuple[collections.Counter[str], int, int]:
    """Send up to ``count`` requests (``workers`` at a time); stop early when ``stop``
    is set. Returns (answers by backend version/pod, successes, failures)."""
    seen: collections.Counter[str] = collections.Counter()
    ok = failed = 0
    sent = 0

    async def worker() -> None:
        nonlocal ok, failed, sent
        while sent < count and not (stop is not None and stop.is_set()):
            sent += 1
            reply = await asyncio.to_thread(fetch, url)
            if reply is None or "backend" not in reply:
                failed += 1
                continue
            ok += 1
            backend = reply["backend"]
            assert isinstance(backend, dict)
            seen[f"{backend['version']} {backend['pod']}"] += 1

    await asyncio.gather(*(worker() for _ in range(workers)))
    return seen, ok, failed


async def main(requests: int) -> int:
    t0 = time.monotonic()
    async with oc.Cluster(runtime="process", network="loopback", nodes=2) as cluster:
        print(f"cluster {cluster.name}: process runtime, loopback network, 2 nodes")
        await cluster.apply(APP)  # app.yaml + the app-code ConfigMap (kustomization.yaml)
        for name in ("backend", "frontend"):
            await cluster.wait_for(f"deployment/{name}", "Available", timeout=60)
        print(f"application ready in {time.monotonic() - t0:.1f}s")
        for pod in await cluster.list("pods"):
            print(f"  pod {pod.metadata.name:<28} {pod.status.phase:<8} ip={pod.status.pod_ip}"
                  f" node={pod.spec.node_name}")
        host, port = cluster.endpoint("service/frontend", 80)
        svc = await cluster.get("service/frontend")
        node_port = svc.spec.ports[0].node_port
        url = f"http://{host}:{port}/"
        print(f"frontend service: {url} (NodePort 127.0.0.1:{node_port})")

        seen, ok, failed = await traffic(url, requests)
        print(f"{requests} requests: {ok} ok, {failed} failed; answered by:")
        for who, n in sorted(seen.items()):
            print(f"  {who}: {n}")

        print("rolling the backend to v2 under continuous traffic ...")
        stop = asyncio.Event()
        load = asyncio.create_task(traffic(url, 20 * requests, stop))

        def to_v2(d: oc.objects.Deployment) -> None:
            env = d.spec.template.spec.containers[0].env
            for var in env:
                if var.name == "VERSION":
                    var.value = "v2"

        await cluster.edit("deployment/backend", to_v2)
        await cluster.wait_for("deployment/backend", "Available", timeout=120)
        stop.set()
        seen, ok, failed = await load
        versions = collections.Counter(k.split()[0] for k in seen.elements())
        print(f"rollout done: {ok} requests ok, {failed} failed, by version {dict(versions)}")
        history = await cluster.rollout_history("deployment/backend")
        print("revisions:", ", ".join(f"{h['revision']} ({h['replicaset']})" for h in history))
        print()
        print(cluster.describe("deployment/backend"))
    print(f"cluster stopped and cleaned up after {time.monotonic() - t0:.1f}s")
    return 1 if failed else 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=300)
    args = parser.parse_args()
    sys.exit(asyncio.run(main(args.requests)))
