"""The containerd runtime's view into running containers: logs, exec (a process
started in the container's task, with its own FIFOs), probes and CPU/memory stats.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import signal
import time
from collections.abc import AsyncIterator
from typing import Any

import grpc
from google.protobuf import any_pb2

from orchestra._errors import OrchestraError, Timeout
from orchestra.runtime import _logs
from orchestra.runtime._probe import run_probe
from orchestra.runtime._protocol import (
    HOOKS,
    ContainerStats,
    ExecResult,
    ProbeKind,
    ProbeOutcome,
    SandboxSpec,
    State,
)
from orchestra.runtime.containerd import _host
from orchestra.runtime.containerd._client import details
from orchestra.runtime.containerd._gen import tasks_pb2
from orchestra.runtime.containerd._io import FifoSet
from orchestra.runtime.containerd._records import DRAIN_TIMEOUT, PROCESS_TYPE, _start_error
from orchestra.runtime.containerd._tasks import _TaskOps


class _ExecOps(_TaskOps):
    """Logs, exec, probes and stats: part of
    :class:`~orchestra.runtime.containerd._runtime.ContainerdRuntime`."""

    def _log_file(self, container_id: str) -> str:
        c = self._containers.get(container_id)
        if c is not None:
            return c.log_path
        if container_id in self._log_paths:
            return self._log_paths[container_id][1]
        raise OrchestraError(f"container {container_id} not found")

    async def logs(
        self,
        container_id: str,
        *,
        tail: int | None = None,
        since: float | None = None,
        timestamps: bool = False,
    ) -> str:
        return await _logs.read_log(
            self._log_file(container_id), tail=tail, since=since, timestamps=timestamps
        )

    async def stream_logs(
        self, container_id: str, *, tail: int | None = None
    ) -> AsyncIterator[str]:
        path = self._log_file(container_id)
        c = self._containers.get(container_id)

        def finished() -> bool:
            return c is None or c.state is not State.RUNNING

        async for line in _logs.follow_log(path, finished=finished, tail=tail):
            yield line

    async def exec(
        self, container_id: str, argv: list[str], *, timeout: float | None = None  # noqa: ASYNC109 - the Protocol names it
    ) -> ExecResult:
        c = self._get(container_id)
        if c.state is not State.RUNNING:
            raise OrchestraError(f"container {container_id} is not running")
        if not argv:
            raise OrchestraError("exec: no command given")
        exec_id = f"exec-{secrets.token_hex(6)}"
        out: dict[str, bytearray] = {"stdout": bytearray(), "stderr": bytearray()}
        fifos = FifoSet(
            os.path.join(self.state_dir, "io", f"{c.id}-{exec_id}"),
            lambda stream, data: out[stream].extend(data),
        )
        fifos.open()
        md = self.client.md()
        process = json.dumps(dict(c.oci["process"], args=list(argv), terminal=False)).encode()
        try:
            try:
                await self.client.tasks.Exec(
                    tasks_pb2.ExecProcessRequest(
                        container_id=c.id,
                        exec_id=exec_id,
                        stdout=fifos.stdout,
                        stderr=fifos.stderr,
                        spec=any_pb2.Any(type_url=PROCESS_TYPE, value=process),
                    ),
                    metadata=md,
                )
                await self.client.tasks.Start(
                    tasks_pb2.StartRequest(container_id=c.id, exec_id=exec_id), metadata=md
                )
                fifos.release()  # the shim opens exec FIFOs at Start, not at Exec
            except grpc.aio.AioRpcError as exc:
                msg = details(exc)
                code = 127 if "no such file" in msg or "not found" in msg else 126
                return ExecResult(exit_code=code, stdout="", stderr=_start_error(msg) + "\n")
            wait = self.client.tasks.Wait(
                tasks_pb2.WaitRequest(container_id=c.id, exec_id=exec_id), metadata=md
            )
            try:
                async with asyncio.timeout(timeout):
                    resp = await wait
            except TimeoutError:
                await self._kill(c.id, signal.SIGKILL, exec_id=exec_id)
                raise Timeout(f'command "{" ".join(argv)}" timed out') from None
            await fifos.drain(DRAIN_TIMEOUT)
            return ExecResult(
                exit_code=int(resp.exit_status),
                stdout=out["stdout"].decode("utf-8", "replace"),
                stderr=out["stderr"].decode("utf-8", "replace"),
            )
        finally:
            fifos.close()
            with contextlib.suppress(grpc.aio.AioRpcError):
                await self.client.tasks.DeleteProcess(
                    tasks_pb2.DeleteProcessRequest(container_id=c.id, exec_id=exec_id), metadata=md
                )

    async def probe(
        self, sandbox: SandboxSpec, container_id: str, kind: ProbeKind, probe: Any
    ) -> ProbeOutcome:
        async def run(command: list[str], seconds: float) -> ExecResult:
            return await self.exec(container_id, command, timeout=seconds)

        return await run_probe(probe, sandbox.pod_ip, run, hook=kind in HOOKS,
                               no_handler="probe has no handler (exec, httpGet, tcpSocket or grpc)")

    def filesystem_root(self, container_id: str) -> str:
        """Where the running container's ``/`` is on the host (``cluster.copy_to``/
        ``copy_from``): its init process's root, its mounts included."""
        c = self._get(container_id)
        if c.state is not State.RUNNING or not c.pid:
            raise OrchestraError(f"container {container_id} is not running")
        return f"/proc/{c.pid}/root"

    async def stats(self, container_id: str) -> ContainerStats:
        c = self._get(container_id)
        now = self.clock.now()
        if c.state is not State.RUNNING:
            return ContainerStats(0.0, 0, now)
        cpu, mem = await asyncio.to_thread(_host.usage, c.cgroups_path)
        real = time.monotonic()
        last_real, last_cpu = c.last_cpu or (c.real_start, 0.0)
        c.last_cpu = (real, cpu)
        elapsed = real - last_real
        milli = max(0.0, (cpu - last_cpu) / elapsed * 1000.0) if elapsed > 0 else 0.0
        return ContainerStats(cpu_milli=milli, memory_bytes=mem, timestamp=now)
