"""Nodes: registration, the kubelets' heartbeats, and the node lifecycle controller.

``NodeManager`` owns the node agents of the cluster: it registers each Node (capacity,
allocatable, conditions, node info) with its Lease in ``kube-node-lease``, routes pod
changes and container events to the right agent, and renews every live node's Lease
each ``lease_interval``. The lifecycle controller, a separate loop that sees only the
store, marks a node whose Lease is older than ``grace_period`` NotReady (Ready=Unknown,
``NodeStatusUnknown``), taints it ``node.kubernetes.io/unreachable`` (NoSchedule and
NoExecute), and evicts its pods (the ``DisruptionTarget`` condition
``DeletionByTaintManager`` first) once their toleration of that taint runs out (300 s
by default, added to every pod at admission as Kubernetes' DefaultTolerationSeconds
does). Cordoned nodes get the ``node.kubernetes.io/unschedulable`` taint.
"""

from __future__ import annotations

import logging
import os
import platform
import uuid
from typing import TYPE_CHECKING, Any, cast

import anyio

from orchestra._errors import AlreadyExists, Conflict, NotFound
from orchestra.loops._context import Context, Runnable
from orchestra.loops._engine import Controller, Result, key_of
from orchestra.loops._kubelet import NodeAgent
from orchestra.loops._poddns import PodDns
from orchestra.loops._podutil import mark_disruption_target
from orchestra.objects._scalars import format_time, parse_time
from orchestra.runtime import ContainerEvent, Runtime

if TYPE_CHECKING:
    from orchestra.objects import Lease, Node, Pod
    from orchestra.objects._base import KubeObject

log = logging.getLogger("orchestra.nodes")

UNREACHABLE = "node.kubernetes.io/unreachable"
NOT_READY = "node.kubernetes.io/not-ready"
UNSCHEDULABLE = "node.kubernetes.io/unschedulable"
KUBELET_VERSION = "v1.31.0-orchestra"


def node_object(name: str, *, cpu: str, memory: str, pods: int, labels: dict[str, str],
                taints: list[dict[str, Any]], runtime: str, now: str, ip: str) -> dict[str, Any]:
    capacity = {"cpu": cpu, "memory": memory, "pods": str(pods),
                "ephemeral-storage": "100Gi"}
    base_labels = {
        "kubernetes.io/hostname": name,
        "kubernetes.io/os": "linux",
        "kubernetes.io/arch": "amd64",
        "beta.kubernetes.io/os": "linux",
        "beta.kubernetes.io/arch": "amd64",
    }
    base_labels.update(labels)

    def cond(type_: str, status: str, reason: str, message: str) -> dict[str, Any]:
        return {"type": type_, "status": status, "reason": reason, "message": message,
                "lastHeartbeatTime": now, "lastTransitionTime": now}

    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "labels": base_labels},
        "spec": {"taints": taints} if taints else {},
        "status": {
            "capacity": capacity,
            "allocatable": dict(capacity),
            "conditions": [
                cond("MemoryPressure", "False", "KubeletHasSufficientMemory",
                     "kubelet has sufficient memory available"),
                cond("DiskPressure", "False", "KubeletHasNoDiskPressure",
                     "kubelet has no disk pressure"),
                cond("PIDPressure", "False", "KubeletHasSufficientPID",
                     "kubelet has sufficient PID available"),
                cond("Ready", "True", "KubeletReady", "kubelet is posting ready status"),
            ],
            "addresses": [{"type": "InternalIP", "address": ip},
                          {"type": "Hostname", "address": name}],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
            "nodeInfo": {
                "machineID": uuid.uuid5(uuid.NAMESPACE_DNS, name).hex,
                "systemUUID": str(uuid.uuid5(uuid.NAMESPACE_URL, name)),
                "bootID": str(uuid.uuid4()),
                "kernelVersion": platform.release(),
                "osImage": "orchestra",
                "containerRuntimeVersion": f"{runtime}://orchestra",
                "kubeletVersion": KUBELET_VERSION,
                "kubeProxyVersion": KUBELET_VERSION,
                "operatingSystem": "linux",
                "architecture": "amd64",
            },
        },
    }


def pod_dns(ctx: Context) -> PodDns | None:
    """What the kubelets put in pods' resolv.conf: the cluster DNS when pods can reach
    it on port 53 (the only port a stub resolver uses), else why not."""
    if ctx.dns is None or ctx.dns.address is None:
        return None
    host, port = ctx.dns.address
    zone = str(ctx.options.get("cluster_domain") or "cluster.local").rstrip(".")
    if port != 53:
        return PodDns(None, zone, unreachable=(
            f"the cluster DNS listens on {host}:{port}, not port 53 (binding port 53 needs "
            f"root or net.ipv4.ip_unprivileged_port_start<=53); the pod resolves names "
            f"with the host's resolvers"))
    return PodDns(host, zone)


