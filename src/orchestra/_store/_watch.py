"""Watch: one shared, bounded history per kind and a cursor per watcher.

Invariants:

- A write appends exactly one :class:`_Change` to its kind's :class:`History`, whatever
  the number of watchers, and wakes the watchers that are waiting (one future each, set
  once per write batch: a watcher that is not waiting costs the write nothing).
- Events reach each watcher in resourceVersion order, each at most once. A watcher reads
  the shared history through its own cursor; events are never copied per watcher. The
  only objects made for a watcher are the rare transition events of a filtered watch
  (an object entering or leaving its selector), and those are cached on the change too.
- The history keeps at least the last ``history`` changes of a kind. A watch resuming from
  a resourceVersion older than that, or a watcher that falls more than ``history`` changes
  behind, gets :class:`orchestra.Gone` and must list again (Kubernetes' 410 Gone).
"""

from __future__ import annotations

import asyncio
import contextlib
from bisect import bisect_right
from collections.abc import Sequence
from typing import Literal, NamedTuple, Protocol

from orchestra._errors import Gone
from orchestra._store._meta import replace
from orchestra.objects._base import KubeObject

EventType = Literal["ADDED", "MODIFIED", "DELETED"]


class WatchEvent(NamedTuple):
    """One change seen by a watcher: ``type`` is ADDED, MODIFIED or DELETED.

    ``object`` is the stored (immutable, shared) object after the change; for DELETED it
    is the object as last stored, carrying the resourceVersion of the deletion.
    """

    type: EventType
    object: KubeObject


class _Change:
    """One write, as kept in the history: the event plus what a filtered watcher needs."""

    __slots__ = ("_added", "_deleted", "event", "old", "rv")

    def __init__(self, rv: int, event: WatchEvent, old: KubeObject | None) -> None:
        self.rv = rv
        self.event = event
        self.old = old  # the object before a MODIFIED change, else None
        self._added: WatchEvent | None = None
        self._deleted: WatchEvent | None = None

    def as_added(self) -> WatchEvent:
        """The change seen by a watcher whose filter the object has just started to match."""
        if self._added is None:
            self._added = WatchEvent("ADDED", self.event.object)
        return self._added

    def as_deleted(self) -> WatchEvent:
        """The change seen by a watcher whose filter the object has just stopped matching.

        As Kubernetes' watch cache: the object as it was before, with the new
        resourceVersion.
        """
        if self._deleted is None:
            old = self.old
            assert old is not None
            meta = replace(old.metadata, {"resource_version": str(self.rv)})
            self._deleted = WatchEvent("DELETED", replace(old, {"metadata": meta}))
        return self._deleted


class Matcher(Protocol):
    """What a filtered watch asks of its filter."""

    @property
    def static(self) -> bool:
        """True when an object can never start or stop matching (a namespace filter)."""
        ...

    def matches(self, obj: KubeObject) -> bool: ...


class History:
    """The changes of one kind, oldest first, with absolute positions for cursors."""

    __slots__ = ("_trim_at", "dropped_rv", "events", "history", "start", "waiters")

    def __init__(self, history: int) -> None:
        self.history = history
        self.events: list[_Change] = []
        self.start = 0  # absolute position of events[0]
        self.dropped_rv = 0  # rv of the newest change no longer kept
        self.waiters: list[asyncio.Future[None]] = []
        self._trim_at = history + max(1, history // 4)

    @property
    def end(self) -> int:
        return self.start + len(self.events)

    def append(self, change: _Change) -> None:
        events = self.events
        events.append(change)
        if len(events) > self._trim_at:
            cut = len(events) - self.history
            self.dropped_rv = events[cut - 1].rv
            del events[:cut]
            self.start += cut
        if self.waiters:
            waiters = self.waiters
            self.waiters = []
            for fut in waiters:
                if not fut.done():
                    fut.set_result(None)

    def floor_rv(self) -> int:
        """The rv of the newest change outside the window: resuming below it is Gone."""
        i = self.end - self.history - 1
        if i < self.start:
            return self.dropped_rv if i >= 0 else 0
        return self.events[i - self.start].rv

    def position_after(self, rv: int) -> int:
        """Absolute position of the first kept change with a resourceVersion above ``rv``."""
        return self.start + bisect_right(self.events, rv, key=_rv_of)


def _rv_of(change: _Change) -> int:
    return change.rv


class Watch:
    """An async iterator of :class:`WatchEvent`; ``aclose()`` ends it.

    Everything it will report is fixed when it is made (the initial ADDED snapshot and the
    history position), so no change made between ``Store.watch()`` and the first
    ``__anext__`` is lost.
    """

    __slots__ = ("_closed", "_cursor", "_error", "_filter", "_history", "_initial",
                 "_initial_pos", "_log", "_waiter")

    def __init__(
        self,
        log: History,
        matcher: Matcher | None,
        initial: Sequence[KubeObject],
        cursor: int,
        error: Gone | None = None,
    ) -> None:
        self._log = log
        self._filter = matcher
        self._initial = initial
        self._initial_pos = 0
        self._cursor = cursor
        self._history = log.history
        self._closed = False
        self._error = error
        self._waiter: asyncio.Future[None] | None = None

    def __aiter__(self) -> Watch:
        return self

    async def __anext__(self) -> WatchEvent:
        while True:
            event = self.next_nowait()
            if event is not None:
                return event
            if self._closed:
                raise StopAsyncIteration
            fut = asyncio.get_running_loop().create_future()
            self._waiter = fut
            self._log.waiters.append(fut)
            try:
                await fut
            finally:
                self._waiter = None
                if fut.cancelled() or self._closed:
                    # Not woken by a write: drop the future now, so that watches
                    # cancelled on a quiet kind (wait_for timeouts) do not pile up.
                    with contextlib.suppress(ValueError):
                        self._log.waiters.remove(fut)

    def next_nowait(self) -> WatchEvent | None:
        """The next event if one is ready, else None (also once closed).

        Raises :class:`Gone` when the watch resumed from, or fell behind to, a
        resourceVersion the history no longer holds; the watch is closed then.
        """
        if self._closed:
            return None
        if self._error is not None:
            self._closed = True
            raise self._error
        if self._initial_pos < len(self._initial):
            obj = self._initial[self._initial_pos]
            self._initial_pos += 1
            return WatchEvent("ADDED", obj)
        log = self._log
        events = log.events
        matcher = self._filter
        while True:
            pos = self._cursor
            i = pos - log.start
            if i >= len(events):
                return None
            if i < 0 or log.start + len(events) - pos > self._history:
                self._closed = True
                raise Gone(
                    f"too old resource version: {self._last_rv(i)} ({log.floor_rv()})"
                )
            change = events[i]
            self._cursor = pos + 1
            if matcher is None:
                return change.event
            event = change.event
            if event.type == "MODIFIED" and not matcher.static:
                now = matcher.matches(event.object)
                before = matcher.matches(change.old)  # type: ignore[arg-type]
                if now:
                    return event if before else change.as_added()
                if before:
                    return change.as_deleted()
            elif matcher.matches(event.object):
                return event

    def _last_rv(self, i: int) -> int:
        events = self._log.events
        if 0 < i <= len(events):
            return events[i - 1].rv
        return self._log.dropped_rv

    async def aclose(self) -> None:
        """End the watch: a waiting ``__anext__`` and every later one stop iteration."""
        self._closed = True
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def close(self) -> None:
        """``aclose`` for synchronous code."""
        self._closed = True
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)
