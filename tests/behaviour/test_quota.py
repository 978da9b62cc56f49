"""ResourceQuota and LimitRange: object counts, compute resources with init containers,
scopes, the quota controller's status, and LimitRange Container/Pod/PVC bounds, with the
API server's messages (the Kubernetes docs' examples)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

import orchestra as oc
from tests.behaviour._util import deployment

pytestmark = pytest.mark.anyio

DOCS = Path(__file__).parent.parent / "manifests" / "docs"


@pytest.fixture
async def cluster() -> AsyncIterator[oc.Cluster]:
    async with oc.Cluster(runtime="fake", nodes=1, clock=oc.ManualClock()) as c:
        yield c


async def until(cluster: oc.Cluster, check: Callable[[], Any], rounds: int = 200) -> Any:
    clock = cluster.clock
    assert isinstance(clock, oc.ManualClock)
    for _ in range(rounds):
        value = check()
        if value:
            return value
        await clock.advance(0.5)
    raise AssertionError("condition not reached")


def used(cluster: oc.Cluster, name: str, namespace: str = "default"
         ) -> dict[str, str] | None:
    q = cluster.store.get("quota", name, namespace=namespace)
    return dict(q.status.used) if q.status and q.status.used is not None else None


def pod(name: str, *, requests: dict[str, str] | None = None,
        limits: dict[str, str] | None = None, **spec: Any) -> dict[str, Any]:
    c: dict[str, Any] = {"name": "main", "image": "busybox"}
    if requests or limits:
        c["resources"] = {k: v for k, v in (("requests", requests), ("limits", limits)) if v}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"containers": [c], **spec}}


def cm(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}}


def svc(name: str, type_: str = "ClusterIP") -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name},
            "spec": {"type": type_, "selector": {"app": name},
                     "ports": [{"port": 80}]}}


def pvc(name: str, size: str, storage_class: str | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"accessModes": ["ReadWriteOnce"],
                            "resources": {"requests": {"storage": size}}}
    if storage_class:
        spec["storageClassName"] = storage_class
    return {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": name},
            "spec": spec}


async def test_the_docs_compute_quota_refuses_the_second_pod(cluster: oc.Cluster) -> None:
    ns = "quota-mem-cpu-example"
    await cluster.apply(str(DOCS / "sched-quota-compute.yaml"))
    got = await until(cluster, lambda: used(cluster, "mem-cpu-demo", ns))
    assert got == {"limits.cpu": "800m", "limits.memory": "800Mi", "requests.cpu": "400m",
                   "requests.memory": "600Mi"}
    q = cluster.store.get("quota", "mem-cpu-demo", namespace=ns)
    assert dict(q.status.hard) == {"requests.cpu": "1", "requests.memory": "1Gi",
                                   "limits.cpu": "2", "limits.memory": "2Gi"}
    # the docs' quota-mem-cpu-pod-2.yaml
    second = pod("quota-mem-cpu-demo-2", requests={"memory": "700Mi", "cpu": "400m"},
                 limits={"memory": "1Gi", "cpu": "800m"})
    second["spec"]["containers"][0].update(name="quota-mem-cpu-demo-2-ctr", image="redis")
    with pytest.raises(oc.Forbidden) as err:
        await cluster.apply(second, namespace=ns)
    assert str(err.value) == (
        'pods "quota-mem-cpu-demo-2" is forbidden: exceeded quota: mem-cpu-demo, requested: '
        "requests.memory=700Mi, used: requests.memory=600Mi, limited: requests.memory=1Gi")
    with pytest.raises(oc.Forbidden) as err:
        await cluster.create(pod("bare"), namespace=ns)
    assert str(err.value) == (
        'pods "bare" is forbidden: failed quota: mem-cpu-demo: must specify limits.cpu for: '
        "main; limits.memory for: main; requests.cpu for: main; requests.memory for: main")
    await cluster.create(pod("elsewhere"))  # another namespace: no quota


async def test_a_pod_quota_stops_the_third_replica(cluster: oc.Cluster) -> None:
    ns = "quota-pod-example"
    await cluster.apply(str(DOCS / "sched-quota-pods.yaml"))
    await until(cluster, lambda: used(cluster, "pod-demo", ns) == {"pods": "2"})
    rs = cluster.store.list("ReplicaSet", namespace=ns)[0]
    failed = await until(cluster, lambda: [e for e in cluster.events(rs)
                                           if e.reason == "FailedCreate"])
    assert failed[0].message.endswith(
        "is forbidden: exceeded quota: pod-demo, requested: pods=1, used: pods=2, "
        "limited: pods=2")
    assert len(cluster.store.list("Pod", namespace=ns)) == 2
    # a pod that went no longer counts
    await cluster.scale("deploy/pod-quota-demo", 1, namespace=ns)
    await until(cluster, lambda: used(cluster, "pod-demo", ns) == {"pods": "1"})


async def test_object_counts(cluster: oc.Cluster) -> None:
    ns = "quota-object-example"
    await cluster.apply(str(DOCS / "sched-quota-object-counts.yaml"))
    await until(cluster, lambda: used(cluster, "generic-counts", ns) is not None)
    await cluster.create(cm("one"), namespace=ns)
    await cluster.create(cm("two"), namespace=ns)
    with pytest.raises(oc.Forbidden) as err:
        await cluster.create(cm("three"), namespace=ns)
    # kube-root-ca.crt is not created here, so the namespace holds exactly these two
    assert str(err.value) == (
        'configmaps "three" is forbidden: exceeded quota: generic-counts, requested: '
        "count/configmaps=1, used: count/configmaps=2, limited: count/configmaps=2")
    await cluster.apply(deployment("a", replicas=0), namespace=ns)
    with pytest.raises(oc.Forbidden, match=r"count/deployments.apps=1, used: "
                                           r"count/deployments.apps=1"):
        await cluster.apply(deployment("b", replicas=0), namespace=ns)
    # Services: NodePorts are not allowed at all, LoadBalancers twice
    await cluster.create(svc("plain"), namespace=ns)
    with pytest.raises(oc.Forbidden) as err:
        await cluster.create(svc("np", "NodePort"), namespace=ns)
    assert str(err.value) == (
        'services "np" is forbidden: exceeded quota: object-quota-demo, requested: '
        "services.nodeports=1, used: services.nodeports=0, limited: services.nodeports=0")
    # changing a Service's type is an update that adds to the usage
    with pytest.raises(oc.Forbidden, match=r"services\.nodeports=1"):
        await cluster.patch("svc/plain", {"spec": {"type": "NodePort"}}, namespace=ns)
    # PersistentVolumeClaims: one allowed by object-quota-demo
    await cluster.create(pvc("data", "1Gi"), namespace=ns)
    with pytest.raises(oc.Forbidden, match="persistentvolumeclaims=1, used: "
                                           "persistentvolumeclaims=1, limited: "
                                           "persistentvolumeclaims=1"):
        await cluster.create(pvc("more", "1Gi"), namespace=ns)
    st = await until(cluster, lambda: (u := used(cluster, "object-counts", ns)) and
                     u["configmaps"] == "2" and u)
    assert st == {"configmaps": "2", "persistentvolumeclaims": "1", "pods": "0",
                  "replicationcontrollers": "0", "secrets": "0", "services": "1",
                  "services.loadbalancers": "0"}


async def test_storage_quota_by_class(cluster: oc.Cluster) -> None:
    await cluster.create({"apiVersion": "v1", "kind": "ResourceQuota",
                          "metadata": {"name": "storage"},
                          "spec": {"hard": {
                              "requests.storage": "5Gi",
                              "gold.storageclass.storage.k8s.io/requests.storage": "2Gi",
                              "gold.storageclass.storage.k8s.io/persistentvolumeclaims": "1"}}})
    await cluster.create(pvc("a", "2Gi", "gold"))
    with pytest.raises(oc.Forbidden) as err:
        await cluster.create(pvc("b", "1Gi", "gold"))
    assert str(err.value) == (
        'persistentvolumeclaims "b" is forbidden: exceeded quota: storage, requested: '
        "gold.storageclass.storage.k8s.io/persistentvolumeclaims=1,"
        "gold.storageclass.storage.k8s.io/requests.storage=1Gi, used: "
        "gold.storageclass.storage.k8s.io/persistentvolumeclaims=1,"
        "gold.storageclass.storage.k8s.io/requests.storage=2Gi, limited: "
        "gold.storageclass.storage.k8s.io/persistentvolumeclaims=1,"
        "gold.storageclass.storage.k8s.io/requests.storage=2Gi")
    await cluster.create(pvc("c", "3Gi", "silver"))
    with pytest.raises(oc.Forbidden, match=r"requests\.storage=1Gi, used: requests\.storage=5Gi"):
        await cluster.create(pvc("d", "1Gi"))


async def test_init_containers_and_overhead_count_as_kubernetes_computes(
        cluster: oc.Cluster) -> None:
    await cluster.create({"apiVersion": "v1", "kind": "ResourceQuota",
                          "metadata": {"name": "q"}, "spec": {"hard": {"requests.cpu": "10"}}})
    body = pod("init", requests={"cpu": "1"}, limits={"cpu": "1"})
    body["spec"]["initContainers"] = [
        {"name": "setup", "image": "busybox",
         "resources": {"requests": {"cpu": "3"}, "limits": {"cpu": "3"}}},
        {"name": "sidecar", "image": "busybox", "restartPolicy": "Always",
         "resources": {"requests": {"cpu": "500m"}, "limits": {"cpu": "500m"}}}]
    body["spec"]["overhead"] = {"cpu": "250m"}
    await cluster.create(body)
    # max(init peak 3, containers 1 + sidecar 0.5) + overhead 0.25
    assert (await until(cluster, lambda: used(cluster, "q"))) == {"requests.cpu": "3250m"}
    body = pod("after", requests={"cpu": "1"}, limits={"cpu": "1"})
    body["spec"]["initContainers"] = [
        {"name": "sidecar", "image": "busybox", "restartPolicy": "Always",
         "resources": {"requests": {"cpu": "2"}, "limits": {"cpu": "2"}}},
        {"name": "late", "image": "busybox",
         "resources": {"requests": {"cpu": "3"}, "limits": {"cpu": "3"}}}]
    await cluster.create(body)
    # the init step after a sidecar runs beside it: 2 + 3 = 5 > containers 1 + 2
    await until(cluster, lambda: used(cluster, "q") == {"requests.cpu": "8250m"})


async def test_scopes(cluster: oc.Cluster) -> None:
    ns = "quota-scopes-example"
    await cluster.apply(str(DOCS / "sched-quota-scopes.yaml"))
    # (a quota on cpu and memory requires every pod it counts to request both)
    with pytest.raises(oc.Forbidden, match="failed quota: pods-low: must specify memory for: "
                                           "main"):
        await cluster.create(pod("vague", requests={"cpu": "1"}, priorityClassName="low"),
                             namespace=ns)
    both = {"cpu": "1", "memory": "1Gi"}
    await cluster.create(pod("low-1", requests=both, priorityClassName="low"), namespace=ns)
    with pytest.raises(oc.Forbidden) as err:
        await cluster.create(pod("low-2", requests=both, priorityClassName="low"), namespace=ns)
    assert "exceeded quota: pods-low, requested: pods=1, used: pods=1, limited: pods=1" \
        in str(err.value)
    await cluster.create(pod("high-1", requests=both, priorityClassName="high"), namespace=ns)
    await cluster.create(pod("high-2", requests=both, priorityClassName="high"), namespace=ns)
    # BestEffort: two pods without requests or limits
    await cluster.create(pod("be-1"), namespace=ns)
    await cluster.create(pod("be-2"), namespace=ns)
    with pytest.raises(oc.Forbidden, match="exceeded quota: best-effort"):
        await cluster.create(pod("be-3"), namespace=ns)
    # Terminating pods (activeDeadlineSeconds) do not count toward NotTerminating
    await cluster.create(pod("job-like", requests={"cpu": "1"}, activeDeadlineSeconds=60),
                         namespace=ns)
    assert (await until(cluster, lambda: (u := used(cluster, "not-terminating", ns))
                        and u["pods"] == "5" and u)) == {"pods": "5"}
    with pytest.raises(oc.Forbidden, match="exceeded quota: not-terminating"):
        await cluster.create(pod("one-more", requests={"cpu": "1"}), namespace=ns)
    await cluster.create(pod("bounded", requests={"cpu": "1"}, activeDeadlineSeconds=30),
                         namespace=ns)
    assert used(cluster, "pods-high", ns) == {"cpu": "2", "memory": "2Gi", "pods": "2"}
    assert used(cluster, "best-effort", ns) == {"pods": "2"}


async def test_limit_ranges_for_containers_pods_and_claims(cluster: oc.Cluster) -> None:
    ns = "constraints-cpu-example"
    await cluster.apply(str(DOCS / "sched-limitrange.yaml"))
    # the docs' "constraints-cpu-demo-2": over the container maximum
    with pytest.raises(oc.Forbidden) as err:
        await cluster.create(pod("constraints-cpu-demo-2", requests={"cpu": "500m"},
                                 limits={"cpu": "1500m"}), namespace=ns)
    # (every bound is reported: the Pod item of the file's second LimitRange as well)
    assert str(err.value).startswith(
        'pods "constraints-cpu-demo-2" is forbidden: [maximum cpu usage per Container is '
        "800m, but limit is 1500m, cpu max limit to request ratio per Container is 2, but "
        "provided ratio is 3.000000, maximum cpu usage per Pod is 1, but limit is 1500m")
    # defaults come from max (limit) and then the limit (request); annotated as such
    p = await cluster.create(pod("defaulted", limits={"memory": "1Gi"}), namespace=ns)
    res = p.spec.containers[0].resources
    assert (dict(res.limits), dict(res.requests)) == ({"cpu": "800m", "memory": "1Gi"},
                                                      {"cpu": "800m", "memory": "1Gi"})
    assert p.metadata.annotations["kubernetes.io/limit-ranger"] == (
        "LimitRanger plugin set: cpu request for container main; cpu limit for container main")
    with pytest.raises(oc.Forbidden) as err:
        await cluster.create(pod("tiny", requests={"cpu": "100m"}, limits={"cpu": "150m"}),
                             namespace=ns)
    assert "minimum cpu usage per Container is 200m, but request is 100m" in str(err.value)
    # the Pod type bounds the pod's total: two containers of 600m
    two = pod("two", requests={"cpu": "600m"}, limits={"cpu": "600m"})
    two["spec"]["containers"].append({"name": "second", "image": "busybox", "resources": {
        "requests": {"cpu": "600m"}, "limits": {"cpu": "600m"}}})
    with pytest.raises(oc.Forbidden) as err:
        await cluster.create(two, namespace=ns)
    assert str(err.value) == ('pods "two" is forbidden: [maximum cpu usage per Pod is 1, but '
                              "limit is 1200m, maximum memory usage per Pod is 2Gi.  No limit "
                              "is specified]")
    with pytest.raises(oc.Forbidden) as err:
        await cluster.create(pvc("big", "5Gi"), namespace=ns)
    assert str(err.value) == ('persistentvolumeclaims "big" is forbidden: maximum storage '
                              "usage per PersistentVolumeClaim is 2Gi, but request is 5Gi")
    with pytest.raises(oc.Forbidden, match="minimum storage usage per PersistentVolumeClaim "
                                           "is 1Gi, but request is 500Mi"):
        await cluster.create(pvc("small", "500Mi"), namespace=ns)
    await cluster.create(pvc("fine", "1Gi"), namespace=ns)
