"""wait_for timeouts explain themselves; describe reads like kubectl describe; events()."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import orchestra as oc
from tests.behaviour._util import deployment

pytestmark = pytest.mark.anyio


def pod(name: str, command: list[str], annotations: dict[str, str] | None = None,
        image: str = "busybox:1.36", **spec: Any) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "labels": {"app": name}}
    if annotations:
        meta["annotations"] = annotations
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta,
            "spec": {"containers": [{"name": "main", "image": image, "command": command}],
                     "terminationGracePeriodSeconds": 1, **spec}}


async def test_timeout_names_the_condition_status_and_events_of_a_pull_error() -> None:
    async with oc.Cluster(runtime="fake", nodes=1) as cluster:
        await cluster.apply(pod("bad", ["sleep", "3600"], image="registry.example/nope:1",
                                annotations={"fake.orchestra.dev/pull-error":
                                             "manifest unknown"}))
        with pytest.raises(oc.Timeout) as err:
            await cluster.wait_for("pod/bad", "Ready", timeout=1)
        msg = str(err.value)
        assert "pod/bad" in msg and "Ready" in msg
        assert "phase=Pending" in msg
        assert "ErrImagePull" in msg or "ImagePullBackOff" in msg
        assert 'Failed to pull image "registry.example/nope:1"' in msg
        assert "manifest unknown" in msg


async def test_timeout_of_a_crashing_process_shows_its_last_log_lines() -> None:
    async with oc.Cluster(runtime="process", nodes=1) as cluster:
        await cluster.apply(pod("crash", ["sh", "-c",
                                          "echo starting up; echo 'config file missing' >&2; "
                                          "exit 1"]))
        with pytest.raises(oc.Timeout) as err:
            # (not "Ready": a container without a readiness probe is Ready while it runs)
            await cluster.wait_for("pod/crash", "Succeeded", timeout=3)
        msg = str(err.value)
        print(msg)
        assert "pod/crash" in msg and "Succeeded" in msg
        assert "config file missing" in msg
        assert "BackOff" in msg or "CrashLoopBackOff" in msg or "Error" in msg


async def test_timeout_of_a_crash_looping_deployment_shows_the_exit_code() -> None:
    async with oc.Cluster(runtime="fake", nodes=1) as cluster:
        await cluster.apply(deployment(replicas=1, annotations={
            "fake.orchestra.dev/exit-after": "0s", "fake.orchestra.dev/exit-code": "3"}))
        with pytest.raises(oc.Timeout) as err:
            await cluster.wait_for("deployment/web", "Available", timeout=1, stable_for=1)
        msg = str(err.value)
        assert "containers of pod web-" in msg, msg
        assert "last terminated: exit code 3 (Error)" in msg, msg


async def test_timeout_of_a_deployment_and_a_missing_object() -> None:
    async with oc.Cluster(runtime="fake", nodes=1) as cluster:
        with pytest.raises(oc.Timeout, match="does not exist"):
            await cluster.wait_for("deployment/ghost", "Available", timeout=0.2)
        await cluster.apply(deployment(replicas=2, requests={"cpu": "3"}))
        with pytest.raises(oc.Timeout) as err:
            await cluster.wait_for("deployment/web", "Available", timeout=1)
        msg = str(err.value)
        assert "deployment/web" in msg and "Available" in msg
        assert "Insufficient cpu" in msg  # why: the pending pod's FailedScheduling


async def test_describe_pod_deployment_and_node(cluster: oc.Cluster) -> None:
    await cluster.apply(deployment(replicas=2, requests={"cpu": "100m"}))
    await cluster.wait_for("deployment/web", "Available", timeout=30)
    p = (await cluster.list("pods", selector="app=web"))[0]

    text = cluster.describe(p)
    assert text == cluster.describe(f"pod/{p.metadata.name}")
    for key in ("Name:", "Namespace:", "Node:", "Labels:", "Status:", "IP:",
                "Controlled By:", "Containers:", "Conditions:", "Events:", "QoS Class:"):
        assert key in text, key
    assert "Name:" in text and p.metadata.name in text
    assert "Namespace:" in text and "default" in text
    assert "Running" in text and "  main:" in text
    assert f"ReplicaSet/{p.metadata.owner_references[0].name}" in text
    assert "Scheduled" in text and "Started" in text  # the events table
    lines = text.splitlines()  # the pod's addresses as kubectl lists them
    at = lines.index("IPs:")
    assert lines[at - 1].split() == ["IP:", p.status.pod_ip]
    assert lines[at + 1].startswith("  IP:") and lines[at + 1].split() == ["IP:", p.status.pod_ip]

    text = cluster.describe("deployment/web")
    for key in ("Name:", "Namespace:", "Selector:", "Replicas:", "StrategyType:",
                "RollingUpdateStrategy:", "Pod Template:", "Conditions:",
                "NewReplicaSet:", "Events:"):
        assert key in text, key
    assert "2 desired | 2 updated | 2 total | 2 available | 0 unavailable" in text
    assert "ScalingReplicaSet" in text
    assert "MinimumReplicasAvailable" in text
    template = text[text.index("Pod Template:"):text.index("Conditions:")]
    assert "  Containers:\n   main:\n    Image:" in template  # kubectl's indentation
    for status_only in ("Container ID:", "State:", "Ready:", "Restart Count:"):
        assert status_only not in template, status_only  # a template has no status

    text = cluster.describe("node", p.spec.node_name)
    for key in ("Name:", "Roles:", "Labels:", "Taints:", "Unschedulable:", "Conditions:",
                "Capacity:", "Allocatable:", "System Info:", "Non-terminated Pods:",
                "Allocated resources:", "Events:"):
        assert key in text, key
    assert "KubeletReady" in text
    assert p.metadata.name in text


async def test_events_filter_by_object(cluster: oc.Cluster) -> None:
    await cluster.apply(deployment(replicas=1))
    await cluster.wait_for("deployment/web", "Available", timeout=30)
    p = (await cluster.list("pods", selector="app=web"))[0]
    everything = cluster.events()
    mine = cluster.events(p)
    assert mine and set(e.metadata.uid for e in mine) <= set(e.metadata.uid for e in everything)
    assert all(e.involved_object.uid == p.metadata.uid for e in mine)
    assert [e.reason for e in mine][:1] == ["Scheduled"]
    assert {"Pulled", "Created", "Started"} <= {e.reason for e in mine}
    messages = {e.reason: e.message for e in mine}  # the kubelet's words
    container = p.spec.containers[0].name
    assert messages["Created"] == f"Created container: {container}"
    assert messages["Started"] == f"Started container {container}"
    for e in mine:
        assert e.count >= 1 and e.first_timestamp and e.last_timestamp
        assert e.source.component in ("default-scheduler", "kubelet")
    by_name = cluster.events("deployment/web")
    assert [e.reason for e in by_name] == ["ScalingReplicaSet"]
    assert by_name[0].message.startswith("Scaled up replica set web-")


def _template(app: str) -> dict[str, Any]:
    return {"metadata": {"labels": {"app": app}},
            "spec": {"containers": [{"name": "main", "image": "busybox:1.36",
                                     "command": ["sleep", "3600"],
                                     "ports": [{"name": "http", "containerPort": 8080}]}],
                     "terminationGracePeriodSeconds": 1}}


def _lines(text: str) -> list[str]:
    """The describe text's lines, with the alignment padding squeezed to one space."""
    return [" ".join(line.split()) for line in text.splitlines()]


