"""``orchestra.Cluster``: the store, the loops, a runtime and a network, wired together.

The cluster owns one supervisor task running a task group with every informer,
controller, node agent and periodic loop; ``stop()`` cancels it, then closes the runtime
(which stops and removes every container it made) and the network, and removes the
cluster's state directory, so nothing of the cluster's is left behind. The state
directory's claim and watchdog are ``_statedir``'s; draining a node is ``_drain``'s.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import difflib
import functools
import inspect
import logging
import os
import shutil
import subprocess
import threading
import uuid
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

import anyio
import anyio.lowlevel

from orchestra import admission
from orchestra._apply import apply_all
from orchestra._clock import Clock, RealClock
from orchestra._clusterdns import cluster_resolve, start_dns
from orchestra._copy import copy_from, copy_to, filesystem_root
from orchestra._drain import drain_node
from orchestra._errors import Conflict, NotFound, OrchestraError, hide_from_tracebacks
from orchestra._eviction import evict
from orchestra._loopthread import BridgedIterator, call_in, hop
from orchestra._metrics import ControlPlaneMetrics
from orchestra._netpolicy import can_connect, reachability
from orchestra._portforward import PortForwards, container_port
from orchestra._statedir import (
    _start_watchdog,
    _stop_watchdog,
    claim_state_dir,
    remove_leftovers,
)
from orchestra._store import Store
from orchestra._traffic import access_log, traffic_endpoint, traffic_stats
from orchestra.loops._context import Context, Runnable
from orchestra.loops._engine import Informers
from orchestra.loops._events import EventRecorder
from orchestra.loops._nodes import NodeManager, setup_lifecycle
from orchestra.loops._options import check_options
from orchestra.net import Network, load_network
from orchestra.net.dns import DnsServer
from orchestra.net.l7 import HttpProxy
from orchestra.objects._base import KubeObject
from orchestra.objects._registry import parse_ref, to_object
from orchestra.present import (
    Table,
    build_table,
    cluster_tables,
    node_top,
    pick_pod,
    pod_top,
    render_html,
    render_text,
)
from orchestra.runtime import ExecResult, Runtime, load_runtime
from orchestra.wait import wait_for

__tracebackhide__ = hide_from_tracebacks  # see orchestra._errors

if TYPE_CHECKING:
    from orchestra.objects import Event, Pod

log = logging.getLogger("orchestra")

KINDS_WATCHED = ("Pod", "Node", "ConfigMap", "Secret", "Service", "Endpoints", "ReplicaSet",
                 "Deployment", "Namespace", "Job", "CronJob", "DaemonSet", "StatefulSet",
                 "PodDisruptionBudget", "HorizontalPodAutoscaler")


@dataclass(frozen=True)
class NodeSpec:
    """A node to add: its name, capacity, labels and taints (Kubernetes taint dicts)."""

    name: str
    cpu: str = "4"
    memory: str = "8Gi"
    pods: int = 110
    labels: Mapping[str, str] = field(default_factory=dict)
    taints: Sequence[Mapping[str, Any]] = ()


def _controller_setups() -> list[Callable[[Context], list[Runnable]]]:
    from orchestra.loops import _controllers

    return [*_controllers.SETUPS, setup_lifecycle]


_PARAMETERS = ("runtime", "nodes", "network", "clock", "name", "scheduler", "events",
               "state_dir", "runtime_options", "network_options")
# The backends by name (load_runtime, load_network), checked when the cluster is made
_BACKENDS = {"runtime": ("fake", "process", "containerd"),
             "network": ("fake", "loopback", "bridge")}
# What endpoint() port-forwards to: a pod, or the pod kubectl picks of these
WORKLOAD_KINDS = ("Pod", "Deployment", "ReplicaSet", "StatefulSet", "DaemonSet", "Job",
                  "ReplicationController")
# What works before start() and after stop(): everything else needs the running loops.
_UNGUARDED = {"start", "stop", "store", "name", "clock", "options", "runtime", "network",
              "nodes", "recorder", "metrics_registry"}


class Cluster:
    """A Kubernetes-like cluster inside this process (see docs/api.md)."""

    def __init__(
        self,
        runtime: str | Runtime = "fake",
        nodes: int | Sequence[NodeSpec] = 1,
        network: str | Network | None = None,
        *,
        clock: Clock | None = None,
        name: str | None = None,
        scheduler: str = "LeastAllocated",
        events: bool = True,
        state_dir: str | None = None,
        runtime_options: Mapping[str, Any] | None = None,
        network_options: Mapping[str, Any] | None = None,
        **options: Any,
    ) -> None:
        check_options(options, accepted=_PARAMETERS)
        for what, value in (("runtime", runtime), ("network", network)):
            names = _BACKENDS[what]
            if isinstance(value, str) and value not in names:
                close = difflib.get_close_matches(value, names, n=1, cutoff=0.6)
                raise ValueError(f"unknown {what} {value!r}: choose {', '.join(names[:-1])} "
                                 f"or {names[-1]}" + (f"; did you mean {close[0]!r}?"
                                                      if close else ""))
        if clock is not None and not isinstance(clock, Clock):
            raise TypeError(f"clock must be an orchestra clock (oc.RealClock(), "
                            f"oc.ScaledClock(speed), oc.ManualClock()), not "
                            f"{type(clock).__name__}")
        self.name = name or f"c{uuid.uuid4().hex[:8]}"
        self.clock: Clock = clock or RealClock()
        self._runtime_arg = runtime
        if network is None:
            rname = runtime if isinstance(runtime, str) else getattr(runtime, "name", "")
            network = {"fake": "fake", "containerd": "bridge"}.get(rname, "loopback")
        self._network_arg = network
        self._nodes_arg = nodes
        self._runtime_options = dict(runtime_options or {})
        self._network_options = dict(network_options or {})
        self._state_parent = state_dir
        self.options: dict[str, Any] = dict(options)
        self.options["scheduler"] = scheduler
        self.store = Store(clock=self.clock)
        self.recorder = EventRecorder(self.store, self.clock, enabled=events)
        self._metrics = ControlPlaneMetrics(self._proxy_connections)
        self.recorder.observers.append(self._metrics.observe_event)
        self.runtime: Runtime | None = None
        self.network: Network | None = None
        self.traffic: HttpProxy | None = None  # the L7 data plane (Ingress)
        self.dns: DnsServer | None = None  # the cluster DNS data plane
        self.nodes: NodeManager | None = None
        self._ctx: Context | None = None
        self._supervisor: asyncio.Task[None] | None = None
        self._state_dir: str | None = None
        self._lock_fd: int | None = None
        self._watchdog: subprocess.Popen[bytes] | None = None
        self._started = False
        self._ever_started = False
        self._forwards = PortForwards()
        # the loop the cluster runs on, and its thread: calls from elsewhere hop there
        self._home: asyncio.AbstractEventLoop | None = None
        self._home_thread: int | None = None

    # -- lifecycle ----------------------------------------------------------------------

    async def start(self) -> Cluster:
        if self._started:
            return self
        self._state_dir = await asyncio.to_thread(self._claim_state_dir)
        try:
            await self._start()
        except BaseException:
            await self._close_backends()
            raise
        self._started = True
        return self

    def _claim_state_dir(self) -> str:
        """The cluster's state directory, locked until ``stop()`` (see
        :func:`~orchestra._statedir.claim_state_dir`)."""
        path, self._lock_fd = claim_state_dir(self._state_parent, self.name)
        return path

    async def _remove_leftovers(self) -> None:
        """Remove what an earlier run of this cluster's name left behind (see
        :func:`~orchestra._statedir.remove_leftovers`)."""
        assert self.runtime is not None and self.network is not None
        assert self._state_dir is not None
        await remove_leftovers(self.name, self.runtime, self.network, self._state_dir)

    async def _start(self) -> None:
        assert self._state_dir is not None
        if isinstance(self._runtime_arg, str):
            self.runtime = load_runtime(self._runtime_arg, state_dir=os.path.join(
                self._state_dir, "runtime"), clock=self.clock, cluster_name=self.name,
                **self._runtime_options)
        else:
            self.runtime = self._runtime_arg
        if isinstance(self._network_arg, str):
            self.network = load_network(self._network_arg, state_dir=os.path.join(
                self._state_dir, "net"), clock=self.clock, cluster_name=self.name,
                **self._network_options)
        else:
            self.network = self._network_arg
        await self.runtime.start()
        await self.network.start()
        # Every runtime gets one: even a simulated cluster has a state directory (volumes,
        # the lock) that must go if this process dies.
        self._watchdog = await asyncio.to_thread(_start_watchdog, self._state_dir)
        await self._remove_leftovers()
        admission.install(self.store, self.network, self.clock)
        informers = Informers(self.store)
        self.traffic = HttpProxy(clock=self.clock)
        self.dns = await start_dns(self.network, self.options)
        ctx = self._ctx = Context(self.store, informers, self.clock, self.recorder,
                                  self.network, self.options, traffic=self.traffic,
                                  state_dir=self._state_dir, dns=self.dns)
        self.nodes = NodeManager(ctx, self.runtime, self._state_dir)
        self.options.setdefault("metrics", self._pod_metrics)
        runnables: list[Runnable] = []
        for setup in _controller_setups():
            runnables.extend(setup(ctx))
        for kind in KINDS_WATCHED:
            informers[kind]
        self._attach_metrics()
        ready = asyncio.get_running_loop().create_future()

        async def supervise() -> None:
            async with anyio.create_task_group() as tg:
                for inf in informers.all():
                    tg.start_soon(inf.run)
                for run in runnables:
                    tg.start_soon(run)
                assert self.nodes is not None
                await tg.start(self.nodes.run)
                if not ready.done():
                    ready.set_result(None)

        self._ever_started = True
        self._home = asyncio.get_running_loop()
        self._home_thread = threading.get_ident()
        bind = getattr(self.clock, "bind_loop", None)
        if bind is not None:
            bind(self._home)
        self._supervisor = asyncio.create_task(supervise(), name=f"orchestra-{self.name}")
        self._supervisor.add_done_callback(self._supervisor_done)
        await ready
        for inf in informers.all():
            await inf.synced.wait()
        nodes = self._nodes_arg
        specs = ([NodeSpec(f"node-{i + 1}") for i in range(nodes)] if isinstance(nodes, int)
                 else list(nodes))
        for spec in specs:
            await self.add_node(spec)

    def _supervisor_done(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            log.error("cluster %s: a loop failed", self.name, exc_info=task.exception())

    async def stop(self) -> None:
        """Stop every loop, container, proxy and network namespace; remove all files."""
        home = self._home
        if home is not None and home.is_running() and asyncio.get_running_loop() is not home:
            await hop(home, self.stop())
            return
        sup, self._supervisor = self._supervisor, None
        error: BaseException | None = None
        if sup is not None:
            sup.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                try:
                    await sup
                except Exception as exc:
                    error = exc
        await self._close_backends()
        self._started = False
        self._home = self._home_thread = None
        if error is not None:
            raise error

    async def _close_backends(self) -> None:
        with anyio.CancelScope(shield=True):
            await self._forwards.close()
            traffic, self.traffic = self.traffic, None
            if traffic is not None:
                try:
                    await traffic.close()
                except Exception:
                    log.exception("closing the L7 data plane failed")
            dns, self.dns = self.dns, None
            if dns is not None:
                await dns.close()
            if self.runtime is not None:
                try:
                    await self.runtime.close()
                except Exception:
                    log.exception("closing the runtime failed")
            if self.network is not None:
                try:
                    await self.network.close()
                except Exception:
                    log.exception("closing the network failed")
        if self.nodes is not None:
            await asyncio.to_thread(self.nodes.release_volumes)
        if self._state_dir is not None:
            shutil.rmtree(self._state_dir, ignore_errors=True)
            self._state_dir = None
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None
        watchdog, self._watchdog = self._watchdog, None
        if watchdog is not None:
            await asyncio.to_thread(_stop_watchdog, watchdog)

    async def __aenter__(self) -> Cluster:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def _check_running(self, method: str) -> None:
        if self._supervisor is None:
            state = "has been stopped" if self._state_dir is None and self._ever_started \
                else "is not started"
            raise RuntimeError(
                f"cluster {self.name} {state}: {method}() needs a running cluster; use "
                f"'async with oc.Cluster(...) as cluster:' or 'await cluster.start()' "
                f"('with oc.SyncCluster(...) as cluster:' or 'cluster.start()' for a "
                f"SyncCluster)")

    def __repr__(self) -> str:
        rt = self.runtime.name if self.runtime else self._runtime_arg
        nodes = len(self.nodes.agents) if self.nodes else 0
        return f"<Cluster {self.name} runtime={rt} nodes={nodes}>"

    def _tables(self) -> builtins.list[tuple[str, Table]]:
        return cluster_tables(self.store, self.clock.now()) if self._started else []

    def _repr_html_(self) -> str:
        """In a notebook: its nodes, workloads, pods and services (with endpoints)."""
        return render_html(repr(self), self._on_home(self._tables))

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        p.text(repr(self) if cycle else render_text(repr(self), self._on_home(self._tables)))

    def _on_home(self, fn: Callable[[], Any]) -> Any:
        """``fn()`` on the cluster's own loop thread (directly when already there, or
        when that loop no longer runs)."""
        home = self._home
        if home is None or not home.is_running() or threading.get_ident() == self._home_thread:
            return fn()
        return call_in(home, fn)

    # -- objects ------------------------------------------------------------------------

    async def apply(self, x: Any, *, namespace: str | None = None) -> list[KubeObject]:
        return apply_all(self.store, x, namespace)

    async def create(self, obj: Any, *, namespace: str | None = None) -> KubeObject:
        return self.store.create(obj, namespace=namespace)

    async def get(self, ref: Any, name: str | None = None, *, namespace: str = "default"
                  ) -> Any:
        return self.store.get(ref, name, namespace=namespace)

    async def list(self, kind: Any, namespace: str | None = None, selector: Any = None,
                   field_selector: Any = None) -> list[Any]:
        return self.store.list(kind, namespace=namespace, selector=selector,
                               field_selector=field_selector)

    async def update(self, obj: Any) -> Any:
        return self.store.update(obj)

    async def patch(self, ref: Any, patch: dict[str, Any], *, namespace: str = "default",
                    name: str | None = None) -> Any:
        return self.store.patch(ref, patch, namespace=namespace, name=name)

    async def delete(self, ref: Any, name: str | None = None, *, namespace: str = "default",
                     propagation: str = "Background",
                     grace_period_seconds: int | None = None) -> Any:
        return self.store.delete(ref, name, namespace=namespace, propagation=propagation,
                                 grace_period_seconds=grace_period_seconds)

    async def edit(self, ref: Any, fn: Callable[[Any], Any], *, namespace: str = "default",
                   name: str | None = None, attempts: int = 20) -> Any:
        """Read, call ``fn`` on a mutable copy, write back; on Conflict, do it again."""
        for _ in range(attempts):
            current = self.store.get(ref, name, namespace=namespace)
            copy: KubeObject | dict[str, Any] = current.thaw()
            result = fn(copy)
            if isinstance(result, KubeObject | dict):
                copy = result
            try:
                return self.store.update(copy)
            except Conflict:
                await anyio.lowlevel.checkpoint()
        raise Conflict(f"giving up on {ref} after {attempts} conflicting updates")

    def watch(self, kind: Any, namespace: str | None = None, selector: Any = None,
              resource_version: str | None = None, field_selector: Any = None
              ) -> AsyncIterator[Any]:
        return self.store.watch(kind, namespace=namespace, selector=selector,
                                resource_version=resource_version,
                                field_selector=field_selector)

    async def wait_for(self, ref: Any, condition: Any, *, timeout: float = 60.0,  # noqa: ASYNC109
                       namespace: str = "default", name: str | None = None,
                       stable_for: float | None = None) -> Any:
        return await wait_for(self, ref, condition, timeout=timeout, namespace=namespace,
                              name=name, stable_for=stable_for)

    # -- workloads ----------------------------------------------------------------------

    async def scale(self, ref: Any, replicas: int, *, namespace: str = "default") -> Any:
        return self.store.patch(ref, {"spec": {"replicas": replicas}}, namespace=namespace)

    async def rollout_history(self, ref: Any, *, namespace: str = "default"
                              ) -> builtins.list[Any]:
        from orchestra.loops._rollout import rollout_history

        return rollout_history(self.store, ref, namespace=namespace)

    async def rollout_undo(self, ref: Any, to_revision: int | None = None, *,
                           namespace: str = "default") -> Any:
        from orchestra.loops._rollout import rollout_undo

        return rollout_undo(self.store, ref, to_revision=to_revision, namespace=namespace,
                            recorder=self.recorder)

    # -- containers ---------------------------------------------------------------------

    def _container(self, pod: Any, container: str | None, namespace: str, previous: bool,
                   *, for_logs: bool = False) -> tuple[Any, str, str]:
        obj = cast("Pod", pick_pod(self.store, pod, namespace, for_logs=for_logs))
        if self.nodes is None or not obj.spec.node_name or \
                obj.spec.node_name not in self.nodes.agents:
            raise NotFound(f'pod "{obj.metadata.name}" is not running on a node yet')
        agent = self.nodes.agents[obj.spec.node_name]
        cid, cname = agent.container_ids(obj, container, previous)
        return obj, cid, cname

    async def logs(self, pod: Any, container: str | None = None, *, tail: int | None = None,
                   previous: bool = False, since: float | None = None,
                   timestamps: bool = False, namespace: str = "default") -> str:
        _, cid, _ = self._container(pod, container, namespace, previous, for_logs=True)
        assert self.runtime is not None
        return await self.runtime.logs(cid, tail=tail, since=since, timestamps=timestamps)

    async def stream_logs(self, pod: Any, container: str | None = None, *,
                          tail: int | None = None, namespace: str = "default"
                          ) -> AsyncIterator[str]:
        _, cid, _ = self._container(pod, container, namespace, False, for_logs=True)
        assert self.runtime is not None
        async for line in self.runtime.stream_logs(cid, tail=tail):
            yield line

    async def exec(self, pod: Any, command: Sequence[str], container: str | None = None, *,
                   namespace: str = "default",
                   timeout: float | None = None) -> ExecResult:  # noqa: ASYNC109 - API.md
        _, cid, _ = self._container(pod, container, namespace, False)
        assert self.runtime is not None
        return await self.runtime.exec(cid, list(command), timeout=timeout)

    async def copy_to(self, pod: Any, local_path: str | os.PathLike[str],
                      container_path: str, container: str | None = None, *,
                      namespace: str = "default") -> None:
        """``kubectl cp LOCAL POD:PATH`` (see :mod:`orchestra._copy`)."""
        _, cid, _ = self._container(pod, container, namespace, False)
        root = filesystem_root(self.runtime, cid)
        await asyncio.to_thread(copy_to, root, local_path, container_path)

    async def copy_from(self, pod: Any, container_path: str,
                        local_path: str | os.PathLike[str], container: str | None = None,
                        *, namespace: str = "default") -> None:
        """``kubectl cp POD:PATH LOCAL`` (see :mod:`orchestra._copy`)."""
        _, cid, _ = self._container(pod, container, namespace, False)
        root = filesystem_root(self.runtime, cid)
        await asyncio.to_thread(copy_from, root, container_path, local_path)

    async def _pod_metrics(self, pod: Any) -> dict[str, tuple[float, int]] | None:
        """What metrics-server would report for ``pod``: each running container's CPU
        (millicores) and memory (bytes) from the runtime's stats; None when the pod has
        no running container (the HPA then treats its metrics as missing)."""
        if self.nodes is None or self.runtime is None or not pod.spec.node_name:
            return None
        agent = self.nodes.agents.get(pod.spec.node_name)
        if agent is None or not agent.alive:
            return None
        out: dict[str, tuple[float, int]] = {}
        for c in pod.spec.containers:
            try:
                cid, _ = agent.container_ids(pod, c.name, False)
                stats = await self.runtime.stats(cid)
            except OrchestraError:
                continue
            out[c.name] = (stats.cpu_milli, stats.memory_bytes)
        return out or None

    # -- services -----------------------------------------------------------------------

    def endpoint(self, service: Any, port: int | str | None = None, *,
                 namespace: str = "default") -> tuple[str, int]:
        if isinstance(service, KubeObject):
            svc = service
        else:
            ref = service if "/" in str(service) else f"service/{service}"
            svc = self.store.get(ref, namespace=namespace)
        if svc.kind in WORKLOAD_KINDS:
            return self._port_forward(svc, port, namespace)
        if svc.kind in ("Ingress", "Gateway"):
            return traffic_endpoint(self.traffic, svc, port)
        assert self.network is not None
        if self.network.name == "fake":
            # Its ClusterIPs route nowhere: a connection there would hang, not fail.
            spec: Any = getattr(svc, "spec", None)
            raise ValueError(
                f"endpoint needs a network with a data plane (loopback or bridge); the "
                f"fake network has none, so nothing answers at service/"
                f"{svc.metadata.name}'s ClusterIP {spec and spec.cluster_ip}: use "
                f"runtime=\"process\" (or network=\"loopback\") for real traffic")
        return self.network.endpoint(svc, port)

    def _port_forward(self, ref: Any, port: int | str | None, namespace: str
                      ) -> tuple[str, int]:
        """``kubectl port-forward``: a 127.0.0.1 listener relaying to the pod's port (see
        :mod:`orchestra._portforward`)."""
        assert self.network is not None
        if self.network.name == "fake":
            raise ValueError("port-forward needs a network with a data plane (loopback or "
                             "bridge); the fake network has none")
        pod = pick_pod(self.store, ref, namespace)
        return self._forwards.open(pod, container_port(pod, port))

    @property
    def dns_address(self) -> tuple[str, int]:
        """Where the cluster DNS server listens (UDP and TCP)."""
        if self.dns is None or self.dns.address is None:
            raise RuntimeError(f"cluster {self.name} is not started: it has no DNS server")
        return self.dns.address

    async def resolve(self, name: str, namespace: str = "default", type: str = "A"
                      ) -> builtins.list[str]:
        """The answers a pod of ``namespace`` gets for ``name`` (its search list and
        ``ndots:5`` applied), as text: addresses, SRV or PTR data."""
        assert self.dns is not None
        return await cluster_resolve(self.dns, self.options, name, namespace, type)

    async def can_connect(self, src_pod: Any, dst_pod: Any, port: int, protocol: str = "TCP",
                          *, namespace: str = "default") -> bool:
        """Whether the NetworkPolicies allow a connection from ``src_pod`` to
        ``dst_pod``'s ``port`` (pods as ``"NAME"``, ``"NS/NAME"`` or Pod objects)."""
        return can_connect(self.store, src_pod, dst_pod, port, protocol, namespace)

    async def reachability(self, pods: Sequence[Any] | None = None,
                           ports: Sequence[int] = (80,), *,
                           protocols: Sequence[str] = ("TCP",), namespace: str = "default"
                           ) -> dict[tuple[str, str, int, str], bool]:
        """The NetworkPolicy truth table ``{(src, dst, port, protocol): allowed}`` over
        ``pods`` (every pod by default), keys ``"NS/NAME"``."""
        return reachability(self.store, pods, ports, protocols, namespace)

    def traffic_stats(self, ref: Any = None, *, namespace: str = "default"
                      ) -> dict[str, Any]:
        """Per route (and per backend of it): requests, response codes, latency
        percentiles, from the L7 data plane; ``ref`` (``"ingress/NAME"``) filters."""
        return traffic_stats(self.traffic, self.store, ref, namespace)

    def access_log(self, ref: Any = None, *, namespace: str = "default",
                   tail: int | None = None) -> builtins.list[str]:
        """The L7 data plane's recent access log lines (Envoy's default format)."""
        return access_log(self.traffic, self.store, ref, namespace, tail)

    # -- reading ------------------------------------------------------------------------

    def describe(self, ref: Any, name: str | None = None, *, namespace: str = "default"
                 ) -> str:
        from orchestra.present import describe

        return describe(self, ref, name, namespace=namespace)

    async def get_table(self, kind: Any, namespace: str | None = None, selector: Any = None
                        ) -> Table:
        """``kubectl get KIND`` (``-A`` when ``namespace`` is None): ``str()`` is its text,
        ``_repr_html_()`` an HTML table; kubectl's default columns for each kind."""
        info, _ = parse_ref(kind)
        objs = self.store.list(info.key, namespace=namespace if info.namespaced else None,
                               selector=selector)
        return build_table(info.kind, objs, self.clock.now(),
                           all_namespaces=namespace is None, namespaced=info.namespaced,
                           namespace=namespace)

    async def top(self, what: str = "pods", namespace: str | None = None, *,
                  selector: Any = None) -> Table:
        """``kubectl top pods`` (``namespace=None``: every namespace) or ``kubectl top
        nodes``: ``str()`` is kubectl's text; ``.objects`` are rows with ``cpu_milli``,
        ``memory_bytes`` and the metrics.k8s.io ``PodMetrics``/``NodeMetrics`` dict."""
        kind = parse_ref(what)[0].kind
        if kind == "Node":
            return await node_top(self.store.list("Node", selector=selector),
                                  self.store.list("Pod"), self._pod_metrics,
                                  self.clock.now())
        if kind != "Pod":
            raise ValueError(f'top: "pods" or "nodes", not {what!r}')
        return await pod_top(self.store.list("Pod", namespace=namespace, selector=selector),
                             self._pod_metrics, self.clock.now(),
                             all_namespaces=namespace is None)

    def metrics_text(self) -> str:
        """The control plane's own metrics in Prometheus' text exposition format (work
        queues, reconciles, scheduling, pods started, proxy connections; see
        :mod:`orchestra._metrics`), from this cluster's own registry."""
        self._attach_metrics()
        return self._metrics.text()

    @property
    def metrics_registry(self) -> Any:
        """This cluster's ``prometheus_client.CollectorRegistry`` (to serve it, e.g.
        ``prometheus_client.start_http_server(port, registry=...)``)."""
        self._attach_metrics()
        return self._metrics.registry

    def _attach_metrics(self) -> None:
        controllers = list(self._ctx.controllers.values()) if self._ctx else []
        if self.nodes is not None:
            controllers += [a.controller for a in self.nodes.agents.values()]
        for c in controllers:
            self._metrics.attach(c)

    def _proxy_connections(self) -> int:
        proxy = getattr(getattr(self, "network", None), "proxy", None)
        return int(getattr(proxy, "connections", 0) or 0)

    def events(self, ref: Any = None, name: str | None = None, *,
               namespace: str | None = None) -> builtins.list[Event]:
        evs = cast("builtins.list[Event]", self.store.list("Event", namespace=namespace))
        if ref is not None:
            if isinstance(ref, KubeObject):
                obj = ref
            else:
                info, obj_name = parse_ref(ref, name)
                found = self.store.get_or_none(info.key, obj_name,
                                               namespace=namespace or "default")
                if found is None:
                    return [e for e in evs if e.involved_object.kind == info.kind
                            and e.involved_object.name == obj_name]
                obj = found
            evs = [e for e in evs if e.involved_object.uid == obj.metadata.uid]
        return sorted(evs, key=lambda e: (e.last_timestamp or e.first_timestamp or "",
                                          e.metadata.resource_version or ""))

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


