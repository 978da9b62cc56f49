"""The fake runtime: scripted by annotations, on a manual clock."""

from __future__ import annotations

from typing import Any

import pytest

from orchestra._clock import ManualClock
from orchestra._errors import NotFound, OrchestraError
from orchestra.runtime import (
    ContainerCreateError,
    ContainerEvent,
    ContainerSpec,
    ImagePullError,
    SandboxSpec,
    State,
)
from orchestra.runtime.fake import FakeRuntime

pytestmark = pytest.mark.anyio
P = "fake.orchestra.dev/"


def sandbox(**annotations: str) -> SandboxSpec:
    return SandboxSpec(
        uid="uid-1", namespace="default", name="web", hostname="web", pod_ip="127.1.0.2",
        annotations=annotations,
    )  # fmt: skip


async def make(**annotations: str) -> tuple[FakeRuntime, ManualClock, list[ContainerEvent], str]:
    clock = ManualClock()
    rt = FakeRuntime(clock=clock, cluster_name="t", state_dir="/nonexistent")
    events: list[ContainerEvent] = []
    rt.set_listener(events.append)
    await rt.start()
    sid = await rt.create_sandbox(sandbox(**annotations))
    return rt, clock, events, sid


async def test_starts_at_once_and_reports_running() -> None:
    rt, clock, events, sid = await make()
    cid = await rt.create_container(sid, ContainerSpec(name="app", image="nginx"))
    assert (await rt.container_status(cid)).state is State.CREATED
    await rt.start_container(cid)
    status = await rt.container_status(cid)
    assert status.state is State.RUNNING
    assert status.started_at == clock.now()
    assert [e.status.state for e in events] == [State.RUNNING]
    assert events[0].container_id == cid and events[0].sandbox_id == sid


async def test_start_delay_and_exit_after_with_code() -> None:
    rt, clock, events, sid = await make(
        **{P + "start-delay": "1.5s", P + "exit-after": "2m", P + "exit-code": "3"}
    )
    cid = await rt.create_container(sid, ContainerSpec(name="app", image="busybox"))
    await rt.start_container(cid)
    await clock.advance(1.4)
    assert (await rt.container_status(cid)).state is State.CREATED
    await clock.advance(0.1)
    assert (await rt.container_status(cid)).state is State.RUNNING
    await clock.advance(119)
    assert (await rt.container_status(cid)).state is State.RUNNING
    await clock.advance(1)
    status = await rt.container_status(cid)
    assert status.state is State.EXITED
    assert status.exit_code == 3 and status.reason == "Error"
    assert status.finished_at == clock.now()
    assert [(e.status.state, e.status.exit_code) for e in events] == [
        (State.RUNNING, None),
        (State.EXITED, 3),
    ]


async def test_a_list_of_exit_codes_gives_each_attempt_its_own() -> None:
    """``exit-code: 1,2,0``: the first container of that name in the pod exits 1, the
    second 2, every later one 0 (how a test scripts "fails, then succeeds")."""
    rt, clock, _, sid = await make(**{P + "exit-after": "1s", P + "exit-code": "1,2,0"})
    codes = []
    for _ in range(4):
        cid = await rt.create_container(sid, ContainerSpec(name="app", image="busybox"))
        await rt.start_container(cid)
        await clock.advance(1)
        codes.append((await rt.container_status(cid)).exit_code)
    assert codes == [1, 2, 0, 0]
    other = await rt.create_container(sid, ContainerSpec(name="other", image="busybox"))
    await rt.start_container(other)
    await clock.advance(1)
    assert (await rt.container_status(other)).exit_code == 1  # counted per name
    rt2, _, _, bad = await make(**{P + "exit-code": "1,x"})
    with pytest.raises(ContainerCreateError, match="invalid annotation"):
        await rt2.create_container(bad, ContainerSpec(name="app", image="busybox"))


async def test_exit_zero_is_completed() -> None:
    rt, clock, _, sid = await make(**{P + "exit-after": "200ms"})
    cid = await rt.create_container(sid, ContainerSpec(name="job", image="busybox"))
    await rt.start_container(cid)
    await clock.advance(0.2)
    status = await rt.container_status(cid)
    assert (status.exit_code, status.reason) == (0, "Completed")


async def test_container_prefix_wins_over_pod_wide() -> None:
    rt, clock, _, sid = await make(
        **{P + "exit-after": "1s", P + "exit-code": "1", P + "db.exit-code": "7",
           P + "db.exit-after": "5s"}
    )  # fmt: skip
    web = await rt.create_container(sid, ContainerSpec(name="web", image="x"))
    db = await rt.create_container(sid, ContainerSpec(name="db", image="x"))
    await rt.start_container(web)
    await rt.start_container(db)
    await clock.advance(1)
    assert (await rt.container_status(web)).exit_code == 1
    assert (await rt.container_status(db)).state is State.RUNNING
    await clock.advance(4)
    assert (await rt.container_status(db)).exit_code == 7


