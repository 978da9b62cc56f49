"""One kind's objects and the indexes that make a selective list cost O(matches).

Invariants (kept by :meth:`Table.insert`, :meth:`Table.replace`, :meth:`Table.remove`,
the only ways the store changes a table):

- ``objects`` maps ``(namespace or "", name)`` to the stored, immutable object.
- Every index bucket holds exactly the keys of the objects with that value, and no
  bucket is ever empty (emptied buckets are dropped, so a churning cluster does not
  leak index entries). Buckets are dicts used as insertion-ordered sets, so that
  results are deterministic within a process (sets of str tuples are not: hash seeds).
- Indexes: namespace, each label ``key -> value``, and for pods ``spec.nodeName``
  (unbound pods under ``""``, which is what the scheduler asks for). ``metadata.name``
  needs no index: it is a key lookup per namespace.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from orchestra._store._watch import History
from orchestra.objects._base import KindInfo, KubeObject
from orchestra.objects._selector import FieldSelector, Selector

Key = tuple[str, str]
Bucket = dict[Key, None]

# Kinds whose objects are indexed by spec.nodeName (Kubernetes supports this field
# selector on pods only).
NODE_INDEXED = frozenset({"Pod"})


def _add(index: dict[str, Bucket], value: str, key: Key) -> None:
    bucket = index.get(value)
    if bucket is None:
        index[value] = {key: None}
    else:
        bucket[key] = None


def _discard(index: dict[str, Bucket], value: str, key: Key) -> None:
    bucket = index[value]
    del bucket[key]
    if not bucket:
        del index[value]


def node_of(obj: KubeObject) -> str:
    spec = obj.__dict__.get("spec")
    return getattr(spec, "node_name", None) or ""


class Filter:
    """A watch's or a list's namespace, label and field filter, as one predicate."""

    __slots__ = ("fields", "namespace", "selector", "static")

    def __init__(
        self,
        namespace: str | None,
        selector: Selector | None,
        fields: FieldSelector | None,
    ) -> None:
        self.namespace = namespace
        self.selector = selector
        self.fields = fields
        self.static = selector is None and fields is None

    def matches(self, obj: KubeObject) -> bool:
        meta = obj.metadata
        if self.namespace is not None and meta.namespace != self.namespace:
            return False
        if self.selector is not None and not self.selector.matches(meta.labels or {}):
            return False
        return self.fields is None or self.fields.matches(obj)


class Table:
    """The objects of one kind, their indexes and their change history."""

    __slots__ = ("by_namespace", "by_node", "info", "labels", "log", "node_indexed",
                 "objects", "spec_fields")

    def __init__(self, info: KindInfo, history: int) -> None:
        self.info = info
        self.objects: dict[Key, KubeObject] = {}
        self.by_namespace: dict[str, Bucket] = {}
        self.by_node: dict[str, Bucket] = {}
        self.labels: dict[str, dict[str, Bucket]] = {}
        self.log = History(history)
        self.node_indexed = info.kind in NODE_INDEXED
        # Fields whose change bumps metadata.generation: all but metadata and status.
        self.spec_fields = tuple(
            f for f in info.cls.model_fields if f not in ("api_version", "kind", "metadata",
                                                          "status")
        )

    # -- changes -------------------------------------------------------------------

    def insert(self, key: Key, obj: KubeObject) -> None:
        self.objects[key] = obj
        _add(self.by_namespace, key[0], key)
        if self.node_indexed:
            _add(self.by_node, node_of(obj), key)
        labels = obj.metadata.labels
        if labels:
            index = self.labels
            for k, v in labels.items():
                values = index.get(k)
                if values is None:
                    index[k] = {v: {key: None}}
                else:
                    _add(values, v, key)

    def replace(self, key: Key, old: KubeObject, new: KubeObject) -> None:
        self.objects[key] = new
        if self.node_indexed:
            before, after = node_of(old), node_of(new)
            if before != after:
                _discard(self.by_node, before, key)
                _add(self.by_node, after, key)
        old_labels: Mapping[str, str] = old.metadata.labels or {}
        new_labels: Mapping[str, str] = new.metadata.labels or {}
        if old_labels is not new_labels and old_labels != new_labels:
            index = self.labels
            for k, v in old_labels.items():
                if new_labels.get(k) != v:
                    values = index[k]
                    _discard(values, v, key)
                    if not values:
                        del index[k]
            for k, v in new_labels.items():
                if old_labels.get(k) != v:
                    found = index.get(k)
                    if found is None:
                        index[k] = {v: {key: None}}
                    else:
                        _add(found, v, key)

    def remove(self, key: Key, old: KubeObject) -> None:
        del self.objects[key]
        _discard(self.by_namespace, key[0], key)
        if self.node_indexed:
            _discard(self.by_node, node_of(old), key)
        labels = old.metadata.labels
        if labels:
            index = self.labels
            for k, v in labels.items():
                values = index[k]
                _discard(values, v, key)
                if not values:
                    del index[k]

    # -- queries -------------------------------------------------------------------

    def count(self, namespace: str | None) -> int:
        if namespace is None:
            return len(self.objects)
        return len(self.by_namespace.get(namespace, ()))

    def select(
        self,
        namespace: str | None,
        selector: Selector | None,
        fields: FieldSelector | None,
    ) -> list[KubeObject]:
        """The matching objects, found through the smallest candidate index bucket.

        Each indexed term (namespace, ``key in (...)``/``key=value`` labels,
        ``metadata.name``/``metadata.namespace``/``spec.nodeName`` equality) gives a
        candidate bucket; the smallest is walked and its keys checked for membership in
        the others. Only terms no index answers (``!=``, ``notin``, ``!key``, other
        fields) are checked on the object itself.
        """
        objects = self.objects
        candidates: list[Bucket] = []
        if namespace is not None:
            bucket = self.by_namespace.get(namespace)
            if not bucket:
                return []
            candidates.append(bucket)
        check_labels = False
        if selector is not None:
            if selector.is_nothing:
                return []
            label_index = self.labels
            for req in selector.requirements:
                op = req.operator
                if op == "In":
                    by_value = label_index.get(req.key)
                    if not by_value:
                        return []
                    if len(req.values) == 1:
                        found = by_value.get(next(iter(req.values)))
                        if not found:
                            return []
                        bucket = found
                    else:
                        bucket = {}
                        for v in sorted(req.values):
                            found = by_value.get(v)
                            if found:
                                bucket.update(found)
                        if not bucket:
                            return []
                    candidates.append(bucket)
                elif op == "Exists":
                    if req.key not in label_index:
                        return []
                    check_labels = True
                else:
                    check_labels = True
        check_fields = False
        if fields is not None:
            for path, field_op, value in fields.requirements:
                index: dict[str, Bucket] | None = None
                if field_op == "=":
                    if path == "metadata.namespace":
                        index = self.by_namespace
                    elif path == "metadata.name":
                        candidates.append(self._named(value, namespace))
                        continue
                    elif path == "spec.nodeName" and self.node_indexed:
                        index = self.by_node
                if index is None:
                    check_fields = True
                    continue
                bucket = index.get(value)
                if not bucket:
                    return []
                candidates.append(bucket)
        if not candidates:
            return self.scan(namespace, selector, fields)
        candidates.sort(key=len)
        smallest = candidates[0]
        others = candidates[1:]
        labels_ok = selector.matches if check_labels and selector is not None else None
        fields_ok = fields.matches if check_fields and fields is not None else None
        if not others and labels_ok is None and fields_ok is None:
            return list(map(objects.__getitem__, smallest))
        out: list[KubeObject] = []
        for key in smallest:
            if others and not _in_all(key, others):
                continue
            obj = objects[key]
            if labels_ok is not None and not labels_ok(obj.metadata.labels or {}):
                continue
            if fields_ok is not None and not fields_ok(obj):
                continue
            out.append(obj)
        return out

    def _named(self, name: str, namespace: str | None) -> Bucket:
        objects = self.objects
        if namespace is not None:
            key = (namespace, name)
            return {key: None} if key in objects else {}
        return {k: None for ns in self.by_namespace if (k := (ns, name)) in objects}

    def scan(
        self,
        namespace: str | None,
        selector: Selector | None,
        fields: FieldSelector | None,
    ) -> list[KubeObject]:
        """The matching objects by a linear scan: the reference the indexes must agree with."""
        if namespace is None and selector is None and fields is None:
            return list(self.objects.values())
        flt = Filter(namespace, selector, fields)
        return [obj for obj in self.objects.values() if flt.matches(obj)]

    def spec_changed(self, old: KubeObject, new: KubeObject) -> bool:
        a: dict[str, Any] = old.__dict__
        b: dict[str, Any] = new.__dict__
        for f in self.spec_fields:
            x, y = a.get(f), b.get(f)
            if x is not y and x != y:
                return True
        return False


def _in_all(key: Key, buckets: Iterable[Bucket]) -> bool:
    return all(key in b for b in buckets)
