"""Init containers and native sidecars (init containers with ``restartPolicy: Always``)
as the kubelet runs them, with the docs-style manifests of tests/manifests/docs; on every
runtime (fake, process, containerd)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

import orchestra as oc
from orchestra._cli import _pod_row, pod_status
from orchestra.objects._scalars import parse_time
from tests.behaviour._util import MakeCluster, offline

pytestmark = pytest.mark.anyio

DOCS = Path(__file__).resolve().parents[1] / "manifests" / "docs"


def _conds(pod: Any) -> dict[str, Any]:
    return {c.type: c for c in pod.status.conditions}


def _ordered(cluster: oc.Cluster, reason: str, pod: Any = None) -> list[str]:
    """Messages of ``reason`` events in the order they were recorded (each once here,
    so an event's resourceVersion is when it was recorded)."""
    evs = [e for e in cluster.events(pod) if e.reason == reason]
    assert all((e.count or 1) == 1 for e in evs), [(e.message, e.count) for e in evs]
    evs.sort(key=lambda e: int(e.metadata.resource_version or 0))
    return [e.message for e in evs]


async def _only_pod(cluster: oc.Cluster, app_label: str, value: str) -> Any:
    pods = [p for p in await cluster.list("pods")
            if (p.metadata.labels or {}).get(app_label) == value]
    assert len(pods) == 1, [p.metadata.name for p in pods]
    return pods[0]


async def _logs_contain(cluster: oc.Cluster, pod: Any, container: str | None, text: str,
                        *, within: float = 30.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    out = ""
    while loop.time() < deadline:
        out = await cluster.logs(pod, container)
        if text in out:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{text!r} not in the logs of {container}: {out!r}")


# -- ordinary init containers -------------------------------------------------------------


async def test_docs_pod_with_an_init_container_progresses(runtime: str,
                                                         make_cluster: MakeCluster) -> None:
    # On the fake runtime the init container exits 0 at once without any annotation.
    async with make_cluster(nodes=1) as cluster:
        await cluster.apply(offline(runtime, DOCS / "kubelet-init-pod.yaml"))
        p = await cluster.wait_for("pod/myapp-pod", "Ready", timeout=30)
        (init,) = p.status.init_container_statuses
        assert init.state.terminated.reason == "Completed"
        assert init.state.terminated.exit_code == 0
        assert (init.ready, init.started) == (True, False)
        (main,) = p.status.container_statuses
        assert main.state.running is not None and main.ready and main.started
        assert _conds(p)["Initialized"].status == "True"
        assert p.status.phase == "Running"
        assert pod_status(p) == "Running"
        assert _pod_row(p, 0.0)[1] == "1/1"
        if runtime != "fake":  # the main container read what the init container wrote
            await _logs_contain(cluster, "pod/myapp-pod", None, "initialized")


async def test_a_start_delay_still_gets_its_probes_and_becomes_ready() -> None:
    clock = oc.ManualClock()
    async with oc.Cluster(runtime="fake", nodes=1, clock=clock) as cluster:
        await cluster.apply({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "slow",
                         "annotations": {"fake.orchestra.dev/start-delay": "5s"}},
            "spec": {"containers": [{
                "name": "main", "image": "busybox",
                "readinessProbe": {"exec": {"command": ["true"]}, "periodSeconds": 2}}]}})
        for _ in range(20):
            await clock.advance(1)
        p = await cluster.get("pod/slow")
        assert _conds(p)["Ready"].status == "True", p.status
        assert p.status.container_statuses[0].ready


# -- sidecars: start order, readiness, status ---------------------------------------------


async def test_docs_sidecar_deployment_runs_the_sidecar_beside_the_app(
        runtime: str, make_cluster: MakeCluster) -> None:
    async with make_cluster(nodes=1) as cluster:
        await cluster.apply(offline(runtime, DOCS / "kubelet-sidecar-deployment.yaml"))
        await cluster.wait_for("deployment/myapp", "Available", timeout=30)
        p = await _only_pod(cluster, "app", "myapp")
        p = await cluster.wait_for(f"pod/{p.metadata.name}", "Ready", timeout=30)
        (side,) = p.status.init_container_statuses
        assert side.name == "logshipper"
        assert side.state.running is not None
        assert (side.started, side.ready) == (True, True)
        assert p.status.container_statuses[0].state.running is not None
        conds = _conds(p)
        assert conds["Initialized"].status == "True"
        assert conds["ContainersReady"].status == "True"
        assert pod_status(p) == "Running"
        assert _pod_row(p, 0.0)[1] == "2/2"
        started = _ordered(cluster, "Started", p)
        assert started == ["Started container logshipper", "Started container myapp"]
        assert parse_time(side.state.running.started_at) <= parse_time(
            p.status.container_statuses[0].state.running.started_at)
        if runtime != "fake":
            # A real process tails the file the app writes, through the shared volume.
            await _logs_contain(cluster, p, "logshipper", "logging")


async def test_docs_job_with_a_sidecar_completes_and_stops_the_sidecar(
        runtime: str, make_cluster: MakeCluster) -> None:
    async with make_cluster(nodes=1, clock=oc.ScaledClock(5)) as cluster:
        await cluster.apply(offline(runtime, DOCS / "kubelet-job-sidecar.yaml"))
        await cluster.wait_for("job/myjob", "Complete", timeout=60)
        p = await _only_pod(cluster, "job-name", "myjob")
        assert p.status.phase == "Succeeded"
        (side,) = p.status.init_container_statuses
        (main,) = p.status.container_statuses
        assert main.state.terminated.exit_code == 0
        # The sidecar was stopped (SIGTERM) after the job's container had finished. In a
        # container of its own (containerd) its shell is PID 1, which the kernel spares
        # SIGTERM without a handler: the SIGKILL after the grace period ends it (137).
        assert side.state.terminated is not None
        assert side.state.terminated.exit_code == (137 if runtime == "containerd" else 143)
        assert parse_time(main.state.terminated.finished_at) <= parse_time(
            side.state.terminated.finished_at)
        assert "Stopping container logshipper" in _ordered(cluster, "Killing", p)
        conds = _conds(p)
        assert conds["Ready"].status == "False" and conds["Ready"].reason == "PodCompleted"
        assert conds["Initialized"].reason == "PodCompleted"
        assert pod_status(p) == "Completed"
        if runtime != "fake":
            assert "logging" in await cluster.logs(p, "logshipper")


def _sidecar_pod(name: str, *, inits: list[dict[str, Any]],
                 annotations: dict[str, str] | None = None, **spec: Any) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if annotations:
        meta["annotations"] = annotations
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta,
            "spec": {"initContainers": inits,
                     "containers": [{"name": "main", "image": "busybox:1.36",
                                     "command": ["sleep", "3600"]}],
                     "terminationGracePeriodSeconds": 2, **spec}}


