"""What every part of the Cluster reads: the attributes ``Cluster.__init__`` and
``start()`` set, declared once so each part's methods are type-checked against them."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from orchestra._errors import hide_from_tracebacks

__tracebackhide__ = hide_from_tracebacks  # see orchestra._errors

if TYPE_CHECKING:
    from orchestra._clock import Clock
    from orchestra._metrics import ControlPlaneMetrics
    from orchestra._portforward import PortForwards
    from orchestra._store import Store
    from orchestra.loops._context import Context
    from orchestra.loops._events import EventRecorder
    from orchestra.loops._nodes import NodeManager
    from orchestra.net import Network
    from orchestra.net.dns import DnsServer
    from orchestra.net.l7 import HttpProxy
    from orchestra.runtime import Runtime


class ClusterState:
    """The state a cluster's methods share (set by ``Cluster``; the backends, data
    planes and node agents are None until ``start()``)."""

    name: str
    clock: Clock
    store: Store
    recorder: EventRecorder
    options: dict[str, Any]
    runtime: Runtime | None
    network: Network | None
    traffic: HttpProxy | None  # the L7 data plane (Ingress)
    dns: DnsServer | None  # the cluster DNS data plane
    nodes: NodeManager | None
    _ctx: Context | None
    _forwards: PortForwards
    _metrics: ControlPlaneMetrics

    def _attach_metrics(self) -> None:
        controllers = list(self._ctx.controllers.values()) if self._ctx else []
        if self.nodes is not None:
            controllers += [a.controller for a in self.nodes.agents.values()]
        for c in controllers:
            self._metrics.attach(c)
