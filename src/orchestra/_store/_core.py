"""The store's state and the primitives every operation shares: resolving a kind
reference to its table, the creation-time clock text, admission hooks, the index of
owned objects, and committing a change the store makes itself (removal, metadata).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from orchestra._clock import Clock
from orchestra._errors import Invalid
from orchestra._store._admission import AdmissionHook, Operation
from orchestra._store._index import Key, Table
from orchestra._store._meta import replace
from orchestra._store._watch import WatchEvent, _Change
from orchestra.objects._base import KindInfo, KubeObject
from orchestra.objects._registry import kind_info, parse_ref, to_object
from orchestra.objects._scalars import format_time

KindRef = str | type[KubeObject] | KubeObject | KindInfo


class _StoreCore:
    """The base of :class:`~orchestra._store._store.Store`: its state (set by its
    ``__init__``) and the helpers its reads, writes and deletions share."""

    _clock: Clock
    _history: int
    _rv: int
    _tables: dict[str, Table]
    _kinds: dict[object, KindInfo]
    _owned: dict[str, dict[tuple[str, str, str], None]]
    _hooks: list[tuple[AdmissionHook, frozenset[str] | None]]
    _hooked_kinds: frozenset[str] | None  # None: every kind
    _second: int
    _second_text: str
    _namespaces: Table

    # -- small helpers -------------------------------------------------------------

    @property
    def resource_version(self) -> str:
        """The resourceVersion of the latest committed write (``"0"`` before any)."""
        return str(self._rv)

    @property
    def clock(self) -> Clock:
        return self._clock

    def _table(self, info: KindInfo) -> Table:
        table = self._tables.get(info.key)
        if table is None:
            table = self._tables[info.key] = Table(info, self._history)
        return table

    def _info(self, kind: KindRef) -> KindInfo:
        try:
            return self._kinds[kind]
        except (KeyError, TypeError):
            pass
        if isinstance(kind, KindInfo):
            return kind
        if isinstance(kind, KubeObject):
            return type(kind).INFO
        if isinstance(kind, type) and issubclass(kind, KubeObject):
            info = kind.INFO
        elif isinstance(kind, str):
            info = kind_info(kind)
        else:
            raise TypeError(f"not a kind: {kind!r}")
        if len(self._kinds) < 1024:
            self._kinds[kind] = info
        return info

    def _ref(
        self, ref: KindRef, name: str | None, namespace: str | None
    ) -> tuple[Table, Key, str]:
        """Resolve a reference to its table, key and name (fast path for common forms)."""
        if isinstance(ref, str):
            kind, slash, ref_name = ref.partition("/")
            if slash:
                if not kind or not ref_name or "/" in ref_name or (
                        name is not None and name != ref_name):
                    info, name = parse_ref(ref, name)  # raises kubectl's error
                else:
                    info, name = self._info(kind), ref_name
            else:
                info = self._info(kind)
        elif isinstance(ref, KubeObject):
            info = type(ref).INFO
            name = name or ref.metadata.name
            if ref.metadata.namespace:
                namespace = ref.metadata.namespace
        else:
            info = self._info(ref)
        if not name:
            raise Invalid("", f"{info.resource}: resource name may not be empty")
        if info.namespaced:
            return self._table(info), (namespace or "default", name), name
        return self._table(info), ("", name), name

    def _now(self) -> str:
        t = int(self._clock.now())
        if t != self._second:
            self._second = t
            self._second_text = format_time(t)
        return self._second_text

    def _admit(
        self, op: Operation, info: KindInfo, new: KubeObject | None, old: KubeObject | None
    ) -> KubeObject | None:
        for hook, kinds in self._hooks:
            if kinds is None or info.key in kinds:
                out = hook(op, new, old)
                if out is not None and op != "DELETE":
                    if out.is_thawed:
                        out = to_object(out.to_dict())
                    if type(out) is not type(new):
                        raise TypeError(f"admission hook {hook!r} changed the kind of {new!r}")
                    new = out
        return new

    def add_admission(self, hook: AdmissionHook, kinds: Iterable[KindRef] | None = None) -> None:
        """Run ``hook`` on every write of ``kinds`` (every kind if None), in the order added."""
        names = None if kinds is None else frozenset(self._info(k).key for k in kinds)
        self._hooks.append((hook, names))
        if names is None or self._hooked_kinds is None:
            self._hooked_kinds = None
        else:
            self._hooked_kinds = self._hooked_kinds | names

    def _hooked(self, info: KindInfo) -> bool:
        hooked = self._hooked_kinds
        return hooked is None or info.key in hooked

    def _index_owners(self, kind: str, key: Key, old: KubeObject | None,
                      new: KubeObject | None) -> None:
        before = old.metadata.owner_references if old is not None else None
        after = new.metadata.owner_references if new is not None else None
        if before is after or before == after:
            return
        entry = (kind, key[0], key[1])
        for ref in before or ():
            owned = self._owned.get(ref.uid)
            if owned is not None:
                owned.pop(entry, None)
                if not owned:
                    del self._owned[ref.uid]
        for ref in after or ():
            owned = self._owned.get(ref.uid)
            if owned is None:
                self._owned[ref.uid] = {entry: None}
            else:
                owned[entry] = None

    def _remove(self, table: Table, key: Key, old: KubeObject,
                last: KubeObject | None = None) -> KubeObject:
        """Drop a stored object; the DELETED event carries ``last`` (default: ``old``)."""
        self._rv = rv = self._rv + 1
        last = last if last is not None else old
        last = replace(last, {"metadata": replace(last.metadata,
                                                  {"resource_version": str(rv)})})
        table.remove(key, old)
        self._index_owners(table.info.kind, key, old, None)
        table.log.append(_Change(rv, WatchEvent("DELETED", last), None))
        return last

    def _modify_meta(self, table: Table, key: Key, old: KubeObject,
                     changes: dict[str, Any], *, new: KubeObject | None = None) -> KubeObject:
        """Commit a store-made change of metadata fields (no admission, no validation)."""
        base = new if new is not None else old
        self._rv = rv = self._rv + 1
        changes["resource_version"] = str(rv)
        obj = replace(base, {"metadata": replace(base.metadata, changes)})
        table.replace(key, old, obj)
        self._index_owners(table.info.kind, key, old, obj)
        table.log.append(_Change(rv, WatchEvent("MODIFIED", obj), old))
        return obj
