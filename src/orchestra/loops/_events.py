"""Events, recorded as Kubernetes' components record them.

One Event per (involved object, type, reason, message, source): a repeat bumps
``count`` and ``lastTimestamp`` instead of adding an object (the client-go event
correlator's behaviour). Events of objects that are gone are dropped with them by the
garbage collector's namespace and TTL sweeps; ``max_per_object`` bounds a crash-looping
pod's history.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from orchestra._clock import Clock
from orchestra._errors import OrchestraError
from orchestra.objects._base import KubeObject, format_time

if TYPE_CHECKING:
    from orchestra._store import Store

log = logging.getLogger("orchestra.events")

Normal = "Normal"
Warning = "Warning"  # noqa: A001 - Kubernetes' event type name


class EventRecorder:
    """Writes Events for one cluster; ``component`` names the emitter (``kubelet``,
    ``deployment-controller``, ``default-scheduler``...)."""

    def __init__(self, store: Store, clock: Clock, *, enabled: bool = True) -> None:
        self._store = store
        self._clock = clock
        self._seen: dict[tuple[str, str, str, str, str], str] = {}
        self._seq = 0
        self.enabled = enabled

    def event(
        self,
        obj: KubeObject,
        type_: str,
        reason: str,
        message: str,
        *,
        component: str,
        host: str | None = None,
    ) -> None:
        """Record (or bump) an event about ``obj``. Never raises: an event is best-effort."""
        if not self.enabled:
            return
        try:
            self._record(obj, type_, reason, message, component, host)
        except OrchestraError as exc:
            log.debug("event %s on %s not recorded: %s", reason, obj.ref, exc)

    def _record(
        self,
        obj: KubeObject,
        type_: str,
        reason: str,
        message: str,
        component: str,
        host: str | None,
    ) -> None:
        from orchestra.objects import Event

        meta = obj.metadata
        namespace = meta.namespace or "default"
        key = (meta.uid or meta.name or "", type_, reason, message, component)
        now = format_time(self._clock.now())
        name = self._seen.get(key)
        if name is not None:
            current = self._store.get_or_none("Event", name, namespace=namespace)
            if current is not None:
                self._store.update(
                    current.model_copy(
                        update={"count": (current.count or 1) + 1, "last_timestamp": now}  # type: ignore[attr-defined]
                    )
                )
                return
        self._seq += 1
        name = f"{meta.name}.{int(self._clock.now() * 1e9) + self._seq:x}"
        source: dict[str, Any] = {"component": component}
        if host:
            source["host"] = host
        involved: dict[str, Any] = {
            "apiVersion": obj.api_version,
            "kind": obj.kind,
            "name": meta.name,
            "uid": meta.uid,
            "resourceVersion": meta.resource_version,
        }
        if meta.namespace:
            involved["namespace"] = meta.namespace
        ev = Event.model_validate(
            {
                "metadata": {"name": name, "namespace": namespace},
                "involvedObject": involved,
                "reason": reason,
                "message": message,
                "type": type_,
                "source": source,
                "count": 1,
                "firstTimestamp": now,
                "lastTimestamp": now,
                "reportingComponent": component,
                "reportingInstance": host or "",
            }
        )
        self._store.create(ev)
        self._seen[key] = name
