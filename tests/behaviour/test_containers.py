"""Containers: restart policies and CrashLoopBackOff's schedule, previous logs, init
containers, Jobs, exec and log streaming; on every runtime (fake, process, containerd)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

import orchestra as oc
from orchestra.objects._scalars import parse_time
from tests.behaviour._util import MakeCluster

pytestmark = pytest.mark.anyio


def exits(runtime: str, code: int, *, after: float = 0.05, say: str = "attempt"
          ) -> tuple[list[str], dict[str, str]]:
    """(command, annotations) of a container that prints ``say`` then exits ``code``."""
    if runtime == "fake":
        return ["sleep", "1"], {"fake.orchestra.dev/exit-after": f"{int(after * 1000)}ms",
                                "fake.orchestra.dev/exit-code": str(code)}
    return ["sh", "-c", f"echo {say}; sleep {after}; exit {code}"], {}


def pod(name: str, command: list[str], annotations: dict[str, str] | None = None,
        **spec: Any) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if annotations:
        meta["annotations"] = annotations
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta,
            "spec": {"containers": [{"name": "main", "image": "busybox:1.36",
                                     "command": command}],
                     "terminationGracePeriodSeconds": 1, **spec}}


@pytest.fixture
async def scaled(make_cluster: MakeCluster) -> AsyncIterator[oc.Cluster]:
    """A one-node cluster on a clock 20x faster than real time."""
    async with make_cluster(nodes=1, clock=oc.ScaledClock(20)) as c:
        yield c


async def test_crash_loop_backoff_doubles_to_the_cap(runtime: str,
                                                     make_cluster: MakeCluster) -> None:
    # Backoffs 0 (first restart), 10, 20, 40, 80, 160, 300 (capped), ... clock seconds.
    # Real containers take real time to restart, which the clock's speed multiplies:
    # containerd (a shim and a task per start) runs slower and checks one doubling less.
    speed, restarts = {"fake": (200, 8), "process": (40, 5), "containerd": (5, 4)}[runtime]
    clock = oc.ScaledClock(speed)
    async with make_cluster(nodes=1, clock=clock) as cluster:
        command, ann = exits(runtime, 1)
        rv = cluster.store.resource_version
        await cluster.apply(pod("crash", command, ann))
        gaps: dict[int, float] = {}
        saw_backoff = False

        async def record() -> None:
            nonlocal saw_backoff
            async for ev in cluster.watch("pods", resource_version=rv):
                cs = (ev.object.status.container_statuses or (None,))[0] \
                    if ev.object.status else None
                if cs is None:
                    continue
                if cs.state.waiting and cs.state.waiting.reason == "CrashLoopBackOff":
                    saw_backoff = True
                last = cs.last_state.terminated if cs.last_state else None
                # the current attempt's start: running, or already exited again (a short
                # run may never be seen running)
                current = cs.state.running or cs.state.terminated
                if current is not None and last is not None and \
                        cs.restart_count not in gaps:
                    gaps[cs.restart_count] = (parse_time(current.started_at)
                                              - parse_time(last.finished_at))
                    if cs.restart_count >= restarts:
                        return

        await asyncio.wait_for(record(), timeout=30)
        assert saw_backoff
        expected = {1: 0, 2: 10, 3: 20, 4: 40, 5: 80, 6: 160, 7: 300, 8: 300}
        for n, gap in sorted(gaps.items()):
            want = expected[n]
            # second-precision timestamps; scheduling latency is multiplied by the speed
            assert want - 1.5 <= gap <= want * 1.3 + 6, (n, gap, gaps)
        p = await cluster.get("pod/crash")
        assert p.status.phase == "Running"
        events = [e for e in cluster.events(p) if e.reason == "BackOff"]
        assert events and events[0].type == "Warning"
        assert events[0].message.startswith("Back-off restarting failed container main")


async def test_previous_logs_are_the_dead_containers_output() -> None:
    clock = oc.ScaledClock(20)
    async with oc.Cluster(runtime="process", nodes=1, clock=clock) as cluster:
        await cluster.apply(pod("crash", ["sh", "-c", "echo attempt $(date +%s%N); exit 1"]))
        p = await cluster.wait_for("pod/crash", lambda p: p.status.container_statuses and
                                   p.status.container_statuses[0].restart_count >= 2,
                                   timeout=120)
        previous = await cluster.logs("crash", previous=True)
        assert previous.startswith("attempt ") and previous.count("attempt") == 1
        current = await cluster.logs("crash")
        assert current.count("attempt") <= 1
        with pytest.raises(oc.NotFound):
            await cluster.apply(pod("fresh", ["sleep", "60"]))
            await cluster.wait_for("pod/fresh", "Ready", timeout=30)
            await cluster.logs("fresh", previous=True)
        assert p.status.container_statuses[0].last_state.terminated.exit_code == 1
        assert p.status.container_statuses[0].last_state.terminated.reason == "Error"


@pytest.mark.parametrize("policy,code,phase,restarts", [
    ("Never", 0, "Succeeded", 0), ("Never", 1, "Failed", 0),
    ("OnFailure", 0, "Succeeded", 0), ("Always", 0, "Running", 1)])
async def test_restart_policies(scaled: oc.Cluster, runtime: str, policy: str, code: int,
                                phase: str, restarts: int) -> None:
    command, ann = exits(runtime, code)
    await cluster_apply(scaled, pod("p", command, ann, restartPolicy=policy))
    if phase == "Running":
        p = await scaled.wait_for("pod/p", lambda p: p.status.container_statuses and
                                  p.status.container_statuses[0].restart_count >= restarts,
                                  timeout=60)
    else:
        p = await scaled.wait_for("pod/p", phase, timeout=60)
        term = p.status.container_statuses[0].state.terminated
        assert term.exit_code == code
        assert term.reason == ("Completed" if code == 0 else "Error")
        assert p.status.container_statuses[0].restart_count == 0
    assert p.status.phase == phase


async def test_on_failure_restarts_until_success(scaled: oc.Cluster, runtime: str) -> None:
    if runtime == "fake":
        # fails twice (exit 1, then 2), succeeds the third time
        command, ann = exits(runtime, 0)
        ann["fake.orchestra.dev/exit-code"] = "1,2,0"
        spec = pod("p", command, ann, restartPolicy="OnFailure")
        restarts = 2
    else:
        # fails the first time, succeeds the second (a marker file in a per-pod emptyDir)
        # (process containers see their mounts under $ORCHESTRA_ROOT, their working dir)
        script = "if [ -e data/x ]; then exit 0; fi; touch data/x; exit 1"
        spec = pod("p", ["sh", "-c", script], restartPolicy="OnFailure")
        spec["spec"]["volumes"] = [{"name": "data", "emptyDir": {}}]
        c = spec["spec"]["containers"][0]
        c["volumeMounts"] = [{"name": "data", "mountPath": "/data"}]
        restarts = 1
    await cluster_apply(scaled, spec)
    p = await scaled.wait_for("pod/p", "Succeeded", timeout=60)
    status = p.status.container_statuses[0]
    assert status.restart_count == restarts
    assert status.state.terminated.exit_code == 0
    assert status.state.terminated.reason == "Completed"
    assert status.last_state.terminated.exit_code == (2 if runtime == "fake" else 1)


async def cluster_apply(cluster: oc.Cluster, body: dict[str, Any]) -> None:
    await cluster.apply(body)


async def test_init_containers_run_in_order_before_the_main_containers(
        scaled: oc.Cluster, runtime: str) -> None:
    spec = pod("p", ["sleep", "3600"])
    inits = []
    for i in (1, 2):
        command, _ann = exits(runtime, 0, after=0.1, say=f"init-{i}")
        inits.append({"name": f"init-{i}", "image": "busybox:1.36", "command": command})
    spec["spec"]["initContainers"] = inits
    if runtime == "fake":
        spec["metadata"]["annotations"] = {
            f"fake.orchestra.dev/init-{i}.exit-after": "100ms" for i in (1, 2)}
    await scaled.apply(spec)
    p = await scaled.wait_for("pod/p", "Ready", timeout=60)
    assert [s.name for s in p.status.init_container_statuses] == ["init-1", "init-2"]
    assert all(s.state.terminated.reason == "Completed"
               for s in p.status.init_container_statuses)
    started = [e.message for e in scaled.events(p) if e.reason == "Started"]
    assert started == ["Started container init-1", "Started container init-2",
                       "Started container main"]
    first, second = p.status.init_container_statuses
    assert parse_time(first.state.terminated.finished_at) <= \
        parse_time(second.state.terminated.started_at)
    assert parse_time(second.state.terminated.finished_at) <= \
        parse_time(p.status.container_statuses[0].state.running.started_at)
    conds = {c.type: c.status for c in p.status.conditions}
    assert conds["Initialized"] == "True"


async def test_a_failing_init_container_holds_the_pod(scaled: oc.Cluster, runtime: str) -> None:
    spec = pod("p", ["sleep", "3600"], restartPolicy="Never")
    command, ann = exits(runtime, 2)
    spec["spec"]["initContainers"] = [{"name": "init", "image": "busybox:1.36",
                                       "command": command}]
    if ann:
        spec["metadata"]["annotations"] = {f"fake.orchestra.dev/init.{k.split('/')[1]}": v
                                           for k, v in ann.items()}
    await scaled.apply(spec)
    p = await scaled.wait_for("pod/p", "Failed", timeout=60)
    assert p.status.init_container_statuses[0].state.terminated.exit_code == 2
    assert p.status.container_statuses[0].state.waiting.reason == "PodInitializing"


def job(name: str, command: list[str], annotations: dict[str, str] | None = None,
        **spec: Any) -> dict[str, Any]:
    meta: dict[str, Any] = {}
    if annotations:
        meta["annotations"] = annotations
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name},
            "spec": {"template": {"metadata": meta, "spec": {
                "restartPolicy": "Never", "terminationGracePeriodSeconds": 1,
                "containers": [{"name": "main", "image": "busybox:1.36", "command": command}]}},
                **spec}}


async def test_a_job_completes_and_a_failing_job_exceeds_its_backoff_limit(
        scaled: oc.Cluster, runtime: str) -> None:
    command, ann = exits(runtime, 0)
    await scaled.apply(job("ok", command, ann, completions=2, parallelism=2))
    j = await scaled.wait_for("job/ok", "Complete", timeout=60)
    assert j.status.succeeded == 2
    command, ann = exits(runtime, 1)
    await scaled.apply(job("bad", command, ann, backoffLimit=1))
    j = await scaled.wait_for("job/bad", "Failed", timeout=120)
    failed = next(c for c in j.status.conditions if c.type == "Failed")
    assert failed.reason == "BackoffLimitExceeded"
    assert failed.message == "Job has reached the specified backoff limit"
    assert j.status.failed == 2
    assert any(e.reason == "BackoffLimitExceeded" for e in scaled.events("job/bad"))


async def test_exec(cluster: oc.Cluster, runtime: str) -> None:
    # The fake runtime runs no command: its exec exits with the scripted code.
    scripted = {"fake.orchestra.dev/exec-exit-code": "3"} if runtime == "fake" else None
    await cluster.apply(pod("p", ["sleep", "3600"], scripted))
    await cluster.wait_for("pod/p", "Ready", timeout=30)
    r = await cluster.exec("p", ["sh", "-c", "echo out; echo err >&2; exit 3"])
    if runtime == "fake":
        assert (r.exit_code, r.stdout, r.stderr) == (3, "", "")
        return
    assert (r.exit_code, r.stdout, r.stderr) == (3, "out\n", "err\n")
    r = await cluster.exec("p", ["sh", "-c", "echo $POD_NAME $HOSTNAME"])
    assert r.exit_code == 0 and r.stdout.split()[0] == "p"


async def test_stream_logs_follows(cluster: oc.Cluster, runtime: str) -> None:
    if runtime == "fake":
        await cluster.apply(pod("p", ["sleep", "1"],
                                {"fake.orchestra.dev/exit-after": "300ms"},
                                restartPolicy="Never"))
        await cluster.wait_for("pod/p", "Running", timeout=30)
        lines = [line async for line in cluster.stream_logs("p")]
        assert lines == ["fake container main started",
                         "fake container main exited with code 0"]
        return
    await cluster.apply(pod("p", ["sh", "-c", "for i in 1 2 3 4 5; do echo line $i; "
                                              "sleep 0.1; done; sleep 3600"]))
    await cluster.wait_for("pod/p", "Ready", timeout=30)

    async def first_five() -> list[str]:
        out = []
        async for line in cluster.stream_logs("p"):
            out.append(line)
            if len(out) == 5:
                return out
        return out

    assert await asyncio.wait_for(first_five(), timeout=10) == [
        f"line {i}" for i in range(1, 6)]
    assert (await cluster.logs("p", tail=2)).splitlines() == ["line 4", "line 5"]
