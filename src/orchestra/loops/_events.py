"""Events, recorded as Kubernetes' components record them.

One Event per (involved object, type, reason, message, source): a repeat bumps
``count`` and ``lastTimestamp`` instead of adding an object (the client-go event
correlator's behaviour). Events of objects that are gone are dropped with them by the
garbage collector's namespace and TTL sweeps; ``max_per_object`` bounds a crash-looping
pod's history.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from orchestra._clock import Clock
from orchestra._errors import OrchestraError
from orchestra._store._meta import replace
from orchestra.objects._base import KubeObject
from orchestra.objects._scalars import format_time

if TYPE_CHECKING:
    from orchestra._store import Store

log = logging.getLogger("orchestra.events")

_SEEN_MAX = 65536

Normal = "Normal"
Warning = "Warning"  # Kubernetes' event type name (shadows the builtin on purpose)


class EventRecorder:
    """Writes Events for one cluster; ``component`` names the emitter (``kubelet``,
    ``deployment-controller``, ``default-scheduler``...)."""

    def __init__(self, store: Store, clock: Clock, *, enabled: bool = True) -> None:
        self._store = store
        self._clock = clock
        self._seen: dict[tuple[str, str, str, str, str], str] = {}
        self._seq = 0
        self.enabled = enabled
        self.observers: list[Callable[[KubeObject, str], None]] = []
        self._template: Any = None
        self._last_ref: tuple[tuple[Any, ...], Any] | None = None
        self._sources: dict[tuple[str, str | None], Any] = {}

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
        for observe in self.observers:  # (the cluster's metrics count some reasons)
            try:
                observe(obj, reason)
            except Exception:
                log.exception("an event observer failed")
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
        from orchestra.objects import Event, EventSource, ObjectReference

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
        data = {
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
        template = self._template
        if template is None or not isinstance(reason, str) or not isinstance(message, str):
            ev = Event.model_validate(data)
            self._template = ev
        else:
            # Every field but the references is a plain string, so a validated event
            # with them replaced is valid: validating each of the hundreds of
            # thousands of events a large simulation records would dominate it.
            ref_key = (meta.uid, meta.resource_version, obj.kind, meta.name, meta.namespace)
            cached = self._last_ref
            if cached is not None and cached[0] == ref_key:
                ref = cached[1]
            else:
                ref = ObjectReference.model_validate(involved)
                self._last_ref = (ref_key, ref)
            src = self._sources.get((component, host))
            if src is None:
                src = EventSource.model_validate(source)
                if len(self._sources) < 1024:
                    self._sources[(component, host)] = src
            ev = replace(template, {
                "metadata": replace(template.metadata, {"name": name,
                                                        "namespace": namespace}),
                "involved_object": ref, "reason": reason, "message": message,
                "type": type_, "source": src, "first_timestamp": now,
                "last_timestamp": now, "reporting_component": component,
                "reporting_instance": host or ""})
        self._store.create(ev)
        if len(self._seen) >= _SEEN_MAX:
            # client-go's event correlator keeps an LRU of 4096; dropping the oldest
            # half keeps memory bounded (a later repeat creates a new Event).
            for k in list(itertools.islice(self._seen, _SEEN_MAX // 2)):
                del self._seen[k]
        self._seen[key] = name