async def test_the_next_init_step_waits_for_the_sidecars_startup_probe() -> None:
    clock = oc.ManualClock()
    async with oc.Cluster(runtime="fake", nodes=1, clock=clock) as cluster:
        await cluster.apply(_sidecar_pod("p", inits=[
            {"name": "proxy", "image": "envoy", "restartPolicy": "Always",
             "startupProbe": {"exec": {"command": ["true"]}, "initialDelaySeconds": 30,
                              "periodSeconds": 5},
             "readinessProbe": {"exec": {"command": ["true"]}, "periodSeconds": 5}},
            {"name": "migrate", "image": "busybox"},
        ]))
        for _ in range(25):
            await clock.advance(1)
        p = await cluster.get("pod/p")
        proxy, migrate = p.status.init_container_statuses
        assert proxy.state.running is not None and proxy.started is False
        assert migrate.state.waiting.reason == "PodInitializing"
        assert p.status.phase == "Pending"
        assert pod_status(p) == "Init:0/2"
        init = _conds(p)["Initialized"]
        assert init.status == "False"
        assert init.message == "containers with incomplete status: [proxy migrate]"
        assert "Started container migrate" not in _ordered(cluster, "Started", p)
        for _ in range(15):  # the startup probe succeeds at 30 s
            await clock.advance(1)
        p = await cluster.get("pod/p")
        proxy, migrate = p.status.init_container_statuses
        assert proxy.started is True and proxy.ready is True
        assert migrate.state.terminated.reason == "Completed"
        assert _conds(p)["Ready"].status == "True"
        assert _ordered(cluster, "Started", p) == [
            "Started container proxy", "Started container migrate", "Started container main"]
        assert _pod_row(p, 0.0)[1] == "2/2"


