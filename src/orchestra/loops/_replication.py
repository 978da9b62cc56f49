"""The ReplicationController manager: Kubernetes serves ReplicationControllers with the
ReplicaSet controller's code, and so does orchestra (``_replicaset``); only the kind, the
equality-only selector (a plain label map) and the status type differ."""

from __future__ import annotations

from typing import Any

from orchestra.loops._context import Context, Runnable
from orchestra.loops._replicaset import ReplicaSetController
from orchestra.objects._selector import Selector


class ReplicationManager(ReplicaSetController):
    KIND = "ReplicationController"
    NAME = "replicationmanager"
    COMPONENT = "replication-controller"

    def selector_of(self, rc: Any) -> Selector:
        return Selector.from_labels(rc.spec.selector or {})

    def status_of(self, status: dict[str, Any]) -> Any:
        from orchestra.objects import ReplicationControllerStatus

        return ReplicationControllerStatus.model_validate(status)


def setup(ctx: Context) -> list[Runnable]:
    c = ReplicationManager(ctx)
    ctx.controllers["replicationmanager"] = c.controller
    return [c.controller.run]


__all__ = ["ReplicationManager", "setup"]