async def test_describe_service_and_workloads_like_kubectl() -> None:
    async with oc.Cluster(runtime="fake", nodes=2) as cluster:
        await cluster.apply([
            deployment(replicas=2),
            {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
             "spec": {"type": "NodePort", "selector": {"app": "web"},
                      "ports": [{"name": "http", "port": 80, "targetPort": 8080,
                                 "nodePort": 30080}]}},
            {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "db"},
             "spec": {"replicas": 1, "serviceName": "db",
                      "selector": {"matchLabels": {"app": "db"}}, "template": _template("db"),
                      "volumeClaimTemplates": [{"metadata": {"name": "data"}, "spec": {
                          "accessModes": ["ReadWriteOnce"],
                          "resources": {"requests": {"storage": "1Gi"}}}}]}},
            {"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "agent"},
             "spec": {"selector": {"matchLabels": {"app": "agent"}},
                      "template": _template("agent")}},
            {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "once"},
             "spec": {"completions": 2, "template": {"spec": {
                 "restartPolicy": "Never",
                 "containers": [{"name": "main", "image": "busybox:1.36",
                                 "command": ["sleep", "3600"]}]}}}},
        ])
        for ref in ("deployment/web", "statefulset/db", "daemonset/agent"):
            await cluster.wait_for(ref, "Available", timeout=30)
        await cluster.wait_for("job/once", lambda j: j.status is not None and j.status.ready == 1,
                               timeout=30)
        pods = await cluster.list("pods", selector="app=web")
        ips = sorted(f"{p.status.pod_ip}:8080" for p in pods)

        svc = _lines(cluster.describe("service/web"))
        cluster_ip = (await cluster.get("service/web")).spec.cluster_ip
        for line in ("Name: web", "Selector: app=web", "Type: NodePort", f"IP: {cluster_ip}",
                     "Port: http 80/TCP", "TargetPort: 8080/TCP", "NodePort: http 30080/TCP",
                     "Session Affinity: None", "External Traffic Policy: Cluster"):
            assert line in svc, line
        endpoints = next(line for line in svc if line.startswith("Endpoints: "))
        assert sorted(endpoints.removeprefix("Endpoints: ").split(",")) == ips

        rs = (await cluster.list("replicasets", selector="app=web"))[0]
        text = _lines(cluster.describe("replicaset", rs.metadata.name))
        for line in ("Controlled By: Deployment/web", "Replicas: 2 current / 2 desired",
                     "Pods Status: 2 Running / 0 Waiting / 0 Succeeded / 0 Failed",
                     "Pod Template:", "Containers:", "Image: busybox:1.36"):
            assert line in text, line
        assert not any(line.startswith(("State:", "Ready:")) for line in text)

        text = _lines(cluster.describe("statefulset/db"))
        for line in ("Replicas: 1 desired | 1 total", "Update Strategy: RollingUpdate",
                     "Partition: 0", "Volume Claims:", "Name: data", "Capacity: 1Gi",
                     "Access Modes: ReadWriteOnce",
                     "Pods Status: 1 Running / 0 Waiting / 0 Succeeded / 0 Failed"):
            assert line in text, line

        text = _lines(cluster.describe("daemonset/agent"))
        for line in ("Desired Number of Nodes Scheduled: 2",
                     "Number of Nodes Scheduled with Available Pods: 2",
                     "Number of Nodes Misscheduled: 0",
                     "Pods Status: 2 Running / 0 Waiting / 0 Succeeded / 0 Failed"):
            assert line in text, line

        text = _lines(cluster.describe("job/once"))
        for line in ("Parallelism: 1", "Completions: 2", "Completion Mode: NonIndexed",
                     "Backoff Limit: 6", "Pods Statuses: 1 Active (1 Ready) / 0 Succeeded / "
                     "0 Failed"):
            assert line in text, line
        assert not any(line.startswith("Controlled By:") for line in text)


