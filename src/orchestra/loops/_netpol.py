"""NetworkPolicy where the network cannot enforce it: say so, never pretend.

On a network whose ``enforces_network_policy`` is false (loopback and fake: every pod
shares the host's network namespace), each NetworkPolicy gets one Warning event
``NetworkPolicy is not enforced by the <name> network``. ``cluster.can_connect`` and
``cluster.reachability`` still evaluate the policies on every network.
"""

from __future__ import annotations

from typing import Any

from orchestra.loops._context import Context, Runnable
from orchestra.loops._engine import Controller, Result, split_key

__all__ = ["REASON", "setup"]

REASON = "NotEnforced"


class NetworkPolicyWarner:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.controller = Controller("networkpolicy", self.reconcile, ctx.clock)
        self._warned: set[str] = set()
        ctx.informers["NetworkPolicy"].add_handler(self._on_policy)

    def _on_policy(self, typ: str, obj: Any, old: Any) -> None:
        self.controller.enqueue_obj(obj)

    async def reconcile(self, key: str) -> Result | None:
        ns, name = split_key(key)
        policy = self.ctx.store.get_or_none("NetworkPolicy", name, namespace=ns)
        if policy is None:
            return None
        uid = policy.metadata.uid or key
        if uid in self._warned:
            return None
        self._warned.add(uid)
        network = self.ctx.network
        self.ctx.recorder.event(policy, "Warning", REASON,
                                f"NetworkPolicy is not enforced by the {network.name} network",
                                component="orchestra-network")
        return None


def setup(ctx: Context) -> list[Runnable]:
    if getattr(ctx.network, "enforces_network_policy", False):
        return []
    w = NetworkPolicyWarner(ctx)
    ctx.controllers["networkpolicy"] = w.controller
    return [w.controller.run]