async def test_pull_error_only_from_annotation() -> None:
    rt, _, _, _ = await make()
    info = await rt.pull_image(sandbox(), ContainerSpec(name="a", image="doesnotexist:1"))
    assert info.ref == "doesnotexist:1" and info.id.startswith("sha256:")
    msg = 'failed to pull and unpack image "docker.io/library/nope:1": not found'
    with pytest.raises(ImagePullError, match="not found"):
        await rt.pull_image(
            sandbox(**{P + "a.pull-error": msg}), ContainerSpec(name="a", image="x")
        )
    # the prefixed error applies to container "a" only
    await rt.pull_image(sandbox(**{P + "a.pull-error": msg}), ContainerSpec(name="b", image="x"))


async def test_bad_annotation_fails_create_naming_it() -> None:
    rt, _, _, sid = await make(**{P + "exit-after": "soon"})
    with pytest.raises(ContainerCreateError, match=r"fake\.orchestra\.dev/exit-after"):
        await rt.create_container(sid, ContainerSpec(name="a", image="x"))


async def test_stop_is_sigterm_143() -> None:
    rt, _, events, sid = await make()
    cid = await rt.create_container(sid, ContainerSpec(name="a", image="x"))
    await rt.start_container(cid)
    await rt.stop_container(cid, 30)
    status = await rt.container_status(cid)
    assert (status.state, status.exit_code, status.reason) == (State.EXITED, 143, "Error")
    assert events[-1].status.exit_code == 143


async def test_ignore_sigterm_waits_grace_then_137() -> None:
    import asyncio

    rt, clock, _, sid = await make(**{P + "ignore-sigterm": "true"})
    cid = await rt.create_container(sid, ContainerSpec(name="a", image="x"))
    await rt.start_container(cid)
    stopping = asyncio.ensure_future(rt.stop_container(cid, 10))
    await clock.advance(9)
    assert not stopping.done()
    assert (await rt.container_status(cid)).state is State.RUNNING
    await clock.advance(1)
    assert stopping.done()
    assert (await rt.container_status(cid)).exit_code == 137


async def test_stats_from_annotations() -> None:
    rt, _, _, sid = await make(**{P + "cpu": "250m", P + "memory": "64Mi"})
    cid = await rt.create_container(sid, ContainerSpec(name="a", image="x"))
    assert (await rt.stats(cid)).cpu_milli == 0
    await rt.start_container(cid)
    stats = await rt.stats(cid)
    assert stats.cpu_milli == 250 and stats.memory_bytes == 64 * 2**20


@pytest.mark.parametrize(
    ("probe", "message"),
    [
        ({"httpGet": {"path": "/healthz", "port": 8080}}, "HTTP probe failed with statuscode: 500"),
        ({"tcpSocket": {"port": 5432}}, "dial tcp 127.1.0.2:5432: connect: connection refused"),
        (
            {"exec": {"command": ["cat", "/tmp/healthy"]}},
            'command "cat /tmp/healthy" exited with 1',
        ),
    ],
)
async def test_probe_fail_names_kinds(probe: dict[str, Any], message: str) -> None:
    rt, _, _, sid = await make(**{P + "probe-fail": "liveness, startup"})
    cid = await rt.create_container(sid, ContainerSpec(name="a", image="x"))
    await rt.start_container(cid)
    sb = sandbox()
    assert (await rt.probe(sb, cid, "readiness", probe)).success
    for kind in ("liveness", "startup"):
        outcome = await rt.probe(sb, cid, kind, probe)
        assert not outcome.success and outcome.message == message


async def test_exec_exit_code_and_not_running() -> None:
    rt, _, _, sid = await make(**{P + "exec-exit-code": "2"})
    cid = await rt.create_container(sid, ContainerSpec(name="a", image="x"))
    with pytest.raises(OrchestraError):
        await rt.exec(cid, ["true"])
    await rt.start_container(cid)
    result = await rt.exec(cid, ["true"])
    assert (result.exit_code, result.stdout, result.stderr) == (2, "", "")