async def test_status_strings_while_a_sidecar_started_and_an_init_step_runs() -> None:
    clock = oc.ManualClock()
    async with oc.Cluster(runtime="fake", nodes=1, clock=clock) as cluster:
        await cluster.apply(_sidecar_pod(
            "p", annotations={"fake.orchestra.dev/migrate.exit-after": "20s"},
            inits=[{"name": "proxy", "image": "envoy", "restartPolicy": "Always"},
                   {"name": "migrate", "image": "busybox"}]))
        for _ in range(5):
            await clock.advance(1)
        p = await cluster.get("pod/p")
        assert pod_status(p) == "Init:1/2"
        assert _conds(p)["Initialized"].message == \
            "containers with incomplete status: [migrate]"
        for _ in range(20):
            await clock.advance(1)
        p = await cluster.get("pod/p")
        assert pod_status(p) == "Running"


async def test_a_sidecars_readiness_counts_toward_the_pods() -> None:
    async with oc.Cluster(runtime="fake", nodes=1, clock=oc.ScaledClock(20)) as cluster:
        await cluster.apply(_sidecar_pod(
            "p", annotations={"fake.orchestra.dev/proxy.probe-fail": "readiness"},
            inits=[{"name": "proxy", "image": "envoy", "restartPolicy": "Always",
                    "readinessProbe": {"exec": {"command": ["true"]}, "periodSeconds": 1}}]))
        p = await cluster.wait_for(
            "pod/p", lambda p: p.status is not None and p.status.phase == "Running"
            and p.status.container_statuses[0].ready, timeout=30)
        await asyncio.sleep(0.3)  # several probe periods
        p = await cluster.get("pod/p")
        ready = _conds(p)["ContainersReady"]
        assert ready.status == "False"
        assert ready.message == "containers with unready status: [proxy]"
        assert _conds(p)["Ready"].status == "False"
        (proxy,) = p.status.init_container_statuses
        assert (proxy.started, proxy.ready) == (True, False)
        assert _pod_row(p, 0.0)[1] == "1/2"


async def test_a_crashing_sidecar_is_restarted_with_backoff_beside_the_app() -> None:
    clock = oc.ManualClock()
    async with oc.Cluster(runtime="fake", nodes=1, clock=clock) as cluster:
        await cluster.apply(_sidecar_pod(
            "p", annotations={"fake.orchestra.dev/proxy.exit-after": "5s",
                              "fake.orchestra.dev/proxy.exit-code": "1"},
            inits=[{"name": "proxy", "image": "envoy", "restartPolicy": "Always"}]))
        counts = []
        for _ in range(60):
            await clock.advance(1)
            p = await cluster.get("pod/p")
            counts.append(p.status.init_container_statuses[0].restart_count)
        # Runs 5 s per attempt: exits at 5, restarts at once; exits at 10, back-off 10 s
        # (restart at 20); exits at 25, back-off 20 s (restart at 45); exits at 50.
        assert counts[4] == 1 and counts[18] == 1 and counts[20] == 2
        assert counts[43] == 2 and counts[45] == 3 and counts[-1] == 3
        p = await cluster.get("pod/p")
        proxy = p.status.init_container_statuses[0]
        assert proxy.state.waiting.reason == "CrashLoopBackOff"
        assert proxy.state.waiting.message.startswith(
            "back-off 40s restarting failed container=proxy pod=p_default(")
        assert proxy.last_state.terminated.exit_code == 1
        # The app kept running throughout; the pod stays Running (not Ready).
        assert p.status.phase == "Running"
        assert p.status.container_statuses[0].restart_count == 0
        assert p.status.container_statuses[0].state.running is not None
        assert _conds(p)["Initialized"].status == "True"


async def test_sidecars_stop_after_the_main_containers_in_reverse_order(
        make_cluster: MakeCluster) -> None:
    async with make_cluster(nodes=1) as cluster:
        inits = [{"name": n, "image": "busybox:1.36", "restartPolicy": "Always",
                  "command": ["sleep", "3600"]} for n in ("first", "second")]
        await cluster.apply(_sidecar_pod("p", inits=inits))
        p = await cluster.wait_for("pod/p", "Ready", timeout=30)
        uid = p.metadata.uid
        await cluster.delete("pod/p")
        await cluster.wait_for("pod/p", "Deleted", timeout=30)
        kills = [e for e in cluster.events() if e.reason == "Killing"
                 and e.involved_object.uid == uid]
        kills.sort(key=lambda e: int(e.metadata.resource_version or 0))
        assert [e.message for e in kills] == [
            "Stopping container main", "Stopping container second",
            "Stopping container first"]


