"""The L7 table controllers recompile on what a table is built from, not on status
writes (their own, after every compile: a second compile per change would delay the
next change by one more compile)."""

from __future__ import annotations

from typing import Any

from orchestra.loops._gateway import GatewayController
from orchestra.objects import HTTPRoute


class _Queue:
    def __init__(self) -> None:
        self.keys: list[str] = []

    def enqueue(self, key: str) -> None:
        self.keys.append(key)


def _route(generation: int, *, status: str = "", labels: dict[str, str] | None = None,
           weight: int = 1) -> Any:
    meta: dict[str, Any] = {"name": "r", "namespace": "default", "generation": generation,
                            "resourceVersion": str(generation)}
    if labels:
        meta["labels"] = labels
    obj: dict[str, Any] = {
        "apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute", "metadata": meta,
        "spec": {"parentRefs": [{"name": "web"}],
                 "rules": [{"backendRefs": [{"name": "s", "port": 80, "weight": weight}]}]}}
    if status:
        obj["status"] = {"parents": [{
            "parentRef": {"name": "web"}, "controllerName": status,
            "conditions": [{"type": "Accepted", "status": "True", "reason": "Accepted",
                            "message": "", "lastTransitionTime": "2026-01-01T00:00:00Z"}]}]}
    return HTTPRoute.model_validate(obj)


def test_status_only_updates_do_not_requeue_the_table() -> None:
    ctl = object.__new__(GatewayController)  # (its handlers only; no cluster needed)
    queue = _Queue()
    ctl.controller = queue  # type: ignore[assignment]
    old = _route(1)
    ctl._on_any("MODIFIED", _route(1, status="orchestra.dev/gateway-controller"), old)
    assert queue.keys == []
    ctl._on_any("MODIFIED", _route(2, weight=5), old)  # a spec change
    ctl._on_any("MODIFIED", _route(1, labels={"a": "b"}), old)  # labels (selectors)
    ctl._on_any("ADDED", old, None)
    ctl._on_any("DELETED", old, None)
    assert queue.keys == [GatewayController.KEY] * 4
