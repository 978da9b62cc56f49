"""``orchestra.Cluster``: the store, the loops, a runtime and a network, wired together.

The cluster owns one supervisor task running a task group with every informer,
controller, node agent and periodic loop; ``stop()`` cancels it, then closes the runtime
(which stops and removes every container it made) and the network, and removes the
cluster's state directory, so nothing of the cluster's is left behind. The state
directory's claim and watchdog are ``_statedir``'s; draining a node is ``_drain``'s.
The methods users call come in parts: the object verbs (``_objects``), the kubectl
habits (``_kubectl``) and the nodes (``_nodes``); this module starts and stops them.
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
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import anyio
import anyio.lowlevel

from orchestra import admission
from orchestra._clock import Clock, RealClock
from orchestra._cluster._kubectl import KubectlMethods
from orchestra._cluster._nodes import NodeMethods, NodeSpec
from orchestra._cluster._objects import ObjectMethods
from orchestra._clusterdns import start_dns
from orchestra._errors import hide_from_tracebacks
from orchestra._loopthread import BridgedIterator, call_in, hop
from orchestra._metrics import ControlPlaneMetrics
from orchestra._portforward import PortForwards
from orchestra._statedir import (
    _start_watchdog,
    _stop_watchdog,
    claim_state_dir,
    remove_leftovers,
)
from orchestra._store import Store
from orchestra.loops._context import Context, Runnable
from orchestra.loops._engine import Informers
from orchestra.loops._events import EventRecorder
from orchestra.loops._nodes import NodeManager, setup_lifecycle
from orchestra.loops._options import check_options
from orchestra.net import Network, load_network
from orchestra.net.dns import DnsServer
from orchestra.net.l7 import HttpProxy
from orchestra.present import (
    Table,
    cluster_tables,
    render_html,
    render_text,
)
from orchestra.runtime import Runtime, load_runtime

__tracebackhide__ = hide_from_tracebacks  # see orchestra._errors

if TYPE_CHECKING:
    pass

log = logging.getLogger("orchestra")

KINDS_WATCHED = ("Pod", "Node", "ConfigMap", "Secret", "Service", "Endpoints", "ReplicaSet",
                 "Deployment", "Namespace", "Job", "CronJob", "DaemonSet", "StatefulSet",
                 "PodDisruptionBudget", "HorizontalPodAutoscaler")


def _controller_setups() -> list[Callable[[Context], list[Runnable]]]:
    from orchestra.loops import _controllers

    return [*_controllers.SETUPS, setup_lifecycle]


_PARAMETERS = ("runtime", "nodes", "network", "clock", "name", "scheduler", "events",
               "state_dir", "runtime_options", "network_options")
# The backends by name (load_runtime, load_network), checked when the cluster is made
_BACKENDS = {"runtime": ("fake", "process", "containerd"),
             "network": ("fake", "loopback", "bridge")}
# What works before start() and after stop(): everything else needs the running loops.
_UNGUARDED = {"start", "stop", "store", "name", "clock", "options", "runtime", "network",
              "nodes", "recorder", "metrics_registry"}


class Cluster(ObjectMethods, KubectlMethods, NodeMethods):
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

    def _proxy_connections(self) -> int:
        proxy = getattr(getattr(self, "network", None), "proxy", None)
        return int(getattr(proxy, "connections", 0) or 0)



__all__ = ["Cluster"]


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

    # the parts' methods too: each name as the class's lookup finds it (the MRO's first)
    methods = {name: fn for part in reversed(cls.__mro__) for name, fn in vars(part).items()}
    for name, fn in methods.items():
        if name.startswith("_") or name in _UNGUARDED or not inspect.isfunction(fn):
            continue
        setattr(cls, name, guarded(name, fn))


_guard_methods(Cluster)
