"""wait_for(..., stable_for=): a crash-looping workload cannot pass; wait strategies
from testcontainers: a log line, an HTTP check."""

from __future__ import annotations

from typing import Any

import pytest

import orchestra as oc
from tests.behaviour._servers import server_container

pytestmark = pytest.mark.anyio


def deployment(name: str, annotations: dict[str, str] | None = None,
               container: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name},
                                               "annotations": annotations or {}},
                                  "spec": {"terminationGracePeriodSeconds": 1,
                                           "containers": [container or {
                                               "name": "c", "image": "busybox"}]}}}}


async def test_a_crash_looping_deployment_is_available_but_never_stably() -> None:
    async with oc.Cluster(runtime="fake", nodes=1, clock=oc.ScaledClock(20)) as cluster:
        await cluster.apply(deployment("crashy", {"fake.orchestra.dev/exit-after": "5s",
                                                  "fake.orchestra.dev/exit-code": "1"}))
        await cluster.apply(deployment("calm"))
        # without stable_for, the moment it runs counts
        await cluster.wait_for("deployment/crashy", "Available", timeout=30)
        await cluster.wait_for("deployment/calm", "Available", stable_for=20, timeout=60)
        with pytest.raises(oc.Timeout) as err:
            await cluster.wait_for("deployment/crashy", "Available", stable_for=20,
                                   timeout=60)
        msg = str(err.value)
        assert "Available for 20s without a break" in msg
        assert "it held, then broke" in msg
        assert "restarted" in msg or "stopped holding" in msg


async def test_stable_for_on_a_manual_clock_needs_the_whole_window() -> None:
    clock = oc.ManualClock()
    async with oc.Cluster(runtime="fake", nodes=1, clock=clock) as cluster:
        await cluster.apply(deployment("calm"))
        await cluster.wait_for("deployment/calm", "Available", timeout=30)
        import anyio

        async with anyio.create_task_group() as tg:
            done: list[Any] = []

            async def wait() -> None:
                done.append(await cluster.wait_for("deployment/calm", "Available",
                                                   stable_for=10, timeout=100))

            tg.start_soon(wait)
            await clock.advance(9)
            assert not done
            await clock.advance(1.5)
            for _ in range(50):
                if done:
                    break
                await anyio.sleep(0.01)
            assert done and done[0].metadata.name == "calm"


async def test_log_line_and_http_check() -> None:
    logger = {"name": "c", "image": "busybox",
              "command": ["sh", "-c", "echo booting; sleep 0.3; echo ready to serve; "
                          "sleep 0.3; echo ready to serve; sleep 3600"]}
    async with oc.Cluster(runtime="process", nodes=1) as cluster:
        await cluster.apply(deployment("logger", container=logger))
        await cluster.wait_for("deployment/logger", oc.LogLine(r"^ready to serve$"),
                               timeout=30)
        await cluster.wait_for("deployment/logger", oc.LogLine("ready to serve", times=2),
                               timeout=30)
        with pytest.raises(oc.Timeout) as err:
            await cluster.wait_for("deployment/logger", oc.LogLine("never said"),
                                   timeout=1)
        assert "logging 'never said'" in str(err.value)
        await cluster.apply(deployment("web", container=server_container()))
        await cluster.apply({"apiVersion": "v1", "kind": "Service",
                             "metadata": {"name": "web"},
                             "spec": {"selector": {"app": "web"},
                                      "ports": [{"port": 80, "targetPort": "http"}]}})
        await cluster.wait_for("deployment/web", oc.HttpCheck(8080), timeout=30)
        await cluster.wait_for("service/web", oc.HttpCheck(80, "/"), timeout=30)
        await cluster.wait_for("deploy/web", oc.HttpCheck("http", "/ready", status=503),
                               timeout=30)
        with pytest.raises(oc.Timeout) as err:
            await cluster.wait_for("deploy/web", oc.HttpCheck(8080, "/ready"), timeout=1.5)
        assert "answering GET /ready on port 8080 with 200" in str(err.value)
        with pytest.raises(TypeError, match="HttpCheck waits on"):
            await cluster.wait_for("configmap/x", oc.HttpCheck(80))


async def test_stable_for_breaks_on_a_restart_even_when_the_condition_holds() -> None:
    """PodScheduled stays True while the container crash-loops: only the restart
    breaks the window."""
    crashing = {"apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": "p", "annotations": {
                    "fake.orchestra.dev/exit-after": "3s",
                    "fake.orchestra.dev/exit-code": "1"}},
                "spec": {"containers": [{"name": "c", "image": "busybox"}]}}
    async with oc.Cluster(runtime="fake", nodes=1, clock=oc.ScaledClock(20)) as cluster:
        await cluster.apply(crashing)
        await cluster.wait_for("pod/p", "PodScheduled", timeout=30)
        with pytest.raises(oc.Timeout) as err:
            await cluster.wait_for("pod/p", "PodScheduled", stable_for=30, timeout=60)
        assert "a container of pod p restarted" in str(err.value)
