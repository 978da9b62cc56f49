"""Binding a pod to a node as the API server's ``pods/binding`` subresource does: the
scheduler's write. An update or patch may not set ``spec.nodeName`` (it is not among a
pod's mutable fields); only a binding may, once.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from orchestra._errors import Conflict
from orchestra._store._core import _StoreCore
from orchestra._store._rules import _not_found
from orchestra.objects._base import KINDS
from orchestra.objects._pod_status import PodStatus

if TYPE_CHECKING:
    from orchestra._store._index import Key, Table
    from orchestra.objects._base import KubeObject


class _Binding(_StoreCore):
    """``bind``: part of :class:`~orchestra._store._store.Store`."""

    if TYPE_CHECKING:  # the Store's own
        def _update(self, table: Table, key: Key, old: KubeObject, new: KubeObject, *,
                    subresource: bool = False) -> KubeObject: ...

    def bind(self, name: str, node: str, *, namespace: str = "default") -> KubeObject:
        """Bind the pod ``namespace/name`` to ``node``: ``spec.nodeName`` and the
        PodScheduled condition (True) are set in one write. Conflict when the pod is
        bound already or being deleted, with the API server's messages."""
        info = KINDS["Pod"]
        table = self._table(info)
        key = (namespace, name)
        old: Any = table.objects.get(key)
        if old is None:
            raise _not_found(info, name)
        refused = f'Operation cannot be fulfilled on pods/binding "{name}": '
        if old.spec.node_name:
            raise Conflict(f'{refused}pod {name} is already assigned to node '
                           f'"{old.spec.node_name}"')
        if old.metadata.deletion_timestamp is not None:
            raise Conflict(f"{refused}pod {name} is being deleted, cannot be assigned to a "
                           "host")
        status: dict[str, Any] = old.status.to_dict() if old.status is not None else {}
        conditions = [c for c in status.get("conditions") or ()
                      if c.get("type") != "PodScheduled"]
        before = next((c for c in status.get("conditions") or ()
                       if c.get("type") == "PodScheduled"), None)
        scheduled = {"type": "PodScheduled", "status": "True",
                     "lastTransitionTime": self._now()}
        if before is not None and before.get("status") == "True":
            scheduled = before  # (unchanged: its transition time stays)
        status["conditions"] = [*conditions, scheduled]
        status.setdefault("phase", "Pending")
        new = old.model_copy(update={
            "spec": old.spec.model_copy(update={"node_name": node}),
            "status": PodStatus.model_validate(status)})
        return self._update(table, key, old, new, subresource=True)