VOLUMES: list[dict[str, Any]] = [
    {"name": "config", "configMap": {"name": "app-config"}},
    {"name": "token", "secret": {"secretName": "app-secret", "optional": True}},
    {"name": "scratch", "emptyDir": {"medium": "Memory", "sizeLimit": "64Mi"}},
    {"name": "data", "hostPath": {"path": "/srv/data", "type": "DirectoryOrCreate"}},
    {"name": "info", "downwardAPI": {"items": [
        {"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}},
        {"path": "cpu", "resourceFieldRef": {"containerName": "main",
                                             "resource": "limits.cpu"}}]}},
    {"name": "claim", "persistentVolumeClaim": {"claimName": "db-data"}},
    {"name": "bundle", "projected": {"sources": [
        {"configMap": {"name": "app-config"}}, {"serviceAccountToken": {"path": "token"}}]}},
]


async def test_describe_prints_each_volume_and_the_ports_as_kubectl_does() -> None:
    """Each volume's type and source lines (in a pod and in a pod template); "Ports"
    when a container has several."""
    template = _template("vols")
    template["spec"]["volumes"] = VOLUMES
    template["spec"]["containers"][0]["ports"].append(
        {"name": "metrics", "containerPort": 9090, "protocol": "UDP"})
    async with oc.Cluster(runtime="fake", nodes=1) as cluster:
        await cluster.apply([
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "app-config"},
             "data": {"a": "1"}},
            {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
             "metadata": {"name": "db-data"},
             "spec": {"accessModes": ["ReadWriteOnce"],
                      "resources": {"requests": {"storage": "1Gi"}}}},
            {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "vols"},
             "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "vols"}},
                      "template": template}},
        ])
        await cluster.wait_for("deployment/vols", lambda d: d.status is not None
                               and (d.status.replicas or 0) == 1, timeout=30)
        pod = (await cluster.list("pods", selector="app=vols"))[0]
        expected = [
            "Volumes:",
            "config:", "Type: ConfigMap (a volume populated by a ConfigMap)",
            "Name: app-config", "Optional: false",
            "token:", "Type: Secret (a volume populated by a Secret)",
            "SecretName: app-secret", "Optional: true",
            "scratch:", "Type: EmptyDir (a temporary directory that shares a pod's lifetime)",
            "Medium: Memory", "SizeLimit: 64Mi",
            "data:", "Type: HostPath (bare host directory volume)", "Path: /srv/data",
            "HostPathType: DirectoryOrCreate",
            "info:", "Type: DownwardAPI (a volume populated by information about the pod)",
            "Items:", "metadata.labels -> labels", "limits.cpu -> cpu",
            "claim:", "Type: PersistentVolumeClaim (a reference to a PersistentVolumeClaim "
            "in the same namespace)", "ClaimName: db-data", "ReadOnly: false",
            "bundle:", "Type: Projected (a volume that contains injected data from multiple "
            "sources)", "ConfigMapName: app-config", "Optional: false",
            "TokenExpirationSeconds: 3600",
        ]
        for text in (cluster.describe(pod), cluster.describe("deployment/vols")):
            lines = _lines(text)
            start = lines.index("Volumes:")
            assert lines[start:start + len(expected)] == expected
            assert "Ports: 8080/TCP, 9090/UDP" in lines
            assert "Host Ports: 0/TCP, 0/UDP" in lines
        raw = cluster.describe(pod).splitlines()
        assert "  config:" in raw and "    Type:      ConfigMap (a volume populated by a " \
            "ConfigMap)" in raw and "      metadata.labels -> labels" in raw
        raw = cluster.describe("deployment/vols").splitlines()
        assert "  Volumes:" in raw and "   config:" in raw


