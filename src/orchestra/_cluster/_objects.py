"""The Cluster's object methods: the API server's verbs on the store (apply, create,
get, list, update, patch, delete, watch), ``edit``'s retry on Conflict, and the
workload verbs (scale, rollout history and undo)."""

from __future__ import annotations

import builtins
from collections.abc import AsyncIterator, Callable
from typing import Any

import anyio.lowlevel

from orchestra._apply import apply_all
from orchestra._cluster._state import ClusterState
from orchestra._errors import Conflict, hide_from_tracebacks
from orchestra.objects._base import KubeObject

__tracebackhide__ = hide_from_tracebacks  # see orchestra._errors


class ObjectMethods(ClusterState):
    """Part of :class:`~orchestra.Cluster`: reading and writing objects."""

    # -- objects ------------------------------------------------------------------------

    async def apply(self, x: Any, *, namespace: str | None = None) -> list[KubeObject]:
        return apply_all(self.store, x, namespace)

    async def create(self, obj: Any, *, namespace: str | None = None) -> KubeObject:
        return self.store.create(obj, namespace=namespace)

    async def get(self, ref: Any, name: str | None = None, *, namespace: str = "default"
                  ) -> Any:
        return self.store.get(ref, name, namespace=namespace)

    async def list(self, kind: Any, namespace: str | None = None, selector: Any = None,
                   field_selector: Any = None) -> list[Any]:
        return self.store.list(kind, namespace=namespace, selector=selector,
                               field_selector=field_selector)

    async def update(self, obj: Any) -> Any:
        return self.store.update(obj)

    async def patch(self, ref: Any, patch: dict[str, Any], *, namespace: str = "default",
                    name: str | None = None) -> Any:
        return self.store.patch(ref, patch, namespace=namespace, name=name)

    async def delete(self, ref: Any, name: str | None = None, *, namespace: str = "default",
                     propagation: str = "Background",
                     grace_period_seconds: int | None = None) -> Any:
        return self.store.delete(ref, name, namespace=namespace, propagation=propagation,
                                 grace_period_seconds=grace_period_seconds)

    async def edit(self, ref: Any, fn: Callable[[Any], Any], *, namespace: str = "default",
                   name: str | None = None, attempts: int = 20) -> Any:
        """Read, call ``fn`` on a mutable copy, write back; on Conflict, do it again."""
        for _ in range(attempts):
            current = self.store.get(ref, name, namespace=namespace)
            copy: KubeObject | dict[str, Any] = current.thaw()
            result = fn(copy)
            if isinstance(result, KubeObject | dict):
                copy = result
            try:
                return self.store.update(copy)
            except Conflict:
                await anyio.lowlevel.checkpoint()
        raise Conflict(f"giving up on {ref} after {attempts} conflicting updates")

    def watch(self, kind: Any, namespace: str | None = None, selector: Any = None,
              resource_version: str | None = None, field_selector: Any = None
              ) -> AsyncIterator[Any]:
        return self.store.watch(kind, namespace=namespace, selector=selector,
                                resource_version=resource_version,
                                field_selector=field_selector)

    # -- workloads ----------------------------------------------------------------------

    async def scale(self, ref: Any, replicas: int, *, namespace: str = "default") -> Any:
        return self.store.patch(ref, {"spec": {"replicas": replicas}}, namespace=namespace)

    async def rollout_history(self, ref: Any, *, namespace: str = "default"
                              ) -> builtins.list[Any]:
        from orchestra.loops._rollout import rollout_history

        return rollout_history(self.store, ref, namespace=namespace)

    async def rollout_undo(self, ref: Any, to_revision: int | None = None, *,
                           namespace: str = "default") -> Any:
        from orchestra.loops._rollout import rollout_undo

        return rollout_undo(self.store, ref, to_revision=to_revision, namespace=namespace,
                            recorder=self.recorder)
