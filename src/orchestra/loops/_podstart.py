"""Starting one container of a pod, the node agent's busiest path: the restart back-off
(CrashLoopBackOff), the runtime's ContainerSpec (env with the namespace's service links,
mounts, resources, security context), the image pull with its own back-off
(ImagePullBackOff), create and start, and the container's probe worker.
"""

from __future__ import annotations

import operator
from collections.abc import Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import anyio

from orchestra.loops._hooks import POST_START_TIMEOUT, pre_stop, run_hook
from orchestra.loops._podenv import ConfigError, container_env, expand_args
from orchestra.loops._podstatus import ContainerRecord
from orchestra.loops._probes import run_probes
from orchestra.objects._quantity import cpu_milli, to_bytes
from orchestra.runtime import (
    ContainerCreateError,
    ContainerSpec,
    ImagePullError,
    Mount,
    Resources,
    Runtime,
    State,
)

if TYPE_CHECKING:
    from orchestra._clock import Clock
    from orchestra._store import Store
    from orchestra.loops._kubelet import PodState
    from orchestra.objects import Container, Pod

__all__ = ["BACKOFF_RESET", "INITIAL_BACKOFF", "MAX_BACKOFF", "ContainerStarts"]

MAX_BACKOFF = 300.0
INITIAL_BACKOFF = 10.0
BACKOFF_RESET = 600.0  # a container that ran this long starts its backoff afresh


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