async def test_sidecars_do_not_keep_a_failed_job_pod_alive() -> None:
    async with oc.Cluster(runtime="fake", nodes=1, clock=oc.ScaledClock(20)) as cluster:
        await cluster.apply(_sidecar_pod(
            "p", restartPolicy="Never",
            annotations={"fake.orchestra.dev/main.exit-after": "1s",
                         "fake.orchestra.dev/main.exit-code": "3"},
            inits=[{"name": "proxy", "image": "envoy", "restartPolicy": "Always"}]))
        p = await cluster.wait_for("pod/p", "Failed", timeout=30)
        assert p.status.container_statuses[0].state.terminated.exit_code == 3
        assert p.status.init_container_statuses[0].state.terminated.exit_code == 143
        assert _conds(p)["Ready"].reason == "PodFailed"
        assert pod_status(p) == "Error"


async def test_a_sidecar_failing_liveness_is_killed_and_restarted_as_an_init_container(
) -> None:
    async with oc.Cluster(runtime="fake", nodes=1, clock=oc.ScaledClock(50)) as cluster:
        await cluster.apply(_sidecar_pod(
            "p", annotations={"fake.orchestra.dev/proxy.probe-fail": "liveness"},
            inits=[{"name": "proxy", "image": "envoy", "restartPolicy": "Always",
                    "livenessProbe": {"exec": {"command": ["true"]}, "periodSeconds": 1,
                                      "failureThreshold": 1}}]))
        p = await cluster.wait_for(
            "pod/p", lambda p: p.status is not None and p.status.init_container_statuses
            and p.status.init_container_statuses[0].restart_count >= 2, timeout=30)
        kills = {e.message for e in cluster.events(p) if e.reason == "Killing"}
        assert kills == {"Init container proxy failed liveness probe"}
        assert p.status.container_statuses[0].restart_count == 0


@pytest.mark.parametrize(("container", "message"), [
    ({"containers": [{"name": "a", "image": "x", "restartPolicy": "Always"}]},
     "spec.containers[0].restartPolicy: Forbidden: may not be set for non-init containers"),
    ({"initContainers": [{"name": "i", "image": "x", "restartPolicy": "OnFailure"}]},
     'spec.initContainers[0].restartPolicy: Unsupported value: "OnFailure": '
     'supported values: "Always"'),
    ({"initContainers": [{"name": "i", "image": "x",
                          "startupProbe": {"exec": {"command": ["true"]}}}]},
     "spec.initContainers[0].startupProbe: Forbidden: may not be set for init containers "
     "without restartPolicy=Always"),
])
def test_restart_policies_of_containers_are_validated(container: dict[str, Any],
                                                      message: str) -> None:
    spec = {"containers": [{"name": "a", "image": "x"}], **container}
    with pytest.raises(oc.Invalid) as info:
        oc.objects.Pod.model_validate({"apiVersion": "v1", "kind": "Pod",
                                       "metadata": {"name": "p"}, "spec": spec})
    assert message in str(info.value)


async def test_sidecars_share_what_is_left_of_the_grace_period() -> None:
    # Nothing here handles SIGTERM: the app takes its whole 10 s, then each sidecar gets
    # the kubelet's minimal window of 2 s (what is left is 0): the pod goes at +14 s.
    clock = oc.ManualClock()
    async with oc.Cluster(runtime="fake", nodes=1, clock=clock) as cluster:
        inits = [{"name": n, "image": "envoy", "restartPolicy": "Always"}
                 for n in ("first", "second")]
        body = _sidecar_pod("p", inits=inits,
                            annotations={"fake.orchestra.dev/ignore-sigterm": "true"})
        body["spec"]["terminationGracePeriodSeconds"] = 10
        await cluster.apply(body)
        for _ in range(3):
            await clock.advance(1)
        assert _conds(await cluster.get("pod/p"))["Ready"].status == "True"
        await cluster.delete("pod/p")
        gone_at = None
        for t in range(1, 40):
            await clock.advance(1)
            if cluster.store.get_or_none("Pod", "p", namespace="default") is None:
                gone_at = t
                break
        assert gone_at == 14
