"""The serviceaccounts controller: every active namespace has a ServiceAccount named
``default``, created when the namespace appears and again if it is deleted, as
Kubernetes' serviceaccounts controller keeps it. (Pods that name no ServiceAccount run as
``default``; admission refuses a pod naming one that does not exist.)"""

from __future__ import annotations

from typing import TYPE_CHECKING

from orchestra._errors import AlreadyExists, Forbidden, NotFound
from orchestra.loops._context import Context, Runnable
from orchestra.loops._engine import Controller, Result

if TYPE_CHECKING:
    from orchestra.objects._base import KubeObject

DEFAULT = "default"


class ServiceAccountsController:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.controller = Controller("serviceaccount", self.reconcile, ctx.clock)
        ctx.informers["Namespace"].add_handler(self._on_namespace)
        ctx.informers["ServiceAccount"].add_handler(self._on_service_account)

    def _on_namespace(self, typ: str, obj: KubeObject, old: KubeObject | None) -> None:
        if typ != "DELETED":
            self.controller.enqueue(obj.name)

    def _on_service_account(self, typ: str, obj: KubeObject, old: KubeObject | None) -> None:
        if typ == "DELETED" and obj.name == DEFAULT and obj.namespace:
            self.controller.enqueue(obj.namespace)

    async def reconcile(self, key: str) -> Result | None:
        store = self.ctx.store
        ns = store.get_or_none("Namespace", key, namespace=None)
        if ns is None or ns.metadata.deletion_timestamp is not None:
            return None
        if store.get_or_none("ServiceAccount", DEFAULT, namespace=key) is not None:
            return None
        try:
            store.create({"apiVersion": "v1", "kind": "ServiceAccount",
                          "metadata": {"name": DEFAULT, "namespace": key}})
        except (AlreadyExists, Forbidden, NotFound):
            pass  # (created meanwhile, or the namespace is going away)
        return None


def setup(ctx: Context) -> list[Runnable]:
    c = ServiceAccountsController(ctx)
    ctx.controllers["serviceaccount"] = c.controller
    return [c.controller.run]


__all__ = ["setup"]