class NodeManager:
    """The kubelets of one cluster (see module docstring)."""

    def __init__(self, ctx: Context, runtime: Runtime, state_dir: str) -> None:
        self.ctx = ctx
        self.runtime = runtime
        self.state_dir = state_dir
        self.agents: dict[str, NodeAgent] = {}
        self.removed: list[NodeAgent] = []  # the agents of removed nodes, for the cleanup
        self.containers: dict[str, str] = {}  # container id -> pod key
        self.lease_interval = float(ctx.options.get("lease_interval", 10.0))
        self._spawn: Any = None
        ctx.informers["Pod"].add_handler(self._on_pod)
        ctx.informers["ConfigMap"].add_handler(self._on_config)
        ctx.informers["Secret"].add_handler(self._on_config)
        ctx.informers["PersistentVolumeClaim"].add_handler(self._on_claim)
        runtime.set_listener(self._on_container)

    def _on_pod(self, typ: str, obj: KubeObject, old: KubeObject | None) -> None:
        pod = cast("Pod", obj)
        node = pod.spec.node_name
        if node:
            agent = self.agents.get(node)
            if agent is not None:
                agent.enqueue(key_of(pod))

    def _on_config(self, typ: str, obj: Any, old: Any) -> None:
        """ConfigMap/Secret changes refresh the volumes of pods that use them."""
        if typ != "MODIFIED":
            return
        ns = obj.metadata.namespace
        for agent in self.agents.values():
            for key in list(agent.pods):
                if key.startswith(f"{ns}/"):
                    agent.enqueue(key)

    def _on_claim(self, typ: str, obj: Any, old: Any) -> None:
        """A claim that changes (bound, say) lets pods waiting to mount it start."""
        ns = obj.metadata.namespace
        for agent in self.agents.values():
            for key, st in list(agent.pods.items()):
                if key.startswith(f"{ns}/") and st.volumes is not None and st.volumes.pending:
                    agent.enqueue(key)

    def _on_container(self, event: ContainerEvent) -> None:
        key = self.containers.get(event.container_id)
        if key is None:
            return
        ns, _, name = key.partition("/")
        pod = cast("Pod | None", self.ctx.store.get_or_none("Pod", name, namespace=ns))
        if pod is None or not pod.spec.node_name:
            return
        agent = self.agents.get(pod.spec.node_name)
        if agent is not None:
            agent.on_container_event(key, event.container_id, event.status)

    async def run(self, task_status: Any = anyio.TASK_STATUS_IGNORED) -> None:
        async with anyio.create_task_group() as tg:
            self._spawn = tg.start_soon
            for agent in self.agents.values():
                tg.start_soon(agent.run)
            tg.start_soon(self._heartbeats)
            task_status.started()

    def add(self, name: str, *, cpu: str, memory: str, pods: int, labels: dict[str, str],
            taints: list[dict[str, Any]]) -> Node:
        if name in self.agents:
            raise AlreadyExists(f'nodes "{name}" already exists')
        store = self.ctx.store
        now = format_time(self.ctx.clock.now())
        ip = "127.0.0.1"
        node = cast("Node", store.create(node_object(name, cpu=cpu, memory=memory, pods=pods,
                                        labels=labels, taints=taints,
                                        runtime=self.runtime.name, now=now, ip=ip)))
        self._renew(name)
        agent = NodeAgent(name, store=store, runtime=self.runtime, network=self.ctx.network,
                          clock=self.ctx.clock, recorder=self.ctx.recorder,
                          state_dir=os.path.join(self.state_dir, "nodes", name), node_ip=ip,
                          container_index=self.containers,
                          workers=int(self.ctx.options.get("kubelet_workers",
                                                           self._default_workers())),
                          dns=pod_dns(self.ctx))
        self.agents[name] = agent
        if self._spawn is not None:
            self._spawn(agent.run)
        self.ctx.recorder.event(node, "Normal", "Starting", "Starting kubelet.",
                                component="kubelet", host=name)
        self.ctx.recorder.event(node, "Normal", "NodeReady",
                                f"Node {name} status is now: NodeReady",
                                component="kubelet", host=name)
        return node

    def _default_workers(self) -> int:
        """Pods a kubelet works on at once: 16 where starting a pod waits on a real
        runtime; 2 on the simulated one, whose calls return at once (more workers there
        only add task churn: a 30,000-pod simulation ran ~10% slower with 16)."""
        return 2 if self.runtime.capabilities.simulated else 16

    def _renew(self, name: str) -> None:
        store = self.ctx.store
        now = format_time(self.ctx.clock.now())
        lease = cast("Lease | None", store.get_or_none("Lease", name, namespace="kube-node-lease"))
        if lease is None:
            store.create({
                "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                "metadata": {"name": name, "namespace": "kube-node-lease"},
                "spec": {"holderIdentity": name, "leaseDurationSeconds": 40,
                         "renewTime": now},
            })
        else:
            store.update(lease.model_copy(update={
                "spec": lease.spec.model_copy(update={"renew_time": now})}))

    async def _heartbeats(self) -> None:
        while True:
            await self.ctx.clock.sleep(self.lease_interval)
            for name, agent in list(self.agents.items()):
                if not agent.alive:
                    continue
                try:
                    self._renew(name)
                    self._mark_ready(name)
                except (Conflict, NotFound):
                    continue

    def _mark_ready(self, name: str) -> None:
        """A live kubelet reports Ready again after the lifecycle controller doubted it."""
        from orchestra.objects import NodeStatus

        node = cast("Node | None", self.ctx.store.get_or_none("Node", name))
        if node is None or node.status is None:
            return
        ready = node.condition("Ready")
        if ready is not None and ready.status == "True":
            return
        now = format_time(self.ctx.clock.now())
        status = node.status.to_dict()
        for c in status.get("conditions", []):
            if c["type"] == "Ready":
                c.update(status="True", reason="KubeletReady",
                         message="kubelet is posting ready status",
                         lastHeartbeatTime=now, lastTransitionTime=now)
        self.ctx.store.update(node.model_copy(update={"status": NodeStatus.model_validate(status)}))

    def release_volumes(self) -> None:
        """Remove every pod's volume directories (tmpfs ones live outside the cluster's
        state directory); for the cluster's stop, after the containers are gone."""
        for agent in [*self.agents.values(), *self.removed]:
            for st in list(agent.pods.values()):
                if st.volumes is not None:
                    st.volumes.cleanup()

    async def fail(self, name: str) -> None:
        agent = self.agents.get(name)
        if agent is None:
            raise NotFound(f'nodes "{name}" not found')
        await agent.kill()

    async def remove(self, name: str) -> None:
        """The node is gone for good: its kubelet stops and its containers die (as in
        :meth:`fail`), then its Node and Lease are deleted, as a cloud provider's node
        controller deletes the Node of a machine that no longer exists. Its pods stay
        until the pod garbage collector force-deletes them, 40 s later."""
        agent = self.agents.pop(name, None)
        if agent is None:
            raise NotFound(f'nodes "{name}" not found')
        self.removed.append(agent)
        await agent.kill()
        for kind, namespace in (("Lease", "kube-node-lease"), ("Node", None)):
            try:
                self.ctx.store.delete(kind, name, namespace=namespace)
            except NotFound:
                pass


