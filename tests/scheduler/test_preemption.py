"""DefaultPreemption on the scheduler alone: which node is freed and which pods go."""

from __future__ import annotations

from typing import Any

import pytest

from orchestra.objects._selector import Selector
from orchestra.scheduler import Budget, NoPreemption, Scheduler, Unschedulable

from ._build import node, pod


def running(name: str, node_name: str, priority: int, cpu: str = "1",
            start: str = "2026-01-01T00:00:00Z", **kw: Any) -> Any:
    from orchestra.objects import PodStatus

    p = pod(name, cpu=cpu, node_name=node_name, priority=priority, **kw)
    return p.model_copy(update={"status": PodStatus(phase="Running", start_time=start)})


def scheduler(nodes: list[Any], pods: list[Any]) -> Scheduler:
    s = Scheduler(percentage_of_nodes_to_score=100, seed=1)
    for n in nodes:
        s.add_node(n)
    for p in pods:
        s.add_pod(p)
    return s


def cache_state(s: Scheduler) -> dict[str, tuple[int, list[str]]]:
    return {n.name: (n.req_cpu, sorted(n.pods)) for n in s.cache.order}


def test_only_lower_priority_pods_are_victims_and_the_fewest_needed() -> None:
    s = scheduler([node("a", cpu="3")], [running("p1", "a", 1), running("p2", "a", 2),
                                         running("p3", "a", 100)])
    high = pod("high", cpu="1", priority=50)
    with pytest.raises(Unschedulable):
        s.schedule(high)
    before = cache_state(s)
    chosen = s.preempt(high, [])
    assert chosen.node == "a"
    # one pod must go: the least important of the lower-priority ones
    assert [v.name for v in chosen.victims] == ["p1"]
    assert cache_state(s) == before  # the victims were only simulated away


def test_picks_the_node_with_the_lowest_priority_victims() -> None:
    s = scheduler([node("a", cpu="1"), node("b", cpu="1"), node("c", cpu="1")],
                  [running("pa", "a", 10), running("pb", "b", 5), running("pc", "c", 7)])
    chosen = s.preempt(pod("high", cpu="1", priority=100), [])
    assert (chosen.node, [v.name for v in chosen.victims]) == ("b", ["pb"])


def test_fewest_budget_violations_wins_over_lower_priority() -> None:
    s = scheduler([node("a", cpu="1"), node("b", cpu="1")],
                  [running("pa", "a", 1, labels={"app": "db"}),
                   running("pb", "b", 50, labels={"app": "web"})])
    budgets = [Budget("default", Selector.parse("app=db"), 0)]
    chosen = s.preempt(pod("high", cpu="1", priority=100), budgets)
    assert chosen.node == "b" and chosen.violations == 0
    # once the budget allows a disruption, the lower-priority victim is preferred again
    chosen = s.preempt(pod("high", cpu="1", priority=100),
                       [Budget("default", Selector.parse("app=db"), 1)])
    assert chosen.node == "a"


def test_fewer_victims_then_latest_start() -> None:
    s = scheduler([node("a", cpu="2"), node("b", cpu="2"), node("c", cpu="2")],
                  [running("a1", "a", 1), running("a2", "a", 1),
                   running("b1", "b", 1, cpu="2", start="2026-01-01T00:00:00Z"),
                   running("c1", "c", 1, cpu="2", start="2026-01-02T00:00:00Z")])
    chosen = s.preempt(pod("high", cpu="2", priority=100), [])
    # a needs two victims (sum of priorities higher); b and c one each: c started later
    assert (chosen.node, [v.name for v in chosen.victims]) == ("c", ["c1"])


def test_no_preemption_messages() -> None:
    s = scheduler([node("a", cpu="1"), node("b", cpu="1", unschedulable=True)],
                  [running("pa", "a", 100)])
    with pytest.raises(NoPreemption) as err:
        s.preempt(pod("same", cpu="1", priority=100), [])
    assert err.value.message == (
        "preemption: 0/2 nodes are available: 1 No preemption victims found for incoming "
        "pod., 1 Preemption is not helpful for scheduling..")
    with pytest.raises(NoPreemption) as err:
        s.preempt(pod("never", cpu="1", priority=1000, preemptionPolicy="Never"), [])
    assert err.value.message == "not eligible due to preemptionPolicy=Never."
    with pytest.raises(NoPreemption):
        s.preempt(pod("huge", cpu="2", priority=1000), [])


def test_a_nominated_pod_keeps_its_room_from_lower_priority_pods() -> None:
    s = scheduler([node("a", cpu="1")], [])
    high = pod("high", cpu="1", priority=100)
    s.nominate(high, "a")
    with pytest.raises(Unschedulable):
        s.schedule(pod("low", cpu="1", priority=1))
    assert s.schedule(pod("higher", cpu="1", priority=200)) == "a"
    s2 = scheduler([node("a", cpu="1")], [])
    s2.nominate(high, "a")
    s2.unnominate(high.metadata.uid or "")
    assert s2.schedule(pod("low", cpu="1", priority=1)) == "a"


def test_a_preemption_displaces_lower_priority_nominations_on_its_node() -> None:
    s = scheduler([node("a", cpu="1"), node("b", cpu="1")], [])
    low, mid, other = (pod("low", cpu="1", priority=1), pod("mid", cpu="1", priority=50),
                       pod("other", cpu="1", priority=1))
    s.nominate(low, "a")
    s.nominate(mid, "a")
    s.nominate(other, "b")
    gone = s.displace_nominated("a", 50)
    assert [p.name for p in gone] == ["low"]
    assert {f.name for f, _ in s.nominated.values()} == {"mid", "other"}
