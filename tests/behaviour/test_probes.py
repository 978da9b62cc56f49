"""Probes against real servers (process runtime), and scripted on the fake runtime."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

import orchestra as oc
from tests.behaviour._servers import eventually, http_probe, server_container
from tests.behaviour._util import ready

pytestmark = pytest.mark.anyio


@pytest.fixture
async def proc() -> AsyncIterator[oc.Cluster]:
    async with oc.Cluster(runtime="process", nodes=1) as c:
        yield c


def pod(name: str, container: dict[str, Any], annotations: dict[str, str] | None = None
        ) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "labels": {"app": name}}
    if annotations:
        meta["annotations"] = annotations
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta,
            "spec": {"containers": [container], "terminationGracePeriodSeconds": 1}}


def service(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name},
            "spec": {"selector": {"app": name}, "ports": [{"port": 80, "targetPort": "http"}]}}


def addresses(ep: Any, field: str = "addresses") -> list[str]:
    return [a.ip for s in ep.subsets or () for a in getattr(s, field) or ()]


async def test_readiness_gates_the_ready_condition_and_the_endpoints(
        proc: oc.Cluster) -> None:
    await proc.apply([service("web"), pod("web", server_container(
        readinessProbe=http_probe("/ready")))])
    p = await proc.wait_for("pod/web", lambda p: p.status.container_statuses and
                            p.status.container_statuses[0].state.running, timeout=30)
    ep = await proc.wait_for("endpoints/web", lambda e: addresses(e, "not_ready_addresses"),
                             timeout=30)
    assert addresses(ep) == [] and addresses(ep, "not_ready_addresses") == [p.status.pod_ip]
    # (before the server listens, the probe fails with "connection refused")
    await eventually(lambda: any(
        e.reason == "Unhealthy" and e.message ==
        "Readiness probe failed: HTTP probe failed with statuscode: 503"
        for e in proc.events("pod/web")))
    assert not ready(await proc.get("pod/web"))

    assert (await proc.exec("web", ["touch", "ready"])).exit_code == 0
    await proc.wait_for("pod/web", "Ready", timeout=30)
    ep = await proc.wait_for("endpoints/web", lambda e: addresses(e) == [p.status.pod_ip],
                             timeout=30)
    assert addresses(ep, "not_ready_addresses") == []

    await proc.exec("web", ["rm", "ready"])
    await proc.wait_for("pod/web", lambda p: not ready(p), timeout=30)
    await proc.wait_for("endpoints/web", lambda e: addresses(e) == [], timeout=30)
    p = await proc.get("pod/web")
    assert p.status.container_statuses[0].restart_count == 0  # readiness never restarts


async def test_a_liveness_failure_restarts_the_container(proc: oc.Cluster) -> None:
    # readiness tells when the server listens; liveness tolerates the start (2 failures)
    await proc.apply(pod("web", server_container(
        env={"READY_AT_START": "1"}, readinessProbe=http_probe("/ready"),
        livenessProbe=http_probe("/healthz", failures=2, initialDelaySeconds=1))))
    await proc.wait_for("pod/web", "Ready", timeout=30)
    await proc.exec("web", ["touch", "sick"])
    p = await proc.wait_for("pod/web", lambda p: p.status.container_statuses[0].restart_count
                            >= 1, timeout=30)
    messages = [(e.type, e.reason, e.message) for e in proc.events(p)]
    assert ("Warning", "Unhealthy",
            "Liveness probe failed: HTTP probe failed with statuscode: 500") in messages
    assert ("Normal", "Killing",
            "Container main failed liveness probe, will be restarted") in messages
    last = p.status.container_statuses[0].last_state.terminated
    assert last is not None
    # The server exits on SIGTERM: it ends cleanly (0) or by the signal (143).
    assert last.exit_code in (0, 143)
    await proc.wait_for("pod/web", "Ready", timeout=30)  # the new one started clean


async def test_startup_probe_holds_liveness_until_it_succeeds(proc: oc.Cluster) -> None:
    slow = {"name": "main", "image": "busybox",
            "command": ["sh", "-c", "sleep 1.5; touch started; exec sleep 3600"],
            "startupProbe": {"exec": {"command": ["test", "-e", "started"]},
                             "periodSeconds": 1, "failureThreshold": 30},
            "livenessProbe": {"exec": {"command": ["test", "-e", "started"]},
                              "periodSeconds": 1, "failureThreshold": 1}}
    await proc.apply(pod("slow", slow))
    p = await proc.wait_for("pod/slow", lambda p: p.status.container_statuses and
                            p.status.container_statuses[0].state.running, timeout=30)
    assert p.status.container_statuses[0].started is False
    assert not ready(p)
    p = await proc.wait_for("pod/slow", "Ready", timeout=30)
    assert p.status.container_statuses[0].started is True
    assert p.status.container_statuses[0].restart_count == 0

    never = {"name": "main", "image": "busybox", "command": ["sleep", "3600"],
             "startupProbe": {"exec": {"command": ["false"]}, "periodSeconds": 1,
                              "failureThreshold": 2}}
    await proc.apply(pod("never", never))
    p = await proc.wait_for("pod/never", lambda p: p.status.container_statuses and
                            p.status.container_statuses[0].restart_count >= 1, timeout=30)
    messages = [e.message for e in proc.events(p)]
    assert "Container main failed startup probe, will be restarted" in messages
    assert any(m.startswith("Startup probe failed") for m in messages)


async def test_tcp_socket_and_numbered_http_probes(proc: oc.Cluster) -> None:
    await proc.apply([
        pod("tcp", server_container(readinessProbe={"tcpSocket": {"port": 8080},
                                                    "periodSeconds": 1})),
        pod("num", server_container(env={"READY_AT_START": "1"},
                                    readinessProbe=http_probe("/ready", port=8080))),
        pod("closed", server_container(readinessProbe={"tcpSocket": {"port": 9999},
                                                       "periodSeconds": 1})),
    ])
    await proc.wait_for("pod/tcp", "Ready", timeout=30)
    await proc.wait_for("pod/num", "Ready", timeout=30)
    await eventually(lambda: any(e.reason == "Unhealthy" for e in proc.events("pod/closed")))
    p = await proc.get("pod/closed")
    assert not ready(p)
    msg = next(e.message for e in proc.events(p) if e.reason == "Unhealthy")
    assert msg == (f"Readiness probe failed: dial tcp {p.status.pod_ip}:9999: connect: "
                   "connection refused")


async def test_a_redirect_to_another_host_is_ready_with_a_probe_warning(
        proc: oc.Cluster) -> None:
    await proc.apply(pod("moved", server_container(readinessProbe=http_probe("/elsewhere"))))
    p = await proc.wait_for("pod/moved", "Ready", timeout=30)
    await eventually(lambda: [e for e in proc.events("pod/moved") if e.reason == "ProbeWarning"])
    warnings = {(e.type, e.message) for e in proc.events(p) if e.reason == "ProbeWarning"}
    assert warnings == {("Warning",
                         "Readiness probe warning: Probe terminated redirects, Response body: "
                         "moved")}


async def test_fake_runtime_probe_fail_annotation() -> None:
    async with oc.Cluster(runtime="fake", nodes=1, clock=oc.ScaledClock(20)) as cluster:
        probe = {"exec": {"command": ["true"]}, "periodSeconds": 1, "failureThreshold": 1}
        c = {"name": "main", "image": "busybox", "command": ["sleep", "3600"],
             "readinessProbe": probe, "livenessProbe": probe}
        await cluster.apply([
            pod("unready", c, {"fake.orchestra.dev/probe-fail": "readiness"}),
            pod("dying", c, {"fake.orchestra.dev/probe-fail": "liveness"}),
            pod("fine", c),
        ])
        await cluster.wait_for("pod/fine", "Ready", timeout=30)
        p = await cluster.wait_for("pod/dying", lambda p: p.status.container_statuses and
                                   p.status.container_statuses[0].restart_count >= 1,
                                   timeout=60)
        assert "Container main failed liveness probe, will be restarted" in [
            e.message for e in cluster.events(p)]
        p = await cluster.get("pod/unready")
        assert not ready(p) and p.status.container_statuses[0].restart_count == 0
        assert any(e.message.startswith("Readiness probe failed")
                   for e in cluster.events(p))
        assert (await cluster.get("pod/fine")).status.container_statuses[0].restart_count == 0
