"""The ``process`` runtime: each container is a local process group. No root needed.

What a container is here:

- The process runs ``command + args`` directly: there is no image, so no image
  entrypoint to fall back on; a container with neither fails with
  ``ContainerCreateError("no command specified")``. ``image`` is metadata only.
- A start that fails (command not found, permission denied, exec format error, a bad
  working directory) raises ``ContainerCreateError`` from ``start_container`` and
  leaves the container exited with code 128 and reason ``StartError``, as containerd
  leaves a task that failed to start; the kubelet restarts it under its back-off.
- Its environment is exactly the given env, plus ``PATH``, ``HOME`` and ``LANG`` from the
  host when the env does not set them, plus ``ORCHESTRA_ROOT`` (below).
- Volumes: a process cannot have paths remapped, so each container gets a *root*
  directory, ``<sandbox dir>/root/<container>``, in which every mount appears as a
  symlink at its container path (``<root>/etc/config -> <host path>``). The root is the
  default working directory and is exported as ``ORCHESTRA_ROOT``, so a command reaches
  its volumes with relative paths (``cat etc/config/key``) or ``$ORCHESTRA_ROOT/...``.
  A ``workingDir`` is looked up under the root first, then on the host.
- ``runAsUser``/``runAsGroup`` apply only when the host process is root; otherwise the
  container runs as the host user. There is no isolation and no resource limits.
- Output goes to CRI log files, one per attempt
  (``<log dir>/<container>/<attempt>.log``), so previous attempts stay readable until
  the sandbox is removed. The log dir is ``SandboxSpec.log_dir`` (owned by the caller,
  never deleted here) or ``<sandbox dir>/logs``.
- Stop sends SIGTERM to the group, SIGKILL after the grace period on the runtime's
  clock. When the main process exits, the rest of its group is killed, as the kernel
  does to a container's PID namespace. Signals map to exit codes 128+n (143, 137).

Nothing leaks, however the host ends: children get ``PR_SET_PDEATHSIG=SIGKILL``; a reaper
process (``_reaper.py``) holds a pipe from the host, knows every live process group and
kills them and removes ``state_dir`` when the pipe closes without ``quit``; an ``atexit``
handler does the same on a normal interpreter exit; ``close()`` does it in order.

Starting processes (and exec) is ``_spawn``'s; what is kept of a sandbox and a container,
and a container's root directory, ``_containers``'.
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import os
import secrets
import shutil
import signal
import sys
import time
from collections.abc import AsyncIterator
from typing import Any

from orchestra._clock import Clock
from orchestra._errors import NotFound, OrchestraError
from orchestra.runtime import _logs
from orchestra.runtime._probe import run_probe
from orchestra.runtime._protocol import (
    HOOKS,
    Capabilities,
    ContainerCreateError,
    ContainerEvent,
    ContainerSpec,
    ContainerStats,
    ContainerStatus,
    ExecResult,
    ImageInfo,
    Listener,
    ProbeKind,
    ProbeOutcome,
    SandboxInfo,
    SandboxSpec,
    State,
)
from orchestra.runtime.process._containers import Container, Sandbox, make_root, makedirs
from orchestra.runtime.process._etc import probe
from orchestra.runtime.process._proc import group_usage, kill_group
from orchestra.runtime.process._spawn import (
    ProcessProtocol,
    Reaper,
    exec_in,
    exit_code,
    resolve,
    spawn,
)

_log = logging.getLogger(__name__)
_PASSTHROUGH = ("PATH", "HOME", "LANG")
_REAPER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_reaper.py")


class ProcessRuntime:
    """Containers as local process groups; see the module docstring for the model."""

    name = "process"
    capabilities = Capabilities(exec=True, logs=True, metrics=True)

    def __init__(
        self,
        *,
        clock: Clock,
        cluster_name: str = "orchestra",
        state_dir: str,
        close_grace: float = 1.0,
        **options: Any,
    ) -> None:
        self.clock = clock
        self.cluster_name = cluster_name
        self.state_dir = os.path.abspath(state_dir)
        self.close_grace = close_grace
        self._listener: Listener | None = None
        self._sandboxes: dict[str, Sandbox] = {}
        self._containers: dict[str, Container] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._reaper: Reaper | None = None
        self._started = False
        self._as_root = os.geteuid() == 0
        # None: pods get their own /etc/resolv.conf and /etc/hosts; else why not
        self.private_etc_unsupported: str | None = None

    # ------------------------------------------------------------------ lifecycle

    def set_listener(self, listener: Listener) -> None:
        self._listener = listener

    async def start(self) -> None:
        if self._started:
            return
        os.makedirs(os.path.join(self.state_dir, "pods"), exist_ok=True)
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-I", _REAPER, self.state_dir,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
            cwd="/",
            start_new_session=True,
        )  # fmt: skip
        self._reaper = Reaper(proc)
        self.private_etc_unsupported = await asyncio.to_thread(probe, self.state_dir)
        self._started = True
        atexit.register(self._atexit)

    def _atexit(self) -> None:
        """Interpreter exit without close(): kill everything, remove the state."""
        for c in self._containers.values():
            if c.pid is not None and c.state is State.RUNNING:
                kill_group(c.pid, signal.SIGKILL)
        shutil.rmtree(self.state_dir, ignore_errors=True)

    async def close(self) -> None:
        if not self._started:
            return
        running = [c for c in self._containers.values() if c.state is State.RUNNING]
        for c in running:
            kill_group(c.pid or 0, signal.SIGTERM)
        if running:
            waits = [asyncio.ensure_future(c.exited.wait()) for c in running]
            _, pending = await asyncio.wait(waits, timeout=self.close_grace)
            for c in running:
                if c.state is State.RUNNING:
                    kill_group(c.pid or 0, signal.SIGKILL)
            if pending:
                await asyncio.wait(pending, timeout=5)
            for w in pending:
                w.cancel()
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=5)
        for t in list(self._tasks):
            t.cancel()
        self._containers.clear()
        self._sandboxes.clear()
        await asyncio.to_thread(shutil.rmtree, self.state_dir, True)
        if self._reaper is not None:
            await self._reaper.stop()
            self._reaper = None
        atexit.unregister(self._atexit)
        self._started = False

    # ------------------------------------------------------------------ images

    async def pull_image(self, sandbox: SandboxSpec, container: ContainerSpec) -> ImageInfo:
        """Nothing to pull: the image is metadata only."""
        return ImageInfo(ref=container.image, id=f"process://{container.image}")

    # ------------------------------------------------------------------ sandboxes

    async def create_sandbox(self, spec: SandboxSpec) -> str:
        if not self._started:
            raise OrchestraError("process runtime: start() was not called")
        sid = secrets.token_hex(32)
        sdir = os.path.join(self.state_dir, "pods", f"{spec.namespace}_{spec.name}_{spec.uid}")
        log_dir = spec.log_dir or os.path.join(sdir, "logs")
        await asyncio.to_thread(makedirs, sdir, log_dir)
        self._sandboxes[sid] = Sandbox(sid, spec, sdir, log_dir)
        return sid

    async def remove_sandbox(self, sandbox_id: str) -> None:
        sandbox = self._sandboxes.get(sandbox_id)
        if sandbox is None:
            return
        for c in list(sandbox.containers.values()):
            if c.state is State.RUNNING:
                await self.stop_container(c.id, 0)
            self._containers.pop(c.id, None)
        self._sandboxes.pop(sandbox_id, None)
        await asyncio.to_thread(shutil.rmtree, sandbox.dir, True)

    async def list_sandboxes(self) -> list[SandboxInfo]:
        return [
            SandboxInfo(
                id=s.id, uid=s.spec.uid, namespace=s.spec.namespace, name=s.spec.name,
                containers=tuple(self._status(c) for c in s.containers.values()
                                 if not c.removed),
            )
            for s in self._sandboxes.values()
        ]  # fmt: skip

    # ------------------------------------------------------------------ containers

    def _get(self, container_id: str) -> Container:
        c = self._containers.get(container_id)
        if c is None:
            raise NotFound(f'container "{container_id}" not found')
        return c

    def _find(self, container_id: str) -> Container:
        """Also finds removed containers whose sandbox still exists (for their logs)."""
        c = self._containers.get(container_id)
        if c is not None:
            return c
        for sandbox in self._sandboxes.values():
            found = sandbox.containers.get(container_id)
            if found is not None:
                return found
        raise NotFound(f'container "{container_id}" not found')

    async def create_container(self, sandbox_id: str, spec: ContainerSpec) -> str:
        sandbox = self._sandboxes.get(sandbox_id)
        if sandbox is None:
            raise NotFound(f'sandbox "{sandbox_id}" not found')
        argv = [*spec.command, *spec.args]
        if not argv:
            raise ContainerCreateError(
                "no command specified: the process runtime has no image entrypoint, "
                "set command (and args)"
            )
        root = os.path.join(sandbox.dir, "root", spec.name)
        env = dict(spec.env)
        for key in _PASSTHROUGH:
            if key not in env and key in os.environ:
                env[key] = os.environ[key]
        env.setdefault("ORCHESTRA_ROOT", root)
        try:
            await asyncio.to_thread(make_root, root, spec)
        except OSError as exc:
            raise ContainerCreateError(f"failed to prepare mounts: {exc}") from None
        cid = secrets.token_hex(32)
        log_path = os.path.join(sandbox.log_dir, spec.name, f"{spec.attempt}.log")
        c = Container(cid, sandbox, spec, argv, env, root, log_path)
        sandbox.containers[cid] = c
        self._containers[cid] = c
        return cid

    def _etc(self, sandbox: Sandbox) -> tuple[str | None, str | None] | None:
        """The pod's own resolv.conf and hosts, where this machine lets a process have
        them (see ``_etc``)."""
        spec = sandbox.spec
        if self.private_etc_unsupported is not None or not (spec.resolv_conf or
                                                             spec.hosts_file):
            return None
        return spec.resolv_conf, spec.hosts_file

    def _cwd(self, c: Container) -> str:
        wd = c.spec.working_dir
        if not wd:
            return c.root
        mapped = os.path.join(c.root, wd.lstrip("/"))
        if os.path.isdir(mapped):
            return mapped
        if os.path.isdir(wd):
            return wd
        raise ContainerCreateError(
            f'chdir to cwd ("{wd}") set in config.json failed: no such file or directory'
        )

    async def start_container(self, container_id: str) -> None:
        c = self._get(container_id)
        if c.state is not State.CREATED:
            raise ContainerCreateError(f"container {container_id} is not in created state")
        try:
            cwd = self._cwd(c)
            executable = resolve(c.argv[0], c.env, cwd)
        except ContainerCreateError as exc:
            self._start_failed(c, str(exc))
            raise
        writer = _logs.CriLogWriter(c.log_path, self.clock)
        kwargs: dict[str, Any] = {}
        if self._as_root:
            if c.spec.run_as_user is not None:
                kwargs["user"] = c.spec.run_as_user
            if c.spec.run_as_group is not None:
                kwargs["group"] = c.spec.run_as_group
        try:
            transport, protocol = await spawn(
                c.argv, writer.write, executable=executable, cwd=cwd, env=c.env,
                etc=self._etc(c.sandbox), **kwargs
            )
        except OSError as exc:
            writer.close()
            reason = (exc.strerror or str(exc)).lower()
            message = f'exec: "{c.argv[0]}": {reason}'
            self._start_failed(c, message)
            raise ContainerCreateError(message) from None
        pid = transport.get_pid()
        if self._reaper is not None:
            self._reaper.add(pid)
        c.pid = pid
        c.cwd = cwd
        c.state = State.RUNNING
        c.started_at = self.clock.now()
        c.real_start = time.monotonic()
        task = asyncio.create_task(
            self._supervise(c, protocol, writer), name=f"container {c.id[:12]}"
        )
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        self._notify(c)

    def _start_failed(self, c: Container, message: str) -> None:
        """A container whose process could not be started ends as containerd ends a
        task that failed to start: exited with 128, reason ``StartError``."""
        c.state = State.EXITED
        c.exit_code = 128
        c.reason = "StartError"
        c.message = message
        c.finished_at = self.clock.now()
        c.exited.set()
        self._notify(c)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            _log.error("process runtime: supervisor failed", exc_info=task.exception())

    async def _supervise(
        self, c: Container, protocol: ProcessProtocol, writer: _logs.CriLogWriter
    ) -> None:
        """Wait for the main process to exit, then end the container and report it."""
        assert c.pid is not None
        try:
            returncode = await protocol.finish(c.pid)
        finally:
            writer.close()
            if self._reaper is not None:
                self._reaper.remove(c.pid)
            if c.kill_timer is not None:
                c.kill_timer.cancel()
                c.kill_timer = None
        c.exit_code = exit_code(returncode)
        c.finished_at = self.clock.now()
        c.state = State.EXITED
        c.exited.set()
        self._notify(c)

    def _notify(self, c: Container) -> None:
        if self._listener is None or c.removed:
            return
        try:
            self._listener(ContainerEvent(c.sandbox.id, c.id, self._status(c)))
        except Exception:
            _log.exception("runtime listener failed")

    async def stop_container(self, container_id: str, grace_period: float) -> None:
        c = self._get(container_id)
        if c.state is State.CREATED:
            c.state = State.EXITED
            c.exit_code = 143
            c.finished_at = self.clock.now()
            c.exited.set()
            self._notify(c)
            return
        if c.state is not State.RUNNING or c.pid is None:
            return
        pgid = c.pid
        if grace_period <= 0:
            kill_group(pgid, signal.SIGKILL)
        else:
            kill_group(pgid, signal.SIGTERM)
            if c.kill_timer is None:
                c.kill_timer = self.clock.call_later(
                    grace_period, lambda: kill_group(pgid, signal.SIGKILL)
                )
        await c.exited.wait()

    async def remove_container(self, container_id: str) -> None:
        c = self._containers.get(container_id)
        if c is None:
            return
        if c.state is State.RUNNING:
            await self.stop_container(container_id, 0)
        self._containers.pop(container_id, None)
        c.removed = True

    def _status(self, c: Container) -> ContainerStatus:
        reason = c.reason
        if reason is None and c.exit_code is not None:
            reason = "Completed" if c.exit_code == 0 else "Error"
        return ContainerStatus(
            id=c.id, name=c.spec.name, state=c.state, exit_code=c.exit_code, reason=reason,
            message=c.message, started_at=c.started_at, finished_at=c.finished_at,
            pid=c.pid, image_id=f"process://{c.spec.image}",
        )  # fmt: skip

    async def container_status(self, container_id: str) -> ContainerStatus:
        return self._status(self._get(container_id))

    # ------------------------------------------------------------------ logs

    async def logs(
        self,
        container_id: str,
        *,
        tail: int | None = None,
        since: float | None = None,
        timestamps: bool = False,
    ) -> str:
        c = self._find(container_id)
        return await _logs.read_log(c.log_path, tail=tail, since=since, timestamps=timestamps)

    async def stream_logs(
        self, container_id: str, *, tail: int | None = None
    ) -> AsyncIterator[str]:
        c = self._find(container_id)
        sandbox_id = c.sandbox.id

        def finished() -> bool:
            return c.state is State.EXITED or sandbox_id not in self._sandboxes

        async for line in _logs.follow_log(c.log_path, finished=finished, tail=tail):
            yield line

    # ------------------------------------------------------------------ exec, probes, stats

    async def exec(
        self,
        container_id: str,
        argv: list[str],
        *,
        timeout: float | None = None,  # noqa: ASYNC109
    ) -> ExecResult:
        """Run ``argv`` in the container's env and working directory (its own process
        group, killed with its descendants on timeout, which raises ``Timeout``)."""
        c = self._get(container_id)
        if c.state is not State.RUNNING:
            raise OrchestraError(f"container {container_id} is not running")
        if not argv:
            raise OrchestraError("exec: no command given")
        return await exec_in(c, argv, timeout=timeout, etc=self._etc(c.sandbox),
                             reaper=self._reaper)

    async def probe(
        self, sandbox: SandboxSpec, container_id: str, kind: ProbeKind, probe: Any
    ) -> ProbeOutcome:
        async def run(command: list[str], seconds: float) -> ExecResult:
            return await self.exec(container_id, command, timeout=seconds)

        return await run_probe(probe, sandbox.pod_ip, run, hook=kind in HOOKS,
                               no_handler="probe has no handler (exec, httpGet, tcpSocket or grpc)")

    def filesystem_root(self, container_id: str) -> str:
        """Where the container's ``/`` is on the host (``cluster.copy_to``/``copy_from``):
        its root directory, whose mounts are symlinks to their host paths."""
        return self._get(container_id).root

    async def stats(self, container_id: str) -> ContainerStats:
        c = self._get(container_id)
        now = self.clock.now()
        if c.state is not State.RUNNING or c.pid is None:
            return ContainerStats(0.0, 0, now)
        usage = await asyncio.to_thread(group_usage, c.pid)
        real = time.monotonic()
        last_real, last_cpu = c.last_cpu or (c.real_start, 0.0)
        c.last_cpu = (real, usage.cpu_seconds)
        elapsed = real - last_real
        rate = max(0.0, usage.cpu_seconds - last_cpu) / elapsed if elapsed > 0 else 0.0
        return ContainerStats(cpu_milli=rate * 1000.0, memory_bytes=usage.rss_bytes, timestamp=now)
