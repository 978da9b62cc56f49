"""The node agent (the kubelet): makes the pods bound to one node run.

Level-triggered like every loop: ``sync_pod(key)`` re-reads the pod, compares it with
what the runtime runs, acts (network, sandbox, init containers in order, containers,
restarts with CrashLoopBackOff, graceful termination) and writes the pod's status back.
Container exits and probe results only enqueue the pod's key.

Termination order is what makes rolling updates lossless: on deletion the agent first
waits (bounded by the grace period) until no Endpoints lists the pod's address — the
endpoints loop programs the service proxy before it writes Endpoints — and only then
sends SIGTERM.
"""

from __future__ import annotations

import logging
import operator
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

import anyio

from orchestra._errors import NotFound, OrchestraError
from orchestra.loops._engine import Controller, Result, key_of, split_key
from orchestra.loops._events import EventRecorder
from orchestra.loops._podenv import ConfigError, container_env, expand_args
from orchestra.loops._podstatus import ContainerRecord, compute_phase, container_status_dict
from orchestra.loops._probes import run_probes
from orchestra.loops._volumes import PodVolumes
from orchestra.objects._base import format_time
from orchestra.objects._quantity import cpu_milli, to_bytes
from orchestra.runtime import (
    ContainerCreateError,
    ContainerSpec,
    ImagePullError,
    Mount,
    Resources,
    Runtime,
    SandboxSpec,
    State,
)

if TYPE_CHECKING:
    from orchestra._clock import Clock
    from orchestra._store import Store
    from orchestra.net import Network
    from orchestra.objects import Container, Endpoints, Pod

log = logging.getLogger("orchestra.kubelet")

MAX_BACKOFF = 300.0
INITIAL_BACKOFF = 10.0
BACKOFF_RESET = 600.0  # a container that ran this long starts its backoff afresh


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
    exit_mono: dict[str, float] = field(default_factory=dict)
    started_mono: dict[str, float] = field(default_factory=dict)
    # The last status dict written and the stored status it became, so that a sync
    # that changes nothing skips building and comparing a PodStatus.
    written: tuple[dict[str, Any], Any] | None = None


_env_cache: tuple[str | None, tuple[Any, ...], dict[str, str]] = (None, (), {})


def _service_env(store: Store, namespace: str | None) -> dict[str, str]:
    """The service links of ``namespace``, computed once per set of Service versions
    (stored objects are immutable, so identity is version) and shared by every pod
    started meanwhile: with hundreds of Services, building them per pod dominated.
    Callers must not change the dict."""
    global _env_cache
    from orchestra.net._env import service_env

    services = tuple(store.list("Service", namespace=namespace))
    ns, cached, env = _env_cache
    if ns == namespace and len(cached) == len(services) and all(
            map(operator.is_, cached, services)):
        return env
    env = dict(service_env(services))
    _env_cache = (namespace, services, env)
    return env


def _fmt_duration(seconds: float) -> str:
    s = int(seconds)
    if s < 60:
        return f"{s}s"
    m, s = divmod(s, 60)
    return f"{m}m{s}s" if s else f"{m}m0s"


def qos_class(pod: Pod) -> str:
    requests = limits = False
    guaranteed = True
    for c in pod.spec.all_containers:
        res = c.resources
        req: Mapping[str, str] = (res.requests if res else None) or {}
        lim: Mapping[str, str] = (res.limits if res else None) or {}
        requests |= bool(req)
        limits |= bool(lim)
        for r in ("cpu", "memory"):
            if r not in lim or (r in req and req[r] != lim[r]):
                guaranteed = False
    if not requests and not limits:
        return "BestEffort"
    return "Guaranteed" if guaranteed else "Burstable"