class ContainerStarts:
    """The part of :class:`~orchestra.loops._kubelet.NodeAgent` that starts containers;
    the attributes are set by its ``__init__``."""

    store: Store
    runtime: Runtime
    clock: Clock
    node_ip: str
    images: set[str]
    _containers: dict[str, str]  # container id -> pod key, shared by agents
    _tg: Any

    if TYPE_CHECKING:  # NodeAgent's own (_remove_quietly: its termination's, _podstop)
        def enqueue(self, key: str) -> None: ...
        def _event(self, pod: Pod, type_: str, reason: str, message: str) -> None: ...
        async def _remove_quietly(self, cid: str) -> None: ...

    def _backoff_delay(self, pod: Pod, st: PodState, rec: ContainerRecord) -> float:
        """Seconds still to wait before restarting ``rec`` (0: restart now); sets the
        CrashLoopBackOff waiting state while waiting, except after a failed create,
        which keeps showing its CreateContainerError (there is no container to
        restart, as with the kubelet)."""
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
        if rec.create_failed:
            return remaining
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
            mounts.append(Mount(host, vm.mount_path,
                                bool(vm.read_only) or vm.name in st.volumes.read_only,
                                vm.sub_path or None))
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
            init=rec.init and not rec.sidecar,
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
            # No container to restart: the next create waits out the same back-off
            # as a crash, showing CreateContainerError meanwhile.
            rec.create_failed = True
            rec.waiting_reason = "CreateContainerError"
            rec.waiting_message = str(exc)
            st.started_mono[rec.name] = st.exit_mono[rec.name] = self.clock.monotonic()
            self._event(pod, "Warning", "Failed", f"Error: {exc}")
            return rec.backoff  # 0: the first restart is immediate
        rec.create_failed = False
        self._containers[cid] = st.key
        # (the kubelet's words: "Created container: NAME", then "Started container NAME")
        self._event(pod, "Normal", "Created", f"Created container: {c.name}")
        rec.container_id = cid
        rec.ready = False
        rec.started = False
        try:
            await self.runtime.start_container(cid)
        except ContainerCreateError as exc:
            # The container exists and ended (containerd: exited, 128, StartError): it
            # is restarted under the CrashLoopBackOff back-off like any exit.
            status = await self.runtime.container_status(cid)
            if status.state is not State.EXITED:
                status = replace(status, state=State.EXITED, exit_code=128,
                                 reason="StartError", message=str(exc),
                                 finished_at=self.clock.now())
            rec.status = status
            if rec.sidecar or (pod.spec.restart_policy or "Always") != "Never":
                rec.waiting_reason = "RunContainerError"
                rec.waiting_message = str(exc)
            else:  # not to be restarted: shown as terminated (StartError)
                rec.waiting_reason = ""
                rec.waiting_message = None
            st.started_mono[rec.name] = st.exit_mono[rec.name] = self.clock.monotonic()
            self._event(pod, "Warning", "Failed", f"Error: {exc}")
            return rec.backoff  # 0: the first restart is immediate
        self._event(pod, "Normal", "Started", f"Started container {c.name}")
        if c.lifecycle is not None and c.lifecycle.post_start is not None:
            failed = await self._post_start(pod, st, c, rec, cid)
            if failed is not None:
                return failed
        rec.status = await self.runtime.container_status(cid)
        rec.waiting_reason = ""
        rec.waiting_message = None
        st.started_mono[rec.name] = self.clock.monotonic()
        st.exit_mono.pop(rec.name, None)
        if rec.exited:  # it already finished
            st.exit_mono[rec.name] = self.clock.monotonic()
        self._ensure_probes(pod, st, c, rec)
        return None

    async def _post_start(self, pod: Pod, st: PodState, c: Container, rec: ContainerRecord,
                          cid: str) -> float | None:
        """Run ``c``'s postStart hook; on failure kill the container (it restarts under
        the back-off, showing ``PostStartHookError`` meanwhile) and return when to look
        again."""
        assert st.sandbox is not None
        message = await run_hook(runtime=self.runtime, clock=self.clock, sandbox=st.sandbox,
                                 pod=pod, container=c, container_id=cid, hook="postStart",
                                 limit=POST_START_TIMEOUT)
        if message is None:
            return None
        self._event(pod, "Warning", "FailedPostStartHook", message)
        grace = pod.spec.termination_grace_period_seconds
        await self._kill(pod, st, c.name, cid, float(30 if grace is None else grace),
                         "FailedPostStartHook")
        rec.status = await self.runtime.container_status(cid)
        rec.waiting_reason = "PostStartHookError"
        rec.waiting_message = message
        st.started_mono[rec.name] = st.exit_mono[rec.name] = self.clock.monotonic()
        return rec.backoff

    async def _kill(self, pod: Pod, st: PodState, name: str, cid: str, grace: float,
                    message: str) -> None:
        """Stop one container as the kubelet's killContainer does: the ``Killing`` event
        with ``message``, the preStop hook inside the grace period, then the stop signal
        with what is left of it."""
        self._event(pod, "Normal", "Killing", message)
        container = next((x for x in (*(pod.spec.init_containers or ()),
                                      *pod.spec.containers) if x.name == name), None)
        grace, failed = await pre_stop(runtime=self.runtime, clock=self.clock,
                                       sandbox=st.sandbox, pod=pod, container=container,
                                       container_id=cid, grace=grace)
        if failed is not None:
            self._event(pod, "Warning", "FailedPreStopHook", failed)
        await self.runtime.stop_container(cid, grace)

    def _ensure_probes(self, pod: Pod, st: PodState, c: Container, rec: ContainerRecord
                       ) -> None:
        """Probe workers for ``rec``'s current container once it runs (also when it
        reached running after a start delay)."""
        cid = rec.container_id
        if cid is not None and rec.running and rec.probed_id != cid:
            rec.probed_id = cid
            self._spawn_probes(pod, st, c, rec, cid)

    def _spawn_probes(self, pod: Pod, st: PodState, c: Container, rec: ContainerRecord,
                      cid: str) -> None:
        if not (c.liveness_probe or c.readiness_probe or c.startup_probe):
            return
        assert st.sandbox is not None and self._tg is not None
        key = st.key

        async def kill(message: str) -> None:
            grace = pod.spec.termination_grace_period_seconds
            await self._kill(pod, st, c.name, cid, float(30 if grace is None else grace),
                             message)

        def event(type_: str, reason: str, message: str) -> None:
            self._event(pod, type_, reason, message)

        async def probes() -> None:
            with anyio.CancelScope() as scope:
                rec.probe_scope = scope
                await run_probes(clock=self.clock, runtime=self.runtime, sandbox=st.sandbox,  # type: ignore[arg-type]
                                 container=c, rec=rec, container_id=cid,
                                 changed=lambda: self.enqueue(key), event=event, kill=kill)

        self._tg.start_soon(probes)
