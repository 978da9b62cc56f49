"""Resolving kind names, turning dicts into objects, and reading/writing manifests.

Invariants:

- :func:`kind_info` accepts every name ``kubectl`` accepts for a kind registered in
  :data:`KINDS`: the kind, its plural, a short name, in any case, optionally qualified
  by group (``deployments.apps``) or version and group (``deployment.v1.apps``). Its
  lookup table is rebuilt whenever a kind module registers another kind.
- :func:`load` returns objects in document order; empty documents are skipped but still
  counted, so ``document 3`` in an error is the fourth ``---`` section of the file.
- ``load(to_yaml(objs)) == objs`` for any list of objects.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, NamedTuple

import yaml

from orchestra._errors import FieldError, Invalid, NotFound
from orchestra.objects import _kustomize as kustomize
from orchestra.objects._base import KINDS, KindInfo, KubeObject
from orchestra.objects._decode import DecodeError, decode_text, json_document, yaml_documents
from orchestra.objects._messages import did_you_mean, invalid, truncate
from orchestra.objects._names import dns1123_label_error

# libyaml is several times faster for large manifests.
_Dumper: Any = getattr(yaml, "CSafeDumper", yaml.SafeDumper)

_index: dict[str, KindInfo] = {}
_others: dict[str, list[KindInfo]] = {}  # names also used by a kind of another group
_index_size = -1


def _names(info: KindInfo) -> Iterator[str]:
    yield info.kind.lower()
    yield info.plural.lower()
    for short in info.short_names:
        yield short.lower()


def _lookup_table(force: bool = False) -> dict[str, KindInfo]:
    global _index, _others, _index_size
    if force or _index_size != len(KINDS):
        table: dict[str, KindInfo] = {}
        others: dict[str, list[KindInfo]] = {}
        for info in KINDS.values():
            for name in _names(info):
                if table.setdefault(name, info) is not info:
                    others.setdefault(name, []).append(info)
        for info in KINDS.values():  # a kind's group-qualified key names it too
            if info.key != info.kind:
                table.setdefault(info.key.lower(), info)
        _index, _others = table, others
        _index_size = len(KINDS)
    return _index


def kind_info(name: str) -> KindInfo:
    """The kind a kubectl-style resource name means (``deploy``, ``Pods``, ``deployments.apps``).

    Unknown names raise :class:`orchestra.NotFound` with kubectl's message.
    """
    table = _lookup_table()
    key = name.lower()
    info = table.get(key)
    if info is not None:
        if KINDS.get(info.key) is not info:  # a kind was registered again: rebuild
            return kind_info_uncached(name)
        return info
    if "." in key:
        resource, _, qualifier = key.partition(".")
        first = table.get(resource)
        candidates: tuple[KindInfo, ...] = () if first is None else (
            first, *_others.get(resource, ()))
        for info in candidates:
            version = info.api_version.rpartition("/")[2]
            group = info.group
            if qualifier in (group, f"{version}.{group}") or (not group and qualifier in (
                    version, f"{version}.")):
                return info
    raise NotFound(f'the server doesn\'t have a resource type "{name}"')


def kind_info_uncached(name: str) -> KindInfo:
    """:func:`kind_info` after rebuilding the lookup table from :data:`KINDS`."""
    _lookup_table(force=True)
    return kind_info(name)


def parse_ref(ref: str | type[KubeObject] | KubeObject, name: str | None = None
              ) -> tuple[KindInfo, str | None]:
    """The kind and (if given) name a reference denotes.

    ``ref`` is ``"kind/name"``, ``"kind"`` (with ``name=`` or without a name), a kind
    class, or an object (whose own name is used). Passing a name both ways raises
    :class:`ValueError` with kubectl's message.
    """
    if isinstance(ref, KubeObject):
        if name is not None and name != ref.name:
            raise ValueError(f"{ref.kind} {ref.name!r} given with a different name {name!r}")
        return type(ref).INFO, ref.name
    if isinstance(ref, type):
        if not issubclass(ref, KubeObject) or not hasattr(ref, "INFO"):
            raise TypeError(f"{ref.__name__} is not a registered kind")
        return ref.INFO, name
    if not isinstance(ref, str):
        raise TypeError(f"cannot refer to an object by {type(ref).__name__}")
    if "/" in ref:
        kind, _, ref_name = ref.partition("/")
        if not kind or not ref_name or "/" in ref_name:
            raise ValueError(
                "arguments in resource/name form must have a single resource and name")
        if name is not None:
            raise ValueError(
                "there is no need to specify a resource type as a separate argument when "
                "passing arguments in resource/name form (e.g. 'kubectl get "
                "resource/<resource_name>' instead of 'kubectl get resource "
                "resource/<resource_name>'")
        return kind_info(kind), ref_name
    return kind_info(ref), name


def _describe(obj: Mapping[str, Any]) -> str:
    kind = obj.get("kind")
    meta = obj.get("metadata")
    name = ""
    if isinstance(meta, Mapping):
        for field in ("name", "generateName"):
            if isinstance(meta.get(field), str) and meta[field]:
                name = truncate(meta[field])
                break
    label = truncate(kind) if isinstance(kind, str) and kind else "object"
    return f'{label} "{name}"' if name else label


def to_object(x: Mapping[str, Any] | KubeObject) -> KubeObject:
    """Validate a Kubernetes dict into the class of its ``kind``; objects pass through.

    A missing or unknown ``kind``, or an ``apiVersion`` the kind does not have, raises
    :class:`orchestra.Invalid` naming ``kind`` or ``apiVersion``.
    """
    if isinstance(x, KubeObject):
        return x
    if not isinstance(x, Mapping):
        raise Invalid("object", f"expected a mapping, got {type(x).__name__}")
    kind = x.get("kind")
    api_version = x.get("apiVersion")
    errors: list[FieldError] = []
    if not isinstance(kind, str) or not kind:
        errors.append(FieldError("kind", "Required value: kind not set" if not kind
                                 else invalid(kind, "must be a string")))
    if not isinstance(api_version, str) or not api_version:
        errors.append(FieldError("apiVersion", "Required value: apiVersion not set"
                                 if not api_version
                                 else invalid(api_version, "must be a string")))
    if errors:
        raise Invalid(_describe(x), errors)
    assert isinstance(kind, str) and isinstance(api_version, str)
    info = KINDS.get(kind)
    group = api_version.rpartition("/")[0]
    if info is not None and info.group != group:  # another group's kind of that name?
        info = KINDS.get(f"{kind}.{group}", info)
    if info is None:
        raise Invalid(_describe(x), [FieldError(
            "kind", f'no matches for kind "{kind}" in version "{api_version}"'
                    f"{_kind_hint(kind)}")])
    if info.api_version != api_version and \
            api_version not in getattr(info.cls, "SERVED_VERSIONS", ()):
        raise Invalid(_describe(x), [FieldError(
            "apiVersion", f'no matches for kind "{kind}" in version "{api_version}"; '
                          f'did you mean "{info.api_version}"?')])
    obj = info.cls.model_validate(dict(x))
    check_names(obj)
    return obj


def _kind_hint(kind: str) -> str:
    """``; did you mean "Deployment"?`` for a kind close to one orchestra has."""
    return did_you_mean(kind, sorted({info.kind for info in KINDS.values()}))


def check_names(obj: KubeObject) -> None:
    """The API server's checks of ``metadata.name`` and ``metadata.namespace`` (which do
    not need the store): :class:`orchestra.Invalid` naming the field."""
    info = type(obj).INFO
    meta = obj.metadata
    errors: list[FieldError] = []
    if meta.name:
        error = info.name_check(meta.name)
        if error is not None:
            errors.append(FieldError("metadata.name", invalid(meta.name, error)))
    if meta.namespace:
        if not info.namespaced:
            errors.append(FieldError("metadata.namespace",
                                     "Forbidden: not allowed on this type"))
        elif (error := dns1123_label_error(meta.namespace)) is not None:
            errors.append(FieldError("metadata.namespace", invalid(meta.namespace, error)))
    if errors:
        what = f"{info.kind}.{info.group}" if info.group else info.kind
        raise Invalid(f'{what} "{truncate(meta.name or "")}"', errors)


# ---------------------------------------------------------------------------
# Manifests


def _looks_like_text(s: str) -> bool:
    stripped = s.lstrip()
    return ("\n" in s or stripped.startswith(("{", "[", "apiVersion", "kind:", "---"))
            or stripped == "")


def _read_source(source: str | bytes | os.PathLike[str]) -> tuple[str, str]:
    """The text to parse and a label for messages (the path, or "" for text)."""
    if isinstance(source, bytes):
        return decode_text(source), ""
    if isinstance(source, str) and _looks_like_text(source):
        return source, ""
    path = Path(source)
    if path.is_dir():
        files = sorted(p for p in path.iterdir()
                       if p.suffix in (".yaml", ".yml", ".json") and p.is_file())
        return "\n---\n".join(decode_text(p.read_bytes()) for p in files), str(path)
    if path.is_file():
        return decode_text(path.read_bytes()), str(path)
    if isinstance(source, str) and ":" in source:
        return source, ""  # a one-line YAML mapping
    raise FileNotFoundError(f'the path "{source}" does not exist')


def _source_label(source: str | bytes | os.PathLike[str]) -> str:
    return "document 0" if isinstance(source, bytes) else truncate(os.fspath(source))


def _documents(text: str, where: str) -> Iterator[tuple[int, Any]]:
    """``(index, document)`` of a manifest's text; a document the decoder refuses comes
    as its :class:`Invalid` (the others still come); text that cannot be parsed raises
    :class:`Invalid`."""
    stripped = text.lstrip()
    if stripped.startswith(("{", "[")):
        try:
            yield 0, _decoded(lambda: json_document(text), f"{where}document 0")
            return
        except json.JSONDecodeError:
            pass  # maybe a JSON stream or YAML flow style: let YAML try
    count = 0
    docs = yaml_documents(text)
    while True:
        doc = _decoded(lambda: next(docs, _END), f"{where}document {count}")
        if doc is _END:
            return
        if isinstance(doc, DecodeError):
            doc = _as_invalid(doc, f"{where}document {count}")
        yield count, doc
        count += 1


_END = object()


def _decoded(decode: Any, what: str) -> Any:
    """``decode()``, its :class:`DecodeError` raised as :class:`Invalid` naming the
    document."""
    try:
        return decode()
    except DecodeError as exc:
        raise _as_invalid(exc, what) from None


def _as_invalid(exc: DecodeError, what: str) -> Invalid:
    """A decoder's refusal as :class:`Invalid` naming the document (a strict-decoding
    error in the API server's words for the document's kind)."""
    doc = exc.document
    kind = doc.get("kind") if isinstance(doc, dict) else None
    version = doc.get("apiVersion") if isinstance(doc, dict) else None
    if exc.strict and isinstance(kind, str) and isinstance(version, str):
        kind, version = truncate(kind), truncate(version.rpartition("/")[2])
        message = (f'{what}: {kind} in version "{version}" cannot be handled as a '
                   f"{kind}: {exc.message}")
        return Invalid(what, [FieldError("", exc.message)], message=message)
    return Invalid(what, [FieldError(exc.path, exc.message)])


def _relabel(exc: Invalid, prefix: str) -> Invalid:
    what = f"{prefix} ({exc.what})" if exc.what not in ("", "object") else prefix
    return Invalid(what, exc.errors, message=_relabel_message(exc, prefix))


def _relabel_message(exc: Invalid, prefix: str) -> str | None:
    """A message that does not read "<what> is invalid: ..." keeps its words, prefixed."""
    default = Invalid(exc.what, exc.errors)
    if str(exc) == str(default):
        return None
    return f"{prefix}: {exc}"


MAX_LIST_NESTING = 32
"""Lists of lists (of objects) are flattened this deep at most."""


def _leaves(doc: Any, prefix: str, depth: int = 0) -> Iterator[tuple[str, Any]]:
    """Each object of a document (a ``*List``'s items, a list's members) with its label;
    what is not an object at all comes out as itself, for :func:`_convert` to refuse."""
    if isinstance(doc, list | tuple):
        if depth >= MAX_LIST_NESTING:
            yield prefix, _TooDeep()
            return
        for i, item in enumerate(doc):
            yield from _leaves(item, f"{prefix}[{i}]", depth + 1)
        return
    kind = doc.get("kind") if isinstance(doc, Mapping) else None
    if isinstance(kind, str) and kind.endswith("List") and kind not in KINDS:
        items = doc.get("items")
        if items is None:
            return
        if not isinstance(items, list):
            yield prefix, _BadItems()
            return
        for i, item in enumerate(items):
            yield from _leaves(item, f"{prefix}, items[{i}]")
        return
    yield prefix, doc


class _BadItems:
    """Stands for a ``*List`` whose ``items`` is not a list."""


class _TooDeep:
    """Stands for lists nested deeper than :data:`MAX_LIST_NESTING`."""


def _convert(doc: Any, prefix: str) -> KubeObject:
    if isinstance(doc, _BadItems):
        raise Invalid(prefix, [FieldError("items", "Invalid value: must be a list")])
    if isinstance(doc, _TooDeep):
        raise Invalid(prefix, f"lists of objects nested more than {MAX_LIST_NESTING} "
                              "deep: give a flat list")
    if not isinstance(doc, Mapping):
        raise Invalid(prefix, f"expected a Kubernetes object (a mapping), got "
                      f"{type(doc).__name__}")
    try:
        return to_object(doc)
    except Invalid as exc:
        raise _relabel(exc, prefix) from None


def _objects_of(doc: Any, prefix: str) -> Iterator[KubeObject]:
    for label, leaf in _leaves(doc, prefix):
        yield _convert(leaf, label)


class Document(NamedTuple):
    """One object of a manifest as :func:`load_each` found it: the object, or why not."""

    label: str
    """``document 2 (ConfigMap "x")``: where it is, as errors name it."""
    obj: KubeObject | None
    error: Invalid | None
    unsupported: bool
    """The error is only that orchestra has no such kind (or version): kubectl's
    ``unable to recognize``, which does not stop the other documents."""


def _unsupported(exc: Invalid) -> bool:
    return bool(exc.errors) and all(
        e.path in ("kind", "apiVersion") and e.message.startswith("no matches for kind")
        for e in exc.errors)


def load_each(source: Any) -> list[Document]:
    """As :func:`load` (or :func:`load_dicts` for a list), but every object is judged and
    returned, failures included, instead of stopping at the first. Text that cannot be
    decoded at all still raises :class:`orchestra.Invalid`."""
    if isinstance(source, list | tuple):
        pairs: list[tuple[str, Any]] = []
        for i, x in enumerate(source):
            if isinstance(x, KubeObject):
                pairs.append((f"item {i}", x))
            else:
                pairs.extend(_leaves(x, f"item {i}"))
    elif isinstance(source, Mapping):
        pairs = list(_leaves(source, "object"))
    else:
        if not isinstance(source, bytes) and _is_kustomization(source):
            return [Document(f"item {i}", o, None, False)
                    for i, o in enumerate(load_dicts(kustomize.build(source)))]
        try:
            text, where = _read_source(source)
        except DecodeError as exc:
            raise Invalid(_source_label(source), [FieldError("", exc.message)]) from None
        label = f"{where}: " if where else ""
        pairs = []
        for index, doc in _documents(text, label):
            if isinstance(doc, Invalid):
                pairs.append((f"{label}document {index}", doc))
            elif doc is not None and doc != {}:
                pairs.extend(_leaves(doc, f"{label}document {index}"))
    out: list[Document] = []
    for prefix, leaf in pairs:
        if isinstance(leaf, Invalid):  # (refused by the decoder)
            out.append(Document(prefix, None, leaf, False))
            continue
        if isinstance(leaf, KubeObject):
            out.append(Document(f'{prefix} ({leaf.kind} "{leaf.name}")', leaf, None, False))
            continue
        try:
            obj = _convert(leaf, prefix)
        except Invalid as exc:
            described = _describe(leaf) if isinstance(leaf, Mapping) else ""
            label = f"{prefix} ({described})" if described else prefix
            out.append(Document(label, None, exc, _unsupported(exc)))
        else:
            out.append(Document(f'{prefix} ({obj.kind} "{truncate(obj.name)}")', obj, None,
                                False))
    return out


def _is_kustomization(source: str | bytes | os.PathLike[str]) -> bool:
    if isinstance(source, bytes) or (isinstance(source, str) and _looks_like_text(source)):
        return False
    return os.path.isdir(source) and kustomize.kustomization_file(source) is not None


def load(source: str | bytes | os.PathLike[str]) -> list[KubeObject]:
    """Every object in a manifest: multi-document YAML or JSON, text or a path.

    A string containing a newline, or starting with ``{``, ``[``, ``apiVersion`` or
    ``kind:``, is text; otherwise it names a file (or a directory, whose ``.yaml``,
    ``.yml`` and ``.json`` files are read in name order, or, when it holds a
    ``kustomization.yaml``, what ``kubectl apply -k`` would apply). ``kind: List`` (and any
    ``*List`` with ``items``) is flattened. An invalid document raises
    :class:`orchestra.Invalid` whose message starts with ``document <index>`` (0-based,
    counting empty documents); when several are invalid, one error lists each
    (``2 of 3 documents are invalid: document 0 ...; document 2 ...``).
    """
    if not isinstance(source, str | bytes | os.PathLike):
        raise TypeError(f"load() takes YAML or JSON text, bytes or a path, not "
                        f"{type(source).__name__} (a dict or a list of them: "
                        "orchestra.objects.load_dicts)")
    if not isinstance(source, bytes) and _is_kustomization(source):
        return load_dicts(kustomize.build(source))
    try:
        text, where = _read_source(source)
    except DecodeError as exc:
        raise Invalid(_source_label(source), [FieldError("", exc.message)]) from None
    label = f"{where}: " if where else ""
    out: list[KubeObject] = []
    failed: list[Invalid] = []
    total = 0
    for index, doc in _documents(text, label):
        if isinstance(doc, Invalid):
            failed.append(doc)
            break  # (the YAML stream cannot be read past a syntax error)
        if doc is None or doc == {}:
            continue
        for leaf_label, leaf in _leaves(doc, f"{label}document {index}"):
            total += 1
            try:
                out.append(_convert(leaf, leaf_label))
            except Invalid as exc:
                failed.append(exc)
    if len(failed) == 1:
        raise failed[0]
    if failed:  # every document's mistakes at once, as a multi-document apply reports them
        message = (f"{len(failed)} of {max(total, len(failed))} documents are invalid: "
                   + "; ".join(str(e) for e in failed))
        raise Invalid("", [e for exc in failed for e in exc.errors], message=message)
    return out


def load_dicts(objs: Iterable[Mapping[str, Any] | KubeObject]) -> list[KubeObject]:
    """:func:`to_object` over many, errors naming the item index like :func:`load`."""
    out: list[KubeObject] = []
    for i, x in enumerate(objs):
        if isinstance(x, KubeObject):
            out.append(x)
        else:
            out.extend(_objects_of(x, f"item {i}"))
    return out


def _as_dicts(objs: KubeObject | Iterable[KubeObject]) -> list[dict[str, Any]]:
    if isinstance(objs, KubeObject):
        return [objs.to_dict()]
    return [o.to_dict() for o in objs]


def to_yaml(objs: KubeObject | Iterable[KubeObject]) -> str:
    """YAML for an object, or a multi-document stream (``---`` between) for several."""
    text: str = yaml.dump_all(_as_dicts(objs), Dumper=_Dumper, sort_keys=False,
                              default_flow_style=False, allow_unicode=True)
    return text


def dump_json(objs: KubeObject | Iterable[KubeObject], *, indent: int | None = 2) -> str:
    """JSON for an object; several become a ``kind: List`` as ``kubectl get -o json`` prints."""
    if isinstance(objs, KubeObject):
        data: dict[str, Any] = objs.to_dict()
    else:
        data = {"apiVersion": "v1", "kind": "List", "items": _as_dicts(objs),
                "metadata": {"resourceVersion": ""}}
    return json.dumps(data, indent=indent)