__all__ = ["Cluster", "NodeSpec", "to_object"]


_ITERATORS = {"watch", "stream_logs"}


def _guard_methods(cls: type[Cluster]) -> None:
    """Make every public method refuse to run on a cluster that is not running, with a
    message that says how to start it (instead of hanging on loops that never run), and
    run on the cluster's own loop when called from another loop or thread (a test
    runner's loop, with the cluster started by a fixture on a loop of its own)."""

    def guarded(name: str, fn: Any) -> Any:
        if inspect.iscoroutinefunction(fn):
            @functools.wraps(fn)
            async def call_async(self: Cluster, *args: Any, **kwargs: Any) -> Any:
                self._check_running(name)
                home = self._home
                if home is not None and asyncio.get_running_loop() is not home:
                    return await hop(home, fn(self, *args, **kwargs))
                return await fn(self, *args, **kwargs)
            return call_async

        @functools.wraps(fn)
        def call(self: Cluster, *args: Any, **kwargs: Any) -> Any:
            self._check_running(name)
            home = self._home
            if name in _ITERATORS and home is not None and \
                    threading.get_ident() != self._home_thread:
                return BridgedIterator(home, lambda: fn(self, *args, **kwargs))
            return self._on_home(lambda: fn(self, *args, **kwargs))
        return call

    for name, fn in list(vars(cls).items()):
        if name.startswith("_") or name in _UNGUARDED or not inspect.isfunction(fn):
            continue
        setattr(cls, name, guarded(name, fn))


_guard_methods(Cluster)
