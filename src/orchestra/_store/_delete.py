"""Deleting from the store as the API server does: finalizers and propagation, pods'
graceful deletion, and a Namespace turning Terminating until it is emptied.
"""

from __future__ import annotations

from typing import Any

from orchestra._errors import Forbidden
from orchestra._store._core import KindRef, _StoreCore
from orchestra._store._index import Key, Table
from orchestra._store._rules import _finalizers_for, _not_found, _spec_finalizers
from orchestra.objects._base import KindInfo, KubeObject
from orchestra.objects._registry import to_object
from orchestra.objects._scalars import format_time

IMMORTAL_NAMESPACES = frozenset({"default", "kube-system", "kube-public"})
"""Namespaces the API server never deletes."""


class _Deletion(_StoreCore):
    """``delete``: part of :class:`~orchestra._store._store.Store`."""

    def delete(
        self,
        ref: KindRef,
        name: str | None = None,
        *,
        namespace: str | None = "default",
        propagation: str | None = None,
        grace_period_seconds: int | None = None,
    ) -> KubeObject | None:
        """Delete an object, or start deleting it; returns it as it now is, None once gone.

        An object with finalizers (``propagation="Foreground"`` adds
        ``foregroundDeletion``, ``"Orphan"`` adds ``orphan``) gets a deletionTimestamp
        and stays until an update drops its last finalizer. A pod bound to a node and not
        terminal is deleted gracefully: deletionTimestamp = now + grace period, and it
        stays until deleted again with ``grace_period_seconds=0`` (by its node agent). A
        Namespace turns Terminating; the namespace controller empties and removes it.
        """
        table, key, name = self._ref(ref, name, namespace)
        info = table.info
        old = table.objects.get(key)
        if old is None:
            raise _not_found(info, name)
        if self._hooks and self._hooked(info):
            self._admit("DELETE", info, None, old)
        om = old.metadata
        finalizers = _finalizers_for(info, om.finalizers or (), propagation)
        if info.kind == "Namespace":
            if name in IMMORTAL_NAMESPACES:  # the NamespaceLifecycle admission plugin
                raise Forbidden(f'namespaces "{name}" is forbidden: this namespace may not '
                                "be deleted")
            return self._delete_namespace(table, key, old, finalizers)
        grace = self._grace_period(info, old, grace_period_seconds)
        changes: dict[str, Any] = {}
        if finalizers != (om.finalizers or ()):
            changes["finalizers"] = finalizers or None
        if om.deletion_timestamp is not None:
            current = om.deletion_grace_period_seconds or 0
            if grace < current:
                changes["deletion_grace_period_seconds"] = grace
                changes["deletion_timestamp"] = format_time(self._clock.now() + grace)
            if not finalizers and min(grace, current) == 0:
                self._remove(table, key, old)
                return None
            if changes:
                return self._modify_meta(table, key, old, changes)
            return old
        if not finalizers and grace == 0:
            self._remove(table, key, old)
            return None
        changes["deletion_timestamp"] = format_time(self._clock.now() + grace)
        changes["deletion_grace_period_seconds"] = grace
        if grace > 0:
            changes["generation"] = (om.generation or 0) + 1
        return self._modify_meta(table, key, old, changes)

    def _grace_period(self, info: KindInfo, obj: KubeObject, requested: int | None) -> int:
        """Kubernetes' pod graceful-deletion rule; 0 (immediate) for every other kind."""
        if info.kind != "Pod":
            return 0
        spec = obj.__dict__.get("spec")
        if requested is None:
            requested = getattr(spec, "termination_grace_period_seconds", None)
            if requested is None:
                requested = 30
        if not getattr(spec, "node_name", None):
            return 0
        phase = getattr(obj.__dict__.get("status"), "phase", None)
        if phase in ("Succeeded", "Failed"):
            return 0
        return max(0, requested)

    def _delete_namespace(self, table: Table, key: Key, old: KubeObject,
                          finalizers: tuple[str, ...]) -> KubeObject | None:
        om = old.metadata
        if om.deletion_timestamp is None:
            data = old.to_dict()
            data.setdefault("status", {})["phase"] = "Terminating"
            new = to_object(data)
            return self._modify_meta(table, key, old, {
                "deletion_timestamp": self._now(),
                "deletion_grace_period_seconds": 0,
                "finalizers": finalizers or None,
            }, new=new)
        if not _spec_finalizers(old) and not finalizers:
            self._remove(table, key, old)
            return None
        if finalizers != (om.finalizers or ()):
            return self._modify_meta(table, key, old, {"finalizers": finalizers or None})
        return old
