# ruff: noqa: ASYNC110, ASYNC230, ASYNC240, SIM115
"""The containerd runtime runs real, isolated OCI containers from the busybox archive."""

from __future__ import annotations

import asyncio
import os
import uuid

import pytest

from orchestra._clock import ManualClock, RealClock
from orchestra._errors import RuntimeUnavailable
from orchestra.runtime import ContainerSpec, Mount, Resources, SandboxSpec, State
from orchestra.runtime.containerd import ContainerdRuntime

pytestmark = pytest.mark.anyio


def pod(name: str = "web", pod_ip: str = "10.244.0.7") -> SandboxSpec:
    return SandboxSpec(uid=uuid.uuid4().hex, namespace="default", name=name, hostname=name,
                       pod_ip=pod_ip)


async def run(rt: ContainerdRuntime, sandbox: str, script: str, **kw: object) -> str:
    spec = ContainerSpec(name=str(kw.pop("name", "main")), image="busybox",
                         command=("sh", "-c", script), **kw)  # type: ignore[arg-type]
    cid = await rt.create_container(sandbox, spec)
    await rt.start_container(cid)
    return cid


async def exited(rt: ContainerdRuntime, cid: str, limit: float = 20.0) -> None:
    async with asyncio.timeout(limit):
        while (await rt.container_status(cid)).state is not State.EXITED:
            await asyncio.sleep(0.02)


async def test_exit_codes_logs_and_events(runtime: ContainerdRuntime) -> None:
    events = []
    runtime.set_listener(events.append)
    sb = await runtime.create_sandbox(pod())
    ok = await run(runtime, sb, "echo hello; echo oops >&2", name="ok")
    bad = await run(runtime, sb, "echo bye; exit 3", name="bad")
    await exited(runtime, ok)
    await exited(runtime, bad)
    s_ok, s_bad = await runtime.container_status(ok), await runtime.container_status(bad)
    assert (s_ok.exit_code, s_ok.reason) == (0, "Completed")
    assert (s_bad.exit_code, s_bad.reason) == (3, "Error")
    assert await runtime.logs(ok) == "hello\noops\n" or set(
        (await runtime.logs(ok)).splitlines()) == {"hello", "oops"}
    assert await runtime.logs(bad, tail=1) == "bye\n"
    assert "stdout" in open(runtime._containers[ok].log_path).read()  # CRI format on disk
    assert [e.status.state for e in events if e.container_id == bad] == [State.RUNNING,
                                                                         State.EXITED]
    await runtime.remove_container(bad)
    assert await runtime.logs(bad) == "bye\n"  # logs outlive the container


async def test_exec_env_workdir_user_and_mounts(runtime: ContainerdRuntime,
                                                tmp_path: os.PathLike[str]) -> None:
    data = os.path.join(tmp_path, "data")
    os.makedirs(data)
    with open(os.path.join(data, "hello.txt"), "w") as f:
        f.write("from the host\n")
    sb = await runtime.create_sandbox(pod())
    cid = await run(runtime, sb, "sleep 30", env=(("GREETING", "hi there"),),
                    working_dir="/tmp", run_as_user=1000,
                    mounts=(Mount(data, "/data", read_only=True),))
    r = await runtime.exec(cid, ["sh", "-c", 'echo "$GREETING"; pwd; id -u; cat /data/hello.txt;'
                                 ' hostname; touch /data/x || echo ro >&2; exit 4'])
    assert r.exit_code == 4
    assert r.stdout == "hi there\n/tmp\n1000\nfrom the host\nweb\n"
    assert "ro" in r.stderr
    missing = await runtime.exec(cid, ["/no/such/binary"])
    assert missing.exit_code != 0
    await runtime.stop_container(cid, 0)


async def test_stop_sends_term_then_kill_after_grace(runtime: ContainerdRuntime,
                                                     clock: ManualClock) -> None:
    sb = await runtime.create_sandbox(pod())
    polite = await run(runtime, sb, "trap 'echo term; exit 0' TERM; while true; do sleep 0.05;"
                       " done", name="polite")
    stubborn = await run(runtime, sb, "trap '' TERM; echo ready; while true; do sleep 0.05; done",
                         name="stubborn")
    await asyncio.sleep(0.3)  # let the shells install their traps
    await runtime.stop_container(polite, 30)
    assert (await runtime.container_status(polite)).exit_code == 0
    assert "term" in await runtime.logs(polite)
    stopping = asyncio.ensure_future(runtime.stop_container(stubborn, 30))
    await asyncio.sleep(0.5)
    assert not stopping.done()  # TERM ignored; the grace period runs on the clock
    await clock.advance(30)
    await asyncio.wait_for(stopping, 20)
    status = await runtime.container_status(stubborn)
    assert (status.exit_code, status.reason) == (137, "Error")


async def test_pod_containers_share_network_ipc_uts(runtime: ContainerdRuntime) -> None:
    sb = await runtime.create_sandbox(pod("pair"))
    a = await run(runtime, sb, "sleep 30", name="a")
    b = await run(runtime, sb, "sleep 30", name="b")
    script = ["sh", "-c", "for n in net ipc uts pid; do readlink /proc/self/ns/$n; done; "
              "hostname; ip -o -4 addr | awk '{print $4}'"]
    ra, rb = await runtime.exec(a, script), await runtime.exec(b, script)
    na, nb = ra.stdout.splitlines(), rb.stdout.splitlines()
    assert na[:3] == nb[:3]  # same net, ipc, uts
    assert na[3] != nb[3]  # own pid namespaces
    assert na[4] == nb[4] == "pair"
    assert na[5:] == nb[5:]  # same addresses
    assert na[0] != os.readlink("/proc/self/ns/net")  # not the host's network
    other = await runtime.create_sandbox(pod("other"))
    c = await run(runtime, other, "sleep 30", name="c")
    assert (await runtime.exec(c, script)).stdout.splitlines()[0] != na[0]


