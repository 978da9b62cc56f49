"""Starting processes for the process runtime: a process group with the parent-death
signal set and its output read as it arrives (:func:`spawn`), the program looked up as
runc looks it up (:func:`resolve`), a command run in a container (:func:`exec_in`), and
the host's end of the reaper (:class:`Reaper`) that kills every group if the host dies.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import subprocess
from typing import TYPE_CHECKING, Any, Protocol

from orchestra._errors import Timeout
from orchestra.runtime._protocol import ContainerCreateError, ExecResult
from orchestra.runtime.process._etc import mount_etc_preexec
from orchestra.runtime.process._proc import kill_group, pdeathsig_preexec

if TYPE_CHECKING:
    from orchestra.runtime.process._containers import Container


class Reaper:
    """The host's end of the reaper's pipe."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc

    def _send(self, line: str) -> None:
        stdin = self.proc.stdin
        if stdin is not None and not stdin.is_closing():
            stdin.write(line.encode() + b"\n")

    def add(self, pgid: int) -> None:
        self._send(f"add {pgid}")

    def remove(self, pgid: int) -> None:
        self._send(f"del {pgid}")

    async def stop(self) -> None:
        self._send("quit")
        stdin = self.proc.stdin
        if stdin is not None:
            with contextlib.suppress(OSError):
                await stdin.drain()
            stdin.close()
        try:
            async with asyncio.timeout(5):
                await self.proc.wait()
        except TimeoutError:
            self.proc.kill()
            await self.proc.wait()


def exit_code(returncode: int) -> int:
    return returncode if returncode >= 0 else 128 - returncode


class Sink(Protocol):
    def __call__(self, stream: str, data: bytes) -> None: ...


class ProcessProtocol(asyncio.SubprocessProtocol):
    """Output to ``sink`` as it arrives; ``exited`` resolves with the return code as soon
    as the main process ends, even while a descendant still holds its pipes (which
    ``Process.wait()`` would wait for); ``closed`` once every pipe is closed."""

    def __init__(self, sink: Sink) -> None:
        loop = asyncio.get_running_loop()
        self.sink = sink
        self.exited: asyncio.Future[int] = loop.create_future()
        self.closed: asyncio.Future[None] = loop.create_future()
        self.transport: asyncio.SubprocessTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.SubprocessTransport)
        self.transport = transport

    def pipe_data_received(self, fd: int, data: bytes | str) -> None:
        self.sink(
            "stdout" if fd == 1 else "stderr",
            bytes(data, "utf-8") if isinstance(data, str) else data,
        )

    def process_exited(self) -> None:
        assert self.transport is not None
        code = self.transport.get_returncode()
        if not self.exited.done():
            self.exited.set_result(code if code is not None else 0)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed.done():
            self.closed.set_result(None)

    async def finish(self, pgid: int) -> int:
        """Wait for the main process, kill the rest of its group (as the kernel does to a
        container's PID namespace), let the pipes drain, close the transport."""
        try:
            return await self.exited
        finally:
            kill_group(pgid, signal.SIGKILL)
            try:
                async with asyncio.timeout(2):
                    await asyncio.shield(self.closed)
            except TimeoutError:
                pass
            if self.transport is not None:
                self.transport.close()


async def spawn(
    argv: list[str], sink: Sink, *, etc: tuple[str | None, str | None] | None = None,
    **kwargs: Any
) -> tuple[asyncio.SubprocessTransport, ProcessProtocol]:
    """Start ``argv`` in a new session (its own process group) with the parent-death
    signal set, forking from the event-loop thread (see ``pdeathsig_preexec``); with
    ``etc`` (resolv.conf, hosts), in a mount namespace where those are ``/etc``'s."""
    loop = asyncio.get_running_loop()
    preexec = pdeathsig_preexec()
    if etc is not None:
        preexec = mount_etc_preexec(preexec, *etc)
    return await loop.subprocess_exec(
        lambda: ProcessProtocol(sink),
        *argv,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
        preexec_fn=preexec,
        **kwargs,
    )


async def exec_in(
    c: Container, argv: list[str], *, timeout: float | None,  # noqa: ASYNC109
    etc: tuple[str | None, str | None] | None, reaper: Reaper | None,
) -> ExecResult:
    """Run ``argv`` in the container's env and working directory (its own process
    group, killed with its descendants on timeout, which raises ``Timeout``); ``etc``
    as for :func:`spawn`, each process group told to ``reaper``."""
    cwd = c.cwd or c.root
    try:
        executable = resolve(argv[0], c.env, cwd)
    except ContainerCreateError as exc:
        code = 126 if "permission denied" in str(exc) else 127
        return ExecResult(exit_code=code, stdout="", stderr=str(exc) + "\n")
    out: dict[str, list[bytes]] = {"stdout": [], "stderr": []}
    transport, protocol = await spawn(
        argv, lambda stream, data: out[stream].append(data),
        executable=executable, cwd=cwd, env=c.env, etc=etc,
    )  # fmt: skip
    pid = transport.get_pid()
    if reaper is not None:
        reaper.add(pid)
    try:
        async with asyncio.timeout(timeout):
            returncode = await asyncio.shield(protocol.exited)
    except TimeoutError:
        raise Timeout(f'command "{" ".join(argv)}" timed out') from None
    finally:
        kill_group(pid, signal.SIGKILL)
        await protocol.finish(pid)
        if reaper is not None:
            reaper.remove(pid)
    return ExecResult(
        exit_code=exit_code(returncode),
        stdout=b"".join(out["stdout"]).decode("utf-8", "replace"),
        stderr=b"".join(out["stderr"]).decode("utf-8", "replace"),
    )


def resolve(program: str, env: dict[str, str], cwd: str) -> str:
    """The executable for ``program`` as runc finds it, or a runc-worded error."""
    if "/" in program:
        path = program if os.path.isabs(program) else os.path.join(cwd, program)
        if not os.path.exists(path):
            raise ContainerCreateError(
                f'exec: "{program}": stat {program}: no such file or directory'
            )
        if os.path.isdir(path) or not os.access(path, os.X_OK):
            raise ContainerCreateError(f'exec: "{program}": permission denied')
        return path
    found = shutil.which(program, path=env.get("PATH", os.defpath))
    if found is None:
        raise ContainerCreateError(f'exec: "{program}": executable file not found in $PATH')
    if not os.path.isabs(found):
        found = os.path.join(cwd, found)
    return found
