"""What a wait reads of a cluster: the presentation's read-only view (the store, the
clock and its timers, the Events, for the explanation a Timeout carries) plus the two
things wait strategies poll, a container's logs and a port-forward. The cluster calls
``wait_for`` with itself; nothing here imports ``orchestra._cluster``."""

from __future__ import annotations

from typing import Any, Protocol

from orchestra.present import ClusterView

__all__ = ["WaitView"]


class WaitView(ClusterView, Protocol):
    """A running cluster as ``wait_for`` and its strategies read it (``orchestra.Cluster``
    is one)."""

    async def logs(self, pod: Any, container: str | None = None, /) -> str:
        """The container's log text (as ``kubectl logs``)."""

    def endpoint(self, target: Any, port: int | str | None = None, /) -> tuple[str, int]:
        """A ``host, port`` reaching ``port`` of the Pod, workload or Service."""
