"""The service proxy's thread: one edge-triggered ``epoll`` loop and its work queue.

:class:`_Engine` owns the ``orchestra-proxy`` thread. Handlers (listeners and the
connections of :mod:`orchestra.net.l4._forward`) are registered per file descriptor and
called with the event mask. :class:`~orchestra.net.l4._proxy.ServiceProxy` removes listeners
and stops the thread through :meth:`_Engine.call`, which wakes the loop with an eventfd.

Invariants:

- Everything registered here is touched by this thread only; the splice threads' own
  bookkeeping (``spliced``, ``threads``) is guarded by ``threads_lock``.
- Sockets that a handler ends go to ``doomed`` and are closed after the batch of events,
  so a file descriptor number is never reused while events for its old socket may still
  be in hand. Commands from other threads are answered after that, so what a command
  closed is closed when its caller hears back.
- Connect deadlines are all ``connect_timeout`` long, so they queue in order (a deque,
  not a heap).
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import logging
import os
import select
import socket
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from orchestra.net.l4._forward import _Conn, _Listener

__all__ = ["_Engine"]

log = logging.getLogger("orchestra.net.proxy")

_HAS_SPLICE = hasattr(os, "splice")
_MAX_EVENTS = 256

_IN = select.EPOLLIN
_OUT = select.EPOLLOUT
_RDHUP = select.EPOLLRDHUP
_HUP = select.EPOLLHUP
_ERR = select.EPOLLERR
_ET = select.EPOLLET
# The backend socket wants OUT while connecting: its first OUT edge says it completed.
_BACKEND_EVENTS = _IN | _OUT | _RDHUP | _ET
_CLIENT_EVENTS = _IN | _RDHUP | _ET
_ENDED = _RDHUP | _HUP | _ERR

# Connection states.
_CONNECTING_STATE, _FORWARDING, _SPLICED, _CLOSED = range(4)


class _Engine:
    """The proxy thread: one epoll, a handler per file descriptor, and a queue of
    changes posted by the async methods."""

    def __init__(self, *, buffer_size: int, connect_timeout: float, splice_threshold: int,
                 max_splice_threads: int, monotonic: Callable[[], float]) -> None:
        self.connect_timeout = connect_timeout
        self.splice_threshold = splice_threshold if _HAS_SPLICE else -1
        self.max_splice_threads = max_splice_threads
        self.monotonic = monotonic  # the cluster clock, for session affinity
        # Connections handed to splice threads, and those threads (under threads_lock).
        self.spliced: set[_Conn] = set()
        self.threads: set[threading.Thread] = set()
        self.threads_lock = threading.Lock()
        self.ep = select.epoll()
        self.handlers: dict[int, Callable[[int], None]] = {}
        self.conns: set[_Conn] = set()
        self.doomed: list[socket.socket] = []
        # Commands' outcomes, given to their futures after the batch (doomed sockets
        # closed): a caller told a listener is closed can bind its address at once.
        self.replies: list[tuple[concurrent.futures.Future[Any], bool, Any]] = []
        self.connect_deadlines: deque[tuple[float, _Conn, socket.socket]] = deque()
        self.commands: deque[tuple[Callable[[], Any], concurrent.futures.Future[Any]]] = \
            deque()
        self.buf = bytearray(buffer_size)
        self.view = memoryview(self.buf)
        self.size = buffer_size
        self.stopping = False
        self.wake = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
        self.handlers[self.wake] = self._on_wake
        self.ep.register(self.wake, _IN)
        self.thread = threading.Thread(target=self._run, name="orchestra-proxy", daemon=True)
        self.thread.start()

    def call(self, fn: Callable[[], Any]) -> concurrent.futures.Future[Any]:
        """Run ``fn`` on the proxy thread; its result or exception goes to the future."""
        fut: concurrent.futures.Future[Any] = concurrent.futures.Future()
        if not self.thread.is_alive():
            fut.set_exception(RuntimeError("the service proxy thread has stopped"))
            return fut
        self.commands.append((fn, fut))
        os.eventfd_write(self.wake, 1)
        return fut

    # -- the proxy thread's side ------------------------------------------------------

    def add_listener(self, lst: _Listener) -> None:
        """(From any thread: the handler is in place before epoll can report the fd.)"""
        fd = lst.sock.fileno()
        self.handlers[fd] = lst.on_event
        self.ep.register(fd, _IN)

    def close_listener(self, lst: _Listener) -> None:
        """Stop listening on ``lst`` now: a connect that follows is refused. (Its fd
        closes at the end of the batch; until then ``shutdown`` has already ended the
        listening, resetting what waited in the accept queue, as a close would.)"""
        fd = lst.sock.fileno()
        if fd < 0:
            return
        lst.on_close()
        if self.handlers.pop(fd, None) is not None:
            with contextlib.suppress(OSError):  # (ENOTCONN for a UDP socket)
                lst.sock.shutdown(socket.SHUT_RDWR)
            self.doomed.append(lst.sock)
        else:
            lst.sock.close()

    def stop(self, listeners: list[_Listener]) -> None:
        """Close ``listeners`` and every connection the thread drives, then end it."""
        for lst in listeners:
            self.close_listener(lst)
        for conn in list(self.conns):
            conn.close()
        self.stopping = True

    # -- called from any thread -------------------------------------------------------

    def open_connections(self) -> int:
        with self.threads_lock:
            return len(self.spliced) + len(self.conns)

    def end_splices(self) -> list[threading.Thread]:
        """Shut the sockets of spliced connections down (their threads then close them
        and end); the splice threads, to join."""
        with self.threads_lock:
            spliced = list(self.spliced)
            threads = list(self.threads)
        for conn in spliced:
            for s in (conn.client, conn.backend):
                if s is not None:
                    with contextlib.suppress(OSError):
                        s.shutdown(socket.SHUT_RDWR)
        return threads

    def _on_wake(self, mask: int) -> None:
        with contextlib.suppress(BlockingIOError):
            os.eventfd_read(self.wake)
        while self.commands:
            fn, fut = self.commands.popleft()
            try:
                self.replies.append((fut, True, fn()))
            except BaseException as e:
                self.replies.append((fut, False, e))

    def _run(self) -> None:
        poll = self.ep.poll
        handlers = self.handlers
        doomed = self.doomed  # closed after each batch (see the module doc)
        deadlines = self.connect_deadlines
        try:
            while not self.stopping:
                timeout = -1.0
                if deadlines:
                    timeout = max(0.0, deadlines[0][0] - time.monotonic())
                try:
                    events = poll(timeout, _MAX_EVENTS)
                except InterruptedError:
                    continue
                for fd, mask in events:
                    handler = handlers.get(fd)
                    if handler is not None:
                        try:
                            handler(mask)
                        except Exception:
                            log.exception("service proxy: unexpected error on fd %d", fd)
                if deadlines:
                    self._expire_connects()
                if doomed:
                    self._close_doomed()
                if self.replies:
                    self._reply()
        finally:
            self._close_doomed()
            self._reply()
            # Commands that raced with the stop fail instead of waiting forever.
            while self.commands:
                _, fut = self.commands.popleft()
                if not fut.done():
                    fut.set_exception(RuntimeError("the service proxy is closed"))
            self.ep.close()
            os.close(self.wake)

    def _expire_connects(self) -> None:
        """Connects still pending past the timeout (all timeouts are equal, so the
        deadlines are in order) fail over to the next backend."""
        deadlines = self.connect_deadlines
        now = time.monotonic()
        while deadlines and deadlines[0][0] <= now:
            _, conn, b = deadlines.popleft()
            if conn.state == _CONNECTING_STATE and conn.backend is b:
                conn.connect_failed(b)

    def _reply(self) -> None:
        for fut, ok, value in self.replies:
            # (a caller that gave up, e.g. a cancelled task, cancelled its future)
            with contextlib.suppress(concurrent.futures.InvalidStateError):
                if ok:
                    fut.set_result(value)
                else:
                    fut.set_exception(value)
        self.replies.clear()

    def _close_doomed(self) -> None:
        for s in self.doomed:
            s.close()
        self.doomed.clear()
