"""The bridge network's policy table changes only what differs (per-pod chains, not a
rebuild), and the rules per pod follow the policies."""

from __future__ import annotations

from orchestra.net._bridge_policy import PolicyTable
from orchestra.net.policy import NamespaceInfo, PodInfo, PolicySet, compile_policy, pod_rules
from orchestra.objects import NetworkPolicy

A = PodInfo("x", "a", {"pod": "a"}, ("10.88.0.2",), {("serve-80", "TCP"): 80})
B = PodInfo("x", "b", {"pod": "b"}, ("10.88.0.3",))
C = PodInfo("y", "c", {"pod": "c"}, ("10.88.0.4",))
NS = [NamespaceInfo("x", {"kubernetes.io/metadata.name": "x"}),
      NamespaceInfo("y", {"kubernetes.io/metadata.name": "y"})]


def policies(*specs: dict[str, object]) -> PolicySet:
    return PolicySet([compile_policy(NetworkPolicy.model_validate(
        {"metadata": {"name": f"p{i}", "namespace": "x"}, "spec": s}))
        for i, s in enumerate(specs)], NS)


def test_rules_per_pod() -> None:
    rules = pod_rules(policies({"podSelector": {"matchLabels": {"pod": "a"}},
                                "ingress": [{"from": [{"podSelector": {}}],
                                             "ports": [{"port": "serve-80"}]}]}),
                      [A, B, C])
    assert rules == {"10.88.0.2": (("ip saddr 10.88.0.2 meta l4proto tcp th dport 80 return",
                                    "ip saddr 10.88.0.3 meta l4proto tcp th dport 80 return"),
                                   None)}
    deny_egress = pod_rules(policies({"podSelector": {}, "policyTypes": ["Egress"]}), [A, B, C])
    assert deny_egress == {"10.88.0.2": (None, ()), "10.88.0.3": (None, ())}


def test_only_changed_pods_are_touched() -> None:
    table = PolicyTable("t", "br0")
    first = {"10.88.0.2": (("ip saddr 10.88.0.3 return",), None),
             "10.88.0.3": (None, ())}
    script = table.script(first)
    assert script is not None and "delete table ip t" in script
    table.applied(first)
    assert table.script(first) is None  # nothing changed: no transaction at all
    second = {**first, "10.88.0.2": (("ip saddr 10.88.0.4 return",), None)}
    script = table.script(second)
    assert script == ("flush chain ip t ingress-10-88-0-2\n"
                      "add rule ip t ingress-10-88-0-2 ip saddr 10.88.0.4 return\n"
                      "add rule ip t ingress-10-88-0-2 drop\n")
    table.applied(second)
    script = table.script({"10.88.0.2": second["10.88.0.2"]})
    assert script == ("delete element ip t egress { 10.88.0.3 }\n"
                      "flush chain ip t egress-10-88-0-3\n"
                      "delete chain ip t egress-10-88-0-3\n")
