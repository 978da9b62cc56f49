"""Why a pod is Pending: kube-scheduler's FitError text, counted per node."""

from __future__ import annotations

import pytest

from orchestra.scheduler import Scheduler, Unschedulable, fit_error

from ._build import node, pod

GPU_TAINT = {"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}


def unschedulable(s: Scheduler, p: object) -> Unschedulable:
    with pytest.raises(Unschedulable) as info:
        s.schedule(p)
    return info.value


def test_the_issue_example_three_short_of_cpu_two_tainted() -> None:
    s = Scheduler(seed=0)
    for i in range(3):
        s.add_node(node(f"small-{i}", cpu="1"))
    for i in range(2):
        s.add_node(node(f"gpu-{i}", cpu="16", taints=[GPU_TAINT]))
    err = unschedulable(s, pod("web", cpu="2"))
    # FitError sorts the "<count> <reason>" strings, so the count leads the order.
    assert err.message == (
        "0/5 nodes are available: 2 node(s) had untolerated taint {dedicated: gpu}, "
        "3 Insufficient cpu."
    )
    assert str(err) == err.message
    assert err.reasons == {"Insufficient cpu": 3,
                           "node(s) had untolerated taint {dedicated: gpu}": 2}
    assert err.num_nodes == 5


def test_no_nodes() -> None:
    err = unschedulable(Scheduler(), pod("p", cpu="1"))
    assert err.message == "no nodes available to schedule pods"
    assert err.reasons == {}


def test_every_insufficient_resource_of_a_node_is_counted() -> None:
    s = Scheduler()
    s.add_node(node("a", cpu="1", memory="1Gi"))
    s.add_node(node("b", cpu="8", memory="1Gi"))
    err = unschedulable(s, pod("p", cpu="2", memory="2Gi"))
    assert err.message == "0/2 nodes are available: 1 Insufficient cpu, 2 Insufficient memory."


def test_too_many_pods_and_cordoned() -> None:
    s = Scheduler()
    s.add_node(node("full", pods="1"))
    s.add_node(node("cordoned", unschedulable=True))
    s.add_pod(pod("there", node_name="full"))
    err = unschedulable(s, pod("p"))
    assert err.message == (
        "0/2 nodes are available: 1 Too many pods, 1 node(s) were unschedulable."
    )


def test_affinity_and_selector_reasons() -> None:
    s = Scheduler()
    s.add_node(node("a", labels={"disk": "hdd"}))
    err = unschedulable(s, pod("p", nodeSelector={"disk": "ssd"}))
    assert err.message == (
        "0/1 nodes are available: 1 node(s) didn't match Pod's node affinity/selector."
    )


def test_fit_error_sorts_as_strings() -> None:
    assert fit_error(12, {"Insufficient cpu": 10, "node(s) were unschedulable": 2}) == (
        "0/12 nodes are available: 10 Insufficient cpu, 2 node(s) were unschedulable."
    )
    assert fit_error(0, {}) == "no nodes available to schedule pods"


def test_a_pod_that_fits_after_a_node_is_added() -> None:
    s = Scheduler()
    s.add_node(node("small", cpu="1"))
    unschedulable(s, pod("p", cpu="2"))
    s.add_node(node("big", cpu="4"))
    assert s.schedule(pod("p", cpu="2")) == "big"
