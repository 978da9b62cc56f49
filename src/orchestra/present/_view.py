"""What the presentation reads of a cluster: a narrow, read-only view.

The presentation (``describe``, the failure explanations, the tables) sits below the
cluster module, which calls it with ``self``; so it names no ``Cluster``, only these
Protocols, and the import graph has no cycle through ``orchestra._cluster``. Everything
here is read: the store's objects, the clock's now, the Events, and (for the last log
lines of a failing container) the container ids the node agents hold, and the runtime.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from orchestra._clock import Clock
    from orchestra._store import Store
    from orchestra.objects import Event
    from orchestra.runtime import Runtime

__all__ = ["ClusterView", "ContainerIds", "NodeAgent", "NodeAgents", "PodContainers"]


class ContainerIds(Protocol):
    """One container of a pod as its node agent knows it: the current instance's id and
    the one before a restart (whose logs ``--previous`` reads)."""

    @property
    def name(self) -> str: ...

    @property
    def container_id(self) -> str | None: ...

    @property
    def previous_id(self) -> str | None: ...


class PodContainers(Protocol):
    """One pod on a node agent: its containers by name."""

    @property
    def records(self) -> Mapping[str, ContainerIds]: ...


class NodeAgent(Protocol):
    @property
    def pods(self) -> Mapping[str, PodContainers]:
        """The agent's pods by ``namespace/name``."""


class NodeAgents(Protocol):
    @property
    def agents(self) -> Mapping[str, NodeAgent]:
        """The node agents by node name."""


class ClusterView(Protocol):
    """A running cluster as the presentation reads it (``orchestra.Cluster`` is one)."""

    @property
    def store(self) -> Store: ...

    @property
    def clock(self) -> Clock: ...

    @property
    def nodes(self) -> NodeAgents | None:
        """The node agents, whose pod records hold the container ids (None before
        start)."""

    @property
    def runtime(self) -> Runtime | None:
        """Where the containers' logs are read (None before start)."""

    def events(self, obj: Any, /) -> Sequence[Event]:
        """The Events about ``obj``, oldest first."""
