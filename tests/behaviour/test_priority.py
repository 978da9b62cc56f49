"""Pod priority: PriorityClass objects, the system classes, and the Priority admission
plugin resolving ``priorityClassName`` (unknown classes and disagreeing pods refused)."""

from __future__ import annotations

import asyncio
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


# -- the scheduling queue and preemption ---------------------------------------------------


def cpu_pod(name: str, cpu: str = "1", **spec: Any) -> dict[str, Any]:
    p = pod(name, **spec)
    p["spec"]["containers"][0]["resources"] = {"requests": {"cpu": cpu}}
    p["spec"]["terminationGracePeriodSeconds"] = 0
    return p


def scheduled_message(cluster: oc.Cluster, name: str) -> str | None:
    p = cluster.store.get("pod", name)
    c = p.status.condition("PodScheduled") if p.status else None
    return c.message if c is not None and c.status == "False" else None


async def advance_until(cluster: oc.Cluster, check: Any, rounds: int = 200) -> Any:
    clock = cluster.clock
    assert isinstance(clock, oc.ManualClock)
    for _ in range(rounds):
        value = check()
        if value:
            return value
        await clock.advance(0.5)
    raise AssertionError("condition not reached")


async def test_pending_pods_are_scheduled_higher_priority_first() -> None:
    async with oc.Cluster(runtime="fake", nodes=0, clock=oc.ManualClock()) as cluster:
        await cluster.create(klass("high", 1000))
        for i in range(4):
            await cluster.create(cpu_pod(f"low-{i}"))
        await cluster.create(cpu_pod("urgent", priorityClassName="high"))
        await advance_until(cluster, lambda: scheduled_message(cluster, "urgent"))
        await cluster.add_node(oc.NodeSpec("only", cpu="1"))
        await advance_until(cluster, lambda: cluster.store.get("pod", "urgent").spec.node_name)
        for _ in range(10):
            await cluster.clock.advance(0.5)  # type: ignore[attr-defined]
        # the room went to the high-priority pod first: no low pod was ever bound
        assert not any(e.reason in ("Scheduled", "Preempted")
                       for i in range(4) for e in cluster.events(f"pod/low-{i}"))
        assert all(not cluster.store.get("pod", f"low-{i}").spec.node_name for i in range(4))


async def test_a_high_priority_pod_preempts_the_newest_low_priority_pod() -> None:
    async with oc.Cluster(runtime="fake", nodes=[oc.NodeSpec("node-1", cpu="2")],
                          clock=oc.ManualClock()) as cluster:
        await cluster.apply(str(DOCS / "sched-priorityclass.yaml"))
        await cluster.delete("pod/nginx")
        await cluster.create(cpu_pod("old"))
        await advance_until(cluster, lambda: (p := cluster.store.get("pod", "old")).status
                            and p.status.phase == "Running")
        await cluster.clock.advance(30)  # type: ignore[attr-defined]
        await cluster.create(cpu_pod("new"))
        await advance_until(cluster, lambda: (p := cluster.store.get("pod", "new")).status
                            and p.status.phase == "Running")
        nominated: list[tuple[str | None, str | None]] = []

        async def follow() -> None:
            async for ev in cluster.watch("Pod", field_selector="metadata.name=vip"):
                st = ev.object.status
                nominated.append((ev.object.spec.node_name,
                                  st.nominated_node_name if st else None))

        follower = asyncio.ensure_future(follow())
        await asyncio.sleep(0)
        vip = await cluster.create(cpu_pod("vip", priorityClassName="high-priority"))
        victim = await advance_until(
            cluster, lambda: next((e for e in cluster.events("pod/new")
                                   if e.reason == "Preempted"), None))
        assert victim.message == f"Preempted by pod {vip.metadata.uid} on node node-1"
        assert victim.type == "Normal"
        gone = cluster.store.get_or_none("pod", "new")
        if gone is not None:  # still terminating
            target = gone.status.condition("DisruptionTarget")
            assert (target.reason, target.message) == (
                "PreemptionByScheduler",
                "default-scheduler: preempting to accommodate a higher priority pod")
        p = await advance_until(cluster, lambda: (v := cluster.store.get("pod", "vip"))
                                .spec.node_name and v)
        assert p.spec.node_name == "node-1"
        follower.cancel()
        # nominated to the node while its victim went, then bound there
        assert (None, "node-1") in nominated
        # the older pod of the same priority stays; the newer one went
        assert cluster.store.get("pod", "old").metadata.deletion_timestamp is None
        await advance_until(cluster, lambda: cluster.store.get_or_none("pod", "new") is None)