async def test_logs_previous_attempt_and_follow() -> None:
    import asyncio

    rt, clock, _, sid = await make(**{P + "exit-after": "10s", P + "exit-code": "1"})
    first = await rt.create_container(sid, ContainerSpec(name="a", image="x"))
    await rt.start_container(first)
    await clock.advance(10)
    await rt.remove_container(first)
    second = await rt.create_container(sid, ContainerSpec(name="a", image="x", attempt=1))
    await rt.start_container(second)
    # the removed attempt's logs stay readable until the sandbox goes
    assert await rt.logs(first) == "fake container a started\nfake container a exited with code 1\n"
    assert await rt.logs(first, tail=1) == "fake container a exited with code 1\n"
    stamped = await rt.logs(second, timestamps=True)
    assert stamped.endswith("Z fake container a started\n")
    lines: list[str] = []

    async def follow() -> None:
        async for line in rt.stream_logs(second):
            lines.append(line)

    task = asyncio.ensure_future(follow())
    await clock.advance(10)
    await asyncio.wait_for(task, 5)
    assert lines == ["fake container a started", "fake container a exited with code 1"]
    await rt.remove_sandbox(sid)
    with pytest.raises(NotFound):
        await rt.logs(first)


async def test_list_sandboxes_and_kill() -> None:
    rt, _, events, sid = await make()
    cid = await rt.create_container(sid, ContainerSpec(name="a", image="x"))
    await rt.start_container(cid)
    [info] = await rt.list_sandboxes()
    assert (info.id, info.uid, info.name) == (sid, "uid-1", "web")
    assert [c.state for c in info.containers] == [State.RUNNING]
    rt.kill_all()
    assert (await rt.container_status(cid)).exit_code == 137
    assert events[-1].status.state is State.EXITED
    await rt.close()
    assert await rt.list_sandboxes() == []


async def test_many_containers_are_cheap() -> None:
    rt, clock, events, _ = await make()
    sids = [await rt.create_sandbox(sandbox(**{P + "exit-after": "1m"})) for _ in range(2000)]
    for sid in sids:
        cid = await rt.create_container(sid, ContainerSpec(name="a", image="x"))
        await rt.start_container(cid)
    await clock.advance(60)
    assert sum(e.status.state is State.EXITED for e in events) == 2000


async def test_bad_quantity_annotation_fails_create() -> None:
    rt, _, _, sid = await make(**{P + "memory": "lots"})
    with pytest.raises(ContainerCreateError, match=r"fake\.orchestra\.dev/memory"):
        await rt.create_container(sid, ContainerSpec(name="a", image="x"))


async def test_probe_messages_with_probe_models() -> None:
    from orchestra.objects._pod import Probe

    rt, _, _, sid = await make(**{P + "probe-fail": "readiness"})
    cid = await rt.create_container(sid, ContainerSpec(name="a", image="x"))
    await rt.start_container(cid)
    probe = Probe.model_validate({"tcpSocket": {"port": 80}})
    outcome = await rt.probe(sandbox(), cid, "readiness", probe)
    assert outcome.message == "dial tcp 127.1.0.2:80: connect: connection refused"


async def test_an_init_container_exits_0_at_once_unless_scripted() -> None:
    rt, clock, events, sid = await make(**{P + "slow.exit-after": "5s",
                                           P + "bad.exit-code": "2"})
    init = await rt.create_container(sid, ContainerSpec(name="init", image="x", init=True))
    await rt.start_container(init)
    status = await rt.container_status(init)
    assert (status.state, status.exit_code, status.reason) == (State.EXITED, 0, "Completed")
    assert [e.status.state for e in events] == [State.RUNNING, State.EXITED]
    bad = await rt.create_container(sid, ContainerSpec(name="bad", image="x", init=True))
    await rt.start_container(bad)
    assert (await rt.container_status(bad)).exit_code == 2
    slow = await rt.create_container(sid, ContainerSpec(name="slow", image="x", init=True))
    await rt.start_container(slow)
    assert (await rt.container_status(slow)).state is State.RUNNING
    await clock.advance(5)
    assert (await rt.container_status(slow)).exit_code == 0
    # A sidecar or a main container (init=False) runs until stopped.
    app = await rt.create_container(sid, ContainerSpec(name="app", image="x"))
    await rt.start_container(app)
    await clock.advance(3600)
    assert (await rt.container_status(app)).state is State.RUNNING


async def test_a_start_error_leaves_the_container_exited_as_containerd_does() -> None:
    rt, clock, events, sid = await make(**{P + "start-error": "exec: no"})
    cid = await rt.create_container(sid, ContainerSpec(name="app", image="x"))
    with pytest.raises(ContainerCreateError, match=r"^exec: no$"):
        await rt.start_container(cid)
    status = await rt.container_status(cid)
    assert (status.state, status.exit_code, status.reason, status.message) == (
        State.EXITED, 128, "StartError", "exec: no")
    assert status.started_at is None and status.finished_at == clock.now()
    assert [e.status.state for e in events] == [State.EXITED]
