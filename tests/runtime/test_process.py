"""The process runtime, with real processes on the real clock (short graces only)."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from orchestra._clock import RealClock
from orchestra._errors import Timeout
from orchestra.objects._pod import Probe
from orchestra.runtime import (
    ContainerCreateError,
    ContainerEvent,
    ContainerSpec,
    Mount,
    SandboxSpec,
    State,
)
from orchestra.runtime.process import ProcessRuntime

pytestmark = pytest.mark.anyio
SB = SandboxSpec(uid="u1", namespace="default", name="p", hostname="p", pod_ip="127.0.0.1")


@pytest.fixture
async def runtime(tmp_path: Path) -> AsyncIterator[ProcessRuntime]:
    rt = ProcessRuntime(clock=RealClock(), cluster_name="t", state_dir=str(tmp_path / "state"))
    await rt.start()
    try:
        yield rt
    finally:
        await rt.close()
    assert not (tmp_path / "state").exists()


def sh(script: str, name: str = "c", **kw: Any) -> ContainerSpec:
    return ContainerSpec(name=name, image="none", command=("sh", "-c", script), **kw)


async def eventually(check: Callable[[], Awaitable[bool]], what: str) -> None:
    """Poll ``check`` for at most ten seconds (a bound, not a measurement)."""
    for _ in range(500):
        if await check():
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


async def wait_exit(rt: ProcessRuntime, cid: str) -> None:
    async def exited() -> bool:
        return (await rt.container_status(cid)).state is State.EXITED

    await eventually(exited, "the container to exit")


async def test_exit_code_reason_and_events(runtime: ProcessRuntime) -> None:
    events: list[ContainerEvent] = []
    runtime.set_listener(events.append)
    sid = await runtime.create_sandbox(SB)
    cid = await runtime.create_container(sid, sh("echo hi; echo err >&2; exit 3"))
    await runtime.start_container(cid)
    await wait_exit(runtime, cid)
    status = await runtime.container_status(cid)
    assert (status.exit_code, status.reason) == (3, "Error")
    assert status.started_at is not None and status.finished_at is not None
    assert [e.status.state for e in events] == [State.RUNNING, State.EXITED]
    assert events[1].status.exit_code == 3
    assert await runtime.logs(cid) == "hi\nerr\n" or await runtime.logs(cid) == "err\nhi\n"
    ok = await runtime.create_container(sid, sh("true", name="ok"))
    await runtime.start_container(ok)
    await wait_exit(runtime, ok)
    assert (await runtime.container_status(ok)).reason == "Completed"


async def test_no_command_and_missing_executable(runtime: ProcessRuntime) -> None:
    sid = await runtime.create_sandbox(SB)
    with pytest.raises(ContainerCreateError, match="no command specified"):
        await runtime.create_container(sid, ContainerSpec(name="c", image="nginx"))
    cid = await runtime.create_container(
        sid, ContainerSpec(name="c", image="x", command=("no-such-binary-xyz",))
    )
    with pytest.raises(ContainerCreateError) as info:
        await runtime.start_container(cid)
    assert str(info.value) == 'exec: "no-such-binary-xyz": executable file not found in $PATH'
    # Left as containerd leaves a task that failed to start: exited, 128, StartError.
    status = await runtime.container_status(cid)
    assert (status.state, status.exit_code, status.reason, status.message) == (
        State.EXITED, 128, "StartError", str(info.value))


async def test_logs_tail_previous_attempt_and_stream(runtime: ProcessRuntime) -> None:
    sid = await runtime.create_sandbox(SB)
    first = await runtime.create_container(sid, sh("for i in 1 2 3; do echo a$i; done"))
    await runtime.start_container(first)
    await wait_exit(runtime, first)
    await runtime.remove_container(first)
    second = await runtime.create_container(sid, sh("echo b1; sleep 0.2; echo b2", attempt=1))
    await runtime.start_container(second)
    lines = [line async for line in runtime.stream_logs(second)]
    assert lines == ["b1", "b2"]
    assert await runtime.logs(first, tail=2) == "a2\na3\n"
    assert await runtime.logs(second) == "b1\nb2\n"
    stamped = await runtime.logs(second, timestamps=True, tail=1)
    assert stamped.endswith("Z b2\n") and stamped[:4].isdigit()


async def test_term_then_kill_after_grace(runtime: ProcessRuntime) -> None:
    sid = await runtime.create_sandbox(SB)
    polite = await runtime.create_container(sid, sh("sleep 100", name="polite"))
    stubborn = await runtime.create_container(
        sid, sh("trap '' TERM; echo ready; while true; do sleep 0.05; done", name="stubborn")
    )
    await runtime.start_container(polite)
    await runtime.start_container(stubborn)

    async def ready() -> bool:
        return "ready" in await runtime.logs(stubborn)

    await eventually(ready, "the TERM trap")
    await runtime.stop_container(polite, 5)
    assert (await runtime.container_status(polite)).exit_code == 143
    await runtime.stop_container(stubborn, 0.3)
    status = await runtime.container_status(stubborn)
    assert (status.exit_code, status.reason) == (137, "Error")


async def test_env_is_exact_plus_passthrough(runtime: ProcessRuntime, tmp_path: Path) -> None:
    sid = await runtime.create_sandbox(SB)
    spec = ContainerSpec(
        name="c", image="x", command=(sys.executable, "-c"),
        args=("import os, json; print(json.dumps(dict(os.environ)))",),
        env=(("GREETING", "hello"), ("HOME", "/custom-home")),
    )  # fmt: skip
    cid = await runtime.create_container(sid, spec)
    await runtime.start_container(cid)
    await wait_exit(runtime, cid)
    import json

    env = json.loads(await runtime.logs(cid))
    env.pop("LC_CTYPE", None)  # the interpreter may set it itself
    expected = {"GREETING": "hello", "HOME": "/custom-home"}
    for key in ("PATH", "LANG"):
        if key in os.environ:
            expected[key] = os.environ[key]
    root = env.pop("ORCHESTRA_ROOT")
    assert env == expected
    assert root.startswith(runtime.state_dir)


async def test_working_dir_and_mounts(runtime: ProcessRuntime, tmp_path: Path) -> None:
    vol = tmp_path / "vol"
    vol.mkdir()
    (vol / "key").write_text("value")
    sid = await runtime.create_sandbox(SB)
    spec = sh("pwd; cat etc/config/key; echo", mounts=(Mount(str(vol), "/etc/config"),))
    cid = await runtime.create_container(sid, spec)
    await runtime.start_container(cid)
    await wait_exit(runtime, cid)
    pwd, value = (await runtime.logs(cid)).splitlines()
    assert pwd.startswith(runtime.state_dir) and value == "value"
    other = await runtime.create_container(sid, sh("pwd", name="w", working_dir=str(tmp_path)))
    await runtime.start_container(other)
    await wait_exit(runtime, other)
    assert (await runtime.logs(other)).strip() == str(tmp_path)
    inside = await runtime.create_container(
        sid, sh("cat key", name="m", working_dir="/etc/config",
                mounts=(Mount(str(vol), "/etc/config"),))
    )  # fmt: skip
    await runtime.start_container(inside)
    await wait_exit(runtime, inside)
    assert await runtime.logs(inside) == "value\n"


async def test_exec_in_container_env_and_timeout(runtime: ProcessRuntime) -> None:
    sid = await runtime.create_sandbox(SB)
    cid = await runtime.create_container(sid, sh("sleep 100", env=(("WHO", "world"),)))
    await runtime.start_container(cid)
    result = await runtime.exec(cid, ["sh", "-c", 'echo "hello $WHO"; echo e >&2; exit 4'])
    assert (result.exit_code, result.stdout, result.stderr) == (4, "hello world\n", "e\n")
    with pytest.raises(Timeout):
        await runtime.exec(cid, ["sleep", "100"], timeout=0.2)
    missing = await runtime.exec(cid, ["nope-not-here"])
    assert missing.exit_code == 127 and "executable file not found" in missing.stderr
    await runtime.stop_container(cid, 1)


async def test_stats(runtime: ProcessRuntime) -> None:
    sid = await runtime.create_sandbox(SB)
    program = 'x = b"x" * (50 * 2**20)\nprint("ready", flush=True)\nwhile True: pass'
    cid = await runtime.create_container(
        sid, ContainerSpec(name="c", image="x", command=(sys.executable, "-c", program))
    )
    await runtime.start_container(cid)

    async def ready() -> bool:
        return "ready" in await runtime.logs(cid)

    await eventually(ready, "the allocation")
    await runtime.stats(cid)
    await asyncio.sleep(0.3)
    stats = await runtime.stats(cid)
    assert stats.memory_bytes > 50 * 2**20
    assert stats.cpu_milli > 100  # a busy loop (the machine is shared: be lenient)
    await runtime.stop_container(cid, 1)
    assert (await runtime.stats(cid)).memory_bytes == 0


async def _http_server(status: int) -> asyncio.Server:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError:  # a tcpSocket probe: connect, then close
            writer.close()
            return
        code = status if b"X-Check: yes" in request else 400
        writer.write(f"HTTP/1.1 {code} X\r\nContent-Length: 0\r\n\r\n".encode())
        await writer.drain()
        writer.close()

    return await asyncio.start_server(handle, "127.0.0.1", 0)


async def test_network_probes(runtime: ProcessRuntime) -> None:
    sid = await runtime.create_sandbox(SB)
    cid = await runtime.create_container(sid, sh("sleep 100"))
    await runtime.start_container(cid)
    ok = await _http_server(200)
    bad = await _http_server(500)
    ok_port = ok.sockets[0].getsockname()[1]
    bad_port = bad.sockets[0].getsockname()[1]
    headers = [{"name": "X-Check", "value": "yes"}]
    try:
        get = {"httpGet": {"path": "/healthz", "port": ok_port, "httpHeaders": headers}}
        assert (await runtime.probe(SB, cid, "readiness", get)).success
        assert (await runtime.probe(SB, cid, "readiness", Probe.model_validate(get))).success
        get = {"httpGet": {"path": "/healthz", "port": bad_port, "httpHeaders": headers}}
        outcome = await runtime.probe(SB, cid, "liveness", get)
        assert outcome.message == "HTTP probe failed with statuscode: 500"
        assert (await runtime.probe(SB, cid, "startup", {"tcpSocket": {"port": ok_port}})).success
    finally:
        ok.close()
        bad.close()
        await ok.wait_closed()
        await bad.wait_closed()
    outcome = await runtime.probe(SB, cid, "readiness", {"tcpSocket": {"port": ok_port}})
    assert outcome.message == f"dial tcp 127.0.0.1:{ok_port}: connect: connection refused"
    get = {"httpGet": {"path": "/healthz", "port": ok_port}}
    outcome = await runtime.probe(SB, cid, "readiness", get)
    assert outcome.message == (
        f'Get "http://127.0.0.1:{ok_port}/healthz": dial tcp 127.0.0.1:{ok_port}: '
        "connect: connection refused"
    )
    await runtime.stop_container(cid, 1)


async def test_exec_probe(runtime: ProcessRuntime) -> None:
    sid = await runtime.create_sandbox(SB)
    cid = await runtime.create_container(sid, sh("sleep 100"))
    await runtime.start_container(cid)
    assert (await runtime.probe(SB, cid, "liveness", {"exec": {"command": ["true"]}})).success
    outcome = await runtime.probe(SB, cid, "liveness", {"exec": {"command": ["false"]}})
    assert outcome == type(outcome)(False, 'command "false" exited with 1')
    outcome = await runtime.probe(
        SB, cid, "liveness", {"exec": {"command": ["sleep", "5"]}, "timeoutSeconds": 0.2}
    )
    assert outcome.message == 'command "sleep 5" timed out'
    await runtime.stop_container(cid, 1)


async def test_main_exit_kills_rest_of_group(runtime: ProcessRuntime) -> None:
    sid = await runtime.create_sandbox(SB)
    cid = await runtime.create_container(sid, sh("sleep 100 & echo $!; exit 0"))
    await runtime.start_container(cid)
    await wait_exit(runtime, cid)
    pid = int((await runtime.logs(cid)).strip())
    from orchestra.runtime.process._proc import is_alive

    async def gone() -> bool:
        return not is_alive(pid)

    await eventually(gone, "the background child to die")


async def test_remove_sandbox_removes_its_directory(runtime: ProcessRuntime) -> None:
    sid = await runtime.create_sandbox(SB)
    cid = await runtime.create_container(sid, sh("echo x; sleep 100"))
    await runtime.start_container(cid)
    [info] = await runtime.list_sandboxes()
    assert info.containers[0].state is State.RUNNING
    pods = Path(runtime.state_dir) / "pods"
    assert list(pods.iterdir())
    await runtime.remove_sandbox(sid)
    assert not list(pods.iterdir())
    assert await runtime.list_sandboxes() == []


async def test_grpc_probe(runtime: ProcessRuntime) -> None:
    import grpc

    from orchestra.runtime._gen import health_pb2, health_pb2_grpc

    class Health(health_pb2_grpc.HealthServicer):
        async def Check(self, request: Any, context: Any) -> Any:
            serving = health_pb2.HealthCheckResponse.SERVING
            not_serving = health_pb2.HealthCheckResponse.NOT_SERVING
            return health_pb2.HealthCheckResponse(
                status=not_serving if request.service == "db" else serving)

    server = grpc.aio.server()
    health_pb2_grpc.add_HealthServicer_to_server(Health(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    sid = await runtime.create_sandbox(SB)
    cid = await runtime.create_container(sid, sh("sleep 100"))
    await runtime.start_container(cid)
    try:
        ok = Probe.model_validate({"grpc": {"port": port}})
        assert (await runtime.probe(SB, cid, "liveness", ok)).success
        bad = Probe.model_validate({"grpc": {"port": port, "service": "db"}})
        outcome = await runtime.probe(SB, cid, "liveness", bad)
        assert outcome.message == 'service unhealthy (responded with "NOT_SERVING")'
    finally:
        await server.stop(None)
    outcome = await runtime.probe(SB, cid, "liveness", ok)
    assert outcome.message == (f'timeout: failed to connect service "127.0.0.1:{port}" '
                               "within 1s: context deadline exceeded")
    await runtime.stop_container(cid, 1)
