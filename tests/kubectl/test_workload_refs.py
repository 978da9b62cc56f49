"""logs/exec accept workload references and pick the pod kubectl picks; describe of a
kind without a name describes them all."""

from __future__ import annotations

import logging
import re
from types import SimpleNamespace
from typing import Any

import pytest

import orchestra as oc
from orchestra.present._podpick import _active_less, _cmp, _logging_less

pytestmark = pytest.mark.anyio

DEPLOY = """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 3
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - {name: web, image: busybox,
         command: [sh, -c, 'echo hello from $HOSTNAME; sleep 3600']}
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  ports: [{port: 80}]
"""


def fake_pod(name: str, *, node: str = "n", phase: str = "Running", ready_at: str | None = None,
             restarts: int = 0, created: str = "2026-01-01T00:00:00Z") -> Any:
    conds = [SimpleNamespace(type="Ready", status="True", last_transition_time=ready_at)] \
        if ready_at else []
    return SimpleNamespace(
        spec=SimpleNamespace(node_name=node),
        metadata=SimpleNamespace(name=name, creation_timestamp=created),
        status=SimpleNamespace(phase=phase, conditions=conds, container_statuses=[
            SimpleNamespace(restart_count=restarts)]))


def order(pods: list[Any], less: Any) -> list[str]:
    return [p.metadata.name for p in sorted(pods, key=_cmp(less))]


def test_exec_prefers_the_most_active_pod_as_kubectl() -> None:
    pods = [fake_pod("unassigned", node="", phase="Pending"),
            fake_pod("pending", phase="Pending"),
            fake_pod("running-not-ready"),
            fake_pod("ready-late", ready_at="2026-01-01T00:05:00Z"),
            fake_pod("ready-early", ready_at="2026-01-01T00:01:00Z"),
            fake_pod("ready-early-restarted", ready_at="2026-01-01T00:01:00Z", restarts=2)]
    most_active_first = order(pods, lambda a, b: _active_less(b, a))
    assert most_active_first == ["ready-early", "ready-early-restarted", "ready-late",
                                 "running-not-ready", "pending", "unassigned"]
    # logs prefer the pod with more restarts (its logs explain the crash)
    assert order(pods, _logging_less)[:2] == ["ready-early-restarted", "ready-early"]
    # among equals, the older pod first
    twins = [fake_pod("young", created="2026-01-02T00:00:00Z"),
             fake_pod("old", created="2026-01-01T00:00:00Z")]
    assert order(twins, _logging_less) == ["old", "young"]
    assert order(twins, lambda a, b: _active_less(b, a)) == ["old", "young"]


async def test_logs_exec_of_a_deployment_job_and_service_use_one_of_its_pods(
        caplog: pytest.LogCaptureFixture) -> None:
    async with oc.Cluster(runtime="process", nodes=1) as cluster:
        await cluster.apply(DEPLOY)
        await cluster.wait_for("deployment/web", "Available", timeout=30)
        pods = {p.metadata.name for p in await cluster.list("Pod", "default",
                                                             selector="app=web")}
        with caplog.at_level(logging.INFO, logger="orchestra"):
            text = await cluster.logs("deploy/web")
        assert text.startswith("hello from ")
        assert text.split()[2] in pods
        assert any(r.getMessage().startswith("Found 3 pods, using pod/")
                   for r in caplog.records)
        result = await cluster.exec("svc/web", ["sh", "-c", "echo $HOSTNAME"])
        assert result.stdout.strip() in pods
        result = await cluster.exec("deployment/web", ["true"])
        assert result.exit_code == 0
        with pytest.raises(oc.NotFound):
            await cluster.logs("deploy/nope")


async def test_logs_of_a_job_and_describe_of_all_pods() -> None:
    job = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "x"},
           "spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [
               {"name": "c", "image": "busybox", "command": ["sh", "-c", "echo job done"]}]}}}}
    async with oc.Cluster(runtime="process", nodes=1) as cluster:
        await cluster.apply(job)
        await cluster.wait_for("job/x", "Complete", timeout=30)
        assert await cluster.logs("job/x") == "job done\n"
        await cluster.apply(DEPLOY)
        await cluster.wait_for("deployment/web", "Available", timeout=30)
        everything = cluster.describe("pods")
        names = [p.metadata.name for p in await cluster.list("Pod", "default")]
        assert len(names) == 4
        assert everything.count("\nName:") + everything.startswith("Name:") == 4
        described = re.findall(r"^Name:\s+(\S+)$", everything, re.M)
        assert sorted(described) == sorted(names)
        # kubectl describe pods PREFIX: those whose name starts with it
        web = cluster.describe("pods", "web")
        assert web.count("Namespace:") == 3 and "job-name" not in web
        assert cluster.describe("deployments").startswith("Name:")
        assert cluster.describe("ingresses") == "No resources found in default namespace.\n"
        with pytest.raises(oc.NotFound):
            cluster.describe("pod", "zzz")


def test_pick_pod_uses_kubectls_order_for_exec_and_for_logs() -> None:
    from orchestra.present._podpick import pick_pod

    store = oc.Store()
    store.create({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "w"},
                  "spec": {"selector": {"matchLabels": {"app": "w"}}, "template": {
                      "metadata": {"labels": {"app": "w"}},
                      "spec": {"containers": [{"name": "c", "image": "x"}]}}}})

    def pod(name: str, restarts: int, ready: bool) -> None:
        status = {"phase": "Running", "conditions": [
            {"type": "Ready", "status": "True" if ready else "False",
             "lastTransitionTime": "2026-01-01T00:00:00Z"}],
            "containerStatuses": [{"name": "c", "image": "x", "imageID": "", "ready": ready,
                                   "restartCount": restarts, "state": {"running": {}}}]}
        store.create({"apiVersion": "v1", "kind": "Pod",
                      "metadata": {"name": name, "labels": {"app": "w"}},
                      "spec": {"nodeName": "n", "containers": [{"name": "c", "image": "x"}]},
                      "status": status})

    pod("a-crashy", 3, True)
    pod("b-calm", 0, True)
    pod("c-unready", 0, False)
    assert pick_pod(store, "deploy/w", "default").metadata.name == "b-calm"
    assert pick_pod(store, "deploy/w", "default", for_logs=True).metadata.name == "a-crashy"
    assert pick_pod(store, "c-unready", "default").metadata.name == "c-unready"
