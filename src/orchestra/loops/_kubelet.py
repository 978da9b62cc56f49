"""The node agent (the kubelet): makes the pods bound to one node run.

Level-triggered like every loop: ``sync_pod(key)`` re-reads the pod, compares it with
what the runtime runs, acts (network, sandbox, init containers in order, containers,
restarts with CrashLoopBackOff, graceful termination) and writes the pod's status back.
Container exits and probe results only enqueue the pod's key.

Termination order is what makes rolling updates lossless: on deletion the agent first
waits (bounded by the grace period) until no Endpoints lists the pod's address — the
endpoints loop programs the service proxy before it writes Endpoints — and only then
sends SIGTERM.

Starting one container (back-offs, its ContainerSpec, the pull, its probes) is
``_podstart``'s part of the agent, stopping a pod ``_podstop``'s; writing the pod's
status is ``_statuswriter``'s.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

import anyio

from orchestra._errors import NotFound, OrchestraError
from orchestra.loops._engine import Controller, Result, key_of, split_key
from orchestra.loops._events import EventRecorder
from orchestra.loops._poddns import PodDns, hosts_file, resolv_conf
from orchestra.loops._podenv import ConfigError
from orchestra.loops._podstart import (
    BACKOFF_RESET,
    INITIAL_BACKOFF,
    MAX_BACKOFF,
    ContainerStarts,
)
from orchestra.loops._podstatus import ContainerRecord, is_sidecar
from orchestra.loops._podstop import PodTermination
from orchestra.loops._statuswriter import apply_probe_defaults, qos_class, write_status
from orchestra.loops._volumes import PodVolumes
from orchestra.objects._scalars import format_time
from orchestra.runtime import Runtime, SandboxSpec, State

if TYPE_CHECKING:
    from orchestra._clock import Clock
    from orchestra._store import Store
    from orchestra.net import Network, PodNetwork
    from orchestra.objects import Container, Pod

__all__ = [
    "BACKOFF_RESET",
    "INITIAL_BACKOFF",
    "MAX_BACKOFF",
    "EnqueueFn",
    "NodeAgent",
    "PodState",
    "qos_class",
]

log = logging.getLogger("orchestra.kubelet")


VOLUME_RETRY = 5.0  # seconds between looks at a pod whose volumes cannot be mounted yet
MOUNT_TIMEOUT = 120.0  # then FailedMount says so


@dataclass(slots=True)
class PodState:
    uid: str
    key: str
    sandbox_id: str | None = None
    sandbox: SandboxSpec | None = None
    pod_ip: str = ""
    records: dict[str, ContainerRecord] = field(default_factory=dict)
    volumes: PodVolumes | None = None
    start_time: str | None = None
    terminating: bool = False
    # The init sequence completed once (the kubelet's "previously initialized"): from
    # then on only sidecars among the init containers are (re)started.
    initialized: bool = False
    # Every main container has ended for good (restartPolicy Never/OnFailure): the
    # sidecars are stopped and not restarted, and the pod's phase becomes terminal.
    mains_done: bool = False
    exit_mono: dict[str, float] = field(default_factory=dict)
    started_mono: dict[str, float] = field(default_factory=dict)
    # The last status dict written and the stored status it became, so that a sync
    # that changes nothing skips building and comparing a PodStatus.
    written: tuple[dict[str, Any], Any] | None = None


class NodeAgent(ContainerStarts, PodTermination):
    """One node's kubelet. Owns nothing in the store but its pods' status and its Node's
    status; its pods' runtime state lives in ``pods``."""

    def __init__(
        self,
        node_name: str,
        *,
        store: Store,
        runtime: Runtime,
        network: Network,
        clock: Clock,
        recorder: EventRecorder,
        state_dir: str,
        node_ip: str = "127.0.0.1",
        container_index: dict[str, str],
        workers: int = 16,
        dns: PodDns | None = None,
    ) -> None:
        self.node_name = node_name
        self.store = store
        self.runtime = runtime
        self.network = network
        self.clock = clock
        self.recorder = recorder
        self.state_dir = state_dir
        self.node_ip = node_ip
        self.dns = dns
        self.pods: dict[str, PodState] = {}
        self.images: set[str] = set()
        self.controller = Controller(f"kubelet/{node_name}", self.sync_pod, clock,
                                     workers=workers)
        self._containers = container_index  # container id -> pod key, shared by agents
        self._tg: Any = None
        self.alive = True

    # -- wiring -------------------------------------------------------------------------

    def enqueue(self, key: str) -> None:
        if self.alive:
            self.controller.enqueue(key)

    async def run(self) -> None:
        async with anyio.create_task_group() as tg:
            self._tg = tg
            tg.start_soon(self.controller.run)

    def _event(self, pod: Pod, type_: str, reason: str, message: str) -> None:
        self.recorder.event(pod, type_, reason, message, component="kubelet",
                            host=self.node_name)

    # -- the sync -----------------------------------------------------------------------

    async def sync_pod(self, key: str) -> Result | None:
        ns, name = split_key(key)
        pod = cast("Pod | None", self.store.get_or_none("Pod", name, namespace=ns))
        st = self.pods.get(key)
        if st is not None and (pod is None or pod.metadata.uid != st.uid):
            await self._teardown(st, grace=0.0)
            self.pods.pop(key, None)
            st = None
        if pod is None or pod.spec.node_name != self.node_name or not self.alive:
            return None
        if pod.metadata.deletion_timestamp is not None:
            await self._terminate(pod, st)
            return None
        if pod.status is not None and pod.status.phase in ("Succeeded", "Failed"):
            if st is not None:
                await self._stop_all(pod, st, grace=0.0)
            return None
        if st is None:
            st = PodState(uid=pod.metadata.uid or "", key=key)
            self.pods[key] = st
        try:
            await self._ensure_sandbox(pod, st)
        except OrchestraError as exc:
            self._event(pod, "Warning", "FailedCreatePodSandBox",
                        f"Failed to create pod sandbox: {exc}")
            return Result(requeue_after=10.0)
        if st.volumes is not None and st.volumes.pending:
            # Containers start once every volume can be mounted (claims bound); a claim's
            # change enqueues the pod (NodeManager), the requeue is a safety net.
            self._write_status(pod, st)
            return Result(requeue_after=VOLUME_RETRY)
        requeue = await self._sync_containers(pod, st)
        self._write_status(pod, st)
        return Result(requeue_after=requeue) if requeue is not None else None

    def _dns_files(self, pod: Pod, net: PodNetwork, pod_dir: str
                   ) -> tuple[str | None, str | None]:
        """Write the pod's resolv.conf and hosts (see ``_poddns``) where the network
        put them, or in the pod's directory; a simulated runtime gets none."""
        if self.dns is None or self.runtime.capabilities.simulated:
            return net.resolv_conf, net.hosts_file
        conf = resolv_conf(pod, self.dns)
        for reason, message in conf.warnings:
            self._event(pod, "Warning", reason, message)
        unsupported = getattr(self.runtime, "private_etc_unsupported", None)
        if unsupported:
            self._event(pod, "Warning", "DNSConfigForming",
                        f"the pod's /etc/resolv.conf and /etc/hosts cannot be applied: "
                        f"{unsupported}; its processes use the host's")
        resolv_path = net.resolv_conf or os.path.join(pod_dir, "resolv.conf")
        hosts_path = net.hosts_file or os.path.join(pod_dir, "hosts")
        for path, text in ((resolv_path, conf.text()),
                           (hosts_path, hosts_file(pod, net.ip, self.dns.zone))):
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "w") as f:
                f.write(text)
        return resolv_path, hosts_path

    async def _ensure_sandbox(self, pod: Pod, st: PodState) -> None:
        meta = pod.metadata
        if st.sandbox_id is None:
            hostname = pod.spec.hostname or meta.name or ""
            net = await self.network.setup_pod(st.uid, meta.namespace or "default",
                                               meta.name or "", hostname)
            st.pod_ip = net.ip
            pod_dir = os.path.join(self.state_dir, "pods", st.uid)
            if not self.runtime.capabilities.simulated:
                # Volumes create their own directories; a simulated runtime writes no
                # logs, so thousands of simulated pods cost no directories.
                os.makedirs(pod_dir, exist_ok=True)
            st.volumes = PodVolumes(pod_dir, self.state_dir,
                                    simulated=self.runtime.capabilities.simulated)
            resolv_path, hosts_path = self._dns_files(pod, net, pod_dir)
            st.sandbox = SandboxSpec(
                uid=st.uid,
                namespace=meta.namespace or "default",
                name=meta.name or "",
                hostname=hostname,
                pod_ip=net.ip,
                annotations=dict(meta.annotations or {}),
                labels=dict(meta.labels or {}),
                netns_path=net.netns_path,
                hosts_file=hosts_path,
                resolv_conf=resolv_path,
                log_dir=os.path.join(pod_dir, "logs"),
            )
            st.sandbox_id = await self.runtime.create_sandbox(st.sandbox)
            st.start_time = format_time(self.clock.now())
            for c in pod.spec.init_containers or ():
                st.records[c.name] = ContainerRecord(c.name, init=True,
                                                     sidecar=is_sidecar(c),
                                                     waiting_reason="PodInitializing")
            for c in pod.spec.containers:
                st.records[c.name] = ContainerRecord(
                    c.name, init=False,
                    waiting_reason="PodInitializing" if pod.spec.init_containers
                    else "ContainerCreating")
        assert st.volumes is not None
        try:
            st.volumes.sync(self.store, pod, st.pod_ip)
        except ConfigError as exc:
            self._event(pod, "Warning", "FailedMount", f"MountVolume.SetUp failed: {exc}")
        if not st.volumes.pending:
            st.volumes.pending_since = None
            return
        now = self.clock.monotonic()
        if st.volumes.pending_since is None:
            st.volumes.pending_since = now
        elif now - st.volumes.pending_since >= MOUNT_TIMEOUT:
            # As the kubelet's volume manager, after two minutes of waiting.
            st.volumes.pending_since = now
            names = ",".join(sorted(st.volumes.pending))
            self._event(pod, "Warning", "FailedMount",
                        f"Unable to attach or mount volumes: unmounted volumes=[{names}], "
                        f"unattached volumes=[{names}]: timed out waiting for the condition")

    async def _sync_containers(self, pod: Pod, st: PodState) -> float | None:
        """One pass of the kubelet's computePodActions: init containers one at a time
        (a sidecar counts as done once it has started), then the sidecars kept running
        and the main containers, each (re)started under the pod's restart policy and
        the CrashLoopBackOff back-off. Returns when to look again, if nothing else
        wakes the pod first."""
        policy = pod.spec.restart_policy or "Always"
        requeue: float | None = None

        def later(delay: float | None) -> None:
            nonlocal requeue
            if delay is not None:
                requeue = delay if requeue is None else min(requeue, delay)

        inits = pod.spec.init_containers or ()
        if not st.initialized:
            for c in inits:
                rec = st.records[c.name]
                if rec.sidecar:
                    if rec.running:
                        self._ensure_probes(pod, st, c, rec)
                        apply_probe_defaults(c, rec)
                        if rec.started:
                            continue  # started: the next init step may begin
                    elif not rec.starting:
                        later(await self._restart(pod, st, c, rec))
                    return requeue
                if rec.succeeded:
                    continue
                if rec.running or rec.starting:
                    return requeue
                if rec.exited and policy == "Never":
                    rec.waiting_reason = ""
                    rec.waiting_message = None
                    return requeue
                later(await self._restart(pod, st, c, rec))
                return requeue
            st.initialized = True
        for c in inits:
            rec = st.records[c.name]
            if not rec.sidecar or st.mains_done:
                continue
            if rec.running:
                self._ensure_probes(pod, st, c, rec)
            elif not rec.starting:
                later(await self._restart(pod, st, c, rec))
        for c in pod.spec.containers:
            rec = st.records[c.name]
            if rec.running:
                self._ensure_probes(pod, st, c, rec)
                continue
            if rec.starting:
                continue
            if rec.exited:
                code = rec.status.exit_code if rec.status is not None else 1
                if code != 0:
                    await self._explain_exit(pod, rec)
                restart = policy == "Always" or (policy == "OnFailure" and code != 0)
                if not restart:
                    rec.waiting_reason = ""
                    rec.waiting_message = None
                    continue
            later(await self._restart(pod, st, c, rec))
        if (policy != "Always" and not st.mains_done
                and all(st.records[c.name].terminated for c in pod.spec.containers)):
            # The main containers are done: sidecars do not keep the pod alive.
            st.mains_done = True
            grace = pod.spec.termination_grace_period_seconds
            await self._stop_sidecars(pod, st, grace=float(30 if grace is None else grace),
                                      since=self.clock.monotonic())
        return requeue

    async def _restart(self, pod: Pod, st: PodState, c: Container, rec: ContainerRecord
                       ) -> float | None:
        """Start ``c`` unless its back-off still runs (after an exit or a failed create
        or start); returns when to look again."""
        if rec.exited or rec.create_failed:
            delay = self._backoff_delay(pod, st, rec)
            if delay > 0:
                return delay
        return await self._start(pod, st, c, rec)

    async def _explain_exit(self, pod: Pod, rec: ContainerRecord) -> None:
        """Once per failed container: if its last log lines say the address was in use
        and the runtime shares the host's network (no isolation), tell the user to bind
        ``$POD_IP`` (replicas that bind the wildcard address collide on one host)."""
        cid = rec.container_id
        if cid is None or rec.exit_explained == cid:
            return
        rec.exit_explained = cid
        caps = self.runtime.capabilities
        if caps.isolation or caps.simulated or not caps.logs:
            return
        try:
            tail = await self.runtime.logs(cid, tail=20)
        except OrchestraError:
            return
        if "Address already in use" not in tail and "EADDRINUSE" not in tail:
            return
        self._event(pod, "Warning", "AddressInUse",
                    f"Container {rec.name} exited because the address it binds is already "
                    "in use (EADDRINUSE). Pods on this runtime share the host's network: a "
                    "server that binds 0.0.0.0 collides with its replicas. Bind $POD_IP "
                    f"({pod.status.pod_ip if pod.status and pod.status.pod_ip else 'the pod IP'}"
                    ") instead of 0.0.0.0.")

    # -- container events ---------------------------------------------------------------

    def on_container_event(self, key: str, container_id: str, status: Any) -> None:
        st = self.pods.get(key)
        if st is None:
            return
        for rec in st.records.values():
            if rec.container_id == container_id:
                rec.status = status
                if status.state is State.EXITED:
                    rec.ready = False
                    st.exit_mono[rec.name] = self.clock.monotonic()
                    if rec.probe_scope is not None:
                        rec.probe_scope.cancel()
                        rec.probe_scope = None
                break
        self.enqueue(key)

    # -- status -------------------------------------------------------------------------
    def _write_status(self, pod: Pod, st: PodState) -> None:
        write_status(self.store, self.clock, pod, st, node_ip=self.node_ip,
                     runtime_name=self.runtime.name)

    # -- node failure and shutdown ------------------------------------------------------

    async def kill(self) -> None:
        """Simulate the node dying: nothing more is synced or reported, and every
        container on it dies at once."""
        self.alive = False
        self.controller.queue.shut_down()
        for st in list(self.pods.values()):
            for rec in st.records.values():
                if rec.probe_scope is not None:
                    rec.probe_scope.cancel()
                if rec.container_id is not None and rec.running:
                    try:
                        await self.runtime.stop_container(rec.container_id, 0.0)
                    except OrchestraError:
                        pass

    def container_ids(self, pod: Pod, container: str | None, previous: bool
                      ) -> tuple[str, str]:
        """(container id, container name) for logs/exec; raises NotFound like kubectl."""
        st = self.pods.get(key_of(pod))
        names = [c.name for c in pod.spec.containers]
        name = container or names[0]
        if st is None or name not in st.records:
            raise NotFound(f'container "{name}" in pod "{pod.metadata.name}" is not '
                           "available" if st is None else
                           f"container {name} is not valid for pod {pod.metadata.name}")
        rec = st.records[name]
        cid = rec.previous_id if previous else rec.container_id
        if cid is None:
            if previous:
                raise NotFound(f'previous terminated container "{name}" in pod '
                               f'"{pod.metadata.name}" not found')
            raise NotFound(f'container "{name}" in pod "{pod.metadata.name}" is waiting to '
                           f"start: {rec.waiting_reason or 'ContainerCreating'}")
        return cid, name


EnqueueFn = Callable[[str], None]