async def test_isolated_from_host_processes_and_files(runtime: ContainerdRuntime) -> None:
    marker = f"/tmp/orchestra-marker-{uuid.uuid4().hex}"
    with open(marker, "w") as f:
        f.write("secret")
    try:
        sb = await runtime.create_sandbox(pod())
        cid = await run(runtime, sb, "sleep 30")
        r = await runtime.exec(cid, ["sh", "-c", f"ls /proc | grep -c '^[0-9]'; ps -o pid,args;"
                                     f" cat {marker} || echo absent"])
        lines = r.stdout.splitlines()
        assert int(lines[0]) <= 4  # sleep, sh, ls/grep: nothing of the host
        assert "1 sleep 30" in r.stdout.replace("  ", " ")
        assert "pytest" not in r.stdout
        assert lines[-1] == "absent"
    finally:
        os.unlink(marker)


async def test_memory_limit_is_enforced_oomkilled(runtime: ContainerdRuntime) -> None:
    sb = await runtime.create_sandbox(pod())
    cid = await run(runtime, sb, "head -c 256m /dev/zero | tail > /dev/null",
                    resources=Resources(memory_limit_bytes=32 << 20))
    await exited(runtime, cid)
    status = await runtime.container_status(cid)
    assert status.reason == "OOMKilled"
    assert status.exit_code == 137


async def test_read_only_root_and_capabilities(runtime: ContainerdRuntime,
                                               tmp_path: os.PathLike[str]) -> None:
    sb = await runtime.create_sandbox(pod())
    scratch = os.path.join(tmp_path, "scratch")
    os.makedirs(scratch)
    cid = await run(runtime, sb, "sleep 30", read_only_root_filesystem=True,
                    capabilities_drop=("ALL",), capabilities_add=("NET_BIND_SERVICE",),
                    mounts=(Mount(scratch, "/scratch"),))
    r = await runtime.exec(cid, ["sh", "-c", "touch /x && echo wrote; touch /scratch/y && "
                                 "echo scratch; grep CapEff /proc/self/status"])
    assert "wrote" not in r.stdout
    assert "scratch" in r.stdout
    assert os.path.exists(os.path.join(scratch, "y"))
    assert r.stdout.split()[-1] == f"{1 << 10:016x}"  # only CAP_NET_BIND_SERVICE (bit 10)


async def test_stats_from_cgroups(runtime: ContainerdRuntime) -> None:
    sb = await runtime.create_sandbox(pod())
    cid = await run(runtime, sb, "i=0; while [ $i -lt 200000 ]; do i=$((i+1)); done; sleep 30")
    await asyncio.sleep(0.3)
    stats = await runtime.stats(cid)
    assert stats.memory_bytes > 0
    assert stats.cpu_milli > 0


async def test_recovery_and_close_leave_nothing(containerd_socket: str, busybox_archive: str,
                                                tmp_path: os.PathLike[str]) -> None:
    name = f"r{uuid.uuid4().hex[:8]}"
    first = ContainerdRuntime(clock=RealClock(), cluster_name=name, state_dir=str(tmp_path),
                              address=containerd_socket, image_archives=[busybox_archive])
    await first.start()
    spec = pod("survivor")
    sb = await first.create_sandbox(spec)
    cid = await run(first, sb, "sleep 60")
    # A crash: the process goes away without close(); containerd keeps the container.
    tasks = list(first._tasks)
    for task in tasks:
        task.cancel()
    # (awaited, so that no stream of the dead client is left for the loop's teardown)
    await asyncio.gather(*tasks, return_exceptions=True)
    await first.client.close()

    second = ContainerdRuntime(clock=RealClock(), cluster_name=name, state_dir=str(tmp_path),
                               address=containerd_socket)
    await second.start()
    try:
        found = await second.list_sandboxes()
        assert [(s.id, s.uid, s.name) for s in found] == [(sb, spec.uid, "survivor")]
        assert [(c.id, c.state) for c in found[0].containers] == [(cid, State.RUNNING)]
        r = await second.exec(cid, ["echo", "adopted"])
        assert r.stdout == "adopted\n"
    finally:
        await second.close()
    third = ContainerdRuntime(clock=RealClock(), cluster_name=name, state_dir=str(tmp_path),
                              address=containerd_socket)
    await third.start()
    try:
        assert await third.list_sandboxes() == []
        assert await third._list_containers() == []
    finally:
        await third.close()
    assert not os.path.exists(f"/sys/fs/cgroup/memory/{second.namespace}")


async def test_missing_socket_is_runtime_unavailable(tmp_path: os.PathLike[str]) -> None:
    rt = ContainerdRuntime(clock=RealClock(), cluster_name="x", state_dir=str(tmp_path),
                           address=os.path.join(tmp_path, "nope.sock"))
    with pytest.raises(RuntimeUnavailable, match="start-containerd"):
        await rt.start()


def test_address_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONTAINERD_ADDRESS", "/x/containerd.sock")
    rt = ContainerdRuntime(clock=RealClock(), cluster_name="x", state_dir="/tmp/unused")
    assert rt.address == "/x/containerd.sock"
    monkeypatch.delenv("CONTAINERD_ADDRESS")
    rt = ContainerdRuntime(clock=RealClock(), cluster_name="x", state_dir="/tmp/unused")
    assert rt.address == "/run/containerd/containerd.sock"
