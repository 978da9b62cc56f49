"""A random walk of writes against a dict-based model of what the store must hold."""

from __future__ import annotations

from typing import Any

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

import orchestra.objects  # noqa: F401
from orchestra._clock import ManualClock
from orchestra._errors import AlreadyExists, Conflict, NotFound
from orchestra._store import Store, Watch
from orchestra.objects._selector import Selector

NAMES = st.sampled_from(["a", "b", "c", "d"])
NAMESPACES = st.sampled_from(["default", "kube-system"])
LABELS = st.dictionaries(st.sampled_from(["app", "tier"]), st.sampled_from(["x", "y"]),
                         max_size=2)
DATA = st.dictionaries(st.sampled_from(["k1", "k2"]), st.sampled_from(["1", "2"]), max_size=2)
SELECTOR = "app=x"

Key = tuple[str, str]


def cm(ns: str, name: str, labels: dict[str, str], data: dict[str, str],
       finalizers: list[str] | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": ns, "labels": labels}
    if finalizers:
        meta["finalizers"] = finalizers
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": data}


class StoreMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.store = Store(clock=ManualClock(), history=1000)
        self.model: dict[Key, tuple[dict[str, str], dict[str, str]]] = {}
        self.finalizers: dict[Key, list[str]] = {}  # keys with finalizers
        self.deleting: set[Key] = set()
        self.rv = int(self.store.resource_version)
        self.expected: list[tuple[str, Key, int]] = []  # every change, in order
        self.all = self.store.watch("configmaps")
        self.all_seen: list[tuple[str, Key, int]] = []
        self.filtered = self.store.watch("configmaps", selector=SELECTOR)
        self.filtered_view: dict[Key, int] = {}
        self.filtered_rv = 0
        self.resumed: list[tuple[int, Watch, list[tuple[str, Key, int]]]] = []

    # -- helpers ----------------------------------------------------------------------

    def committed(self, type_: str, key: Key) -> None:
        rv = int(self.store.resource_version)
        assert rv == self.rv + 1, "each write takes exactly the next resourceVersion"
        self.rv = rv
        self.expected.append((type_, key, rv))

    def unchanged(self) -> None:
        assert int(self.store.resource_version) == self.rv

    # -- rules ------------------------------------------------------------------------

    @rule(ns=NAMESPACES, name=NAMES, labels=LABELS, data=DATA, finalizer=st.booleans())
    def create(self, ns: str, name: str, labels: dict[str, str], data: dict[str, str],
               finalizer: bool) -> None:
        key = (ns, name)
        finalizers = ["example.com/hold"] if finalizer else []
        try:
            obj = self.store.create(cm(ns, name, labels, data, finalizers))
        except AlreadyExists:
            assert key in self.model
            self.unchanged()
            return
        assert key not in self.model
        assert obj.metadata.generation == 1
        self.model[key] = (labels, data)
        if finalizers:
            self.finalizers[key] = finalizers
        self.committed("ADDED", key)

    @rule(ns=NAMESPACES, name=NAMES, labels=LABELS, data=DATA, stale=st.booleans())
    def update(self, ns: str, name: str, labels: dict[str, str], data: dict[str, str],
               stale: bool) -> None:
        key = (ns, name)
        body = cm(ns, name, labels, data, self.finalizers.get(key))
        if stale:
            body["metadata"]["resourceVersion"] = "1"
        try:
            self.store.update(body)
        except NotFound:
            assert key not in self.model
            self.unchanged()
            return
        except Conflict:
            assert stale and key in self.model
            self.unchanged()
            return
        assert key in self.model and not stale
        if self.model[key] == (labels, data):
            self.unchanged()
        else:
            self.model[key] = (labels, data)
            self.committed("MODIFIED", key)

    @rule(ns=NAMESPACES, name=NAMES, labels=LABELS)
    def patch_labels(self, ns: str, name: str, labels: dict[str, str]) -> None:
        key = (ns, name)
        try:
            self.store.patch("configmaps", {"metadata": {"labels": labels}}, name=name,
                             namespace=ns)
        except NotFound:
            assert key not in self.model
            self.unchanged()
            return
        old_labels, data = self.model[key]
        merged = {**old_labels, **labels}
        if merged == old_labels:
            self.unchanged()
        else:
            self.model[key] = (merged, data)
            self.committed("MODIFIED", key)

    @rule(ns=NAMESPACES, name=NAMES)
    def delete(self, ns: str, name: str) -> None:
        key = (ns, name)
        try:
            out = self.store.delete("cm", name, namespace=ns)
        except NotFound:
            assert key not in self.model
            self.unchanged()
            return
        if key in self.finalizers:
            assert out is not None and out.metadata.deletion_timestamp
            if key in self.deleting:
                self.unchanged()
            else:
                self.deleting.add(key)
                self.committed("MODIFIED", key)
            return
        assert out is None
        del self.model[key]
        self.committed("DELETED", key)

    @rule(ns=NAMESPACES, name=NAMES)
    def drop_finalizers(self, ns: str, name: str) -> None:
        key = (ns, name)
        try:
            self.store.patch("cm", {"metadata": {"finalizers": None}}, name=name, namespace=ns)
        except NotFound:
            assert key not in self.model
            self.unchanged()
            return
        if key not in self.finalizers:
            self.unchanged()
            return
        del self.finalizers[key]
        if key in self.deleting:
            self.deleting.discard(key)
            del self.model[key]
            self.committed("DELETED", key)
        else:
            self.committed("MODIFIED", key)

    @precondition(lambda self: len(self.expected) > 0 and len(self.resumed) < 3)
    @rule(back=st.integers(0, 20))
    def resume_watch(self, back: int) -> None:
        i = max(0, len(self.expected) - 1 - back)
        since = self.expected[i][2] - 1
        w = self.store.watch("cm", resource_version=str(since))
        self.resumed.append((i, w, []))

    # -- invariants -------------------------------------------------------------------

    @invariant()
    def store_matches_model(self) -> None:
        listed = self.store.list("configmaps")
        got = {(o.metadata.namespace or "", o.name): (dict(o.labels), dict(o.to_dict().get(
            "data", {}))) for o in listed}
        assert got == self.model
        for o in listed:
            key = (o.metadata.namespace or "", o.name)
            assert list(o.metadata.finalizers or ()) == self.finalizers.get(key, [])
            assert (o.metadata.deletion_timestamp is not None) == (key in self.deleting)
        matching = {k for k, (labels, _) in self.model.items() if labels.get("app") == "x"}
        assert {(o.metadata.namespace or "", o.name)
                for o in self.store.list("configmaps", selector=SELECTOR)} == matching

    @invariant()
    def unfiltered_watcher_sees_every_change_once_in_order(self) -> None:
        while (ev := self.all.next_nowait()) is not None:
            o = ev.object
            self.all_seen.append((ev.type, (o.metadata.namespace or "", o.name),
                                  int(o.metadata.resource_version or 0)))
        assert self.all_seen == self.expected
        for start, w, seen in self.resumed:
            while (ev := w.next_nowait()) is not None:
                o = ev.object
                seen.append((ev.type, (o.metadata.namespace or "", o.name),
                              int(o.metadata.resource_version or 0)))
            assert seen == self.expected[start:]

    @invariant()
    def filtered_watcher_tracks_the_matching_set(self) -> None:
        selector = Selector.parse(SELECTOR)
        while (ev := self.filtered.next_nowait()) is not None:
            o = ev.object
            key = (o.metadata.namespace or "", o.name)
            rv = int(o.metadata.resource_version or 0)
            assert rv > self.filtered_rv
            self.filtered_rv = rv
            if ev.type == "ADDED":
                assert key not in self.filtered_view
                assert selector.matches(o.labels)
                self.filtered_view[key] = rv
            elif ev.type == "MODIFIED":
                assert key in self.filtered_view
                assert selector.matches(o.labels)
                self.filtered_view[key] = rv
            else:
                assert key in self.filtered_view
                del self.filtered_view[key]
        matching = {k for k, (labels, _) in self.model.items() if labels.get("app") == "x"}
        assert set(self.filtered_view) == matching


TestStoreMachine = StoreMachine.TestCase
TestStoreMachine.settings = settings(max_examples=30, stateful_step_count=30, deadline=None)
