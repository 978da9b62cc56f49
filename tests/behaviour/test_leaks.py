"""Nothing of a process-runtime cluster outlives its host process: not after stop(),
not after the host is killed with SIGKILL (checked from outside, through /proc)."""

from __future__ import annotations

import glob
import json
import os
import signal
import subprocess
import sys
import time

import pytest

HOST = r'''
import asyncio, json, sys
import orchestra as oc

async def main(mode):
    cluster = oc.Cluster(runtime="process", nodes=1)
    await cluster.start()
    # ($$ escapes $ in Kubernetes commands: $$$$ is the shell's $$)
    await cluster.apply({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"},
                         "stringData": {"token": "t0ken"}})
    await cluster.apply({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "sleepers"},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "s"}},
                 "template": {"metadata": {"labels": {"app": "s"}}, "spec": {
                     "terminationGracePeriodSeconds": 1,
                     "volumes": [{"name": "s", "secret": {"secretName": "s"}},
                                 {"name": "scratch", "emptyDir": {}}],
                     "containers": [{"name": "main", "image": "busybox", "command":
                         ["sh", "-c", "echo $$$$ > pid; exec sleep 1000"],
                         "volumeMounts": [{"name": "s", "mountPath": "/s"},
                                          {"name": "scratch", "mountPath": "/scratch"}]}]}}}})
    await cluster.wait_for("deployment/sleepers", "Available", timeout=60)
    pids = []
    for pod in await cluster.list("pods", selector="app=s"):
        for _ in range(100):
            r = await cluster.exec(pod, ["cat", "pid"])
            if r.exit_code == 0 and r.stdout.strip():
                break
            await asyncio.sleep(0.05)
        pids.append(int(r.stdout))
    print(json.dumps({"pids": pids, "state_dir": cluster._state_dir}), flush=True)
    if mode == "stop":
        await cluster.stop()
        print("stopped", flush=True)
        return
    await asyncio.sleep(3600)  # until killed

asyncio.run(main(sys.argv[1]))
'''


def alive(pid: int) -> bool:
    """The process exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def descendants(root: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    out: set[int] = set()
    todo = [root]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in out:
                out.add(child)
                todo.append(child)
    return out


def start_host(mode: str) -> tuple[subprocess.Popen[str], dict[str, object]]:
    proc = subprocess.Popen([sys.executable, "-c", HOST, mode], stdout=subprocess.PIPE,
                            text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line:
        proc.kill()
        proc.wait(10)
        pytest.fail("the host process died before reporting its pods")
    return proc, json.loads(line)


def wait_until(fn: object, timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if fn():  # type: ignore[operator]
            return True
        time.sleep(0.05)
    return bool(fn())  # type: ignore[operator]


def test_sigkill_of_the_host_leaves_nothing_behind() -> None:
    proc, info = start_host("kill")
    try:
        pids = list(info["pids"])  # type: ignore[call-overload]
        state_dir = str(info["state_dir"])
        assert len(pids) == 2 and all(alive(p) for p in pids)
        assert os.path.isdir(state_dir)
        assert len(glob.glob(f"/dev/shm/orchestra-{proc.pid}-*")) == 2
        everything = descendants(proc.pid)  # containers, the reaper, exec helpers
        assert set(pids) <= everything
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    assert wait_until(lambda: not any(alive(p) for p in everything)), \
        [p for p in everything if alive(p)]
    assert wait_until(lambda: not os.path.exists(state_dir)), os.listdir(state_dir)
    assert not glob.glob(f"/dev/shm/orchestra-{proc.pid}-*")  # Secret volumes (tmpfs)


def test_stop_leaves_nothing_behind() -> None:
    proc, info = start_host("stop")
    try:
        pids = list(info["pids"])  # type: ignore[call-overload]
        state_dir = str(info["state_dir"])
        everything = descendants(proc.pid)
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "stopped"
        # right after stop() returns, before the interpreter exits
        assert not any(alive(p) for p in pids)
        assert not os.path.exists(state_dir)
        assert not glob.glob(f"/dev/shm/orchestra-{proc.pid}-*")
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    assert wait_until(lambda: not any(alive(p) for p in everything))
