"""Containers that cannot start (command not found, permission denied, create errors)
are retried under CrashLoopBackOff's schedule, with the kubelet's reasons and
messages; counted on a ManualClock on every runtime (fake, process, containerd)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

import orchestra as oc
from orchestra._cli import pod_status
from tests.behaviour._util import MakeCluster

pytestmark = pytest.mark.anyio

NOT_FOUND = 'exec: "no-such-binary-xyz": executable file not found in $PATH'
# runc's wording of the same failure, as containerd reports it.
RUNC_NOT_FOUND = f"unable to start container process: {NOT_FOUND}: unknown"


def not_found(runtime: str) -> str:
    return RUNC_NOT_FOUND if runtime == "containerd" else NOT_FOUND

# Attempts at 0 and 0 (the first restart is immediate), then after 10, 20, 40, 80, 160
# and 300 (capped) seconds: restarts at 10, 30, 70, 150, 310, 610, 910.
SCHEDULE = [(0, 1), (10, 2), (30, 3), (70, 4), (150, 5), (310, 6), (610, 7), (910, 8)]


def _pod(runtime: str, *, create_error: bool = False) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": "p"}
    command = ["no-such-binary-xyz"]
    if runtime == "fake":
        key = "create-error" if create_error else "start-error"
        meta["annotations"] = {f"fake.orchestra.dev/{key}": NOT_FOUND}
        command = ["sleep", "3600"]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta,
            "spec": {"containers": [{"name": "main", "image": "busybox:1.36",
                                     "command": command}],
                     "terminationGracePeriodSeconds": 0}}


async def _settled(cluster: oc.Cluster, value: Any, expected: Any) -> Any:
    """Wait (real time, the runtime's work is real) until ``value()`` is ``expected``,
    then a little longer to be sure nothing more happens."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 10
    got = await value()
    while got != expected and loop.time() < deadline:
        await asyncio.sleep(0.02)
        got = await value()
    await asyncio.sleep(0.1)
    return await value()


async def test_a_container_that_cannot_start_backs_off_like_a_crash(
        runtime: str, make_cluster: MakeCluster) -> None:
    clock = oc.ManualClock()
    async with make_cluster(nodes=1, clock=clock) as cluster:
        await cluster.apply(_pod(runtime))

        async def restarts() -> int:
            p = await cluster.get("pod/p")
            statuses = p.status.container_statuses if p.status else None
            return statuses[0].restart_count if statuses else -1

        now = 0.0
        seen = []
        for at, expected in SCHEDULE:
            if at > 0:
                # Just before the restart is due: still the previous count.
                await clock.advance(at - 0.5 - now)
                seen.append((at - 0.5, await _settled(cluster, restarts, expected - 1)))
                await clock.advance(0.5)
                now = at
            seen.append((at, await _settled(cluster, restarts, expected)))
        assert seen == [(t, n) for at, n in SCHEDULE for t, n in
                        ([(at - 0.5, n - 1)] if at else []) + [(at, n)]]
        p = await cluster.get("pod/p")
        (cs,) = p.status.container_statuses
        uid = p.metadata.uid
        assert cs.state.waiting.reason == "CrashLoopBackOff"
        assert cs.state.waiting.message == (
            f"back-off 5m0s restarting failed container=main pod=p_default({uid})")
        term = cs.last_state.terminated
        assert (term.exit_code, term.reason, term.message) == (
            128, "StartError", not_found(runtime))
        assert p.status.phase == "Running"
        assert pod_status(p) == "CrashLoopBackOff"
        text = cluster.describe("pod/p")
        assert any(line.split() == ["Message:", *not_found(runtime).split()]
                   for line in text.splitlines()), text
        failed = [e for e in cluster.events(p) if e.reason == "Failed"]
        assert [(e.message, e.count) for e in failed] == [(f"Error: {not_found(runtime)}", 9)]
        assert any(e.reason == "BackOff" and e.message ==
                   f"Back-off restarting failed container main in pod p_default({uid})"
                   for e in cluster.events(p))


async def test_a_failed_create_is_retried_under_the_same_backoff() -> None:
    clock = oc.ManualClock()
    async with oc.Cluster(runtime="fake", nodes=1, clock=clock) as cluster:
        await cluster.apply(_pod("fake", create_error=True))

        async def attempts() -> int:
            evs = [e for e in cluster.events("pod/p") if e.reason == "Failed"]
            return sum(e.count or 1 for e in evs)

        for _ in range(320):
            await clock.advance(1)
        # Creates at 0, 0, 10, 30, 70, 150 and 310: seven attempts in 320 s.
        assert await attempts() == 7
        p = await cluster.get("pod/p")
        (cs,) = p.status.container_statuses
        assert (cs.state.waiting.reason, cs.state.waiting.message) == (
            "CreateContainerError", NOT_FOUND)
        assert cs.restart_count == 0


async def test_a_start_error_under_restart_policy_never_fails_the_pod(
        runtime: str, make_cluster: MakeCluster) -> None:
    async with make_cluster(nodes=1) as cluster:
        body = _pod(runtime)
        body["spec"]["restartPolicy"] = "Never"
        await cluster.apply(body)
        p = await cluster.wait_for("pod/p", "Failed", timeout=30)
        (cs,) = p.status.container_statuses
        term = cs.state.terminated
        assert (term.exit_code, term.reason, term.message) == (
            128, "StartError", not_found(runtime))
        assert cs.restart_count == 0
        assert pod_status(p) == "StartError"


@pytest.mark.parametrize(("mode", "error"), [(0o644, "permission denied"),
                                           (0o755, "exec format error")])
async def test_a_command_that_cannot_be_executed_backs_off(tmp_path: Any, mode: int,
                                                          error: str) -> None:
    script = tmp_path / "not-a-program"
    script.write_bytes(b"\x00\x01\x02 not a program\n")  # no shebang, not ELF
    script.chmod(mode)
    clock = oc.ManualClock()
    async with oc.Cluster(runtime="process", nodes=1, clock=clock) as cluster:
        await cluster.apply({
            "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
            "spec": {"containers": [{"name": "main", "image": "busybox",
                                     "command": [str(script)]}]}})

        async def waiting() -> str:
            p = await cluster.get("pod/p")
            statuses = p.status.container_statuses if p.status else None
            return statuses[0].state.waiting.reason if statuses and \
                statuses[0].state.waiting else ""

        assert await _settled(cluster, waiting, "CrashLoopBackOff") == "CrashLoopBackOff"
        p = await cluster.get("pod/p")
        term = p.status.container_statuses[0].last_state.terminated
        assert term.reason == "StartError"
        assert term.message == f'exec: "{script}": {error}'
        assert p.status.container_statuses[0].restart_count == 1


@pytest.mark.parametrize(("runs", "checkpoints"), [
    # 11 minutes of running resets the back-off: every restart is immediate.
    (660, [(659, 0), (661, 1), (1321, 2), (1981, 3)]),
    # 9 minutes 50 s does not: 0, then 10 s, then 20 s of back-off.
    (590, [(591, 1), (1185, 1), (1191, 2), (1795, 2), (1801, 3)]),
])
async def test_the_backoff_resets_after_ten_minutes_of_running(
        runs: int, checkpoints: list[tuple[int, int]]) -> None:
    clock = oc.ManualClock()
    async with oc.Cluster(runtime="fake", nodes=1, clock=clock) as cluster:
        await cluster.apply({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "p", "annotations": {
                "fake.orchestra.dev/exit-after": f"{runs}s",
                "fake.orchestra.dev/exit-code": "1"}},
            "spec": {"containers": [{"name": "main", "image": "busybox"}]}})
        now = 0
        seen = []
        for at, _ in checkpoints:
            await clock.advance(at - now)
            now = at
            p = await cluster.get("pod/p")
            seen.append((at, p.status.container_statuses[0].restart_count))
        assert seen == checkpoints
