"""The in-memory object store: Kubernetes' API server and etcd, for one event loop.

Invariants:

- Stored objects are immutable snapshots (see ``orchestra.objects._base``): reads hand
  them out without copying, and no code path mutates one. A write replaces the stored
  object with a new one (built with cheap field replacement, or validated anew when the
  input came from a user as a dict or a thawed model).
- ``resourceVersion`` is one global counter; every committed write takes the next value,
  so resourceVersions strictly increase in commit order, and every committed write
  produces exactly one watch event of its kind. A write that changes nothing (an update
  equal to the stored object) commits nothing: no new resourceVersion, no event.
- Writes never await: each one is atomic with respect to the event loop, so a reader
  never sees a half-done write and ``update``'s resourceVersion check is race-free.
- ``metadata.generation`` starts at 1 and increases when anything outside ``metadata``
  and ``status`` changes (and when graceful deletion starts, as in Kubernetes).
- Error messages are the API server's, naming the resource (``deployments.apps "web"``);
  none contains a Secret's data.
"""

from __future__ import annotations

import base64
import random
from collections.abc import Iterable, Mapping
from typing import Any

import orchestra.objects  # noqa: F401  (registers every kind)
from orchestra._clock import Clock, RealClock
from orchestra._errors import (
    AlreadyExists,
    Conflict,
    FieldError,
    Forbidden,
    Gone,
    Invalid,
    NotFound,
)
from orchestra._store._admission import AdmissionHook, Operation
from orchestra._store._index import Filter, Key, Table
from orchestra._store._meta import replace
from orchestra._store._patch import merge_patch
from orchestra._store._watch import Watch, WatchEvent, _Change
from orchestra.objects._base import FrozenDict, KindInfo, KubeObject, LabelSelector, format_time
from orchestra.objects._registry import kind_info, parse_ref, to_object
from orchestra.objects._selector import FieldSelector, Selector

_getrandbits = random.getrandbits

DEFAULT_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")

# Kubernetes' generateName suffix: 5 characters from an alphabet without vowels (so no
# words are spelled by accident), appended to at most 58 characters of the prefix.
_SUFFIX_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
_MAX_PREFIX = 63 - 5

KindRef = str | type[KubeObject] | KubeObject | KindInfo
SelectorLike = str | Selector | LabelSelector | Mapping[str, Any]
FieldSelectorLike = str | FieldSelector | Mapping[str, str]
Objects = list[KubeObject]


def _new_uid() -> str:
    """A random version-4 UUID, as ``str(uuid.uuid4())`` but without a system call each."""
    n = _getrandbits(128)
    n = (n & ~(0xF000 << 64)) | (0x4000 << 64)
    n = (n & ~(0xC000 << 48)) | (0x8000 << 48)
    h = f"{n:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def _what(info: KindInfo, name: str) -> str:
    """``Deployment.apps "web"``: how the API server names an object in an Invalid error."""
    kind = f"{info.kind}.{info.group}" if info.group else info.kind
    return f'{kind} "{name}"'


def _not_found(info: KindInfo, name: str) -> NotFound:
    return NotFound(f'{info.resource} "{name}" not found')


def _already_exists(info: KindInfo, name: str, existing: KubeObject) -> AlreadyExists:
    deleting = existing.metadata.deletion_timestamp is not None
    prefix = "object is being deleted: " if deleting else ""
    return AlreadyExists(f'{prefix}{info.resource} "{name}" already exists')


def _conflict(info: KindInfo, name: str) -> Conflict:
    return Conflict(
        f'Operation cannot be fulfilled on {info.resource} "{name}": the object has been '
        "modified; please apply your changes to the latest version and try again"
    )


def to_selector(selector: SelectorLike | None) -> Selector | None:
    """A label selector from any form ``list`` and ``watch`` accept; None: no filter."""
    if selector is None:
        return None
    out = Selector.coerce(selector)
    return None if out.empty else out


def to_field_selector(selector: FieldSelectorLike | None) -> FieldSelector | None:
    """A field selector from a string, a ``{path: value}`` map or itself; None: no filter."""
    if selector is None:
        return None
    out = FieldSelector.coerce(selector)
    return None if out.empty else out


