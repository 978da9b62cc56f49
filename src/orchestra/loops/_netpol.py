"""NetworkPolicy: enforced where the network can, said so where it cannot.

On a network whose ``enforces_network_policy`` is true (bridge), one key recompiles
every pod's rules (:func:`orchestra.net.policy.pod_rules`) whenever a NetworkPolicy, Pod
or Namespace changes, and hands them to the network, which changes only the pods'
chains that differ. On the others (loopback and fake: every pod shares the host's
network namespace), each NetworkPolicy gets one Warning event ``NetworkPolicy is not
enforced by the <name> network``. ``cluster.can_connect`` and ``cluster.reachability``
evaluate the policies on every network.
"""

from __future__ import annotations

from typing import Any

from orchestra.loops._context import Context, Runnable
from orchestra.loops._engine import Controller, Result, split_key
from orchestra.net.policy import PolicySet, compile_policy, namespace_info, pod_info, pod_rules

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


class NetworkPolicyEnforcer:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.controller = Controller("networkpolicy", self.reconcile, ctx.clock)
        for kind in ("NetworkPolicy", "Pod", "Namespace"):
            ctx.informers[kind].add_handler(self._on_change)

    def _on_change(self, typ: str, obj: Any, old: Any) -> None:
        if obj.kind == "Pod" and old is not None and typ == "MODIFIED" and \
                (old.metadata.labels == obj.metadata.labels and
                 (old.status and old.status.pod_ip) == (obj.status and obj.status.pod_ip)):
            return
        self.controller.enqueue("policies")

    async def reconcile(self, key: str) -> Result | None:
        store = self.ctx.store
        policies = PolicySet((compile_policy(p) for p in store.list("NetworkPolicy")),
                             (namespace_info(n) for n in store.list("Namespace")))
        all_pods: list[Any] = list(store.list("Pod"))
        pods = [pod_info(p) for p in all_pods
                if p.status is not None and p.status.pod_ip and
                p.metadata.deletion_timestamp is None]
        network: Any = self.ctx.network
        await network.sync_network_policy(pod_rules(policies, pods))
        return None


def setup(ctx: Context) -> list[Runnable]:
    if getattr(ctx.network, "enforces_network_policy", False):
        e = NetworkPolicyEnforcer(ctx)
        ctx.controllers["networkpolicy"] = e.controller
        return [e.controller.run]
    w = NetworkPolicyWarner(ctx)
    ctx.controllers["networkpolicy"] = w.controller
    return [w.controller.run]