async def test_describe_config_map_secret_and_claim_like_kubectl() -> None:
    async with oc.Cluster(runtime="fake", nodes=1) as cluster:
        await cluster.apply([
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg"},
             "data": {"b.conf": "x=1\ny=2", "a": "1"}, "binaryData": {"bin": "AAEC"}},
            {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"},
             "stringData": {"token": "t0ken", "password": "hunter2"}},
            {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "data"},
             "spec": {"accessModes": ["ReadWriteOnce"],
                      "resources": {"requests": {"storage": "1Gi"}}}},
            pod("user", ["sleep", "3600"],
                volumes=[{"name": "d", "persistentVolumeClaim": {"claimName": "data"}}]),
        ])
        text = cluster.describe("configmap/cfg")
        data = text[text.index("Data\n"):]
        assert data.startswith("Data\n====\na:\n----\n1\n\nb.conf:\n----\nx=1\ny=2\n\n\n"
                               "BinaryData\n====\nbin: 3 bytes\n")

        text = cluster.describe("secret/s")
        assert "hunter2" not in text and "t0ken" not in text  # sizes only
        lines = text.splitlines()
        assert "Type:  Opaque" in lines
        start = lines.index("Data")
        assert lines[start:start + 4] == ["Data", "====", "password:  7 bytes",
                                          "token:     5 bytes"]

        lines = _lines(cluster.describe("persistentvolumeclaim/data"))
        for line in ("Name: data", "Status: Pending", "VolumeMode: Filesystem",
                     "Used By: user", "Access Modes:"):
            assert line in lines, line


async def test_describe_namespace_and_quota_with_what_the_pods_use() -> None:
    async with oc.Cluster(runtime="fake", nodes=1) as cluster:
        assert _lines(cluster.describe("namespace/default"))[-3:] == [
            "No resource quota.", "", "No LimitRange resource."]
        await cluster.apply([
            {"apiVersion": "v1", "kind": "ResourceQuota", "metadata": {"name": "compute"},
             "spec": {"hard": {"pods": "10", "requests.cpu": "2"}}},
            {"apiVersion": "v1", "kind": "LimitRange", "metadata": {"name": "lr"},
             "spec": {"limits": [{"type": "Container", "defaultRequest": {"cpu": "100m"},
                                  "default": {"cpu": "500m"}}]}},
            pod("p", ["sleep", "3600"]),
        ])
        lines = _lines(cluster.describe("namespace/default"))
        start = lines.index("Resource Quotas")
        assert lines[start:start + 5] == ["Resource Quotas", "Name: compute",
                                          "Resource Used Hard", "-------- ---- ----",
                                          "pods 1 10"]
        assert "requests.cpu 100m 2" in lines  # the LimitRange's default request
        assert "Container cpu - - 100m 500m -" in lines
        lines = _lines(cluster.describe("resourcequota/compute"))
        assert lines[2:6] == ["Resource Used Hard", "-------- ---- ----", "pods 1 10",
                              "requests.cpu 100m 2"]


