"""cluster.metrics_text(): the control plane's own metrics, Prometheus' text format, from
a registry per cluster."""

from __future__ import annotations

import pytest
from prometheus_client.parser import text_string_to_metric_families

import orchestra as oc

pytestmark = pytest.mark.anyio


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def value(text: str, metric: str, **labels: str) -> float:
    return samples(text).get((metric, tuple(sorted(labels.items()))), 0.0)


DEPLOY = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
          "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}},
                   "template": {"metadata": {"labels": {"app": "web"}},
                                "spec": {"containers": [{"name": "c", "image": "busybox"}]}}}}
HUGE = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "huge"},
        "spec": {"containers": [{"name": "c", "image": "busybox",
                                 "resources": {"requests": {"cpu": "64"}}}]}}


async def test_two_clusters_report_their_own_control_planes() -> None:
    async with oc.Cluster(runtime="fake", nodes=1) as busy, \
            oc.Cluster(runtime="fake", nodes=1) as quiet:
        await busy.apply([DEPLOY, HUGE])
        await busy.wait_for("deployment/web", "Available", timeout=10)
        await busy.wait_for("pod/huge", lambda p: any(
            c.type == "PodScheduled" and c.reason == "Unschedulable"
            for c in p.status.conditions or ()), timeout=10)
        text = busy.metrics_text()
        assert "# TYPE workqueue_depth gauge" in text
        assert value(text, "workqueue_adds_total", name="deployment") >= 1
        assert value(text, "workqueue_adds_total", name="replicaset") >= 1
        assert value(text, "workqueue_queue_duration_seconds_count", name="scheduler") >= 4
        assert value(text, "workqueue_work_duration_seconds_count", name="scheduler") >= 4
        assert value(text, "controller_runtime_reconcile_total", controller="deployment",
                     result="success") >= 1
        assert value(text, "scheduler_schedule_attempts_total", result="scheduled",
                     profile="default-scheduler") == 3
        assert value(text, "scheduler_schedule_attempts_total", result="unschedulable",
                     profile="default-scheduler") >= 1
        assert value(text, "scheduler_scheduling_attempt_duration_seconds_count",
                     result="scheduled", profile="default-scheduler") == 3
        assert value(text, "kubelet_started_pods_total") == 3
        assert value(text, "kubelet_started_containers_total") == 3
        assert ("orchestra_proxy_open_connections", ()) in samples(text)
        other = quiet.metrics_text()
        assert value(other, "scheduler_schedule_attempts_total", result="scheduled",
                     profile="default-scheduler") == 0
        assert value(other, "kubelet_started_pods_total") == 0
        assert value(other, "workqueue_adds_total", name="deployment") == 0
        assert busy.metrics_registry is not quiet.metrics_registry


async def test_a_failing_reconcile_counts_as_an_error() -> None:
    from orchestra.loops._engine import Controller

    async with oc.Cluster(runtime="fake", nodes=1) as cluster:
        import anyio

        called = anyio.Event()

        async def broken(key: str) -> None:
            called.set()
            raise RuntimeError("boom")

        c = Controller("broken", broken, cluster.clock)
        cluster._metrics.attach(c)
        async with anyio.create_task_group() as tg:
            tg.start_soon(c.run)
            c.enqueue("k")
            await called.wait()
            await anyio.sleep(0.05)  # (the outcome is recorded once reconcile returns)
            tg.cancel_scope.cancel()
        text = cluster.metrics_text()
        assert value(text, "controller_runtime_reconcile_errors_total",
                     controller="broken") >= 1
        assert value(text, "controller_runtime_reconcile_total", controller="broken",
                     result="error") >= 1
        assert value(text, "workqueue_retries_total", name="broken") >= 1
