"""Filter plugins: each decides, for one node, whether the pod may run there and if not why.

The default order is kube-scheduler's: cheap, unresolvable checks first, then resources,
then the checks that look at other pods. A node reports the reasons of the first filter
that rejects it, as ``RunFilterPlugins`` does.
"""

from __future__ import annotations

from collections import defaultdict
from typing import ClassVar

from orchestra.scheduler import _messages as msg
from orchestra.scheduler._cache import NodeInfo
from orchestra.scheduler._framework import SKIP, SUCCESS, Cycle, Status
from orchestra.scheduler._info import PodFacts, SpreadConstraint

UNSCHEDULABLE_TAINT = "node.kubernetes.io/unschedulable"


def tolerates(pod: PodFacts, key: str, value: str, effect: str) -> bool:
    return any(t.tolerates(key, value, effect) for t in pod.tolerations)


def node_matches_affinity(pod: PodFacts, node: NodeInfo) -> bool:
    """nodeSelector (every pair) and required node affinity (any term), as NodeAffinity."""
    labels = node.labels
    for k, v in pod.node_selector:
        if labels.get(k) != v:
            return False
    terms = pod.required_node_affinity
    if terms is not None:
        return any(term(node.name, labels) for term in terms)
    return True


class NodeUnschedulable:
    name: ClassVar[str] = "NodeUnschedulable"
    node_local: ClassVar[bool] = True

    def filter(self, cycle: Cycle, node: NodeInfo) -> Status:
        if node.unschedulable and not tolerates(cycle.pod, UNSCHEDULABLE_TAINT, "",
                                                "NoSchedule"):
            return Status.unresolvable(msg.NODE_UNSCHEDULABLE, plugin=self.name)
        return SUCCESS


class NodeName:
    name: ClassVar[str] = "NodeName"
    node_local: ClassVar[bool] = True

    def pre_filter(self, cycle: Cycle) -> Status:
        return SUCCESS if cycle.pod.node_name else SKIP

    def filter(self, cycle: Cycle, node: NodeInfo) -> Status:
        if cycle.pod.node_name and cycle.pod.node_name != node.name:
            return Status.unresolvable(msg.NODE_NAME_MISMATCH, plugin=self.name)
        return SUCCESS


class TaintToleration:
    name: ClassVar[str] = "TaintToleration"
    node_local: ClassVar[bool] = True

    def filter(self, cycle: Cycle, node: NodeInfo) -> Status:
        for taint in node.taints:
            if taint.effect in ("NoSchedule", "NoExecute") and not tolerates(
                cycle.pod, taint.key, taint.value, taint.effect
            ):
                return Status.unresolvable(
                    msg.UNTOLERATED_TAINT.format(taint.key, taint.value), plugin=self.name
                )
        return SUCCESS


class NodeAffinity:
    name: ClassVar[str] = "NodeAffinity"
    node_local: ClassVar[bool] = True

    def pre_filter(self, cycle: Cycle) -> Status:
        pod = cycle.pod
        return SUCCESS if pod.node_selector or pod.required_node_affinity is not None else SKIP

    def filter(self, cycle: Cycle, node: NodeInfo) -> Status:
        if node_matches_affinity(cycle.pod, node):
            return SUCCESS
        return Status.unresolvable(msg.NODE_AFFINITY_MISMATCH, plugin=self.name)


class NodePorts:
    name: ClassVar[str] = "NodePorts"
    node_local: ClassVar[bool] = False  # depends on the node's pods' ports

    def pre_filter(self, cycle: Cycle) -> Status:
        return SUCCESS if cycle.pod.host_ports else SKIP

    def filter(self, cycle: Cycle, node: NodeInfo) -> Status:
        used = node.ports
        if not used:
            return SUCCESS
        for ip, proto, port in cycle.pod.host_ports:
            for uip, uproto, uport in used:
                if uport == port and uproto == proto and (
                    ip == uip or "0.0.0.0" in (ip, uip)
                ):
                    return Status.unschedulable(msg.NO_FREE_PORTS, plugin=self.name)
        return SUCCESS


class NodeResourcesFit:
    """Requests against allocatable minus what the node's pods already request.

    Resources the pod does not request (0) never make a node unfit, as in Kubernetes,
    even when the node is over-committed."""

    name: ClassVar[str] = "NodeResourcesFit"
    node_local: ClassVar[bool] = True

    def filter(self, cycle: Cycle, node: NodeInfo) -> Status:
        pod = cycle.pod
        reasons = []
        if len(node.pods) + 1 > node.alloc_pods:
            reasons.append(msg.TOO_MANY_PODS)
        if pod.cpu and pod.cpu > node.alloc_cpu - node.req_cpu:
            reasons.append("Insufficient cpu")
        if pod.memory and pod.memory > node.alloc_memory - node.req_memory:
            reasons.append("Insufficient memory")
        for res, want in pod.other.items():
            if want > node.alloc_other.get(res, 0) - node.req_other.get(res, 0):
                reasons.append(msg.INSUFFICIENT.format(res))
        if reasons:
            return Status.unschedulable(*reasons, plugin=self.name)
        return SUCCESS