async def test_describe_lists_env_from_sources_like_kubectl() -> None:
    doc = pod("q", ["sleep", "3600"])
    doc["spec"]["containers"][0].update(
        envFrom=[{"configMapRef": {"name": "cfg"}},
                 {"prefix": "S_", "secretRef": {"name": "sec", "optional": True}}],
        env=[{"name": "X", "value": "1"}])
    async with oc.Cluster(runtime="fake", nodes=1) as cluster:
        await cluster.apply([{"apiVersion": "v1", "kind": "ConfigMap",
                              "metadata": {"name": "cfg"}, "data": {"A": "1"}}, doc])
        lines = cluster.describe("pod/q").splitlines()
        at = lines.index("    Environment Variables from:")
        assert lines[at + 1:at + 3] == ["      cfg  ConfigMap                Optional: false",
                                        "      sec  Secret with prefix 'S_'  Optional: true"]
        assert lines[at + 3] == "    Environment:" and lines[at + 4].split() == ["X:", "1"]


async def test_describe_cron_job_and_the_daemon_set_counts_like_kubectl() -> None:
    async with oc.Cluster(runtime="fake", nodes=2) as cluster:
        await cluster.apply([
            {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "hello"},
             "spec": {"schedule": "*/5 * * * *", "jobTemplate": {"spec": {
                 "activeDeadlineSeconds": 60, "template": {"spec": {
                     "restartPolicy": "OnFailure",
                     "containers": [{"name": "hello", "image": "busybox:1.36",
                                     "command": ["date"]}]}}}}}},
            {"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "agent"},
             "spec": {"selector": {"matchLabels": {"app": "agent"}},
                      "template": _template("agent")}},
        ])
        await cluster.wait_for("daemonset/agent", "Available", timeout=30)
        lines = _lines(cluster.describe("cronjob/hello"))
        for line in ("Schedule: */5 * * * *", "Concurrency Policy: Allow", "Suspend: False",
                     "Successful Job History Limit: 3", "Failed Job History Limit: 1",
                     "Starting Deadline Seconds: <unset>", "Selector: <unset>",
                     "Parallelism: <unset>", "Active Deadline Seconds: 60s", "Pod Template:",
                     "Last Schedule Time: <unset>", "Active Jobs: <none>"):
            assert line in lines, line
        raw = cluster.describe("daemonset/agent").splitlines()
        # kubectl writes the node counts as plain "Key: N" lines, outside the alignment
        assert "Desired Number of Nodes Scheduled: 2" in raw
        assert "Number of Nodes Misscheduled: 0" in raw
        assert raw[0] == "Name:           agent"


async def test_describe_pod_disruption_budget_like_kubectl() -> None:
    async with oc.Cluster(runtime="fake", nodes=1) as cluster:
        await cluster.apply([
            {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": "web"},
             "spec": {"minAvailable": 2, "selector": {"matchLabels": {"app": "web"}}}},
            deployment(replicas=3),
        ])
        await cluster.wait_for("pdb/web", lambda b: b.status is not None
                               and b.status.current_healthy == 3, timeout=30)
        # (the budget came before its pods: the controller said so, as Kubernetes' does)
        assert "No matching pods found" in cluster.describe("pdb/web")
        assert cluster.describe("pdb/web").splitlines()[:9] == [
            "Name:           web",
            "Namespace:      default",
            "Min available:  2",
            "Selector:       app=web",
            "Status:",
            "    Allowed disruptions:  1",
            "    Current:              3",
            "    Desired:              2",
            "    Total:                3",
        ]


@pytest.mark.anyio
async def test_a_simulated_pod_makes_no_host_path_directory(tmp_path: Path) -> None:
    """hostPath DirectoryOrCreate is created for real containers only: the fake runtime
    must not leave directories on the host running the simulation."""
    target = tmp_path / "made-by-hostpath"
    async with oc.Cluster(runtime="fake") as cluster:
        await cluster.apply({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
                             "spec": {"containers": [{"name": "c", "image": "busybox"}],
                                      "volumes": [{"name": "d", "hostPath": {
                                          "path": str(target),
                                          "type": "DirectoryOrCreate"}}]}})
        await cluster.wait_for("pod/p", "Ready", timeout=30)
    assert not target.exists()
