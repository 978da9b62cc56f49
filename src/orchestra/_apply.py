"""``kubectl apply`` semantics: create what is missing; for what exists, set the fields
the caller set and remove the fields the caller set last time but not now (the
``kubectl.kubernetes.io/last-applied-configuration`` annotation remembers them).
Fields other writers own (status, controller-managed fields) are left alone."""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING, Any

from orchestra._errors import FieldError, Invalid, OrchestraError, hide_from_tracebacks
from orchestra.objects._base import KubeObject
from orchestra.objects._meta import LAST_APPLIED as LAST_APPLIED
from orchestra.objects._registry import MAX_LIST_NESTING, Document, load_each

if TYPE_CHECKING:
    from orchestra._store import Store

__tracebackhide__ = hide_from_tracebacks  # see orchestra._errors


def apply_all(store: Store, x: Any, namespace: str | None = None) -> list[KubeObject]:
    """``kubectl apply -f`` over every object ``x`` holds; returns what was stored.

    Every document is decoded and validated first (names included): if any is invalid,
    nothing is written and one :class:`Invalid` lists every invalid document. A document
    of a kind orchestra does not have does not stop the others (kubectl's "unable to
    recognize"); neither does what can only fail when written (a missing namespace,
    AlreadyExists, a taken clusterIP, admission). Those are applied as far as they go,
    then one error lists each failure with its document index and kind/name.
    """
    if isinstance(x, KubeObject):
        return [_apply_one(store, x, namespace)]
    if not isinstance(x, str | bytes | os.PathLike | dict | list | tuple):
        raise TypeError(f"cannot apply {type(x).__name__}: give an object, a dict, "
                        "YAML/JSON text, a path or a list of these")
    docs = _documents_of(x)
    invalid = [d for d in docs if d.error is not None and not d.unsupported]
    if invalid:
        raise _aggregate([(d, d.error) for d in docs if d.error is not None], len(docs),
                         written=False)
    out: list[KubeObject] = []
    failures: list[tuple[Document, OrchestraError]] = [
        (d, d.error) for d in docs if d.error is not None]
    for doc in docs:
        if doc.obj is None:
            continue
        try:
            out.append(_apply_one(store, doc.obj, namespace))
        except OrchestraError as exc:
            failures.append((doc, exc))
    if failures:
        failures.sort(key=lambda f: docs.index(f[0]))
        raise _aggregate(failures, len(docs), written=bool(out))
    return out


def _documents_of(x: Any, depth: int = 0) -> list[Document]:
    if isinstance(x, KubeObject):
        return [Document(f'object ({x.kind} "{x.name}")', x, None, False)]
    if isinstance(x, list | tuple):
        if depth >= MAX_LIST_NESTING:
            raise Invalid("", f"lists of objects nested more than {MAX_LIST_NESTING} deep: "
                              "give a flat list")
        out: list[Document] = []
        for i, item in enumerate(x):
            if isinstance(item, KubeObject | dict):
                docs = load_each([item])
            elif isinstance(item, str | bytes | os.PathLike | list | tuple):
                docs = _documents_of(item, depth + 1)
            else:
                raise TypeError(f"cannot apply {type(item).__name__}: give an object, a "
                                "dict, YAML/JSON text, a path or a list of these")
            out.extend(d._replace(label=f"item {i}" + d.label.removeprefix("item 0")
                                  if isinstance(item, KubeObject | dict)
                                  else f"item {i}: {d.label}") for d in docs)
        return out
    return load_each(x)


def _apply_one(store: Store, obj: KubeObject, namespace: str | None) -> KubeObject:
    if getattr(obj, "status", None) is not None:
        # A manifest saved from a cluster (`kubectl get -o yaml`) carries a status: the
        # API server resets it on create and keeps the stored one on update (status is
        # the controllers' to write, through its subresource), so apply ignores it.
        obj = obj.model_copy(update={"status": None})
    info = obj.INFO
    ns = (obj.metadata.namespace or namespace or "default") if info.namespaced else None
    current = store.get_or_none(info.key, obj.metadata.name, namespace=ns) \
        if obj.metadata.name else None
    if current is None:
        return store.create(with_last_applied(obj), namespace=ns)
    last = current.annotations.get(LAST_APPLIED)
    return store.patch(info.key, apply_patch(obj, last), namespace=ns or "",
                       name=current.metadata.name)


def _aggregate(failures: list[tuple[Document, OrchestraError]], total: int, *,
               written: bool) -> OrchestraError:
    """One error for every failed document, as kubectl prints one line each. A single
    failure of a single document is raised as it is; otherwise the error is of the
    failures' common class (OrchestraError when they differ), and lists each failure as
    ``document <i> (<Kind> "<name>"): <why>``."""
    if len(failures) == 1 and total == 1:
        return failures[0][1]
    lines = []
    for doc, exc in failures:
        text = str(exc)
        lines.append(text if text.startswith(doc.label.split(" (")[0]) else
                     f"{doc.label}: {text}")
    summary = (f"{len(failures)} of {total} documents failed"
               + ("" if written else ", nothing was applied") + ": ")
    classes = {type(exc) for _, exc in failures}
    cls = classes.pop() if len(classes) == 1 else OrchestraError
    message = summary + "; ".join(lines)
    if issubclass(cls, Invalid):
        errors = [e for _, exc in failures for e in getattr(exc, "errors", [])]
        return Invalid("", errors or [FieldError("", message)], message=message)
    return cls(message)


def applied_config(obj: KubeObject) -> dict[str, Any]:
    """What the caller set: the manifest without defaults and without system fields."""
    d = obj.model_dump(mode="json", by_alias=True, exclude_unset=True, exclude_none=True,
                       warnings=False)
    d["apiVersion"] = obj.api_version
    d["kind"] = obj.kind
    meta = d.setdefault("metadata", {})
    for k in ("uid", "resourceVersion", "generation", "creationTimestamp",
              "deletionTimestamp", "managedFields", "selfLink"):
        meta.pop(k, None)
    d.pop("status", None)
    annotations = meta.get("annotations")
    if annotations:
        annotations.pop(LAST_APPLIED, None)
        if not annotations:
            meta.pop("annotations")
    return d


def three_way_patch(last: dict[str, Any] | None, desired: dict[str, Any]) -> dict[str, Any]:
    """A JSON merge patch: ``desired``, plus ``null`` for keys in ``last`` that
    ``desired`` no longer has (recursively through maps)."""
    patch: dict[str, Any] = {}
    for k, v in desired.items():
        prev = (last or {}).get(k)
        if isinstance(v, dict) and isinstance(prev, dict):
            patch[k] = three_way_patch(prev, v)
        else:
            patch[k] = v
    for k in last or {}:
        if k not in desired:
            patch[k] = None
    return patch


def apply_patch(obj: KubeObject, last_applied: str | None) -> dict[str, Any]:
    desired = applied_config(obj)
    last = json.loads(last_applied) if last_applied else None
    patch = three_way_patch(last, desired)
    patch.setdefault("metadata", {}).setdefault("annotations", {})[LAST_APPLIED] = json.dumps(
        desired, sort_keys=True, separators=(",", ":"))
    return patch


def with_last_applied(obj: KubeObject) -> dict[str, Any]:
    """The object to create, carrying its last-applied annotation."""
    desired = applied_config(obj)
    d = obj.to_dict()
    d.setdefault("metadata", {}).setdefault("annotations", {})[LAST_APPLIED] = json.dumps(
        desired, sort_keys=True, separators=(",", ":"))
    return d