class PodTopologySpread:
    """``whenUnsatisfiable: DoNotSchedule`` constraints: the skew after placing the pod
    (matching pods in the node's domain + 1 if the pod matches itself - the global minimum
    over eligible domains) must not exceed ``maxSkew``."""

    name: ClassVar[str] = "PodTopologySpread"
    node_local: ClassVar[bool] = False

    def pre_filter(self, cycle: Cycle) -> Status:
        pod = cycle.pod
        hard = [c for c in pod.spread if c.hard]
        if not hard:
            return SKIP
        counts = spread_counts(cycle, hard)
        minimums = []
        for c, domains in zip(hard, counts, strict=True):
            low = min(domains.values(), default=0)
            if len(domains) < c.min_domains:
                low = 0
            minimums.append(low)
        cycle.data[self.name] = (hard, counts, minimums)
        return SUCCESS

    def filter(self, cycle: Cycle, node: NodeInfo) -> Status:
        hard, counts, minimums = cycle.data[self.name]
        pod = cycle.pod
        labels = node.labels
        for c, domains, low in zip(hard, counts, minimums, strict=True):
            value = labels.get(c.topology_key)
            if value is None:
                return Status.unresolvable(msg.SPREAD_MISSING_LABEL, plugin=self.name)
            self_match = 1 if c.matches_labels(pod.labels) else 0
            if domains.get(value, 0) + self_match - low > c.max_skew:
                return Status.unschedulable(msg.SPREAD_MISMATCH, plugin=self.name)
        return SUCCESS


def spread_counts(cycle: Cycle, cs: list[SpreadConstraint]) -> list[dict[str, int]]:
    """Per constraint, matching pods per topology domain over the eligible nodes: nodes
    that carry every constraint's topology key and (per policy) pass the pod's node
    affinity and tolerate its NoSchedule taints."""
    pod = cycle.pod
    keys = [c.topology_key for c in cs]
    counts: list[dict[str, int]] = [defaultdict(int) for _ in cs]
    for node in cycle.cache.nodes.values():
        labels = node.labels
        if any(k not in labels for k in keys):
            continue
        for c, domains in zip(cs, counts, strict=True):
            if c.honor_affinity and not node_matches_affinity(pod, node):
                continue
            if c.honor_taints and any(
                t.effect == "NoSchedule" and not tolerates(pod, t.key, t.value, t.effect)
                for t in node.taints
            ):
                continue
            n = 0
            for other in node.pods.values():
                if other.namespace == pod.namespace and c.matches_labels(other.labels):
                    n += 1
            domains[labels[c.topology_key]] += n
    return [dict(d) for d in counts]


class InterPodAffinity:
    """Required pod affinity and anti-affinity, both the pod's own terms and existing pods'
    anti-affinity terms that the pod would violate (the symmetric check)."""

    name: ClassVar[str] = "InterPodAffinity"
    node_local: ClassVar[bool] = False

    def pre_filter(self, cycle: Cycle) -> Status:
        pod = cycle.pod
        cache = cycle.cache
        if not pod.affinity and not pod.anti_affinity and not cache.anti_affinity_pod_count:
            return SKIP
        existing: set[tuple[str, str]] = set()
        affinity: dict[tuple[str, str], int] = defaultdict(int)
        anti: dict[tuple[str, str], int] = defaultdict(int)
        for node in cache.nodes.values():
            labels = node.labels
            for other in node.anti_affinity_pods.values():
                for term in other.anti_affinity:
                    value = labels.get(term.topology_key)
                    if value is not None and term.matches(pod):
                        existing.add((term.topology_key, value))
            if not (pod.affinity or pod.anti_affinity) or not node.pods:
                continue
            for other in node.pods.values():
                if pod.affinity and all(t.matches(other) for t in pod.affinity):
                    for t in pod.affinity:
                        value = labels.get(t.topology_key)
                        if value is not None:
                            affinity[(t.topology_key, value)] += 1
                for t in pod.anti_affinity:
                    if t.matches(other):
                        value = labels.get(t.topology_key)
                        if value is not None:
                            anti[(t.topology_key, value)] += 1
        # The first pod of a group whose terms select the group itself may go anywhere.
        first_of_group = not affinity and all(t.matches(pod) for t in pod.affinity)
        cycle.data[self.name] = (existing, dict(affinity), dict(anti), first_of_group)
        return SUCCESS

    def filter(self, cycle: Cycle, node: NodeInfo) -> Status:
        existing, affinity, anti, first_of_group = cycle.data[self.name]
        pod = cycle.pod
        labels = node.labels
        if pod.affinity and not first_of_group:
            for t in pod.affinity:
                value = labels.get(t.topology_key)
                if value is None or not affinity.get((t.topology_key, value)):
                    return Status.unresolvable(msg.POD_AFFINITY_MISMATCH, plugin=self.name)
        for t in pod.anti_affinity:
            value = labels.get(t.topology_key)
            if value is not None and anti.get((t.topology_key, value)):
                return Status.unschedulable(msg.POD_ANTI_AFFINITY_MISMATCH, plugin=self.name)
        if existing:
            for key, value in labels.items():
                if (key, value) in existing:
                    return Status.unschedulable(msg.EXISTING_ANTI_AFFINITY, plugin=self.name)
        return SUCCESS
