"""The Cluster's node methods: adding, cordoning, draining, failing and removing nodes,
and the Eviction API."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

from orchestra._cluster._state import ClusterState
from orchestra._drain import drain_node
from orchestra._errors import OrchestraError, hide_from_tracebacks
from orchestra._eviction import evict
from orchestra.objects._base import KubeObject

__tracebackhide__ = hide_from_tracebacks  # see orchestra._errors

if TYPE_CHECKING:
    from orchestra.objects import Pod


@dataclass(frozen=True)
class NodeSpec:
    """A node to add: its name, capacity, labels and taints (Kubernetes taint dicts)."""

    name: str
    cpu: str = "4"
    memory: str = "8Gi"
    pods: int = 110
    labels: Mapping[str, str] = field(default_factory=dict)
    taints: Sequence[Mapping[str, Any]] = ()


class NodeMethods(ClusterState):
    """Part of :class:`~orchestra.Cluster`: its nodes."""

    # -- nodes --------------------------------------------------------------------------

    async def add_node(self, spec: NodeSpec | str) -> Any:
        if isinstance(spec, str):
            spec = NodeSpec(spec)
        if self.nodes is None:
            raise OrchestraError("the cluster is not started")
        node = self.nodes.add(spec.name, cpu=spec.cpu, memory=spec.memory, pods=spec.pods,
                              labels=dict(spec.labels), taints=[dict(t) for t in spec.taints])
        self._attach_metrics()
        return node

    async def cordon(self, name: str) -> Any:
        return self.store.patch("Node", {"spec": {"unschedulable": True}}, name=name,
                                namespace="")

    async def uncordon(self, name: str) -> Any:
        return self.store.patch("Node", {"spec": {"unschedulable": None}}, name=name,
                                namespace="")

    async def drain(self, name: str, *, timeout: float = 60.0,  # noqa: ASYNC109 - API.md
                    delete_emptydir_data: bool = True) -> None:
        """Cordon, then evict every pod but DaemonSet pods, honouring
        PodDisruptionBudgets (an eviction that would break one is retried, as
        ``kubectl drain`` does, until ``timeout``)."""
        await self.cordon(name)
        await drain_node(self.store, self.clock, name, timeout=timeout)

    async def evict(self, pod: Any, *, namespace: str = "default") -> None:
        """The Eviction API: delete ``pod`` (an object, a name or ``"pod/NAME"``) if its
        PodDisruptionBudget allows it; else raise :class:`~orchestra.TooManyRequests`."""
        if isinstance(pod, KubeObject):
            namespace = pod.metadata.namespace or namespace
            pod = pod.metadata.name
        ref = pod if "/" in str(pod) else f"pod/{pod}"
        evict(self.store, self.clock, cast("Pod", self.store.get(ref, namespace=namespace)))

    async def fail_node(self, name: str) -> None:
        if self.nodes is None:
            raise OrchestraError("the cluster is not started")
        await self.nodes.fail(name)

    async def remove_node(self, name: str) -> None:
        """Remove a node for good (a machine taken away): its kubelet stops, its
        containers die, and its Node and Lease are deleted. Its pods stay bound to it
        until the pod garbage collector marks them Failed and force-deletes them, once
        the node has been gone for 40 s; their controllers then replace them."""
        if self.nodes is None:
            raise OrchestraError("the cluster is not started")
        await self.nodes.remove(name)
