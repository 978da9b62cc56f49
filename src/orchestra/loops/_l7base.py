"""What the controllers that compile objects into the L7 routing table share (Ingress,
the Gateway API, Istio): one work key, recompiled whole, and the Services, Endpoints and
Secrets the last table referred to, whose changes requeue it. Each controller keeps its
own reconcile; none calls another (they talk through the store and the data plane)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from orchestra.loops._context import Context
from orchestra.loops._engine import Controller, Result

if TYPE_CHECKING:
    from orchestra.net.l7 import HttpProxy

__all__ = ["TableController", "age_key"]


def _ref(obj: Any) -> tuple[str, str]:
    return obj.metadata.namespace or "default", obj.metadata.name


def _status_only(obj: Any, old: Any) -> bool:
    """Whether an update changed nothing a table is compiled from: the same generation
    (spec), labels, annotations and deletion. Kinds without a generation always count."""
    m, o = obj.metadata, old.metadata
    return bool(m.generation) and m.generation == o.generation and \
        m.labels == o.labels and m.annotations == o.annotations and \
        m.deletion_timestamp == o.deletion_timestamp


def age_key(obj: Any) -> tuple[str, str, str]:
    """Oldest first, then by namespace and name: the precedence the specs give ties."""
    return (obj.metadata.creation_timestamp or "", obj.metadata.namespace or "",
            obj.metadata.name)


class TableController:
    """A controller with one key (``KEY``) that compiles ``kinds`` into a table."""

    KEY = ""

    def __init__(self, ctx: Context, proxy: HttpProxy, name: str,
                 kinds: Iterable[str]) -> None:
        self.ctx = ctx
        self.proxy = proxy
        self.controller = Controller(name, self.reconcile, ctx.clock)
        # what the last compiled table referred to (a change to one recompiles it)
        self._services: set[tuple[str, str]] = set()
        self._secrets: set[tuple[str, str]] = set()
        for kind in kinds:
            ctx.informers[kind].add_handler(self._on_any)
        for kind in ("Service", "Endpoints"):
            ctx.informers[kind].add_handler(self._on_service)
        ctx.informers["Secret"].add_handler(self._on_secret)

    async def reconcile(self, key: str) -> Result | None:
        raise NotImplementedError

    def _on_any(self, typ: str, obj: Any, old: Any) -> None:
        if old is not None and typ == "MODIFIED" and _status_only(obj, old):
            return  # (the controller's own status writes: a recompile would change nothing)
        self.controller.enqueue(self.KEY)

    def _on_service(self, typ: str, obj: Any, old: Any) -> None:
        if _ref(obj) in self._services:
            self.controller.enqueue(self.KEY)

    def _on_secret(self, typ: str, obj: Any, old: Any) -> None:
        if _ref(obj) in self._secrets:
            self.controller.enqueue(self.KEY)
