"""Optimistic concurrency between tasks on one event loop."""

from __future__ import annotations

import asyncio

import pytest

from orchestra._errors import Conflict
from orchestra._store import Store

from ._helpers import configmap

pytestmark = pytest.mark.anyio


async def test_two_updates_from_the_same_read_exactly_one_wins(store: Store) -> None:
    store.create(configmap("c", {"n": "0"}))
    read = store.get("cm/c")
    outcomes: list[str] = []

    async def writer(value: str) -> None:
        await asyncio.sleep(0)
        d = read.to_dict()
        d["data"]["n"] = value
        try:
            store.update(d)
            outcomes.append(value)
        except Conflict:
            outcomes.append("conflict")

    await asyncio.gather(writer("1"), writer("2"))
    assert sorted(outcomes) == ["1", "conflict"] or sorted(outcomes) == ["2", "conflict"]
    winner = next(o for o in outcomes if o != "conflict")
    assert store.get("cm/c").to_dict()["data"]["n"] == winner


async def test_retry_on_conflict_increments_lose_no_update(store: Store) -> None:
    store.create(configmap("counter", {"n": "0"}))
    tasks, rounds = 20, 15
    conflicts = 0

    async def increment() -> None:
        nonlocal conflicts
        for _ in range(rounds):
            while True:
                d = store.get("cm/counter").to_dict()
                await asyncio.sleep(0)  # let the others interleave between read and write
                d["data"]["n"] = str(int(d["data"]["n"]) + 1)
                try:
                    store.update(d)
                    break
                except Conflict:
                    conflicts += 1

    await asyncio.gather(*(increment() for _ in range(tasks)))
    assert store.get("cm/counter").to_dict()["data"]["n"] == str(tasks * rounds)
    assert conflicts > 0  # the test did exercise the conflict path


async def test_resource_versions_strictly_increase_across_tasks(store: Store) -> None:
    seen: list[int] = []

    async def create(prefix: str) -> None:
        for i in range(20):
            seen.append(int(store.create(configmap(f"{prefix}{i}")).metadata.resource_version
                            or 0))
            await asyncio.sleep(0)

    await asyncio.gather(*(create(p) for p in "abcd"))
    assert len(set(seen)) == len(seen)
    assert seen == sorted(seen)  # commit order is resourceVersion order
    assert max(seen) == int(store.resource_version)
