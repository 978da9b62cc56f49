"""Container lifecycle hooks on every runtime: postStart runs after the start and a
failing one kills the container (FailedPostStartHook, then restarts); preStop runs
before the stop signal, inside the grace period (FailedPreStopHook when it fails, and the
pod still goes). On the fake runtime a hook fails when its pod's
``fake.orchestra.dev/probe-fail`` annotation names it."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

import pytest

import orchestra as oc
from orchestra._clock import ManualClock
from orchestra.loops._hooks import MIN_GRACE, pre_stop
from orchestra.objects import Pod
from orchestra.runtime import ProbeOutcome
from tests.behaviour._util import MakeCluster

pytestmark = pytest.mark.anyio


def _pod(runtime: str, *, lifecycle: dict[str, Any], command: list[str] | None = None,
         fail: str | None = None, grace: int = 5, out: Path | None = None,
         restart: str = "Always") -> dict[str, Any]:
    meta: dict[str, Any] = {"name": "p"}
    if runtime == "fake" and fail:
        meta["annotations"] = {"fake.orchestra.dev/probe-fail": fail}
    container: dict[str, Any] = {"name": "app", "image": "busybox:1.36",
                                 "command": command or ["sleep", "3600"],
                                 "lifecycle": lifecycle}
    spec: dict[str, Any] = {"containers": [container], "restartPolicy": restart,
                            "terminationGracePeriodSeconds": grace}
    if out is not None:
        container["volumeMounts"] = [{"name": "out", "mountPath": "/out"}]
        spec["volumes"] = [{"name": "out", "hostPath": {"path": str(out)}}]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec}


def _out(runtime: str) -> str:
    """The volume's path as the container's commands name it: a process container runs
    in its root directory on the host, where each mount is a link (``out``)."""
    return "out" if runtime == "process" else "/out"


async def _until(check: Any, what: str, seconds: float = 30.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while not check():
        assert loop.time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


def _texts(cluster: oc.Cluster, reason: str) -> list[str]:
    return [e.message or "" for e in cluster.events() if e.reason == reason]


async def test_a_failing_post_start_hook_kills_and_restarts_the_container(
        runtime: str, make_cluster: MakeCluster) -> None:
    async with make_cluster(nodes=1) as cluster:
        await cluster.apply(_pod(runtime, fail="postStart", lifecycle={
            "postStart": {"exec": {"command": ["sh", "-c", "echo nope; exit 3"]}}}))
        await _until(lambda: _texts(cluster, "FailedPostStartHook"), "FailedPostStartHook")
        pod = await cluster.get("pod/p")
        message = _texts(cluster, "FailedPostStartHook")[0]
        assert message.startswith(
            f'Exec lifecycle hook ([sh -c echo nope; exit 3]) for Container "app" in Pod '
            f'"p_default({pod.metadata.uid})" failed - error: ')
        if runtime != "fake":  # (the fake runtime runs no command)
            assert message.endswith("command 'sh -c echo nope; exit 3' exited with 3: , "
                                    'message: "nope\\n"')
        await _until(lambda: "FailedPostStartHook" in _texts(cluster, "Killing"),
                     "the Killing event")

        async def restarted() -> bool:
            p = await cluster.get("pod/p")
            statuses = (p.status.container_statuses or []) if p.status else []
            return bool(statuses) and statuses[0].restart_count >= 1
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 30
        while not await restarted():
            assert loop.time() < deadline, "the container was not restarted"
            await asyncio.sleep(0.05)
        p = await cluster.get("pod/p")
        status = p.status.container_statuses[0]
        assert not status.ready
        assert status.last_state is not None and status.last_state.terminated is not None


async def test_a_post_start_hook_that_succeeds_lets_the_container_run(
        runtime: str, make_cluster: MakeCluster, tmp_path: Path) -> None:
    # The hook writes a file the main container waits for, so it ran in the container.
    out = _out(runtime)
    command = None if runtime == "fake" else [
        "sh", "-c", f"while [ ! -f {out}/started ]; do sleep 0.05; done; "
                    f"echo seen > {out}/seen; sleep 3600"]
    async with make_cluster(nodes=1) as cluster:
        await cluster.apply(_pod(runtime, command=command, out=tmp_path, lifecycle={
            "postStart": {"exec": {"command": ["sh", "-c", f"echo hi > {out}/started"]}}}))
        await cluster.wait_for("pod/p", "Ready", timeout=30)
        assert not _texts(cluster, "FailedPostStartHook")
        if runtime != "fake":
            await _until(lambda: (tmp_path / "seen").exists(), "the main container's file")
            assert (tmp_path / "started").read_text() == "hi\n"


@pytest.mark.parametrize("runtime", ["process", "containerd"], indirect=True)
async def test_pre_stop_runs_before_the_stop_signal(
        runtime: str, make_cluster: MakeCluster, tmp_path: Path) -> None:
    # (not on the fake runtime, which runs no command: see the FailedPreStopHook test)
    # The main container records, on SIGTERM, whether the preStop hook had written first.
    out = _out(runtime)
    main = ["sh", "-c", f"trap 'if [ -f {out}/prestop ]; then echo after > {out}/order; "
                        f"else echo before > {out}/order; fi; exit 0' TERM; "
                        "while true; do sleep 0.05; done"]
    async with make_cluster(nodes=1) as cluster:
        await cluster.apply(_pod(runtime, command=main, out=tmp_path, lifecycle={
            "preStop": {"exec": {"command": ["sh", "-c", f"sleep 0.2; echo x > {out}/prestop"]}}}))
        await cluster.wait_for("pod/p", "Ready", timeout=30)
        await cluster.delete("pod/p")
        await _until(lambda: (tmp_path / "order").exists(), "the main container's SIGTERM")
        assert (tmp_path / "order").read_text() == "after\n"
        assert not _texts(cluster, "FailedPreStopHook")


async def test_a_failing_pre_stop_hook_is_reported_and_the_pod_still_goes(
        runtime: str, make_cluster: MakeCluster) -> None:
    async with make_cluster(nodes=1) as cluster:
        await cluster.apply(_pod(runtime, fail="preStop", lifecycle={
            "preStop": {"exec": {"command": ["sh", "-c", "exit 7"]}}}))
        await cluster.wait_for("pod/p", "Ready", timeout=30)
        pod = await cluster.get("pod/p")
        await cluster.delete("pod/p")
        await _until(lambda: _texts(cluster, "FailedPreStopHook"), "FailedPreStopHook")
        assert _texts(cluster, "FailedPreStopHook")[0].startswith(
            f'Exec lifecycle hook ([sh -c exit 7]) for Container "app" in Pod '
            f'"p_default({pod.metadata.uid})" failed - error: ')
        await _until(lambda: not cluster.store.list("Pod"), "the pod's deletion")


@pytest.mark.parametrize("runtime", ["process"], indirect=True)
async def test_an_http_post_start_hook_reaches_the_pod_and_any_status_succeeds(
        runtime: str, make_cluster: MakeCluster) -> None:
    # (on the process runtime, whose containers can run Python's HTTP server)
    # The server is a native sidecar whose startup probe holds the main container back
    # until it listens: the hook of the main container then reaches it.
    server = {"name": "server", "image": "python:3", "restartPolicy": "Always",
              "command": [sys.executable, "-u", "-m", "http.server", "18089"],
              "startupProbe": {"tcpSocket": {"port": 18089}, "periodSeconds": 1}}
    async with make_cluster(nodes=1) as cluster:
        pod = _pod(runtime, lifecycle={
            "postStart": {"httpGet": {"path": "/hooked", "port": 18089}}})
        pod["spec"]["initContainers"] = [server]
        await cluster.apply(pod)
        await cluster.wait_for("pod/p", "Ready", timeout=30)

        async def logged() -> bool:
            text = await cluster.logs("pod/p", "server")
            return '"GET /hooked HTTP/1.1" 404' in text
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 10
        while not await logged():
            assert loop.time() < deadline, "the hook's request did not reach the server"
            await asyncio.sleep(0.05)
        assert not _texts(cluster, "FailedPostStartHook")  # a 404 is an answer


# -- the grace period's accounting, on a ManualClock -------------------------------------


class _Runtime:
    async def probe(self, *args: Any) -> ProbeOutcome:  # (never called: sleep handlers)
        raise AssertionError("a sleep hook runs no probe")


def _sleeping_pod(seconds: int) -> Pod:
    return Pod.model_validate(_pod("fake", lifecycle={"preStop": {"sleep": {
        "seconds": seconds}}}))


async def _pre_stop(clock: ManualClock, pod: Pod, grace: float) -> tuple[float, str | None]:
    task = asyncio.ensure_future(pre_stop(
        runtime=_Runtime(), clock=clock, sandbox=object(),  # type: ignore[arg-type]
        pod=pod, container=pod.spec.containers[0], container_id="c", grace=grace))
    for _ in range(100):
        await asyncio.sleep(0)
        await clock.advance(1)
        if task.done():
            break
    return await task


async def test_pre_stop_takes_its_time_out_of_the_grace_period() -> None:
    clock = ManualClock()
    start = clock.monotonic()
    assert await _pre_stop(clock, _sleeping_pod(5), 30.0) == (25.0, None)
    assert clock.monotonic() - start == 5


async def test_a_pre_stop_longer_than_the_grace_period_is_cut_short() -> None:
    clock = ManualClock()
    start = clock.monotonic()
    assert await _pre_stop(clock, _sleeping_pod(40), 30.0) == (MIN_GRACE, None)
    assert clock.monotonic() - start == 30


async def test_no_pre_stop_without_a_grace_period() -> None:
    clock = ManualClock()
    assert await _pre_stop(clock, _sleeping_pod(5), 0.0) == (0.0, None)