class NodeAgent:
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
        workers: int = 2,
    ) -> None:
        self.node_name = node_name
        self.store = store
        self.runtime = runtime
        self.network = network
        self.clock = clock
        self.recorder = recorder
        self.state_dir = state_dir
        self.node_ip = node_ip
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
        requeue = await self._sync_containers(pod, st)
        self._write_status(pod, st)
        return Result(requeue_after=requeue) if requeue is not None else None

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
            st.volumes = PodVolumes(pod_dir, self.state_dir)
            st.sandbox = SandboxSpec(
                uid=st.uid,
                namespace=meta.namespace or "default",
                name=meta.name or "",
                hostname=hostname,
                pod_ip=net.ip,
                annotations=dict(meta.annotations or {}),
                labels=dict(meta.labels or {}),
                netns_path=net.netns_path,
                hosts_file=net.hosts_file,
                resolv_conf=net.resolv_conf,
                log_dir=os.path.join(pod_dir, "logs"),
            )
            st.sandbox_id = await self.runtime.create_sandbox(st.sandbox)
            st.start_time = format_time(self.clock.now())
            for c in pod.spec.init_containers or ():
                st.records[c.name] = ContainerRecord(c.name, init=True,
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

    async def _sync_containers(self, pod: Pod, st: PodState) -> float | None:
        policy = pod.spec.restart_policy or "Always"
        requeue: float | None = None

        def later(delay: float) -> None:
            nonlocal requeue
            requeue = delay if requeue is None else min(requeue, delay)

        for c in pod.spec.init_containers or ():
            rec = st.records[c.name]
            if rec.exited and rec.status is not None and rec.status.exit_code == 0:
                rec.waiting_reason = ""
                continue
            if rec.running or rec.starting:
                return requeue
            if rec.exited:
                if policy == "Never":
                    rec.waiting_reason = ""
                    return requeue
                delay = self._backoff_delay(pod, st, rec)
                if delay > 0:
                    later(delay)
                    return requeue
            retry = await self._start(pod, st, c, rec)
            if retry:
                later(retry)
            return requeue
        for c in pod.spec.containers:
            rec = st.records[c.name]
            if rec.running or rec.starting:
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
                delay = self._backoff_delay(pod, st, rec)
                if delay > 0:
                    later(delay)
                    continue
            retry = await self._start(pod, st, c, rec)
            if retry:
                later(retry)
        return requeue

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

    def _backoff_delay(self, pod: Pod, st: PodState, rec: ContainerRecord) -> float:
        """Seconds still to wait before restarting ``rec`` (0: restart now); sets the
        CrashLoopBackOff waiting state while waiting."""
        now = self.clock.monotonic()
        exited_at = st.exit_mono.setdefault(rec.name, now)
        ran = exited_at - st.started_mono.get(rec.name, exited_at)
        if ran >= BACKOFF_RESET:
            rec.backoff = 0.0
        if rec.backoff == 0.0:
            rec.backoff = INITIAL_BACKOFF
            return 0.0
        remaining = exited_at + rec.backoff - now
        if remaining <= 0:
            rec.backoff = min(MAX_BACKOFF, rec.backoff * 2)
            return 0.0
        meta = pod.metadata
        if rec.waiting_reason != "CrashLoopBackOff":
            self._event(pod, "Warning", "BackOff",
                        f"Back-off restarting failed container {rec.name} in pod "
                        f"{meta.name}_{meta.namespace}({meta.uid})")
        rec.waiting_reason = "CrashLoopBackOff"
        rec.waiting_message = (f"back-off {_fmt_duration(rec.backoff)} restarting failed "
                               f"container={rec.name} pod={meta.name}_{meta.namespace}"
                               f"({meta.uid})")
        return remaining

    def _container_spec(self, pod: Pod, st: PodState, c: Container, rec: ContainerRecord
                        ) -> ContainerSpec:
        env = container_env(self.store, pod, c, pod_ip=st.pod_ip, node_ip=self.node_ip,
                            service_env=_service_env(self.store, pod.metadata.namespace))
        assert st.volumes is not None
        mounts = []
        for vm in c.volume_mounts or ():
            host = st.volumes.paths.get(vm.name)
            if host is None:
                raise ConfigError(f'volume "{vm.name}" not found')
            mounts.append(Mount(host, vm.mount_path, bool(vm.read_only), vm.sub_path or None))
        res = c.resources
        req: Mapping[str, str] = (res.requests if res else None) or {}
        lim: Mapping[str, str] = (res.limits if res else None) or {}
        sc = c.security_context
        psc = pod.spec.security_context
        caps = sc.capabilities if sc is not None else None
        return ContainerSpec(
            name=c.name,
            image=c.image or "",
            command=expand_args(c.command, env),
            args=expand_args(c.args, env),
            env=tuple(env),
            working_dir=c.working_dir,
            mounts=tuple(mounts),
            resources=Resources(
                cpu_request_milli=cpu_milli(req["cpu"]) if "cpu" in req else 0,
                cpu_limit_milli=cpu_milli(lim["cpu"]) if "cpu" in lim else 0,
                memory_request_bytes=to_bytes(req["memory"]) if "memory" in req else 0,
                memory_limit_bytes=to_bytes(lim["memory"]) if "memory" in lim else 0,
            ),
            image_pull_policy=c.image_pull_policy or "IfNotPresent",
            run_as_user=(sc.run_as_user if sc and sc.run_as_user is not None
                         else (psc.run_as_user if psc else None)),
            run_as_group=(sc.run_as_group if sc and sc.run_as_group is not None
                          else (psc.run_as_group if psc else None)),
            read_only_root_filesystem=bool(sc and sc.read_only_root_filesystem),
            privileged=bool(sc and sc.privileged),
            capabilities_add=tuple(caps.add or ()) if caps else (),
            capabilities_drop=tuple(caps.drop or ()) if caps else (),
            attempt=rec.restart_count + (1 if rec.container_id else 0),
            init=rec.init,
        )

    async def _start(self, pod: Pod, st: PodState, c: Container, rec: ContainerRecord
                     ) -> float | None:
        """Pull, create and start one container; returns a requeue delay on failure."""
        assert st.sandbox is not None and st.sandbox_id is not None
        now = self.clock.monotonic()
        if rec.pull_backoff_until > now:
            if rec.waiting_reason != "ImagePullBackOff":
                self._event(pod, "Normal", "BackOff", f'Back-off pulling image "{c.image}"')
                self._event(pod, "Warning", "Failed", "Error: ImagePullBackOff")
            rec.waiting_reason = "ImagePullBackOff"
            rec.waiting_message = f'Back-off pulling image "{c.image}"'
            return rec.pull_backoff_until - now
        try:
            spec = self._container_spec(pod, st, c, rec)
        except ConfigError as exc:
            rec.waiting_reason = "CreateContainerConfigError"
            rec.waiting_message = str(exc)
            self._event(pod, "Warning", "Failed", f"Error: {exc}")
            return 10.0
        image = c.image or ""
        never = spec.image_pull_policy == "Never"
        present = never or (image in self.images and spec.image_pull_policy != "Always")
        if present:
            self._event(pod, "Normal", "Pulled",
                        f'Container image "{image}" already present on machine')
        else:
            self._event(pod, "Normal", "Pulling", f'Pulling image "{image}"')
        t0 = self.clock.monotonic()
        try:
            info = await self.runtime.pull_image(st.sandbox, spec)
        except ImagePullError as exc:
            if never:  # only an absent image fails with Never; retried, not backed off
                rec.waiting_reason = "ErrImageNeverPull"
                rec.waiting_message = str(exc)
                self._event(pod, "Warning", "ErrImageNeverPull", str(exc))
                self._event(pod, "Warning", "Failed", "Error: ErrImageNeverPull")
                return INITIAL_BACKOFF
            rec.pull_backoff = min(MAX_BACKOFF, rec.pull_backoff * 2 or INITIAL_BACKOFF)
            rec.pull_backoff_until = self.clock.monotonic() + rec.pull_backoff
            rec.waiting_reason = "ErrImagePull"
            rec.waiting_message = str(exc)
            self._event(pod, "Warning", "Failed", f'Failed to pull image "{image}": {exc}')
            self._event(pod, "Warning", "Failed", "Error: ErrImagePull")
            return rec.pull_backoff
        rec.pull_backoff = 0.0
        rec.image_id = info.id
        if not present:
            took = self.clock.monotonic() - t0
            self._event(pod, "Normal", "Pulled",
                        f'Successfully pulled image "{image}" in {took:.3f}s '
                        f"({took:.3f}s including waiting). Image size: {info.size} bytes.")
            self.images.add(image)
        # Keep exactly one dead instance for `logs --previous`.
        if rec.container_id is not None:
            if rec.previous_id is not None:
                await self._remove_quietly(rec.previous_id)
            rec.previous_id = rec.container_id
            rec.last_terminated = rec.status
            rec.restart_count += 1
            rec.container_id = None
        try:
            cid = await self.runtime.create_container(st.sandbox_id, spec)
        except ContainerCreateError as exc:
            rec.waiting_reason = "CreateContainerError"
            rec.waiting_message = str(exc)
            self._event(pod, "Warning", "Failed", f"Error: {exc}")
            return 10.0
        self._containers[cid] = st.key
        self._event(pod, "Normal", "Created", f"Created container {c.name}")
        rec.container_id = cid
        rec.ready = False
        rec.started = False
        try:
            await self.runtime.start_container(cid)
        except ContainerCreateError as exc:
            rec.status = await self.runtime.container_status(cid)
            rec.waiting_reason = "RunContainerError"
            rec.waiting_message = str(exc)
            st.exit_mono[rec.name] = self.clock.monotonic()
            self._event(pod, "Warning", "Failed", f"Error: {exc}")
            return 10.0
        self._event(pod, "Normal", "Started", f"Started container {c.name}")
        rec.status = await self.runtime.container_status(cid)
        rec.waiting_reason = ""
        rec.waiting_message = None
        st.started_mono[rec.name] = self.clock.monotonic()
        st.exit_mono.pop(rec.name, None)
        if rec.exited:  # it already finished
            st.exit_mono[rec.name] = self.clock.monotonic()
        if rec.running:
            self._spawn_probes(pod, st, c, rec, cid)
        return None

    def _spawn_probes(self, pod: Pod, st: PodState, c: Container, rec: ContainerRecord,
                      cid: str) -> None:
        if not (c.liveness_probe or c.readiness_probe or c.startup_probe):
            return
        assert st.sandbox is not None and self._tg is not None
        key = st.key

        async def kill(message: str) -> None:
            self._event(pod, "Normal", "Killing", message)
            grace = float(pod.spec.termination_grace_period_seconds or 30)
            await self.runtime.stop_container(cid, grace)

        def event(type_: str, reason: str, message: str) -> None:
            self._event(pod, type_, reason, message)

        async def probes() -> None:
            with anyio.CancelScope() as scope:
                rec.probe_scope = scope
                await run_probes(clock=self.clock, runtime=self.runtime, sandbox=st.sandbox,  # type: ignore[arg-type]
                                 container=c, rec=rec, container_id=cid,
                                 changed=lambda: self.enqueue(key), event=event, kill=kill)

        self._tg.start_soon(probes)

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
        from orchestra.objects import PodStatus

        inits = [st.records[c.name] for c in pod.spec.init_containers or ()]
        mains = [st.records[c.name] for c in pod.spec.containers]
        init_done = all(r.exited and r.status is not None and r.status.exit_code == 0
                        for r in inits)
        phase = compute_phase(pod, inits, mains, init_done)
        # Without a startup probe a running container has started; without a readiness
        # probe a started container is ready. Probe workers set the rest.
        for r in mains:
            if r.running:
                if not self._has_startup(pod, r):
                    r.started = True
                if r.started and not self._has_readiness(pod, r):
                    r.ready = True
        ready = init_done and all(r.running and r.ready for r in mains)
        old = pod.status
        old_conds = {c.type: c for c in (old.conditions or ())} if old else {}
        now = format_time(self.clock.now())

        def cond(type_: str, value: bool, reason: str | None = None) -> dict[str, Any]:
            status = "True" if value else "False"
            prev = old_conds.get(type_)
            out: dict[str, Any] = {"type": type_, "status": status,
                                   "lastProbeTime": None}
            out["lastTransitionTime"] = (prev.last_transition_time
                                         if prev is not None and prev.status == status
                                         and prev.last_transition_time else now)
            if not value and reason:
                out["reason"] = reason
            del out["lastProbeTime"]
            return out

        not_ready = [r.name for r in mains if not (r.running and r.ready)]
        containers_reason = None if not not_ready else "ContainersNotReady"
        if phase == "Succeeded":
            containers_reason = "PodCompleted"
        conditions = [
            cond("PodReadyToStartContainers", st.sandbox_id is not None),
            cond("Initialized", init_done, "ContainersNotInitialized"),
            cond("Ready", ready, containers_reason),
            cond("ContainersReady", ready, containers_reason),
            cond("PodScheduled", True),
        ]
        if not ready and containers_reason == "ContainersNotReady":
            msg = f"containers with unready status: [{' '.join(not_ready)}]"
            conditions[2]["message"] = msg
            conditions[3]["message"] = msg
        if not init_done:
            pending = [r.name for r in inits if not (r.exited and r.status is not None
                                                     and r.status.exit_code == 0)]
            conditions[1]["message"] = (f"containers with incomplete status: "
                                        f"[{' '.join(pending)}]")
        images = {c.name: c.image or "" for c in pod.spec.all_containers}
        status: dict[str, Any] = {
            "phase": phase,
            "conditions": conditions,
            "hostIP": self.node_ip,
            "hostIPs": [{"ip": self.node_ip}],
            "podIP": st.pod_ip,
            "podIPs": [{"ip": st.pod_ip}],
            "startTime": (old.start_time if old and old.start_time else st.start_time),
            "containerStatuses": [container_status_dict(r, images[r.name], self.runtime.name)
                                  for r in mains],
            "qosClass": qos_class(pod),
        }
        if inits:
            status["initContainerStatuses"] = [
                container_status_dict(r, images[r.name], self.runtime.name) for r in inits]
        written = st.written
        if written is not None and old is written[1] and status == written[0]:
            return  # the stored status is the one this dict produced
        new = PodStatus.model_validate(status)
        if old is not None and new == old:
            st.written = (status, old)
            return
        try:
            stored = cast("Pod", self.store.update(pod.model_copy(update={"status": new})))
        except NotFound:
            return
        st.written = (status, stored.status)

    @staticmethod
    def _has_readiness(pod: Pod, rec: ContainerRecord) -> bool:
        return any(c.name == rec.name and c.readiness_probe is not None
                   for c in pod.spec.containers)

    @staticmethod
    def _has_startup(pod: Pod, rec: ContainerRecord) -> bool:
        return any(c.name == rec.name and c.startup_probe is not None
                   for c in pod.spec.containers)

    # -- termination --------------------------------------------------------------------

    async def _terminate(self, pod: Pod, st: PodState | None) -> None:
        if st is not None and not st.terminating:
            st.terminating = True
            await self._leave_endpoints(pod, st)
            grace = float(pod.metadata.deletion_grace_period_seconds
                          if pod.metadata.deletion_grace_period_seconds is not None
                          else pod.spec.termination_grace_period_seconds or 30)
            await self._stop_all(pod, st, grace=grace)
            await self._teardown(st, grace=0.0)
            self.pods.pop(st.key, None)
        try:
            self.store.delete("Pod", pod.metadata.name, namespace=pod.metadata.namespace,
                              grace_period_seconds=0)
        except NotFound:
            pass

    async def _leave_endpoints(self, pod: Pod, st: PodState) -> None:
        """Wait (bounded) until no Endpoints routes to this pod, so that SIGTERM never
        races new connections."""
        if not st.pod_ip:
            return
        for _ in range(200):
            listed = False
            eps = self.store.list("Endpoints", namespace=pod.metadata.namespace)
            for ep in cast("list[Endpoints]", eps):
                for subset in ep.subsets or ():
                    for addr in subset.addresses or ():
                        if addr.ip == st.pod_ip:
                            listed = True
                            break
            if not listed:
                return
            await anyio.sleep(0.01)

    async def _stop_all(self, pod: Pod, st: PodState, *, grace: float) -> None:
        async def stop(rec: ContainerRecord) -> None:
            if rec.probe_scope is not None:
                rec.probe_scope.cancel()
                rec.probe_scope = None
            if rec.container_id is not None and rec.running:
                self._event(pod, "Normal", "Killing", f"Stopping container {rec.name}")
                try:
                    await self.runtime.stop_container(rec.container_id, grace)
                    rec.status = await self.runtime.container_status(rec.container_id)
                except OrchestraError as exc:
                    log.debug("stopping %s: %s", rec.container_id, exc)

        async with anyio.create_task_group() as tg:
            for rec in st.records.values():
                tg.start_soon(stop, rec)

    async def _remove_quietly(self, cid: str) -> None:
        self._containers.pop(cid, None)
        try:
            await self.runtime.remove_container(cid)
        except OrchestraError as exc:
            log.debug("removing %s: %s", cid, exc)

    async def _teardown(self, st: PodState, *, grace: float) -> None:
        for rec in st.records.values():
            if rec.probe_scope is not None:
                rec.probe_scope.cancel()
            for cid in (rec.container_id, rec.previous_id):
                if cid is not None:
                    if grace == 0.0 and rec.running and cid == rec.container_id:
                        try:
                            await self.runtime.stop_container(cid, 0.0)
                        except OrchestraError:
                            pass
                    await self._remove_quietly(cid)
        if st.sandbox_id is not None:
            try:
                await self.runtime.remove_sandbox(st.sandbox_id)
            except OrchestraError as exc:
                log.debug("removing sandbox %s: %s", st.sandbox_id, exc)
            await self.network.teardown_pod(st.uid)
        if st.volumes is not None:
            st.volumes.cleanup()

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
