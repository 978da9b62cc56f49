"""The garbage collector: owner references drive cascading deletion, for every
registered kind (owners and dependents alike; events excepted, as in Kubernetes).

- Background (the default): once an owner is gone, its dependents are deleted (a
  dependent with several owners only loses the dangling reference).
- Foreground: the owner carries the ``foregroundDeletion`` finalizer; its dependents are
  deleted (in the foreground too), and the finalizer comes off once none of them with
  ``blockOwnerDeletion`` remains, which lets the owner go.
- Orphan: the ``orphan`` finalizer: dependents lose their reference to the owner, then
  the finalizer comes off.
"""

from __future__ import annotations

import logging
from typing import Any

from orchestra._errors import Conflict, NotFound
from orchestra.loops._context import Context, Runnable
from orchestra.loops._engine import Controller, Result, key_of
from orchestra.objects._base import KINDS

log = logging.getLogger("orchestra.gc")

FOREGROUND = "foregroundDeletion"
ORPHAN = "orphan"
# kube-controller-manager's default ignored resources: events are never owners nor
# collected dependents (and are too many to watch for nothing).
IGNORED_KINDS = frozenset({"Event"})


def collected_kinds() -> list[str]:
    """Every registered kind but the ignored: any of them may own, or be owned by, any
    other, as in Kubernetes, whose collector watches every deletable resource."""
    return sorted(k for k in KINDS if k not in IGNORED_KINDS)


def _exists(store: Any, ref: Any, namespace: str | None) -> bool:
    """Whether the owner ``ref`` names is there. An owner of a kind this cluster does
    not serve counts as there: Kubernetes' collector cannot map such a reference and
    leaves its dependent alone rather than delete it as an orphan."""
    try:
        obj = store.get_or_none(ref.kind, ref.name, namespace=namespace)
    except NotFound:  # unknown kind
        return True
    return obj is not None and obj.metadata.uid == ref.uid


class GarbageCollector:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.controller = Controller("garbage-collector", self.reconcile, ctx.clock,
                                     workers=int(ctx.options.get("gc_workers", 2)))
        for kind in collected_kinds():
            ctx.informers[kind].add_handler(self._handler(kind))

    def _handler(self, kind: str) -> Any:
        def on(typ: str, obj: Any, old: Any) -> None:
            if typ == "DELETED":
                self.controller.enqueue(f"uid:{obj.metadata.uid}")
            elif obj.metadata.deletion_timestamp is not None and (
                    FOREGROUND in (obj.metadata.finalizers or ())
                    or ORPHAN in (obj.metadata.finalizers or ())):
                self.controller.enqueue(f"owner:{kind}:{key_of(obj)}")
            if obj.metadata.owner_references and typ != "DELETED":
                # a dependent whose owners may already be gone
                for ref in obj.metadata.owner_references:
                    if not _exists(self.ctx.store, ref, obj.metadata.namespace):
                        self.controller.enqueue(f"uid:{ref.uid}")
                        break
        return on

    async def reconcile(self, key: str) -> Result | None:
        what, _, rest = key.partition(":")
        if what == "uid":
            return self._dependents_of_gone(rest)
        kind, _, okey = rest.partition(":")
        ns, _, name = okey.rpartition("/")
        owner = self.ctx.store.get_or_none(kind, name, namespace=ns or None)
        if owner is None or owner.metadata.deletion_timestamp is None:
            return None
        finalizers = owner.metadata.finalizers or ()
        if ORPHAN in finalizers:
            return self._orphan(owner)
        if FOREGROUND in finalizers:
            return self._foreground(owner)
        return None

    def _dependents_of_gone(self, uid: str) -> Result | None:
        store = self.ctx.store
        for dep in store.list_owned(uid):
            refs = dep.metadata.owner_references or ()
            ns = dep.metadata.namespace
            alive = [r for r in refs if r.uid != uid and _exists(store, r, ns)]
            try:
                if alive:
                    store.update(dep.model_copy(update={"metadata": dep.metadata.model_copy(
                        update={"owner_references": tuple(r for r in refs if r.uid != uid)})}))
                elif dep.metadata.deletion_timestamp is None:
                    store.delete(dep.kind, dep.metadata.name, namespace=ns,
                                 propagation="Background")
            except (NotFound, Conflict):
                continue
        return None

    def _orphan(self, owner: Any) -> Result | None:
        store = self.ctx.store
        uid = owner.metadata.uid
        for dep in store.list_owned(uid):
            refs = tuple(r for r in dep.metadata.owner_references or () if r.uid != uid)
            try:
                store.update(dep.model_copy(update={"metadata": dep.metadata.model_copy(
                    update={"owner_references": refs or None})}))
            except (NotFound, Conflict):
                return Result(requeue=True)
        return self._drop_finalizer(owner, ORPHAN)

    def _foreground(self, owner: Any) -> Result | None:
        store = self.ctx.store
        blocking = 0
        for dep in store.list_owned(owner.metadata.uid):
            ref = next((r for r in dep.metadata.owner_references or ()
                        if r.uid == owner.metadata.uid), None)
            if ref is not None and ref.block_owner_deletion:
                blocking += 1
            if dep.metadata.deletion_timestamp is None:
                try:
                    store.delete(dep.kind, dep.metadata.name, namespace=dep.metadata.namespace,
                                 propagation="Foreground")
                except NotFound:
                    continue
        if blocking:
            return Result(requeue_after=1.0)
        return self._drop_finalizer(owner, FOREGROUND)

    def _drop_finalizer(self, owner: Any, finalizer: str) -> Result | None:
        fins = tuple(f for f in owner.metadata.finalizers or () if f != finalizer)
        try:
            self.ctx.store.update(owner.model_copy(update={"metadata": owner.metadata.model_copy(
                update={"finalizers": fins or None})}))
        except NotFound:
            return None
        except Conflict:
            return Result(requeue=True)
        return None


def setup(ctx: Context) -> list[Runnable]:
    gc = GarbageCollector(ctx)
    ctx.controllers["garbage-collector"] = gc.controller
    return [gc.controller.run]
