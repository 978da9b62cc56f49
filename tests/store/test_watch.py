"""Watches: initial state, resuming, Gone, selector transitions, fan-out."""

from __future__ import annotations

import asyncio

import pytest

from orchestra._errors import Gone
from orchestra._store import Store, Watch, WatchEvent

from ._helpers import configmap, pod

pytestmark = pytest.mark.anyio


def drain(w: Watch) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    while (ev := w.next_nowait()) is not None:
        out.append((ev.type, ev.object.name))
    return out


async def test_initial_added_then_live_events(store: Store) -> None:
    store.create(pod("a"))
    store.create(pod("b"))
    w = store.watch("pods")
    store.create(pod("c"))  # made after watch(): not lost
    events = [await anext(w) for _ in range(3)]
    assert [(e.type, e.object.name) for e in events] == [
        ("ADDED", "a"), ("ADDED", "b"), ("ADDED", "c")]
    assert all(isinstance(e, WatchEvent) for e in events)
    store.patch("pod/a", {"metadata": {"labels": {"x": "1"}}})
    store.delete("pod/b")
    ev = await anext(w)
    assert ev.type == "MODIFIED" and ev.object is store.get("pod/a")
    ev = await anext(w)
    assert ev.type == "DELETED" and ev.object.name == "b"
    assert ev.object.metadata.resource_version == store.resource_version
    await w.aclose()
    with pytest.raises(StopAsyncIteration):
        await anext(w)


async def test_watcher_waits_for_the_next_write(store: Store) -> None:
    w = store.watch("configmaps")
    got: list[WatchEvent] = []

    async def consume() -> None:
        async for ev in w:
            got.append(ev)
            if len(got) == 2:
                return

    task = asyncio.ensure_future(consume())
    await asyncio.sleep(0)
    store.create(configmap("a"))
    await asyncio.sleep(0)
    store.create(configmap("b"))
    await asyncio.wait_for(task, 1)
    assert [e.object.name for e in got] == ["a", "b"]


async def test_aclose_ends_a_waiting_iteration(store: Store) -> None:
    w = store.watch("configmaps")

    async def consume() -> list[WatchEvent]:
        return [ev async for ev in w]

    task = asyncio.ensure_future(consume())
    await asyncio.sleep(0)
    await w.aclose()
    assert await asyncio.wait_for(task, 1) == []


async def test_cancelling_one_watcher_does_not_disturb_others(store: Store) -> None:
    w1, w2 = store.watch("configmaps"), store.watch("configmaps")
    t1 = asyncio.ensure_future(anext(w1))
    t2 = asyncio.ensure_future(anext(w2))
    await asyncio.sleep(0)
    t1.cancel()
    store.create(configmap("a"))
    assert (await asyncio.wait_for(t2, 1)).object.name == "a"
    with pytest.raises(asyncio.CancelledError):
        await t1


async def test_cancelled_and_closed_watches_leave_nothing_behind(store: Store) -> None:
    for _ in range(20):
        w = store.watch("configmaps")
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(anext(w), 0.001)
    w = store.watch("configmaps")
    task = asyncio.ensure_future(anext(w))
    await asyncio.sleep(0)
    await w.aclose()
    with pytest.raises(StopAsyncIteration):
        await task
    assert store._tables["ConfigMap"].log.waiters == []


async def test_event_objects_are_immutable(store: Store) -> None:
    w = store.watch("pods")
    store.create(pod("a", labels={"x": "1"}))
    ev = await anext(w)
    with pytest.raises(TypeError):
        ev.object.metadata.labels["x"] = "2"  # type: ignore[index]
    with pytest.raises(AttributeError):
        ev.type = "DELETED"  # type: ignore[misc]
    assert ev.object is store.get("pod/a")


async def test_resume_from_a_resource_version(store: Store) -> None:
    store.create(pod("a"))
    rv = store.resource_version
    store.create(pod("b"))
    store.create(configmap("other-kind"))
    store.delete("pod/a")
    w = store.watch("pods", resource_version=rv)
    assert drain(w) == [("ADDED", "b"), ("DELETED", "a")]
    w = store.watch("pods", resource_version=int(store.resource_version))
    assert drain(w) == []


async def test_resume_from_too_old_a_version_is_gone(clock: object) -> None:
    store = Store(history=5)
    store.create(pod("p0"))
    first = store.resource_version
    for i in range(1, 10):
        store.create(pod(f"p{i}"))
    w = store.watch("pods", resource_version=first)
    with pytest.raises(Gone, match=rf"^too old resource version: {first} \(\d+\)$"):
        await anext(w)
    # The last `history` changes can still be resumed from.
    recent = int(store.resource_version) - 5
    assert len(drain(store.watch("pods", resource_version=recent))) == 5
    with pytest.raises(Gone):
        drain(store.watch("pods", resource_version=recent - 1))


