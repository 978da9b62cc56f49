"""The ``fake`` runtime: simulated containers, scripted by pod annotations.

Built for tests and for simulating thousands of nodes and a hundred thousand pods in
one process, so each container is a small slotted record and every delay is one
``clock.call_later`` timer (no task per container). Everything runs on the cluster
clock: with a ``ManualClock`` nothing happens until the test advances time.

Scripting (``fake.orchestra.dev/<key>`` for every container of the pod, or
``fake.orchestra.dev/<container>.<key>`` for one container, which wins):

==================  ====================================================  ============
key                 meaning                                               default
==================  ====================================================  ============
start-delay         time from ``start_container`` to running              ``0s``
exit-after          run this long, then exit                              never (1)
exit-code           the exit code when it exits by itself; a list         ``0``
                    (``1,1,0``) gives each attempt of the container in
                    its pod its own code, the last one repeating
pull-error          ``pull_image`` fails with this message                none
create-error        ``create_container`` fails with this message          none
start-error         ``start_container`` fails with this message (the      none
                    container ends as exited, 128, ``StartError``)
cpu, memory         simulated usage (``250m``, ``64Mi``)                  ``0``
probe-fail          probes that fail (``readiness``, ``liveness,startup``) none
ignore-sigterm      ``"true"``: stop waits out the grace period (137)     false
exec-exit-code      exit code of every exec                               ``0``
==================  ====================================================  ============

(1) An init container (``ContainerSpec.init``: an ordinary one, not a sidecar) that
no annotation gives an ``exit-after`` exits at once with its ``exit-code``, so a pod's
initialization completes by default, as most init containers of real manifests do.

A stopped container exits with 143 (SIGTERM) at once, or with 137 (SIGKILL) after the
grace period when it ignores SIGTERM. A container that has not reached running when it
is stopped exits the same way. Invalid annotation values fail ``create_container``
with a :class:`ContainerCreateError` naming the annotation.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import logging
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from orchestra._clock import Clock, TimerHandle
from orchestra._errors import NotFound, OrchestraError
from orchestra.objects._quantity import cpu_milli, to_bytes
from orchestra.runtime import _logs
from orchestra.runtime._durations import parse_duration
from orchestra.runtime._probe import exec_command, probe_field
from orchestra.runtime._protocol import (
    Capabilities,
    ContainerCreateError,
    ContainerEvent,
    ContainerSpec,
    ContainerStats,
    ContainerStatus,
    ExecResult,
    ImageInfo,
    ImagePullError,
    Listener,
    ProbeKind,
    ProbeOutcome,
    SandboxInfo,
    SandboxSpec,
    State,
)

PREFIX = "fake.orchestra.dev/"
_log = logging.getLogger(__name__)

__all__ = ["PREFIX", "FakeRuntime", "Script"]


# ---------------------------------------------------------------------------- scripts


@dataclass(frozen=True, slots=True)
class Script:
    """One container's resolved annotations. Shared between containers with the same
    annotations (most pods of a workload), so it costs nothing per container."""

    start_delay: float = 0.0
    exit_after: float | None = None
    exit_codes: tuple[int, ...] = (0,)
    pull_error: str | None = None
    create_error: str | None = None
    start_error: str | None = None
    cpu_milli: int = 0
    memory_bytes: int = 0
    probe_fail: frozenset[str] = frozenset()
    ignore_sigterm: bool = False
    exec_exit_code: int = 0


_DEFAULT = Script()
_KEYS = (
    "start-delay", "exit-after", "exit-code", "pull-error", "create-error", "start-error",
    "cpu", "memory", "probe-fail", "ignore-sigterm", "exec-exit-code",
)  # fmt: skip
_CACHE_MAX = 4096
_cache: dict[tuple[str, tuple[tuple[str, str], ...]], Script] = {}


def _codes(raw: str) -> tuple[int, ...]:
    codes = tuple(int(part) for part in raw.split(","))
    if not codes:
        raise ValueError(raw)
    return codes


def _script(annotations: Mapping[str, str], container: str) -> Script:
    """The script for ``container``; raises ``ValueError`` naming a bad annotation."""
    own = tuple(sorted((k, v) for k, v in annotations.items() if k.startswith(PREFIX)))
    if not own:
        return _DEFAULT
    key = (container, own)
    cached = _cache.get(key)
    if cached is not None:
        return cached
    values = dict(own)
    chosen: dict[str, tuple[str, str]] = {}
    for k in _KEYS:
        for name in (f"{PREFIX}{container}.{k}", f"{PREFIX}{k}"):
            if name in values:
                chosen[k] = (name, values[name])
                break

    def get(k: str, parse: Callable[[str], Any]) -> Any:
        name, raw = chosen[k]
        try:
            return parse(raw)
        except (ValueError, ArithmeticError, OrchestraError):
            raise ValueError(f"invalid annotation {name}: {raw!r}") from None

    fields: dict[str, Any] = {}
    if "start-delay" in chosen:
        fields["start_delay"] = get("start-delay", parse_duration)
    if "exit-after" in chosen:
        fields["exit_after"] = get("exit-after", parse_duration)
    if "exit-code" in chosen:
        fields["exit_codes"] = get("exit-code", _codes)
    if "pull-error" in chosen:
        fields["pull_error"] = chosen["pull-error"][1]
    if "create-error" in chosen:
        fields["create_error"] = chosen["create-error"][1]
    if "start-error" in chosen:
        fields["start_error"] = chosen["start-error"][1]
    if "cpu" in chosen:
        fields["cpu_milli"] = get("cpu", cpu_milli)
    if "memory" in chosen:
        fields["memory_bytes"] = get("memory", to_bytes)
    if "probe-fail" in chosen:
        fields["probe_fail"] = frozenset(
            p.strip().lower() for p in chosen["probe-fail"][1].split(",") if p.strip()
        )
    if "ignore-sigterm" in chosen:
        fields["ignore_sigterm"] = chosen["ignore-sigterm"][1].strip().lower() == "true"
    if "exec-exit-code" in chosen:
        fields["exec_exit_code"] = get("exec-exit-code", int)
    script = Script(**fields)
    if len(_cache) >= _CACHE_MAX:
        _cache.clear()
    _cache[key] = script
    return script


# ---------------------------------------------------------------------------- state


@dataclass(slots=True, eq=False)
class _Container:
    id: str
    sandbox_id: str
    name: str
    image: str
    script: Script
    init: bool = False  # an ordinary init container: exits at once unless scripted
    planned_exit: int = 0  # the code it exits with by itself (this attempt's)
    state: State = State.CREATED
    started_at: float | None = None
    finished_at: float | None = None
    exit_code: int | None = None
    reason: str | None = None  # set for a failed start (StartError)
    message: str | None = None
    timer: TimerHandle | None = None
    # Futures of stop_container and stream_logs waiting for the next change; None
    # (not an empty list) while nobody waits, to keep idle containers small.
    waiters: list[asyncio.Future[None]] | None = None
    removed: bool = False


@dataclass(slots=True, eq=False)
class _Sandbox:
    id: str
    spec: SandboxSpec
    containers: dict[str, _Container] = field(default_factory=dict)
    attempts: dict[str, int] = field(default_factory=dict)  # containers made, by name


class FakeRuntime:
    """Simulated containers; see the module docstring for the scripting annotations."""

    name = "fake"
    capabilities = Capabilities(exec=True, logs=True, metrics=True, simulated=True)

    def __init__(
        self, *, clock: Clock, cluster_name: str = "orchestra", state_dir: str = "",
        **options: Any,
    ) -> None:  # fmt: skip
        self.clock = clock
        self.cluster_name = cluster_name
        self.state_dir = state_dir
        self._listener: Listener | None = None
        self._sandboxes: dict[str, _Sandbox] = {}
        self._containers: dict[str, _Container] = {}
        self._ids = itertools.count(1)
        self._prefix = hashlib.sha256(f"{cluster_name}/{id(self)}".encode()).hexdigest()[:16]

    # ------------------------------------------------------------------ lifecycle

    def set_listener(self, listener: Listener) -> None:
        self._listener = listener

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        for c in self._containers.values():
            if c.timer is not None:
                c.timer.cancel()
                c.timer = None
            self._wake(c)
        self._containers.clear()
        self._sandboxes.clear()

    def _new_id(self) -> str:
        return f"{self._prefix}{next(self._ids):048x}"

    # ------------------------------------------------------------------ images

    async def pull_image(self, sandbox: SandboxSpec, container: ContainerSpec) -> ImageInfo:
        try:
            script = _script(sandbox.annotations, container.name)
        except ValueError:
            script = _DEFAULT
        if script.pull_error is not None:
            raise ImagePullError(script.pull_error)
        digest = hashlib.sha256(container.image.encode()).hexdigest()
        return ImageInfo(ref=container.image, id=f"sha256:{digest}")

    # ------------------------------------------------------------------ sandboxes

    async def create_sandbox(self, spec: SandboxSpec) -> str:
        sid = self._new_id()
        self._sandboxes[sid] = _Sandbox(sid, spec)
        return sid

    async def remove_sandbox(self, sandbox_id: str) -> None:
        sandbox = self._sandboxes.pop(sandbox_id, None)
        if sandbox is None:
            return
        for c in sandbox.containers.values():
            if c.timer is not None:
                c.timer.cancel()
                c.timer = None
            self._containers.pop(c.id, None)
            c.removed = True
            self._wake(c)

    async def list_sandboxes(self) -> list[SandboxInfo]:
        return [
            SandboxInfo(
                id=s.id, uid=s.spec.uid, namespace=s.spec.namespace, name=s.spec.name,
                containers=tuple(self._status(c) for c in s.containers.values()
                                 if not c.removed),
            )
            for s in self._sandboxes.values()
        ]  # fmt: skip

    def kill_sandbox(self, sandbox_id: str, exit_code: int = 137) -> None:
        """Every container of the sandbox dies at once (a node failure, an OOM kill)."""
        sandbox = self._sandboxes.get(sandbox_id)
        if sandbox is None:
            return
        for c in list(sandbox.containers.values()):
            if c.state in (State.CREATED, State.RUNNING) and not c.removed:
                self._exit(c, exit_code)

    def kill_all(self, exit_code: int = 137) -> None:
        """Every container of this runtime dies at once (``Cluster.fail_node``)."""
        for sid in list(self._sandboxes):
            self.kill_sandbox(sid, exit_code)

    # ------------------------------------------------------------------ containers

    def _get(self, container_id: str) -> _Container:
        c = self._containers.get(container_id)
        if c is None:
            raise NotFound(f'container "{container_id}" not found')
        return c

    async def create_container(self, sandbox_id: str, spec: ContainerSpec) -> str:
        sandbox = self._sandboxes.get(sandbox_id)
        if sandbox is None:
            raise NotFound(f'sandbox "{sandbox_id}" not found')
        try:
            script = _script(sandbox.spec.annotations, spec.name)
        except ValueError as exc:
            raise ContainerCreateError(str(exc)) from None
        if script.create_error is not None:
            raise ContainerCreateError(script.create_error)
        attempt = sandbox.attempts.get(spec.name, 0)
        sandbox.attempts[spec.name] = attempt + 1
        codes = script.exit_codes
        c = _Container(self._new_id(), sandbox_id, spec.name, spec.image, script,
                       init=spec.init, planned_exit=codes[min(attempt, len(codes) - 1)])
        sandbox.containers[c.id] = c
        self._containers[c.id] = c
        return c.id

    async def start_container(self, container_id: str) -> None:
        c = self._get(container_id)
        if c.state is not State.CREATED or c.timer is not None:
            raise ContainerCreateError(f"container {container_id} is not in created state")
        if c.script.start_error is not None:
            # As containerd reports a task that failed to start: exited, 128, StartError.
            c.state = State.EXITED
            c.exit_code = 128
            c.reason = "StartError"
            c.message = c.script.start_error
            c.finished_at = self.clock.now()
            self._notify(c)
            raise ContainerCreateError(c.script.start_error)
        if c.script.start_delay > 0:
            c.timer = self.clock.call_later(c.script.start_delay, lambda: self._run(c))
        else:
            self._run(c)

    def _run(self, c: _Container) -> None:
        c.timer = None
        if c.state is not State.CREATED or c.removed:
            return
        c.state = State.RUNNING
        c.started_at = self.clock.now()
        if c.script.exit_after is not None:
            c.timer = self.clock.call_later(
                c.script.exit_after, lambda: self._exit(c, c.planned_exit)
            )
        self._notify(c)
        if c.script.exit_after is None and c.init:
            self._exit(c, c.planned_exit)

    def _exit(self, c: _Container, code: int) -> None:
        if c.timer is not None:
            c.timer.cancel()
            c.timer = None
        if c.state is State.EXITED:
            return
        c.state = State.EXITED
        c.exit_code = code
        c.finished_at = self.clock.now()
        self._notify(c)

    def _notify(self, c: _Container) -> None:
        self._wake(c)
        if self._listener is not None and not c.removed:
            try:
                self._listener(ContainerEvent(c.sandbox_id, c.id, self._status(c)))
            except Exception:
                _log.exception("runtime listener failed")

    @staticmethod
    def _wake(c: _Container) -> None:
        waiters, c.waiters = c.waiters, None
        for fut in waiters or ():
            if not fut.done():
                fut.set_result(None)

    @staticmethod
    async def _changed(c: _Container) -> None:
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if c.waiters is None:
            c.waiters = []
        c.waiters.append(fut)
        await fut

    async def stop_container(self, container_id: str, grace_period: float) -> None:
        c = self._get(container_id)
        if c.state is State.EXITED:
            return
        if not c.script.ignore_sigterm:
            self._exit(c, 143)
            return
        if c.timer is not None:  # a pending start or exit: SIGTERM is ignored, not fatal
            c.timer.cancel()
        c.timer = self.clock.call_later(max(0.0, grace_period), lambda: self._exit(c, 137))
        while not _ended(c):
            await self._changed(c)

    async def remove_container(self, container_id: str) -> None:
        c = self._containers.pop(container_id, None)
        if c is None:
            return
        if c.timer is not None:
            c.timer.cancel()
            c.timer = None
        if c.state is not State.EXITED:
            self._exit(c, 137)
        c.removed = True
        self._wake(c)
        # the record stays in its sandbox so that its logs remain readable

    def _status(self, c: _Container) -> ContainerStatus:
        reason = c.reason
        if reason is None and c.exit_code is not None:
            reason = "Completed" if c.exit_code == 0 else "Error"
        return ContainerStatus(
            id=c.id, name=c.name, state=c.state, exit_code=c.exit_code, reason=reason,
            message=c.message, started_at=c.started_at, finished_at=c.finished_at,
            image_id="sha256:" + hashlib.sha256(c.image.encode()).hexdigest(),
        )  # fmt: skip

    async def container_status(self, container_id: str) -> ContainerStatus:
        return self._status(self._get(container_id))

    # ------------------------------------------------------------------ logs

    def _find(self, container_id: str) -> _Container:
        """Also finds removed containers whose sandbox still exists (for their logs)."""
        c = self._containers.get(container_id)
        if c is not None:
            return c
        for sandbox in self._sandboxes.values():
            found = sandbox.containers.get(container_id)
            if found is not None:
                return found
        raise NotFound(f'container "{container_id}" not found')

    @staticmethod
    def _lines(c: _Container) -> list[_logs.LogLine]:
        lines = []
        if c.started_at is not None:
            lines.append(_logs.LogLine(c.started_at, "stdout", f"fake container {c.name} started"))
        if c.finished_at is not None:
            lines.append(
                _logs.LogLine(
                    c.finished_at,
                    "stdout",
                    f"fake container {c.name} exited with code {c.exit_code}",
                )
            )
        return lines

    async def logs(
        self,
        container_id: str,
        *,
        tail: int | None = None,
        since: float | None = None,
        timestamps: bool = False,
    ) -> str:
        c = self._find(container_id)
        return _logs.render(self._lines(c), tail=tail, since=since, timestamps=timestamps)

    async def stream_logs(
        self, container_id: str, *, tail: int | None = None
    ) -> AsyncIterator[str]:
        c = self._find(container_id)
        lines = self._lines(c)
        sent = len(lines)
        for line in _logs.select(lines, tail=tail):
            yield line.text
        while not _ended(c):
            await self._changed(c)
            lines = self._lines(c)
            for line in lines[sent:]:
                yield line.text
            sent = len(lines)

    # ------------------------------------------------------------------ exec, probes, stats

    async def exec(
        self,
        container_id: str,
        argv: list[str],
        *,
        timeout: float | None = None,  # noqa: ASYNC109
    ) -> ExecResult:
        c = self._get(container_id)
        if c.state is not State.RUNNING:
            raise OrchestraError(f"container {container_id} is not running")
        return ExecResult(exit_code=c.script.exec_exit_code, stdout="", stderr="")

    async def probe(
        self, sandbox: SandboxSpec, container_id: str, kind: ProbeKind, probe: Any
    ) -> ProbeOutcome:
        c = self._get(container_id)
        if kind.lower() not in c.script.probe_fail:
            return ProbeOutcome(True)
        return ProbeOutcome(False, _failure_message(sandbox, probe))

    async def stats(self, container_id: str) -> ContainerStats:
        c = self._get(container_id)
        if c.state is not State.RUNNING:
            return ContainerStats(0.0, 0, self.clock.now())
        return ContainerStats(float(c.script.cpu_milli), c.script.memory_bytes, self.clock.now())


def _ended(c: _Container) -> bool:
    return c.state is State.EXITED or c.removed


def _failure_message(sandbox: SandboxSpec, probe: Any) -> str:
    """What the kubelet would say for this kind of probe failing."""
    command = exec_command(probe)
    if command is not None:
        return f'command "{" ".join(command)}" exited with 1'
    http = probe_field(probe, "http_get")
    if http is not None:
        return "HTTP probe failed with statuscode: 500"
    tcp = probe_field(probe, "tcp_socket")
    if tcp is not None:
        host = probe_field(tcp, "host") or sandbox.pod_ip
        return f"dial tcp {host}:{probe_field(tcp, 'port')}: connect: connection refused"
    if probe_field(probe, "grpc") is not None:
        return 'service unhealthy (responded with "NOT_SERVING")'
    return "probe failed"