class Store:
    """Objects by kind, namespace and name, with indexes, admission and watches.

    Every method is synchronous and must be called from one thread (the event loop's);
    ``watch`` returns an async iterator. ``Cluster`` wraps these as coroutines.
    """

    def __init__(self, *, clock: Clock | None = None, history: int = 100_000) -> None:
        if history < 1:
            raise ValueError("history must be >= 1")
        self._clock: Clock = clock if clock is not None else RealClock()
        self._history = history
        self._rv = 0
        self._tables: dict[str, Table] = {}
        self._kinds: dict[object, KindInfo] = {}
        self._owned: dict[str, dict[tuple[str, str, str], None]] = {}
        self._hooks: list[tuple[AdmissionHook, frozenset[str] | None]] = []
        self._hooked_kinds: frozenset[str] | None = frozenset()  # None: every kind
        self._second = -1
        self._second_text = ""
        self._namespaces = self._table(kind_info("Namespace"))
        for name in DEFAULT_NAMESPACES:
            self.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})

    # -- small helpers -------------------------------------------------------------

    @property
    def resource_version(self) -> str:
        """The resourceVersion of the latest committed write (``"0"`` before any)."""
        return str(self._rv)

    @property
    def clock(self) -> Clock:
        return self._clock

    def _table(self, info: KindInfo) -> Table:
        table = self._tables.get(info.kind)
        if table is None:
            table = self._tables[info.kind] = Table(info, self._history)
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
            if kinds is None or info.kind in kinds:
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
        names = None if kinds is None else frozenset(self._info(k).kind for k in kinds)
        self._hooks.append((hook, names))
        if names is None or self._hooked_kinds is None:
            self._hooked_kinds = None
        else:
            self._hooked_kinds = self._hooked_kinds | names

    def _hooked(self, info: KindInfo) -> bool:
        hooked = self._hooked_kinds
        return hooked is None or info.kind in hooked

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

    # -- reads ---------------------------------------------------------------------

    def get(self, ref: KindRef, name: str | None = None, *,
            namespace: str | None = "default") -> KubeObject:
        """The stored object (shared and immutable); NotFound if there is none."""
        table, key, name = self._ref(ref, name, namespace)
        obj = table.objects.get(key)
        if obj is None:
            raise _not_found(table.info, name)
        return obj

    def get_or_none(self, ref: KindRef, name: str | None = None, *,
                    namespace: str | None = "default") -> KubeObject | None:
        """As :meth:`get`, but None instead of NotFound."""
        table, key, _ = self._ref(ref, name, namespace)
        return table.objects.get(key)

    def list(
        self,
        kind: KindRef,
        namespace: str | None = None,
        selector: SelectorLike | None = None,
        field_selector: FieldSelectorLike | None = None,
    ) -> Objects:
        """The matching objects (all namespaces when ``namespace`` is None or ``""``).

        Costs O(matches) when any term is indexed (namespace, label equality or set
        membership, ``metadata.name``, ``metadata.namespace``, ``spec.nodeName``). The
        order is deterministic but unspecified (not sorted by name).
        """
        table = self._table(self._info(kind))
        return table.select(
            (namespace or None) if table.info.namespaced else None,
            to_selector(selector),
            to_field_selector(field_selector),
        )

    def _list_by_scan(
        self,
        kind: KindRef,
        namespace: str | None = None,
        selector: SelectorLike | None = None,
        field_selector: FieldSelectorLike | None = None,
    ) -> Objects:
        """``list`` by a linear scan, bypassing the indexes: the reference for tests and
        benchmarks."""
        table = self._table(self._info(kind))
        return table.scan(
            (namespace or None) if table.info.namespaced else None,
            to_selector(selector),
            to_field_selector(field_selector),
        )

    def count(self, kind: KindRef, namespace: str | None = None) -> int:
        """How many objects of ``kind`` there are (in ``namespace`` if given)."""
        table = self._table(self._info(kind))
        return table.count((namespace or None) if table.info.namespaced else None)

    def list_owned(self, owner_uid: str) -> Objects:
        """Objects of any kind with an ownerReference naming ``owner_uid``."""
        out: Objects = []
        for kind, ns, name in self._owned.get(owner_uid, ()):
            out.append(self._tables[kind].objects[(ns, name)])
        return out

    def watch(
        self,
        kind: KindRef,
        namespace: str | None = None,
        selector: SelectorLike | None = None,
        resource_version: str | int | None = None,
        field_selector: FieldSelectorLike | None = None,
    ) -> Watch:
        """An async iterator of :class:`WatchEvent` for ``kind``.

        Without a resourceVersion (or ``"0"``): an ADDED event for every matching object
        now stored, then every later change. With one: every change after it that the
        history still holds, then live changes; older than the history is
        :class:`Gone`, raised when iteration starts. A filtered watch sees an object that
        stops matching as DELETED and one that starts matching as ADDED.
        """
        table = self._table(self._info(kind))
        ns = (namespace or None) if table.info.namespaced else None
        labels = to_selector(selector)
        fields = to_field_selector(field_selector)
        matcher = None
        if ns is not None or labels is not None or fields is not None:
            matcher = Filter(ns, labels, fields)
        log = table.log
        rv = "0" if resource_version is None else str(resource_version)
        if rv in ("", "0"):
            return Watch(log, matcher, table.select(ns, labels, fields), log.end)
        try:
            since = int(rv)
        except ValueError:
            raise Invalid("", f'resourceVersion: Invalid value: "{rv}": '
                              "invalid resource version") from None
        floor = log.floor_rv()
        if since < floor:
            return Watch(log, matcher, (), log.end,
                         Gone(f"too old resource version: {since} ({floor})"))
        return Watch(log, matcher, (), log.position_after(since))

    # -- writes --------------------------------------------------------------------

    def create(self, obj: KubeObject | Mapping[str, Any], *,
               namespace: str | None = None) -> KubeObject:
        """Store a new object; returns it as stored (uid, resourceVersion, ... filled)."""
        if not isinstance(obj, KubeObject):
            obj = to_object(dict(obj) if not isinstance(obj, dict) else obj)
        elif obj.is_thawed:
            obj = to_object(obj.to_dict())
        info = type(obj).INFO
        table = self._table(info)
        meta = obj.metadata
        ns: str | None = None
        if info.namespaced:
            ns = meta.namespace
            if ns and namespace and ns != namespace:
                raise Invalid(
                    _what(info, meta.name or ""),
                    [FieldError("metadata.namespace", "the namespace of the provided object "
                                "does not match the namespace sent on the request")],
                )
            ns = ns or namespace or "default"
        name = meta.name
        if not name:
            if not meta.generate_name:
                raise Invalid(_what(info, ""), [FieldError(
                    "metadata.name", "Required value: name or generateName is required")])
            name = self._generate_name(table, ns or "", meta.generate_name)
        error = info.name_check(name)
        if error is not None:
            raise Invalid(_what(info, name), [FieldError(
                "metadata.name", f'Invalid value: "{name}": {error}')])
        if ns is not None:
            ns_obj = self._namespaces.objects.get(("", ns))
            if ns_obj is None:
                raise NotFound(f'namespaces "{ns}" not found')
            if ns_obj.metadata.deletion_timestamp is not None:
                raise Forbidden(
                    f'{info.resource} "{name}" is forbidden: unable to create new content in '
                    f"namespace {ns} because it is being terminated"
                )
        key = (ns or "", name)
        existing = table.objects.get(key)
        if existing is not None:
            raise _already_exists(info, name, existing)
        # Everything the store sets goes into one copy of the metadata and one of the
        # object: this is the hot path of every create.
        changes: dict[str, Any] = {}
        kind = info.kind
        if kind == "Pod":
            if obj.__dict__.get("status") is None:
                changes["status"] = _pending_status(obj)
        elif kind == "Namespace":
            obj = self._namespace_defaults(obj)
        elif kind == "Secret":
            obj = _merge_string_data(obj)
        meta_changes: dict[str, Any] = {}
        if name != meta.name or ns != meta.namespace:
            meta_changes["name"] = name
            meta_changes["namespace"] = ns
        if self._hooks and self._hooked(info):
            if meta_changes:
                changes["metadata"] = replace(obj.metadata, meta_changes)
                meta_changes = {}
            if changes:
                obj = replace(obj, changes)
                changes = {}
            admitted = self._admit("CREATE", info, obj, None)
            assert admitted is not None
            obj = admitted
            meta = obj.metadata
            key = (key[0], meta.name or name)
            existing = table.objects.get(key)
            if existing is not None:
                raise _already_exists(info, key[1], existing)
        self._rv = rv = self._rv + 1
        meta_changes["uid"] = _new_uid()
        meta_changes["resource_version"] = str(rv)
        meta_changes["generation"] = 1
        meta_changes["creation_timestamp"] = self._now()
        if meta.deletion_timestamp is not None or meta.deletion_grace_period_seconds is not None:
            meta_changes["deletion_timestamp"] = None
            meta_changes["deletion_grace_period_seconds"] = None
        meta = changes["metadata"] = replace(obj.metadata, meta_changes)
        obj = replace(obj, changes)
        table.insert(key, obj)
        if meta.owner_references:
            self._index_owners(kind, key, None, obj)
        table.log.append(_Change(rv, WatchEvent("ADDED", obj), None))
        return obj

    def _generate_name(self, table: Table, ns: str, prefix: str) -> str:
        prefix = prefix[:_MAX_PREFIX]
        for _ in range(8):
            name = prefix + "".join(random.choices(_SUFFIX_ALPHABET, k=5))
            if (ns, name) not in table.objects:
                return name
        raise AlreadyExists(
            f'{table.info.resource} "{prefix}" already exists: could not generate a unique '
            "name, try again"
        )

    def _namespace_defaults(self, obj: KubeObject) -> KubeObject:
        data = obj.to_dict()
        spec = data.setdefault("spec", {})
        if "finalizers" not in spec:
            spec["finalizers"] = ["kubernetes"]
        data.setdefault("status", {})["phase"] = "Active"
        return to_object(data)

    def update(self, obj: KubeObject | Mapping[str, Any]) -> KubeObject:
        """Replace a stored object; a set, stale ``metadata.resourceVersion`` is Conflict.

        uid and creationTimestamp cannot change; resourceVersion, generation and the
        deletion fields are the store's and are carried over from the stored object.
        Writing back what is stored is a no-op returning the stored object.
        """
        if not isinstance(obj, KubeObject):
            obj = to_object(dict(obj) if not isinstance(obj, dict) else obj)
        elif obj.is_thawed:
            obj = to_object(obj.to_dict())
        info = type(obj).INFO
        table = self._table(info)
        meta = obj.metadata
        name = meta.name
        if not name:
            raise Invalid(_what(info, ""), [FieldError("metadata.name", "Required value: "
                                                       "name is required")])
        key = ((meta.namespace or "default") if info.namespaced else "", name)
        old = table.objects.get(key)
        if old is None:
            raise _not_found(info, name)
        return self._update(table, key, old, obj)

    def _update(self, table: Table, key: Key, old: KubeObject, new: KubeObject) -> KubeObject:
        info = table.info
        meta = new.metadata
        om = old.metadata
        if meta.resource_version and meta.resource_version != om.resource_version:
            raise _conflict(info, key[1])
        if meta.uid and meta.uid != om.uid:
            raise Conflict(f"Precondition failed: UID in precondition: {meta.uid}, "
                           f"UID in object meta: {om.uid}")
        if meta.creation_timestamp and meta.creation_timestamp != om.creation_timestamp:
            raise Invalid(_what(info, key[1]), [FieldError(
                "metadata.creationTimestamp",
                f'Invalid value: "{meta.creation_timestamp}": field is immutable')])
        if om.deletion_timestamp is not None and meta.finalizers:
            added = set(meta.finalizers).difference(om.finalizers or ())
            if added:
                raise Invalid(_what(info, key[1]), [FieldError(
                    "metadata.finalizers", "Forbidden: no new finalizers can be added if the "
                    "object is being deleted")])
        if info.kind == "Secret":
            new = _merge_string_data(new)
        new = _carry_system_fields(new, old)
        if self._hooks and self._hooked(info):
            admitted = self._admit("UPDATE", info, new, old)
            assert admitted is not None
            new = _carry_system_fields(admitted, old)
        if new == old:
            return old
        meta = new.metadata
        if (meta.deletion_timestamp is not None and not meta.finalizers
                and not om.deletion_grace_period_seconds
                and (info.kind != "Namespace" or not _spec_finalizers(new))):
            # The update that drops the last finalizer ends the deletion (for a
            # Namespace, the last of spec.finalizers too), as the API server does.
            return self._remove(table, key, old, new)
        self._rv = rv = self._rv + 1
        changes: dict[str, Any] = {"resource_version": str(rv)}
        if table.spec_changed(old, new):
            changes["generation"] = (om.generation or 0) + 1
        new = replace(new, {"metadata": replace(meta, changes)})
        table.replace(key, old, new)
        self._index_owners(info.kind, key, old, new)
        table.log.append(_Change(rv, WatchEvent("MODIFIED", new), old))
        return new

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

    def patch(self, ref: KindRef, patch: Mapping[str, Any], *,
              namespace: str | None = "default", name: str | None = None) -> KubeObject:
        """Apply a JSON merge patch (RFC 7386) to the stored object and update it.

        The resourceVersion is checked only if the patch sets ``metadata.resourceVersion``.
        """
        table, key, name = self._ref(ref, name, namespace)
        info = table.info
        old = table.objects.get(key)
        if old is None:
            raise _not_found(info, name)
        if not isinstance(patch, Mapping):
            raise Invalid(_what(info, name), "a merge patch must be a JSON object")
        merged = merge_patch(old.to_dict(), dict(patch))
        meta = merged.get("metadata")
        if not isinstance(meta, dict):
            meta = merged["metadata"] = {}
        for field, was in (("name", old.metadata.name), ("namespace", old.metadata.namespace)):
            if meta.get(field) != was:
                raise Invalid(_what(info, name), [FieldError(
                    f"metadata.{field}", f'Invalid value: "{meta.get(field)}": field is '
                    "immutable")])
        if merged.get("kind") != info.kind or merged.get("apiVersion") != info.api_version:
            raise Invalid(_what(info, name), "kind and apiVersion cannot be changed by a patch")
        new = to_object(merged)
        if type(new) is not type(old):
            raise Invalid(_what(info, name), "kind cannot be changed by a patch")
        return self._update(table, key, old, new)

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