async def test_slow_watcher_gets_gone() -> None:
    store = Store(history=10)
    slow = store.watch("configmaps")
    fast = store.watch("configmaps")
    for i in range(30):
        store.create(configmap(f"c{i}"))
        if i < 25:
            assert drain(fast)
    assert len(drain(fast)) == 5
    with pytest.raises(Gone):
        drain(slow)
    assert slow.next_nowait() is None  # closed after Gone


async def test_namespace_filter(store: Store) -> None:
    store.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "x"}})
    w = store.watch("pods", namespace="x")
    store.create(pod("a"))
    store.create(pod("b", namespace="x"))
    assert drain(w) == [("ADDED", "b")]


async def test_selector_transitions(store: Store) -> None:
    store.create(pod("a", labels={"app": "web"}))
    store.create(pod("b", labels={"app": "db"}))
    w = store.watch("pods", selector="app=web")
    assert drain(w) == [("ADDED", "a")]
    store.patch("pod/b", {"metadata": {"labels": {"app": "web"}}})
    store.patch("pod/a", {"metadata": {"labels": {"app": "db"}}})
    store.patch("pod/a", {"metadata": {"labels": {"extra": "1"}}})  # still not matching
    store.patch("pod/b", {"metadata": {"labels": {"extra": "1"}}})  # still matching
    events = []
    while (ev := w.next_nowait()) is not None:
        events.append(ev)
    assert [(e.type, e.object.name) for e in events] == [
        ("ADDED", "b"), ("DELETED", "a"), ("MODIFIED", "b")]
    deleted = events[1].object
    # As Kubernetes' watch cache: the object as it was, at the new resourceVersion.
    assert deleted.labels == {"app": "web"}
    assert int(deleted.metadata.resource_version or 0) == int(
        events[0].object.metadata.resource_version or 0) + 1


async def test_field_selector_transitions(store: Store) -> None:
    w = store.watch("pods", field_selector="spec.nodeName=n1")
    store.create(pod("a"))
    store.bind("a", "n1")
    store.create(pod("b", node="n1"))
    store.delete("pod/b", grace_period_seconds=0)
    assert drain(w) == [("ADDED", "a"), ("ADDED", "b"), ("DELETED", "b")]
    unscheduled = store.watch("pods", field_selector="spec.nodeName=")
    assert drain(unscheduled) == []
    store.create(pod("c"))
    store.bind("c", "n2")
    assert drain(unscheduled) == [("ADDED", "c"), ("DELETED", "c")]


async def test_finalizer_deletion_events(store: Store) -> None:
    w = store.watch("configmaps")
    store.create(configmap("c", finalizers=["x.io/f"]))
    store.delete("cm/c")
    store.patch("cm/c", {"metadata": {"finalizers": None}})
    assert drain(w) == [("ADDED", "c"), ("MODIFIED", "c"), ("DELETED", "c")]


async def test_no_op_update_makes_no_event(store: Store) -> None:
    p = store.create(pod("a"))
    w = store.watch("pods", resource_version=store.resource_version)
    store.update(p.to_dict())
    assert drain(w) == []


async def test_many_watchers_share_one_event_object(store: Store) -> None:
    watchers = [store.watch("pods") for _ in range(50)]
    results: list[list[WatchEvent]] = [[] for _ in watchers]

    async def consume(i: int) -> None:
        async for ev in watchers[i]:
            results[i].append(ev)
            if len(results[i]) == 20:
                return

    tasks = [asyncio.ensure_future(consume(i)) for i in range(len(watchers))]
    for i in range(20):
        store.create(pod(f"p{i}"))
        if i % 3 == 0:
            await asyncio.sleep(0)
    await asyncio.wait_for(asyncio.gather(*tasks), 5)
    first = results[0]
    assert [e.object.name for e in first] == [f"p{i}" for i in range(20)]
    for r in results[1:]:
        assert len(r) == 20 and all(a is b for a, b in zip(r, first, strict=True))


async def test_watch_kind_forms_and_bad_resource_version(store: Store) -> None:
    from orchestra._errors import Invalid
    with pytest.raises(Invalid):
        store.watch("pods", resource_version="abc")
    store.create(pod("a"))
    assert drain(store.watch("po")) == drain(store.watch("Pod")) == [("ADDED", "a")]
