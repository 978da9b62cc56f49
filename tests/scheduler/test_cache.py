"""The node cache: accounting stays exact through any sequence of changes; assume/forget."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orchestra.scheduler import Scheduler, Unschedulable, num_feasible_nodes_to_find
from orchestra.scheduler._info import PodFacts

from ._build import node, pod

NODES = [f"n{i}" for i in range(4)]
SHAPES = [("100m", "128Mi"), ("1", "1Gi"), (None, None), ("250m", None)]


def check(s: Scheduler) -> None:
    cache = s.cache
    for info in cache.order:
        pods = list(info.pods.values())
        assert info.req_cpu == sum(p.cpu for p in pods)
        assert info.req_memory == sum(p.memory for p in pods)
        assert info.nz_cpu == sum(p.nz_cpu for p in pods)
        assert info.nz_memory == sum(p.nz_memory for p in pods)
        for uid in info.pods:
            assert cache.pods[uid][1] == info.name
        assert info.key == cache._keys[info._state()]
    assert sorted(cache.free_cpu) == sorted((n.alloc_cpu - n.req_cpu, n.name)
                                            for n in cache.order)
    assert sorted(cache.free_memory) == sorted((n.alloc_memory - n.req_memory, n.name)
                                               for n in cache.order)
    assert len(cache.order) == len(cache.nodes)
    assert {n.name for n in cache.order} == set(cache.nodes)
    counted = sum(len(n.pods) for n in cache.order) + sum(
        len(o) for o in cache._orphans.values())
    assert counted == len(cache.pods)


ops = st.lists(st.tuples(
    st.sampled_from(["add_node", "remove_node", "add_pod", "remove_pod", "schedule",
                     "forget", "cordon"]),
    st.sampled_from(NODES),
    st.integers(0, 7),
    st.sampled_from(SHAPES),
), max_size=40)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops)
def test_accounting_matches_recomputed_totals(steps: list[tuple[str, str, int, Any]]) -> None:
    s = Scheduler(seed=0)
    pods: dict[int, Any] = {}
    for op, node_name, i, (cpu, mem) in steps:
        if op == "add_node":
            s.add_node(node(node_name, cpu="2", memory="4Gi"))
        elif op == "cordon":
            s.update_node(node(node_name, cpu="2", memory="4Gi", unschedulable=True))
        elif op == "remove_node":
            s.remove_node(node_name)
        elif op == "add_pod":
            if i in pods:
                s.remove_pod(pods.pop(i))
            p = pods[i] = pod(f"p{i}", cpu=cpu, memory=mem, node_name=node_name)
            s.add_pod(p)
        elif op == "remove_pod" and i in pods:
            s.remove_pod(pods.pop(i))
        elif op == "schedule" and i not in pods:
            p = pod(f"p{i}", cpu=cpu, memory=mem)
            try:
                s.schedule(p)
            except Unschedulable:
                pass
            else:
                pods[i] = p
        elif op == "forget" and i in pods:
            s.forget(pods[i])
            if not s.cache.node_of(pods[i].metadata.uid):
                pods.pop(i)
        check(s)


def test_assume_forget_confirm() -> None:
    s = Scheduler()
    s.add_node(node("a", cpu="1"))
    p = pod("p", cpu="1")
    assert s.schedule(p) == "a"
    assert s.is_assumed(p)
    with pytest.raises(Unschedulable):  # the assumed pod holds the cpu
        s.schedule(pod("q", cpu="1"))
    s.forget(p)
    assert s.cache.nodes["a"].req_cpu == 0
    assert s.schedule(p) == "a"
    bound = p.model_copy(update={"spec": p.spec.model_copy(update={"node_name": "a"})})
    s.add_pod(bound)  # the informer delivers the binding: no longer assumed, still counted
    assert not s.is_assumed(p)
    assert s.cache.nodes["a"].req_cpu == 1000
    s.forget(p)  # forgetting a confirmed pod does nothing
    assert s.cache.nodes["a"].req_cpu == 1000


def test_terminal_pods_release_their_resources() -> None:
    s = Scheduler()
    s.add_node(node("a", cpu="1"))
    p = pod("p", cpu="1", node_name="a")
    s.add_pod(p)
    body = p.to_dict()
    body["status"] = {"phase": "Succeeded"}
    done = type(p).model_validate(body)
    s.update_pod(p, done)
    assert s.cache.nodes["a"].req_cpu == 0


def test_pods_of_a_node_not_yet_known_are_counted_when_it_arrives() -> None:
    s = Scheduler()
    s.add_pod(pod("early", cpu="1", node_name="later"))
    s.add_node(node("later", cpu="1"))
    assert s.cache.nodes["later"].req_cpu == 1000
    with pytest.raises(Unschedulable):
        s.schedule(pod("p", cpu="1"))


@pytest.mark.parametrize("nodes,percentage,expected", [
    (50, None, 50), (100, None, 100), (1000, None, 420), (5000, None, 500),
    (6000, None, 300), (5000, 5, 250), (5000, 100, 5000), (200, 10, 100),
])
def test_num_feasible_nodes_to_find(nodes: int, percentage: int | None, expected: int) -> None:
    assert num_feasible_nodes_to_find(nodes, percentage) == expected


@pytest.mark.parametrize("strategy", ["LeastAllocated", "MostAllocated", "BalancedAllocation"])
def test_sampling_still_finds_the_only_fitting_node(strategy: str) -> None:
    s = Scheduler(strategy=strategy, percentage_of_nodes_to_score=5, seed=0)  # type: ignore[arg-type]
    for i in range(400):
        s.add_node(node(f"n{i:03}", cpu="1"))
    s.add_node(node("big", cpu="8"))
    s.add_node(node("tainted-big", cpu="8",
                    taints=[{"key": "k", "value": "v", "effect": "NoSchedule"}]))
    assert s.schedule(pod("p", cpu="4")) == "big"
    assert s.last is not None and s.last.feasible_nodes == 1
    # and through the round-robin path (a pod without requests), every node is a candidate
    for i in range(5):
        s.schedule(pod(f"free{i}"))
    assert s.last.evaluated_nodes >= 100


def test_facts_are_read_from_the_model_once() -> None:
    p = pod("p", cpu="250m", memory="64Mi")
    f = PodFacts.of(p)
    assert (f.cpu, f.memory, f.namespace, f.name) == (250, 64 * 1024**2, "default", "p")
