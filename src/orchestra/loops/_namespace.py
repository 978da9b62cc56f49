"""The namespace controller: a Terminating namespace is emptied, then removed."""

from __future__ import annotations

from typing import Any

from orchestra._errors import NotFound
from orchestra.loops._context import Context, Runnable
from orchestra.loops._engine import Controller, Result
from orchestra.objects._base import KINDS


class NamespaceController:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.controller = Controller("namespace", self.reconcile, ctx.clock)
        ctx.informers["Namespace"].add_handler(self._on_ns)

    def _on_ns(self, typ: str, ns: Any, old: Any) -> None:
        if typ != "DELETED" and ns.metadata.deletion_timestamp is not None:
            self.controller.enqueue(ns.metadata.name)

    async def reconcile(self, key: str) -> Result | None:
        store = self.ctx.store
        ns = store.get_or_none("Namespace", key)
        if ns is None or ns.metadata.deletion_timestamp is None:
            return None
        remaining = 0
        for info in list(KINDS.values()):
            if not info.namespaced:
                continue
            for obj in store.list(info.kind, namespace=key):
                remaining += 1
                if obj.metadata.deletion_timestamp is None:
                    try:
                        store.delete(info.kind, obj.metadata.name, namespace=key)
                    except NotFound:
                        remaining -= 1
        if remaining:
            return Result(requeue_after=1.0)
        try:
            store.delete("Namespace", key, grace_period_seconds=0)
        except NotFound:
            pass
        return None


def setup(ctx: Context) -> list[Runnable]:
    c = NamespaceController(ctx)
    ctx.controllers["namespace"] = c.controller
    return [c.controller.run]
