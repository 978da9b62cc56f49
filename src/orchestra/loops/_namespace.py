"""The namespace controller: a Terminating namespace is emptied, then finalized.

As Kubernetes' namespace controller (``pkg/controller/namespace/deletion``) does, each
pass over a namespace with a deletionTimestamp whose ``spec.finalizers`` still hold
``kubernetes``:

- deletes every object of every registered namespaced kind in it (pods gracefully, so
  their containers get their grace period; owners and dependents alike);
- counts what is left per resource, and the finalizers those leftovers wait on;
- writes the five deletion conditions with Kubernetes' reasons and messages
  (``NamespaceDeletionDiscoveryFailure``, ``NamespaceDeletionGroupVersionParsingFailure``,
  ``NamespaceDeletionContentFailure``, ``NamespaceContentRemaining``,
  ``NamespaceFinalizersRemaining``), changing a condition's lastTransitionTime only when
  its status, reason or message changes;
- once nothing is left, removes ``kubernetes`` from ``spec.finalizers`` (the finalize
  call); the store then removes the namespace unless other finalizers remain.

Creating in a Terminating namespace is refused by the store itself, so controllers that
would recreate what this one deletes cannot.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from orchestra._errors import Conflict, NotFound, OrchestraError
from orchestra.loops._context import Context, Runnable
from orchestra.loops._engine import Controller, Result
from orchestra.objects._base import KINDS, KubeObject
from orchestra.objects._scalars import format_time

FINALIZER = "kubernetes"

# Kubernetes' order (status_condition_utils.go), and each condition's state when fine.
_OK: dict[str, tuple[str, str]] = {
    "NamespaceDeletionDiscoveryFailure": (
        "ResourcesDiscovered", "All resources successfully discovered"),
    "NamespaceDeletionGroupVersionParsingFailure": (
        "ParsedGroupVersions", "All legacy kube types successfully parsed"),
    "NamespaceDeletionContentFailure": (
        "ContentDeleted", "All content successfully deleted, may be waiting on finalization"),
    "NamespaceContentRemaining": ("ContentRemoved", "All content successfully removed"),
    "NamespaceFinalizersRemaining": (
        "ContentHasNoFinalizers", "All content-preserving finalizers finished"),
}

# While content remains, look again after this long even if no pod event says so.
_POLL = 1.0


class NamespaceController:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.controller = Controller("namespace", self.reconcile, ctx.clock)
        ctx.informers["Namespace"].add_handler(self._on_ns)
        ctx.informers["Pod"].add_handler(self._on_pod)

    def _on_ns(self, typ: str, ns: Any, old: Any) -> None:
        if typ != "DELETED" and ns.metadata.deletion_timestamp is not None:
            self.controller.enqueue(ns.metadata.name)

    def _on_pod(self, typ: str, pod: Any, old: Any) -> None:
        """A pod of a Terminating namespace went: perhaps the last thing in it."""
        if typ != "DELETED":
            return
        ns = self.ctx.store.get_or_none("Namespace", pod.metadata.namespace or "")
        if ns is not None and ns.metadata.deletion_timestamp is not None:
            self.controller.enqueue(ns.name)

    async def reconcile(self, key: str) -> Result | None:
        store = self.ctx.store
        ns = store.get_or_none("Namespace", key)
        if ns is None or ns.metadata.deletion_timestamp is None:
            return None
        if FINALIZER not in _spec_finalizers(ns):
            return None  # finalized: the store removes it when its finalizers are gone
        errors: list[str] = []
        remaining: dict[str, int] = {}
        finalizers: Counter[str] = Counter()
        for info in sorted((i for i in KINDS.values() if i.namespaced),
                           key=lambda i: (i.group, i.plural)):
            left = 0
            for obj in store.list(info.key, namespace=key):
                if obj.metadata.deletion_timestamp is None:
                    try:
                        if store.delete(info.key, obj.metadata.name, namespace=key) is None:
                            continue
                    except NotFound:
                        continue
                    except OrchestraError as exc:
                        errors.append(str(exc))
                left += 1
            if left:
                remaining[f"{info.plural}.{info.group}"] = left
                for obj in store.list(info.key, namespace=key):
                    finalizers.update(obj.metadata.finalizers or ())
        ns = self._write_conditions(key, _conditions(errors, remaining, finalizers))
        if ns is None:
            return None
        if errors or remaining:
            return Result(requeue_after=_POLL)
        data = ns.to_dict()
        data["spec"]["finalizers"] = [f for f in _spec_finalizers(ns) if f != FINALIZER]
        try:
            store.update(data)  # Kubernetes' finalize: the store removes the namespace
        except NotFound:
            pass
        return None

    def _write_conditions(self, key: str, wanted: dict[str, tuple[str, str, str]]
                          ) -> KubeObject | None:
        """Update the namespace's deletion conditions (Kubernetes' updateConditions):
        a condition keeps its lastTransitionTime while status, reason and message stay."""
        store = self.ctx.store
        for _ in range(5):
            ns = store.get_or_none("Namespace", key)
            if ns is None:
                return None
            data = ns.to_dict()
            status = data.setdefault("status", {})
            status["phase"] = "Terminating"
            conditions: list[dict[str, Any]] = status.setdefault("conditions", [])
            now = format_time(self.ctx.clock.now())
            for typ, (state, reason, message) in wanted.items():
                new = {"type": typ, "status": state, "lastTransitionTime": now,
                       "reason": reason, "message": message}
                for i, old in enumerate(conditions):
                    if old.get("type") == typ:
                        if (old.get("status"), old.get("reason"), old.get("message")) != (
                                state, reason, message):
                            conditions[i] = new
                        break
                else:
                    conditions.append(new)
            try:
                return store.update(data)
            except Conflict:
                continue
        raise Conflict(f'Operation cannot be fulfilled on namespaces "{key}": the object '
                       "has been modified; please apply your changes to the latest version "
                       "and try again")


def _spec_finalizers(ns: KubeObject) -> tuple[str, ...]:
    return getattr(getattr(ns, "spec", None), "finalizers", None) or ()


def _conditions(errors: list[str], remaining: dict[str, int], finalizers: Counter[str]
                ) -> dict[str, tuple[str, str, str]]:
    """Each condition as (status, reason, message), as Kubernetes' condition updater
    words them (orchestra knows every kind it serves, so discovery and group-version
    parsing never fail)."""
    out = {typ: ("False", reason, message) for typ, (reason, message) in _OK.items()}
    if errors:
        shown = errors[0] if len(errors) == 1 else "[" + ", ".join(errors) + "]"
        out["NamespaceDeletionContentFailure"] = (
            "True", "ContentDeletionFailed",
            f"Failed to delete all resource types, {len(errors)} remaining: {shown}")
    if remaining:
        out["NamespaceContentRemaining"] = (
            "True", "SomeResourcesRemain", "Some resources are remaining: " + ", ".join(
                sorted(f"{res} has {n} resource instances" for res, n in remaining.items())))
    if finalizers:
        out["NamespaceFinalizersRemaining"] = (
            "True", "SomeFinalizersRemain",
            "Some content in the namespace has finalizers remaining: " + ", ".join(
                sorted(f"{f} in {n} resource instances" for f, n in finalizers.items())))
    return out


def setup(ctx: Context) -> list[Runnable]:
    c = NamespaceController(ctx)
    ctx.controllers["namespace"] = c.controller
    return [c.controller.run]
