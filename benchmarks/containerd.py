# ruff: noqa: ASYNC210, ASYNC220, ASYNC221, ASYNC230, ASYNC240, ASYNC251
# (a sequential script: its blocking setup and cleanup run outside the measured windows)
"""containerd runtime figures, as JSON (needs root, containerd, runc, busybox-static,
docker-registry). Starts its own private containerd and registry and removes them.

- create+start to running for 1 and 20 containers (concurrently) through
  ContainerdRuntime, against ``ctr run -d`` (then removed, as ``--rm`` would) of the
  same image and command on the same private socket, in the same run (ratio; aim <= 1.25);
- apply-to-Running for 1 and 20 pods through the Cluster (containerd runtime, loopback
  network, one node): from ``cluster.apply`` of the Pods until every one reports phase
  Running, against the same ``ctr run -d`` baseline measured in the same run (ratio);
- pull throughput from the loopback registry against a plain copy of the same bytes.

Usage: .venv/bin/python benchmarks/containerd.py
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "containerd"))

from containerd_registry import push_archive  # noqa: E402

import orchestra as oc  # noqa: E402
from orchestra._clock import RealClock  # noqa: E402
from orchestra.runtime import ContainerSpec, SandboxSpec  # noqa: E402
from orchestra.runtime.containerd import (  # noqa: E402
    ContainerdRuntime,
    build_busybox_archive,
    build_image_archive,
    build_layer,
)

START = os.path.join(ROOT, "scripts", "start-containerd")
CMD = ("sleep", "3600")


async def runtime_start(rt: ContainerdRuntime, n: int) -> float:
    sandboxes = [await rt.create_sandbox(SandboxSpec(uid=uuid.uuid4().hex, namespace="b",
                                                     name=f"p{i}", hostname=f"p{i}",
                                                     pod_ip="127.0.0.1")) for i in range(n)]
    spec = ContainerSpec(name="c", image="busybox", command=CMD)
    t = time.perf_counter()

    async def one(sb: str) -> str:
        cid = await rt.create_container(sb, spec)
        await rt.start_container(cid)
        return cid

    ids = await asyncio.gather(*(one(sb) for sb in sandboxes))
    elapsed = time.perf_counter() - t
    for cid in ids:
        await rt.remove_container(cid)
    for sb in sandboxes:
        await rt.remove_sandbox(sb)
    return elapsed


async def ctr_start(socket: str, namespace: str, n: int) -> float:
    ids = [f"ctr-{uuid.uuid4().hex[:8]}" for _ in range(n)]
    t = time.perf_counter()
    procs = [await asyncio.create_subprocess_exec(
        "ctr", "-a", socket, "-n", namespace, "run", "-d",
        "docker.io/library/busybox:latest", cid, *CMD) for cid in ids]
    for p in procs:
        await p.wait()
    elapsed = time.perf_counter() - t
    for cid in ids:
        subprocess.run(["ctr", "-a", socket, "-n", namespace, "task", "kill", "-s", "KILL", cid],
                       capture_output=True)
    for cid in ids:
        for _ in range(100):
            r = subprocess.run(["ctr", "-a", socket, "-n", namespace, "task", "rm", cid],
                               capture_output=True)
            if r.returncode == 0 or b"not found" in r.stderr:
                break
            time.sleep(0.05)
        subprocess.run(["ctr", "-a", socket, "-n", namespace, "c", "rm", cid],
                       capture_output=True)
    return elapsed


def _pod(name: str) -> dict[str, object]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"terminationGracePeriodSeconds": 0,
                     "containers": [{"name": "c", "image": "busybox",
                                     "imagePullPolicy": "IfNotPresent", "command": list(CMD)}]}}


def _running(pod: object) -> bool:
    status = getattr(pod, "status", None)
    return status is not None and status.phase == "Running"


async def cluster_start(cluster: oc.Cluster, n: int) -> float:
    """Seconds from applying ``n`` Pods to all of them Running; then deletes them."""
    names = [f"p{uuid.uuid4().hex[:8]}" for _ in range(n)]
    t = time.perf_counter()
    await cluster.apply([_pod(name) for name in names])
    await asyncio.gather(*(cluster.wait_for(f"pod/{name}", _running, timeout=120)
                           for name in names))
    elapsed = time.perf_counter() - t
    for name in names:
        await cluster.delete(f"pod/{name}", grace_period_seconds=0)
    await asyncio.gather(*(cluster.wait_for(f"pod/{name}", "Deleted", timeout=120)
                           for name in names))
    return elapsed


async def pod_figures(socket: str, archive: str, work: str) -> dict[str, object]:
    out: dict[str, object] = {}
    async with oc.Cluster(runtime="containerd", network="loopback", name="bench-pods",
                          state_dir=work, kubelet_workers=32,
                          runtime_options={"address": socket, "image_archives": [archive]}
                          ) as cluster:
        assert cluster.runtime is not None
        namespace = cluster.runtime.namespace  # type: ignore[attr-defined]
        await cluster_start(cluster, 1)  # warm up
        await ctr_start(socket, namespace, 1)
        for n in (1, 20):
            ours = min([await cluster_start(cluster, n) for _ in range(5)])
            raw = min([await ctr_start(socket, namespace, n) for _ in range(5)])
            out[f"apply_to_running_{n}_pods"] = {"orchestra_s": round(ours, 4),
                                                 "ctr_run_s": round(raw, 4),
                                                 "ratio": round(ours / raw, 3)}
    return out


async def main() -> dict[str, object]:
    work = tempfile.mkdtemp(prefix="orch-bench-")
    cd_dir = os.path.join(work, "containerd")
    socket = subprocess.run([START, cd_dir], check=True, capture_output=True,
                            text=True).stdout.strip()
    registry = None
    try:
        archive = os.path.join(work, "busybox.tar")
        build_busybox_archive(archive)
        if "--pods-only" in sys.argv:
            return await pod_figures(socket, archive, work)
        rt = ContainerdRuntime(clock=RealClock(), cluster_name="bench",
                               state_dir=os.path.join(work, "state"), address=socket,
                               image_archives=[archive])
        await rt.start()
        out: dict[str, object] = {}
        try:
            await runtime_start(rt, 1)  # warm up
            await ctr_start(socket, rt.namespace, 1)
            for n in (1, 20):
                ours = min([await runtime_start(rt, n) for _ in range(3)])
                raw = min([await ctr_start(socket, rt.namespace, n) for _ in range(3)])
                out[f"start_{n}"] = {"orchestra_s": round(ours, 4), "ctr_run_s": round(raw, 4),
                                     "ratio": round(ours / raw, 3)}
            # Pull throughput: a 64 MiB random layer from a loopback registry.
            port = 5000 + os.getpid() % 1000
            cfg = os.path.join(work, "registry.yml")
            with open(cfg, "w") as f:
                f.write(f"version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\n"
                        f"storage:\n  filesystem:\n    rootdirectory: {work}/reg\n"
                        f"http:\n  addr: 127.0.0.1:{port}\n")
            registry = subprocess.Popen(["docker-registry", "serve", cfg],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            import httpx

            for _ in range(200):
                try:
                    httpx.get(f"http://127.0.0.1:{port}/v2/", timeout=1)
                    break
                except httpx.HTTPError:
                    time.sleep(0.05)
            big = os.path.join(work, "big.tar")
            build_image_archive(big, "big:1", [build_layer(files={"blob": os.urandom(64 << 20)})],
                                cmd=["x"])
            push_archive(f"127.0.0.1:{port}", "big", "1", big)
            size = os.path.getsize(big)
            t = time.perf_counter()
            await rt.pull_image(SandboxSpec(uid="u", namespace="b", name="p", hostname="p",
                                            pod_ip="127.0.0.1"),
                                ContainerSpec(name="c", image=f"127.0.0.1:{port}/big:1"))
            pull = time.perf_counter() - t
            t = time.perf_counter()
            shutil.copyfile(big, big + ".copy")
            with open(big + ".copy", "rb") as f:
                os.fsync(f.fileno())
            copy = time.perf_counter() - t
            out["pull_64MiB"] = {"pull_MBps": round(size / pull / 1e6, 1),
                                 "copy_MBps": round(size / copy / 1e6, 1),
                                 "ratio_of_copy": round(copy / pull, 3)}
        finally:
            await rt.close()
        out.update(await pod_figures(socket, archive, work))
        return out
    finally:
        if registry is not None:
            registry.terminate()
            registry.wait()
        subprocess.run([START, "--stop", cd_dir], check=False)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main()), indent=2))
