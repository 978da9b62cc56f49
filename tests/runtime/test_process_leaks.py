"""Nothing the process runtime starts outlives its host, however the host ends.

Each test runs a separate Python host process that starts a ProcessRuntime and
containers, then ends the host (SIGKILL, normal exit without close, close) and checks
from outside that every process is gone and the state directory removed.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from orchestra.runtime.process._proc import is_alive

HOST = textwrap.dedent(
    """
    import asyncio, json, sys
    from orchestra._clock import RealClock
    from orchestra.runtime import ContainerSpec, SandboxSpec
    from orchestra.runtime.process import ProcessRuntime

    async def main(state_dir, mode):
        rt = ProcessRuntime(clock=RealClock(), cluster_name="leak", state_dir=state_dir)
        await rt.start()
        sid = await rt.create_sandbox(SandboxSpec(uid="u", namespace="default", name="p",
                                                  hostname="p", pod_ip="127.0.0.1"))
        pids = []
        for name, cmd in (("a", ["sleep", "1000"]), ("b", ["sleep", "1000"]),
                          ("c", ["sh", "-c", "sleep 1000 & echo $!; wait"])):
            cid = await rt.create_container(sid, ContainerSpec(name=name, image="x",
                                                                command=tuple(cmd)))
            await rt.start_container(cid)
            pids.append((await rt.container_status(cid)).pid)
        while not (await rt.logs(cid)).strip():
            await asyncio.sleep(0.01)
        pids.append(int((await rt.logs(cid)).strip()))  # a grandchild: no pdeathsig
        pids.append(rt._reaper.proc.pid)
        print(json.dumps(pids), flush=True)
        await asyncio.to_thread(sys.stdin.readline)  # the test has seen them alive
        if mode == "close":
            await rt.close()
            print("closed", flush=True)
        elif mode == "exit":
            return
        await asyncio.sleep(1000)

    asyncio.run(main(sys.argv[1], sys.argv[2]))
    """
)


def run_host(tmp_path: Path, mode: str) -> tuple[subprocess.Popen[str], list[int], Path]:
    state = tmp_path / "state"
    host = subprocess.Popen(
        [sys.executable, "-c", HOST, str(state), mode],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert host.stdout is not None and host.stdin is not None
        line = host.stdout.readline()
        assert line, "the host process failed to start its containers"
        pids = json.loads(line)
        assert all(is_alive(p) for p in pids)
        assert state.exists()
        host.stdin.write("go\n")
        host.stdin.flush()
    except BaseException:
        host.kill()
        host.wait()
        raise
    return host, pids, state


def assert_all_gone(pids: list[int], state: Path) -> None:
    deadline = time.monotonic() + 15  # a bound, not a measurement
    while time.monotonic() < deadline:
        if not any(is_alive(p) for p in pids) and not state.exists():
            return
        time.sleep(0.05)
    alive = [p for p in pids if is_alive(p)]
    raise AssertionError(f"leaked: pids {alive}, state dir exists: {state.exists()}")


def test_sigkilled_host_leaves_nothing(tmp_path: Path) -> None:
    host, pids, state = run_host(tmp_path, "sleep")
    assert host.stdout is not None
    os.kill(host.pid, signal.SIGKILL)
    host.wait()
    assert_all_gone(pids, state)


def test_host_exiting_without_close_leaves_nothing(tmp_path: Path) -> None:
    host, pids, state = run_host(tmp_path, "exit")
    assert host.wait(timeout=30) == 0
    assert_all_gone(pids, state)


def test_close_leaves_nothing(tmp_path: Path) -> None:
    host, pids, state = run_host(tmp_path, "close")
    assert host.stdout is not None
    assert host.stdout.readline().strip() == "closed"
    try:
        assert not any(is_alive(p) for p in pids)
        assert not state.exists()
    finally:
        host.kill()
        host.wait()
