"""Container stdio through FIFOs, the way containerd's shim expects them.

Order matters: the read end of each FIFO is opened (non-blocking) before Tasks.Create,
because the shim opens the write end during Create and would block, or the process
would lose output, without a reader. A FIFO with no writer reads as end-of-file, so we
also hold a write end of our own until the shim has its, and drop it after Create.
Readers run on the event loop (``add_reader``); end-of-file on both streams means the
process and every child holding its stdio have exited.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import stat
from collections.abc import Callable

Sink = Callable[[str, bytes], None]


class FifoSet:
    """stdout and stderr FIFOs in ``directory``; output goes to ``sink(stream, data)``."""

    def __init__(self, directory: str, sink: Sink) -> None:
        self.directory = directory
        self.stdout = os.path.join(directory, "stdout")
        self.stderr = os.path.join(directory, "stderr")
        self._sink = sink
        self._fds: dict[str, int] = {}
        self._keep: list[int] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self.closed: asyncio.Event = asyncio.Event()

    def open(self, *, create: bool = True) -> None:
        """Make the FIFOs (unless they exist) and start reading them."""
        os.makedirs(self.directory, mode=0o700, exist_ok=True)
        self._loop = asyncio.get_running_loop()
        for stream, path in (("stdout", self.stdout), ("stderr", self.stderr)):
            if create and not _is_fifo(path):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(path)
                os.mkfifo(path, 0o600)
            fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
            self._fds[stream] = fd
            if create:
                self._keep.append(os.open(path, os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC))
            self._loop.add_reader(fd, self._readable, stream)

    def release(self) -> None:
        """Drop our own write ends (call once the shim has opened its own)."""
        for fd in self._keep:
            os.close(fd)
        self._keep.clear()

    def _readable(self, stream: str) -> None:
        fd = self._fds.get(stream)
        if fd is None:
            return
        try:
            data = os.read(fd, 65536)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if data:
            self._sink(stream, data)
            return
        self._close_stream(stream)

    def _close_stream(self, stream: str) -> None:
        fd = self._fds.pop(stream, None)
        if fd is not None:
            assert self._loop is not None
            self._loop.remove_reader(fd)
            os.close(fd)
        if not self._fds:
            self.closed.set()

    async def drain(self, seconds: float) -> None:
        """Wait (real time, bounded) until both streams reached end-of-file."""
        self.release()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self.closed.wait()

    def close(self, *, remove: bool = True) -> None:
        self.release()
        for stream in list(self._fds):
            self._close_stream(stream)
        if remove:
            shutil.rmtree(self.directory, ignore_errors=True)


def _is_fifo(path: str) -> bool:
    try:
        return stat.S_ISFIFO(os.stat(path).st_mode)
    except FileNotFoundError:
        return False