def _carry_system_fields(new: KubeObject, old: KubeObject) -> KubeObject:
    """``new`` with the metadata only the store sets copied from ``old``."""
    meta = new.metadata
    om = old.metadata
    changes: dict[str, Any] = {}
    for field in ("uid", "resource_version", "generation", "creation_timestamp",
                  "deletion_timestamp", "deletion_grace_period_seconds", "namespace"):
        value = getattr(om, field)
        if getattr(meta, field) != value:
            changes[field] = value
    if not changes:
        return new
    return replace(new, {"metadata": replace(meta, changes)})


_PENDING: dict[str, Any] = {}


def _pending_status(pod: KubeObject) -> Any:
    """A new pod's status, as the API server sets it: Pending, with its QoS class.

    The three possible values are shared between pods: they are immutable.
    """
    from orchestra.objects._pod import PodStatus, pod_qos_class

    qos = pod_qos_class(pod.spec)  # type: ignore[attr-defined]
    status = _PENDING.get(qos)
    if status is None:
        status = _PENDING[qos] = PodStatus(phase="Pending", qos_class=qos)
    return status


def _spec_finalizers(ns: KubeObject) -> tuple[str, ...]:
    return getattr(ns.__dict__.get("spec"), "finalizers", None) or ()


def _finalizers_for(info: KindInfo, current: tuple[str, ...],
                    propagation: str | None) -> tuple[str, ...]:
    if propagation is None:
        return tuple(current)
    drop: tuple[str, ...]
    if propagation == "Foreground":
        add, drop = "foregroundDeletion", ("orphan",)
    elif propagation == "Orphan":
        add, drop = "orphan", ("foregroundDeletion",)
    elif propagation == "Background":
        add, drop = "", ("orphan", "foregroundDeletion")
    else:
        raise Invalid("", [FieldError(
            "propagationPolicy", f'Unsupported value: "{propagation}": supported values: '
            '"Orphan", "Foreground", "Background"')])
    out = [f for f in current if f not in drop]
    if add and add not in out:
        out.append(add)
    return tuple(out)


def _merge_string_data(obj: KubeObject) -> KubeObject:
    """A Secret's ``stringData`` merged into ``data`` (base64), as the API server stores it."""
    string_data = getattr(obj, "string_data", None)
    if not string_data:
        return obj
    data = dict(getattr(obj, "data", None) or {})
    for k, v in string_data.items():
        data[k] = base64.b64encode(v.encode()).decode("ascii")
    return replace(obj, {"data": FrozenDict(data), "string_data": None})
