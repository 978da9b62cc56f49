"""The in-memory object store: Kubernetes' API server and etcd, for one event loop.

Invariants:

- Stored objects are immutable snapshots (see ``orchestra.objects._model``): reads hand
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

``Store`` is assembled from parts beside this module: ``_core`` (its state, kind
resolution, admission, the owner index, store-made commits), ``_delete`` (deletion) and
``_rules`` (the API server's per-object rules and error messages); reads, watches,
create, update and patch are here.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
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
    hide_from_tracebacks,
)
from orchestra._store._admission import AdmissionHook
from orchestra._store._binding import _Binding
from orchestra._store._core import KindRef
from orchestra._store._delete import _Deletion
from orchestra._store._immutable import check_update
from orchestra._store._index import Filter, Key, Table
from orchestra._store._meta import replace
from orchestra._store._patch import merge_patch
from orchestra._store._rules import (
    _already_exists,
    _carry_system_fields,
    _conflict,
    _merge_string_data,
    _new_uid,
    _not_found,
    _pending_status,
    _spec_finalizers,
    _what,
)
from orchestra._store._watch import Watch, WatchEvent, _Change
from orchestra.objects._base import KindInfo, KubeObject
from orchestra.objects._decode import DecodeError, plain
from orchestra.objects._messages import invalid, truncate
from orchestra.objects._meta import LabelSelector
from orchestra.objects._registry import kind_info, to_object
from orchestra.objects._selector import FieldSelector, Selector

__tracebackhide__ = hide_from_tracebacks  # see orchestra._errors

DEFAULT_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")

# Kubernetes' generateName suffix: 5 characters from an alphabet without vowels (so no
# words are spelled by accident), appended to at most 58 characters of the prefix.
_SUFFIX_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
_MAX_PREFIX = 63 - 5

SelectorLike = str | Selector | LabelSelector | Mapping[str, Any]
FieldSelectorLike = str | FieldSelector | Mapping[str, str]
Objects = list[KubeObject]


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


class Store(_Binding, _Deletion):
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
            raise Invalid(_what(info, truncate(name)), [FieldError(
                "metadata.name", invalid(name, error))])
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
            obj = self._namespace_defaults(obj, name)
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
        if kind == "Job":
            # The API server's generateSelector, which needs the uid just assigned.
            from orchestra.objects._batch import Job, generate_job_selector

            assert isinstance(obj, Job)
            obj = generate_job_selector(obj)
            meta = obj.metadata
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

    def _namespace_defaults(self, obj: KubeObject, name: str) -> KubeObject:
        data = obj.to_dict()
        _label_namespace(data, name)  # (name: also a generated one)
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

    def _update(self, table: Table, key: Key, old: KubeObject, new: KubeObject, *,
                subresource: bool = False) -> KubeObject:
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
        elif info.kind == "Namespace" and _namespace_label(new) != key[1]:
            data = new.to_dict()
            _label_namespace(data, key[1])
            new = to_object(data)
        new = _carry_system_fields(new, old)
        if not subresource:  # (a subresource's write checks what it may change itself)
            check_update(info, key[1], old, new)
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
        try:  # (what JSON could carry: surrogates replaced, nesting bounded, as decoded)
            patch = plain(dict(patch), keep_objects=True)
        except DecodeError as exc:
            raise Invalid(_what(info, name), [FieldError(exc.path, exc.message)]) from None
        merged = merge_patch(old.to_dict(), dict(patch))
        meta = merged.get("metadata")
        if not isinstance(meta, dict):
            meta = merged["metadata"] = {}
        for field, was in (("name", old.metadata.name), ("namespace", old.metadata.namespace)):
            if meta.get(field) != was:
                raise Invalid(_what(info, name), [FieldError(
                    f"metadata.{field}", f'Invalid value: "{meta.get(field)}": field is '
                    "immutable")])
        # Another served version of the same group is the same object (the API server
        # converts between them: apply a v1alpha3 manifest over a v1 VirtualService).
        api = merged.get("apiVersion")
        if merged.get("kind") != info.kind or not isinstance(api, str) or \
                api.rpartition("/")[0] != info.api_version.rpartition("/")[0]:
            raise Invalid(_what(info, name), "kind and apiVersion cannot be changed by a patch")
        new = to_object(merged)
        if type(new) is not type(old):
            raise Invalid(_what(info, name), "kind cannot be changed by a patch")
        return self._update(table, key, old, new)


_NAMESPACE_LABEL = "kubernetes.io/metadata.name"


def _namespace_label(ns: KubeObject) -> str | None:
    labels = ns.metadata.labels
    return labels.get(_NAMESPACE_LABEL) if labels else None


def _label_namespace(data: dict[str, Any], name: str) -> None:
    """The label the API server keeps on every Namespace: its own name (set on create and
    restored on update, as namespace selectors rely on it)."""
    meta = data.setdefault("metadata", {})
    meta["labels"] = {**(meta.get("labels") or {}), _NAMESPACE_LABEL: name}
