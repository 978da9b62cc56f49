"""What every controller's ``setup`` receives, and what it returns.

Each controller module exposes ``setup(ctx: Context) -> list[Runnable]``: it creates
its Controller(s), registers informer handlers (``ctx.informers[kind].add_handler``)
and returns the coroutine functions the cluster runs in its task group. Controllers
talk to each other only through the store.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from orchestra._clock import Clock
    from orchestra._store import Store
    from orchestra.loops._engine import Informers
    from orchestra.loops._events import EventRecorder
    from orchestra.net import Network
    from orchestra.net.dns import DnsServer
    from orchestra.net.l7 import HttpProxy

Runnable = Callable[[], Coroutine[Any, Any, None]]


@dataclass
class Context:
    store: Store
    informers: Informers
    clock: Clock
    recorder: EventRecorder
    network: Network
    options: dict[str, Any] = field(default_factory=dict)
    # name -> Controller (for idle checks)
    controllers: dict[str, Any] = field(default_factory=dict)
    # the L7 data plane that the traffic controllers (Ingress...) program
    traffic: HttpProxy | None = None
    # the cluster DNS server, whose index the DNS controller keeps
    dns: DnsServer | None = None
    # the cluster's state directory (provisioned volumes live under it); "" for none
    state_dir: str = ""
