"""The scheduler's view of the cluster: every node's allocatable and requested resources.

Invariants (checked by the property tests against totals recomputed from scratch):

- ``node.req_*`` and ``node.nz_*`` are the sums over ``node.pods`` of the pods' requests
  (fit) and non-zero requests (scoring); ``len(node.pods)`` counts toward ``pods``.
- ``free_cpu`` and ``free_memory`` hold exactly one ``(allocatable - requested, name)``
  entry per node, so "which nodes have at least X free" is a bisection, not a scan.
- ``node.key`` identifies everything that node-local plugins read except the node's name
  and labels (taints, unschedulable, allocatable, requested, pod count); ``label_id``
  identifies its labels. Two nodes with equal keys (and label ids, for a pod whose
  plugins read labels) get equal node-local filter and score results for a given pod,
  which is what lets one scheduling cycle evaluate each distinct node state once.
- A pod is known under exactly one node; a pod whose node is not (yet, or any more) known
  waits in ``_orphans`` and is counted once its node is added. Every operation is O(log n)
  in the number of nodes, plus the pod's own terms.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from sortedcontainers import SortedList

from orchestra.scheduler._info import EMPTY_LABELS, Labels, PodFacts, Taint, amount


class NodeInfo:
    """One node and the pods on it (bound or assumed)."""

    __slots__ = (
        "affinity_pods",
        "alloc_cpu",
        "alloc_memory",
        "alloc_other",
        "alloc_pods",
        "anti_affinity_pods",
        "key",
        "label_id",
        "labels",
        "name",
        "nz_cpu",
        "nz_memory",
        "pods",
        "ports",
        "req_cpu",
        "req_memory",
        "req_other",
        "static_id",
        "taints",
        "unschedulable",
    )

    def __init__(self, name: str) -> None:
        self.name = name
        self.labels: Labels = EMPTY_LABELS
        self.taints: tuple[Taint, ...] = ()
        self.unschedulable = False
        self.alloc_cpu = self.alloc_memory = self.alloc_pods = 0
        self.alloc_other: dict[str, int] = {}
        self.static_id = -1
        self.label_id = -1
        self.req_cpu = self.req_memory = self.nz_cpu = self.nz_memory = 0
        self.req_other: dict[str, int] = {}
        self.pods: dict[str, PodFacts] = {}
        # Pods with pod (anti-)affinity terms: the symmetric checks only look at these.
        self.affinity_pods: dict[str, PodFacts] = {}
        self.anti_affinity_pods: dict[str, PodFacts] = {}
        self.ports: dict[tuple[str, str, int], int] = {}
        self.key = -1

    @property
    def free_cpu(self) -> int:
        return self.alloc_cpu - self.req_cpu

    @property
    def free_memory(self) -> int:
        return self.alloc_memory - self.req_memory

    def _state(self) -> tuple[Any, ...]:
        other = tuple(sorted(self.req_other.items())) if self.req_other else ()
        return (self.static_id, self.req_cpu, self.req_memory, len(self.pods),
                self.nz_cpu, self.nz_memory, other)

    def _account(self, pod: PodFacts, sign: int) -> None:
        self.req_cpu += sign * pod.cpu
        self.req_memory += sign * pod.memory
        self.nz_cpu += sign * pod.nz_cpu
        self.nz_memory += sign * pod.nz_memory
        for k, v in pod.other.items():
            left = self.req_other.get(k, 0) + sign * v
            if left:
                self.req_other[k] = left
            else:
                self.req_other.pop(k, None)
        for port in pod.host_ports:
            left = self.ports.get(port, 0) + sign
            if left:
                self.ports[port] = left
            else:
                self.ports.pop(port, None)

    def __repr__(self) -> str:
        return (f"<NodeInfo {self.name} cpu {self.req_cpu}/{self.alloc_cpu}m "
                f"mem {self.req_memory}/{self.alloc_memory} pods {len(self.pods)}>")


class Cache:
    """Node infos plus the sorted free-resource indexes. Not thread-safe: one event loop."""

    def __init__(self) -> None:
        self.nodes: dict[str, NodeInfo] = {}
        self.order: list[NodeInfo] = []  # round-robin order of evaluation
        self._position: dict[str, int] = {}
        self.free_cpu: SortedList = SortedList()
        self.free_memory: SortedList = SortedList()
        self.pods: dict[str, tuple[PodFacts, str]] = {}  # uid -> (facts, node name)
        self.assumed: set[str] = set()
        self._orphans: dict[str, dict[str, PodFacts]] = {}
        self._statics: dict[tuple[Any, ...], int] = {}
        self._keys: dict[tuple[Any, ...], int] = {}
        self._label_sets: dict[tuple[tuple[str, str], ...], int] = {}
        self.affinity_pod_count = 0  # pods anywhere with any pod (anti-)affinity term
        self.anti_affinity_pod_count = 0  # pods anywhere with required anti-affinity
        self.prefer_no_schedule: set[str] = set()  # nodes with PreferNoSchedule taints

    # -- nodes ---------------------------------------------------------------

    def set_node(self, node: Any) -> None:
        """Add or update a node from its model (add_node and update_node are both this)."""
        name = node.metadata.name
        info = self.nodes.get(name)
        if info is None:
            info = NodeInfo(name)
            self.nodes[name] = info
            self._position[name] = len(self.order)
            self.order.append(info)
        else:
            self._unindex(info)
        spec = node.spec
        status = node.status
        info.labels = node.metadata.labels or EMPTY_LABELS
        info.unschedulable = bool(spec is not None and spec.unschedulable)
        info.taints = () if spec is None else tuple(
            Taint(t.key, t.value or "", t.effect) for t in spec.taints or ()
        )
        if any(t.effect == "PreferNoSchedule" for t in info.taints):
            self.prefer_no_schedule.add(name)
        else:
            self.prefer_no_schedule.discard(name)
        alloc_map = {}
        if status is not None:
            alloc_map = dict(status.allocatable or status.capacity or {})
        alloc = {k: amount(k, v) for k, v in alloc_map.items()}
        info.alloc_cpu = alloc.pop("cpu", 0)
        info.alloc_memory = alloc.pop("memory", 0)
        info.alloc_pods = alloc.pop("pods", 0)
        info.alloc_other = alloc
        static = (info.taints, info.unschedulable, info.alloc_cpu, info.alloc_memory,
                  info.alloc_pods, tuple(sorted(alloc.items())))
        info.static_id = self._statics.setdefault(static, len(self._statics))
        labels = tuple(sorted(info.labels.items()))
        info.label_id = self._label_sets.setdefault(labels, len(self._label_sets))
        for pod in self._orphans.pop(name, {}).values():
            self._place(info, pod)
        self._rekey(info)
        self._index(info)

    def remove_node(self, name: str) -> None:
        info = self.nodes.pop(name, None)
        if info is None:
            return
        self._unindex(info)
        self.prefer_no_schedule.discard(name)
        pos = self._position.pop(name)
        last = self.order.pop()
        if last is not info:
            self.order[pos] = last
            self._position[last.name] = pos
        if info.pods:  # the pods' deletions will follow; keep them until then
            self._orphans[name] = dict(info.pods)

    def _rekey(self, info: NodeInfo) -> None:
        """Give ``info`` the small int naming its state; equal states share the int."""
        keys = self._keys
        if len(keys) > 4 * len(self.nodes) + 1024:  # forget states no node is in any more
            keys.clear()
            for other in self.nodes.values():
                other.key = keys.setdefault(other._state(), len(keys))
        info.key = keys.setdefault(info._state(), len(keys))

    def _index(self, info: NodeInfo) -> None:
        self.free_cpu.add((info.alloc_cpu - info.req_cpu, info.name))
        self.free_memory.add((info.alloc_memory - info.req_memory, info.name))

    def _unindex(self, info: NodeInfo) -> None:
        self.free_cpu.remove((info.alloc_cpu - info.req_cpu, info.name))
        self.free_memory.remove((info.alloc_memory - info.req_memory, info.name))

    # -- pods ----------------------------------------------------------------

    def add_pod(self, pod: PodFacts, node_name: str, *, assumed: bool = False) -> None:
        """Count ``pod`` on ``node_name``; re-adding a known uid replaces it (confirms it)."""
        if pod.uid in self.pods:
            self.remove_pod(pod.uid)
        self.pods[pod.uid] = (pod, node_name)
        if assumed:
            self.assumed.add(pod.uid)
        if pod.has_pod_affinity:
            self.affinity_pod_count += 1
        if pod.anti_affinity:
            self.anti_affinity_pod_count += 1
        info = self.nodes.get(node_name)
        if info is None:
            self._orphans.setdefault(node_name, {})[pod.uid] = pod
            return
        self._unindex(info)
        self._place(info, pod)
        self._rekey(info)
        self._index(info)

    def _place(self, info: NodeInfo, pod: PodFacts) -> None:
        info.pods[pod.uid] = pod
        if pod.has_pod_affinity:
            info.affinity_pods[pod.uid] = pod
        if pod.anti_affinity:
            info.anti_affinity_pods[pod.uid] = pod
        info._account(pod, 1)

    def remove_pod(self, uid: str) -> PodFacts | None:
        entry = self.pods.pop(uid, None)
        if entry is None:
            return None
        pod, node_name = entry
        self.assumed.discard(uid)
        if pod.has_pod_affinity:
            self.affinity_pod_count -= 1
        if pod.anti_affinity:
            self.anti_affinity_pod_count -= 1
        info = self.nodes.get(node_name)
        if info is None:
            orphans = self._orphans.get(node_name, {})
            orphans.pop(uid, None)
            if not orphans:
                self._orphans.pop(node_name, None)
            return pod
        self._unindex(info)
        del info.pods[uid]
        info.affinity_pods.pop(uid, None)
        info.anti_affinity_pods.pop(uid, None)
        info._account(pod, -1)
        self._rekey(info)
        self._index(info)
        return pod

    def node_of(self, uid: str) -> str | None:
        entry = self.pods.get(uid)
        return entry[1] if entry else None

    # -- candidates ----------------------------------------------------------

    def fitting_count(self, cpu: int, memory: int) -> tuple[int, int]:
        """How many nodes have at least ``cpu`` millicores / ``memory`` bytes free."""
        n = len(self.free_cpu)
        return (n - self.free_cpu.bisect_left((cpu, "")),
                n - self.free_memory.bisect_left((memory, "")))

    def fitting(self, resource: str, at_least: int, *, tightest_first: bool) -> Iterator[NodeInfo]:
        """Nodes with at least ``at_least`` of ``resource`` free, by free amount."""
        index = self.free_cpu if resource == "cpu" else self.free_memory
        nodes = self.nodes
        for _, name in index.irange((at_least, ""), None, reverse=not tightest_first):
            yield nodes[name]
