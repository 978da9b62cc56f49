"""What the presentation reads of a cluster: a narrow, read-only view.

The presentation (``describe``, the failure explanations, the tables) sits below the
cluster module, which calls it with ``self``; so it names no ``Cluster``, only this
Protocol, and the import graph has no cycle through ``orchestra._cluster``. Everything
here is read: the store's objects, the clock's now, the Events, and (for the last log
lines of a failing container) the node agents' container ids and the runtime.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from orchestra._clock import Clock
    from orchestra._store import Store
    from orchestra.loops._nodes import NodeManager
    from orchestra.objects import Event
    from orchestra.runtime import Runtime

__all__ = ["ClusterView"]


class ClusterView(Protocol):
    """A running cluster as the presentation reads it (``orchestra.Cluster`` is one)."""

    @property
    def store(self) -> Store: ...

    @property
    def clock(self) -> Clock: ...

    @property
    def nodes(self) -> NodeManager | None:
        """The node agents, whose pod records hold the container ids (None before
        start)."""

    @property
    def runtime(self) -> Runtime | None:
        """Where the containers' logs are read (None before start)."""

    def events(self, obj: Any, /) -> Sequence[Event]:
        """The Events about ``obj``, oldest first."""
