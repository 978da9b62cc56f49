"""Pod priority: PriorityClass objects, the system classes, and the Priority admission
plugin resolving ``priorityClassName`` (unknown classes and disagreeing pods refused)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

import orchestra as oc

pytestmark = pytest.mark.anyio

DOCS = Path(__file__).parent.parent / "manifests" / "docs"


def pod(name: str, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"containers": [{"name": "main", "image": "busybox"}], **spec}}


def klass(name: str, value: int, **fields: Any) -> dict[str, Any]:
    return {"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass",
            "metadata": {"name": name}, "value": value, **fields}


@pytest.fixture
async def cluster() -> AsyncIterator[oc.Cluster]:
    async with oc.Cluster(runtime="fake", nodes=1) as c:
        yield c


async def test_every_cluster_has_the_two_system_classes(cluster: oc.Cluster) -> None:
    classes = {c.metadata.name: c for c in await cluster.list("priorityclasses")}
    assert classes["system-cluster-critical"].value == 2000000000
    assert classes["system-node-critical"].value == 2000001000
    assert not classes["system-node-critical"].global_default
    p = await cluster.create(pod("critical", priorityClassName="system-node-critical"),
                             namespace="kube-system")
    assert p.spec.priority == 2000001000
    assert p.spec.preemption_policy == "PreemptLowerPriority"


async def test_the_docs_class_resolves_into_the_pods_priority(cluster: oc.Cluster) -> None:
    await cluster.apply(str(DOCS / "sched-priorityclass.yaml"))
    nginx = await cluster.get("pod/nginx")
    assert (nginx.spec.priority, nginx.spec.priority_class_name) == (1000000, "high-priority")
    p = await cluster.create(pod("np", priorityClassName="high-priority-nonpreempting"))
    assert (p.spec.priority, p.spec.preemption_policy) == (1000000, "Never")
    # without a class and without a default class: priority 0
    plain = await cluster.create(pod("plain"))
    assert plain.spec.priority == 0 and plain.spec.priority_class_name is None
    await cluster.wait_for("pod/nginx", "Ready", timeout=30)
    assert (await cluster.get("pod/nginx")).spec.priority == 1000000


async def test_an_unknown_class_is_refused_as_the_api_server_does(cluster: oc.Cluster) -> None:
    with pytest.raises(oc.Forbidden) as err:
        await cluster.create(pod("x", priorityClassName="foo"))
    assert str(err.value) == 'pods "x" is forbidden: no PriorityClass with name foo was found'
    assert await cluster.list("pods") == []


async def test_a_pod_whose_priority_disagrees_is_refused(cluster: oc.Cluster) -> None:
    await cluster.create(klass("high", 1000))
    with pytest.raises(oc.Forbidden) as err:
        await cluster.create(pod("x", priorityClassName="high", priority=5))
    assert str(err.value) == (
        'pods "x" is forbidden: the integer value of priority (5) must not be provided in '
        "pod spec; priority admission controller computed 1000 from the given PriorityClass "
        "name")
    with pytest.raises(oc.Forbidden) as err:
        await cluster.create(pod("y", priorityClassName="high", preemptionPolicy="Never"))
    assert "the string value of PreemptionPolicy (Never) must not be provided" in str(err.value)
    ok = await cluster.create(pod("z", priorityClassName="high", priority=1000))
    assert ok.spec.priority == 1000


async def test_the_global_default_class_applies_to_pods_without_one(
        cluster: oc.Cluster) -> None:
    await cluster.create(klass("normal", 100, globalDefault=True, preemptionPolicy="Never"))
    p = await cluster.create(pod("p"))
    assert (p.spec.priority, p.spec.priority_class_name, p.spec.preemption_policy) == (
        100, "normal", "Never")
    with pytest.raises(oc.Forbidden) as err:
        await cluster.create(klass("other", 5, globalDefault=True))
    assert str(err.value) == ('priorityclasses.scheduling.k8s.io "other" is forbidden: '
                              "PriorityClass normal is already marked as default. Only one "
                              "default can exist")


async def test_priority_class_validation(cluster: oc.Cluster) -> None:
    with pytest.raises(oc.Invalid) as err:
        await cluster.create(klass("huge", 1000000001))
    assert str(err.value) == ('PriorityClass.scheduling.k8s.io "huge" is invalid: value: '
                              "Forbidden: maximum allowed value of a user defined priority "
                              "is 1000000000")
    with pytest.raises(oc.Invalid) as err:
        await cluster.create(klass("system-mine", 10))
    assert "reserved for system use only. error: system-mine is not a known system " \
        "priority class" in str(err.value)
    await cluster.create(klass("c", 10))
    with pytest.raises(oc.Invalid) as err:
        await cluster.patch("priorityclass/c", {"value": 11})
    assert "value: Forbidden: may not be changed in an update." in str(err.value)
    with pytest.raises(oc.Invalid):
        await cluster.create(klass("bad", 1, preemptionPolicy="Sometimes"))


async def test_describe_shows_the_priority_class(cluster: oc.Cluster) -> None:
    await cluster.create(klass("high", 1000))
    await cluster.create(pod("p", priorityClassName="high"))
    lines = cluster.describe("pod/p").splitlines()
    assert "Priority:             1000" in lines
    assert "Priority Class Name:  high" in lines