async def test_preemption_policy_never_and_no_victims_messages() -> None:
    async with oc.Cluster(runtime="fake", nodes=[oc.NodeSpec("node-1", cpu="1")],
                          clock=oc.ManualClock()) as cluster:
        await cluster.apply(str(DOCS / "sched-priorityclass.yaml"))
        await cluster.delete("pod/nginx")
        await cluster.create(cpu_pod("low"))
        await advance_until(cluster, lambda: cluster.store.get("pod", "low").spec.node_name)
        await cluster.create(cpu_pod("polite", priorityClassName="high-priority-nonpreempting"))
        msg = await advance_until(cluster, lambda: scheduled_message(cluster, "polite"))
        assert msg == ("0/1 nodes are available: 1 Insufficient cpu. not eligible due to "
                       "preemptionPolicy=Never.")
        await cluster.create(cpu_pod("peer"))
        msg = await advance_until(cluster, lambda: scheduled_message(cluster, "peer"))
        assert msg == ("0/1 nodes are available: 1 Insufficient cpu. preemption: 0/1 nodes "
                       "are available: 1 No preemption victims found for incoming pod..")
        for _ in range(6):
            await cluster.clock.advance(0.5)  # type: ignore[attr-defined]
        assert cluster.store.get("pod", "low").metadata.deletion_timestamp is None
        assert not any(e.reason == "Preempted" for e in cluster.events("pod/low"))


async def test_describe_priority_class_like_kubectl(cluster: oc.Cluster) -> None:
    await cluster.create(klass("batch", 10, description="Batch jobs.",
                               preemptionPolicy="Never"))
    assert cluster.describe("priorityclass/batch").splitlines() == [
        "Name:              batch",
        "Value:             10",
        "GlobalDefault:     false",
        "PreemptionPolicy:  Never",
        "Description:       Batch jobs.",
        "Annotations:       <none>",
        "Events:            <none>",
    ]


async def test_a_more_important_preemption_displaces_an_earlier_nomination() -> None:
    """low-1 and low-2 hold the node; mid preempts low-2 and is nominated; while low-2 is
    still terminating, top (needing the whole node) preempts too: mid loses its
    nomination and finds no victims of its own, since top's room is held."""
    async with oc.Cluster(runtime="fake", nodes=[oc.NodeSpec("node-1", cpu="2")],
                          clock=oc.ManualClock()) as cluster:
        await cluster.create(klass("mid", 50))
        await cluster.create(klass("top", 100))
        slow = {"fake.orchestra.dev/ignore-sigterm": "true"}
        for name in ("low-1", "low-2"):
            body = cpu_pod(name)
            body["metadata"]["annotations"] = slow
            body["spec"]["terminationGracePeriodSeconds"] = 60
            await cluster.create(body)
            await advance_until(cluster, lambda n=name: cluster.store.get("pod", n)
                                .spec.node_name)
            await cluster.clock.advance(5)  # type: ignore[attr-defined]
        seen: list[tuple[str, str | None]] = []

        async def follow() -> None:
            async for ev in cluster.watch("Pod", field_selector="metadata.name=mid"):
                st = ev.object.status
                seen.append(("mid", st.nominated_node_name if st else None))

        follower = asyncio.ensure_future(follow())
        await asyncio.sleep(0)
        await cluster.create(cpu_pod("mid", priorityClassName="mid"))
        await advance_until(cluster, lambda: ("mid", "node-1") in seen)
        assert cluster.store.get("pod", "low-2").metadata.deletion_timestamp is not None
        await cluster.create(cpu_pod("top", "2", priorityClassName="top"))
        top = await advance_until(cluster, lambda: (t := cluster.store.get("pod", "top"))
                                  .status.nominated_node_name and t)
        assert top.status.nominated_node_name == "node-1"
        mid = await advance_until(cluster, lambda: (m := cluster.store.get("pod", "mid"))
                                  .status.nominated_node_name is None and m)
        follower.cancel()
        assert not mid.spec.node_name
        assert scheduled_message(cluster, "mid").endswith(
            "preemption: 0/1 nodes are available: 1 No preemption victims found for "
            "incoming pod..")
        p = await advance_until(cluster, lambda: (t := cluster.store.get("pod", "top"))
                                .spec.node_name and t, rounds=400)
        assert p.spec.node_name == "node-1"
