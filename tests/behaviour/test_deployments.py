"""Deployments end to end: availability, rolling updates and their bounds, Recreate,
rollback, pause, a failing image, deletion with each propagation policy."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import pytest

import orchestra as oc
from tests.behaviour._util import deployment, pods_of, ready

pytestmark = pytest.mark.anyio


async def test_ten_replicas_across_three_nodes_become_available(cluster: oc.Cluster) -> None:
    await cluster.apply(deployment(replicas=10, requests={"cpu": "100m"}))
    d = await cluster.wait_for("deployment/web", "Available", timeout=30)
    assert d.status.available_replicas == 10
    assert d.status.updated_replicas == 10
    conds = {c.type: c for c in d.status.conditions}
    assert conds["Available"].reason == "MinimumReplicasAvailable"
    assert conds["Progressing"].reason == "NewReplicaSetAvailable"
    pods = await cluster.list("pods", selector="app=web")
    assert len(pods) == 10 and all(ready(p) for p in pods)
    assert {p.spec.node_name for p in pods} == {"node-1", "node-2", "node-3"}
    rs = await cluster.list("rs", selector="app=web")
    assert len(rs) == 1
    assert rs[0].metadata.annotations["deployment.kubernetes.io/revision"] == "1"
    assert all(p.metadata.controller_ref().uid == rs[0].metadata.uid for p in pods)
    # Kubernetes' shapes: web-<hash>, the hash's decimal digits safe-encoded (7d4f8b9c5d),
    # then each pod's random 5-character suffix.
    h = rs[0].metadata.labels["pod-template-hash"]
    assert rs[0].metadata.name == f"web-{h}"
    assert 1 <= len(h) <= 10 and set(h) <= set("456789bcdf")
    assert all(re.fullmatch(rf"web-{h}-[bcdfghjklmnpqrstvwxz2456789]{{5}}", p.metadata.name)
               for p in pods)


async def _watch_rollout(cluster: oc.Cluster, seen: dict[str, Any], rv: str,
                         initial: list[Any], replicas: int) -> None:
    """Follow the pods from a watch, from ``initial`` (the old pods, at ``rv``) until the
    watch shows the rollout over: every old pod gone and ``replicas`` new ones Ready.
    At every event it records the live pods and the available ones (and whether an old
    and a new pod ever existed together), and it counts the
    events, the old pods it saw go and the new pods it saw become Ready, so that a test
    can tell a watcher that saw the rollout from one that saw nothing."""
    old = {p.metadata.uid for p in initial}
    live: dict[str, Any] = {p.metadata.uid: p for p in initial}
    present = set(old)  # not yet DELETED, terminating ones included
    seen.update(events=0, max_total=len(live), min_available=sum(map(ready, live.values())),
                old_gone=set(), new_ready=set(), overlap=False)
    async for ev in cluster.watch("pods", selector="app=web", resource_version=rv):
        p = ev.object
        uid = p.metadata.uid
        seen["events"] += 1
        if ev.type == "DELETED":
            present.discard(uid)
        else:
            present.add(uid)
        if present & old and present - old:
            seen["overlap"] = True
        if ev.type == "DELETED" or p.metadata.deletion_timestamp is not None:
            live.pop(uid, None)
            if uid in old:
                seen["old_gone"].add(uid)
        else:
            live[uid] = p
            if uid not in old and ready(p):
                seen["new_ready"].add(uid)
        seen["max_total"] = max(seen["max_total"], len(live))
        seen["min_available"] = min(seen["min_available"], sum(map(ready, live.values())))
        if not old & live.keys() and len(live) == replicas and all(map(ready, live.values())):
            return


async def _follow(cluster: oc.Cluster, replicas: int, update: Any) -> dict[str, Any]:
    """Run ``update()`` while a watcher follows the rollout it starts; await the
    watcher (its errors surface here) and check that it saw the whole rollout."""
    seen: dict[str, Any] = {}
    rv = cluster.store.resource_version
    initial = await cluster.list("pods", selector="app=web")
    assert len(initial) == replicas
    watcher = asyncio.create_task(_watch_rollout(cluster, seen, rv, initial, replicas))
    try:
        await update()
        await cluster.wait_for("deployment/web", "Available", timeout=60)
        await asyncio.wait_for(watcher, timeout=30)
    finally:
        watcher.cancel()
    assert seen["events"] > 0, "the watcher saw no event"
    assert len(seen["old_gone"]) == replicas, seen
    assert len(seen["new_ready"]) >= replicas, seen
    return seen


@pytest.mark.parametrize("surge,unavailable", [(2, 1), ("25%", "25%"), (0, 1), (1, 0)])
async def test_rolling_update_stays_within_surge_and_unavailable(
        cluster: oc.Cluster, surge: Any, unavailable: Any) -> None:
    replicas = 8
    strategy = {"type": "RollingUpdate",
                "rollingUpdate": {"maxSurge": surge, "maxUnavailable": unavailable}}
    slow = {"fake.orchestra.dev/start-delay": "100ms"}
    await cluster.apply(deployment(replicas=replicas, strategy=strategy, annotations=slow))
    await cluster.wait_for("deployment/web", "Available", timeout=30)

    async def update() -> None:
        await cluster.apply(deployment(replicas=replicas, strategy=strategy,
                                       annotations={**slow, "version": "2"}))

    seen = await _follow(cluster, replicas, update)

    def scaled(v: Any, up: bool) -> int:
        if isinstance(v, int):
            return v
        pct = int(v[:-1]) * replicas
        return -(-pct // 100) if up else pct // 100

    assert seen["max_total"] <= replicas + scaled(surge, True)
    assert seen["min_available"] >= replicas - scaled(unavailable, False)
    rs = await cluster.list("rs", selector="app=web")
    assert sorted(r.spec.replicas for r in rs) == [0, replicas]


async def test_recreate_stops_old_pods_before_starting_new(cluster: oc.Cluster) -> None:
    await cluster.apply(deployment(replicas=3, strategy={"type": "Recreate"}))
    await cluster.wait_for("deployment/web", "Available", timeout=30)
    old = {p.metadata.uid for p in await cluster.list("pods", selector="app=web")}

    async def update() -> None:
        await cluster.apply(deployment(replicas=3, strategy={"type": "Recreate"},
                                       annotations={"version": "2"}))

    seen = await _follow(cluster, 3, update)
    # No instant had an old pod (terminating ones included) and a new one together, and
    # none was available in between.
    assert not seen["overlap"]
    assert seen["max_total"] == 3 and seen["min_available"] == 0
    pods = await cluster.list("pods", selector="app=web")
    assert len(pods) == 3 and not ({p.metadata.uid for p in pods} & old)


async def test_rollback_to_a_revision(cluster: oc.Cluster) -> None:
    for version in ("1", "2", "3"):
        await cluster.apply(deployment(replicas=2, annotations={"version": version}))
        await cluster.wait_for("deployment/web", "Available", timeout=30)
    history = await cluster.rollout_history("deployment/web")
    assert [h["revision"] for h in history] == [1, 2, 3]
    await cluster.rollout_undo("deployment/web", to_revision=1)
    d = await cluster.wait_for("deployment/web", "Available", timeout=30)
    assert d.spec.template.metadata.annotations["version"] == "1"
    history = await cluster.rollout_history("deployment/web")
    assert [h["revision"] for h in history] == [2, 3, 4]
    pods = [p for p in await cluster.list("pods", selector="app=web")
            if p.metadata.deletion_timestamp is None]
    assert {p.metadata.annotations["version"] for p in pods} == {"1"}
    events = [e.reason for e in cluster.events("deployment/web")]
    assert "DeploymentRollback" in events
    with pytest.raises(oc.NotFound, match="unable to find specified revision 9"):
        await cluster.rollout_undo("deployment/web", to_revision=9)


async def test_pause_holds_the_rollout_and_resume_finishes_it(cluster: oc.Cluster) -> None:
    await cluster.apply(deployment(replicas=2))
    await cluster.wait_for("deployment/web", "Available", timeout=30)
    await cluster.patch("deployment/web", {"spec": {"paused": True}})
    await cluster.wait_for("deployment/web", lambda d: any(
        c.reason == "DeploymentPaused" for c in d.status.conditions), timeout=10)
    await cluster.apply(deployment(replicas=2, annotations={"version": "2"}, paused=True))
    await asyncio.sleep(0.3)
    assert len(await cluster.list("rs", selector="app=web")) == 1
    await cluster.patch("deployment/web", {"spec": {"paused": None}})
    d = await cluster.wait_for("deployment/web", "Available", timeout=30)
    assert len(await cluster.list("rs", selector="app=web")) == 2
    assert {p.metadata.annotations["version"] for p in
            await cluster.list("pods", selector="app=web")
            if p.metadata.deletion_timestamp is None} == {"2"}
    assert d.spec.paused is not True


async def test_failing_image_keeps_old_pods_and_exceeds_progress_deadline() -> None:
    clock = oc.ScaledClock(20)
    async with oc.Cluster(runtime="fake", nodes=2, clock=clock) as cluster:
        await cluster.apply(deployment(replicas=4, progressDeadlineSeconds=30))
        await cluster.wait_for("deployment/web", "Available", timeout=60)
        await cluster.apply(deployment(replicas=4, progressDeadlineSeconds=30,
                                       image="busybox:doesnotexist",
                                       annotations={"fake.orchestra.dev/pull-error":
                                                    "manifest unknown"}))
        d = await cluster.wait_for("deployment/web", lambda d: any(
            c.type == "Progressing" and c.reason == "ProgressDeadlineExceeded"
            for c in d.status.conditions), timeout=300)
        progressing = next(c for c in d.status.conditions if c.type == "Progressing")
        assert progressing.status == "False"
        assert progressing.message.endswith("has timed out progressing.")
        pods = await cluster.list("pods", selector="app=web")
        serving = [p for p in pods if ready(p)]
        assert len(serving) >= 3  # replicas - maxUnavailable still serve
        assert all(p.spec.containers[0].image == "busybox:1.36" for p in serving)
        bad = [p for p in pods if p.spec.containers[0].image == "busybox:doesnotexist"]
        assert bad
        waiting = bad[0].status.container_statuses[0].state.waiting
        assert waiting.reason in ("ErrImagePull", "ImagePullBackOff")
        reasons = [e.message for e in cluster.events(bad[0])]
        assert any("Failed to pull image" in m for m in reasons)


@pytest.mark.parametrize("propagation", ["Background", "Foreground", "Orphan"])
async def test_delete_with_propagation(cluster: oc.Cluster, propagation: str) -> None:
    await cluster.apply(deployment(replicas=3))
    await cluster.wait_for("deployment/web", "Available", timeout=30)
    await cluster.delete("deployment/web", propagation=propagation)
    await cluster.wait_for("deployment/web", "Deleted", timeout=30)
    if propagation == "Orphan":
        await asyncio.sleep(0.2)
        rs = await cluster.list("rs", selector="app=web")
        assert len(rs) == 1 and not rs[0].metadata.owner_references
        assert len(await cluster.list("pods", selector="app=web")) == 3
    else:
        for _ in range(300):
            if not await cluster.list("rs") and not await cluster.list("pods"):
                break
            await asyncio.sleep(0.05)
        assert await cluster.list("rs") == []
        assert await cluster.list("pods") == []


async def test_scale_up_and_down(cluster: oc.Cluster) -> None:
    await cluster.apply(deployment(replicas=2))
    await cluster.wait_for("deployment/web", "Available", timeout=30)
    await cluster.scale("deployment/web", 5)
    await cluster.wait_for("deployment/web", "Available", timeout=30)
    assert len(pods_of(await cluster.list("pods"), "web")) == 5
    await cluster.scale("deployment/web", 1)
    d = await cluster.wait_for("deployment/web", "Available", timeout=30)
    assert d.status.replicas == 1