class NodeLifecycle:
    """Marks silent nodes NotReady, taints them, and evicts what no longer tolerates them."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.grace = float(ctx.options.get("node_monitor_grace_period", 40.0))
        self.period = float(ctx.options.get("node_monitor_period", 5.0))
        self.controller = Controller("node-lifecycle", self.reconcile, ctx.clock)
        ctx.informers["Node"].add_handler(lambda t, n, o: self.controller.enqueue_obj(n))

    async def monitor(self) -> None:
        while True:
            await self.ctx.clock.sleep(self.period)
            for node in self.ctx.store.list("Node"):
                self.controller.enqueue_obj(node)

    async def reconcile(self, key: str) -> Result | None:
        from orchestra.objects import Node

        store = self.ctx.store
        node = cast("Node | None", store.get_or_none("Node", key))
        if node is None:
            return None
        now = self.ctx.clock.now()
        lease = cast("Lease | None", store.get_or_none("Lease", key, namespace="kube-node-lease"))
        renew = parse_time(lease.spec.renew_time) if lease and lease.spec.renew_time else now
        silent = now - renew > self.grace
        if not silent and node.status is not None:
            # The common case, every node_monitor_period for every node: a healthy node
            # whose managed taints are already right needs no copy of it.
            ready_now = next((c for c in node.status.conditions or () if c.type == "Ready"),
                             None)
            if ready_now is not None and ready_now.status == "True":
                have = {(t.key, t.effect) for t in node.spec.taints or ()
                        if t.key in (UNREACHABLE, NOT_READY, UNSCHEDULABLE)}
                want_now = {(UNSCHEDULABLE, "NoSchedule")} if node.spec.unschedulable else set()
                if have == want_now:
                    return self._evict(node)
        d = node.to_dict()
        conds = d.get("status", {}).get("conditions", [])
        ready = next((c for c in conds if c["type"] == "Ready"), None)
        changed = False
        if silent and ready is not None and ready["status"] != "Unknown":
            stamp = format_time(now)
            for c in conds:
                c.update(status="Unknown", reason="NodeStatusUnknown",
                         message="Kubelet stopped posting node status.",
                         lastTransitionTime=stamp)
            changed = True
            self.ctx.recorder.event(node, "Normal", "NodeNotReady",
                                    f"Node {key} status is now: NodeNotReady",
                                    component="node-controller")
        is_ready = ready is not None and ready["status"] == "True" and not silent
        taints = list(d.get("spec", {}).get("taints", []))
        want: dict[tuple[str, str], dict[str, Any]] = {}
        if not is_ready and ready is not None:
            key_name = UNREACHABLE if ready["status"] == "Unknown" else NOT_READY
            for effect in ("NoSchedule", "NoExecute"):
                want[(key_name, effect)] = {"key": key_name, "effect": effect}
        if d.get("spec", {}).get("unschedulable"):
            want[(UNSCHEDULABLE, "NoSchedule")] = {"key": UNSCHEDULABLE, "effect": "NoSchedule"}
        managed = {UNREACHABLE, NOT_READY, UNSCHEDULABLE}
        kept = [t for t in taints if t["key"] not in managed
                or (t["key"], t["effect"]) in want]
        present = {(t["key"], t["effect"]) for t in kept}
        for k, t in want.items():
            if k not in present:
                if t["effect"] == "NoExecute":
                    t["timeAdded"] = format_time(now)
                kept.append(t)
        if kept != taints:
            d.setdefault("spec", {})["taints"] = kept
            if not kept:
                d["spec"].pop("taints")
            changed = True
        if changed:
            try:
                node = cast("Node", store.update(Node.model_validate(d)))
            except Conflict:
                return Result(requeue=True)
        return self._evict(node)

    def _evict(self, node: Any) -> Result | None:
        """NoExecute taints: evict pods that don't tolerate them (or no longer do)."""
        no_exec = [t for t in (node.spec.taints or ()) if t.effect == "NoExecute"]
        if not no_exec:
            return None
        now = self.ctx.clock.now()
        next_check: float | None = None
        for pod in self.ctx.store.list("Pod", field_selector=f"spec.nodeName={node.metadata.name}"):
            if pod.metadata.deletion_timestamp is not None:
                continue
            deadline = 0.0
            for taint in no_exec:
                tol = _toleration_for(pod, taint)
                if tol is None:
                    deadline = now
                    break
                if tol.toleration_seconds is not None:
                    added = parse_time(taint.time_added) if taint.time_added else now
                    deadline = max(deadline, added + max(0, tol.toleration_seconds))
                else:
                    deadline = float("inf")
            if deadline == float("inf"):
                continue
            if deadline <= now:
                self.ctx.recorder.event(pod, "Normal", "TaintManagerEviction",
                                        f"Marking for deletion Pod {pod.metadata.namespace}/"
                                        f"{pod.metadata.name}",
                                        component="taint-eviction-controller")
                try:
                    mark_disruption_target(self.ctx.store, cast("Pod", pod), format_time(now),
                                           "DeletionByTaintManager",
                                           "Taint manager: deleting due to NoExecute taint")
                    self.ctx.store.delete("Pod", pod.metadata.name,
                                          namespace=pod.metadata.namespace)
                except NotFound:
                    pass
                except Conflict:  # the pod changed meanwhile: look again at once
                    next_check = 0.0
            else:
                wait = deadline - now
                next_check = wait if next_check is None else min(next_check, wait)
        return Result(requeue_after=next_check) if next_check is not None else None


def tolerates(tol: Any, taint: Any) -> bool:
    if tol.effect and tol.effect != taint.effect:
        return False
    if tol.operator == "Exists":
        return not tol.key or tol.key == taint.key
    return bool(tol.key == taint.key and (tol.value or "") == (taint.value or ""))


def _toleration_for(pod: Any, taint: Any) -> Any:
    for tol in pod.spec.tolerations or ():
        if tolerates(tol, taint):
            return tol
    return None


def setup_lifecycle(ctx: Context) -> list[Runnable]:
    lc = NodeLifecycle(ctx)
    ctx.controllers["node-lifecycle"] = lc.controller
    return [lc.controller.run, lc.monitor]
