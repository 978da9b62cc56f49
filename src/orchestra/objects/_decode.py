"""Manifest text to plain JSON values, as the API server's decoders see them, with bounds.

What goes in is any text or bytes at all; what comes out is a document made only of
``dict`` (str keys), ``list``, ``str``, ``int``, ``float``, ``bool`` and ``None``, or a
:class:`DecodeError` whose message is the decoder's (``error converting YAML to JSON:
yaml: ...``) and is short. Nothing here ever raises anything else.

The rules, each as Kubernetes' decoders (sigs.k8s.io/yaml over go-yaml v2, and Go's
encoding/json) apply them:

- Bytes must be UTF-8 for YAML (``yaml: invalid leading UTF-8 octet``); JSON text with bad
  bytes, and lone surrogates anywhere, decode to U+FFFD as Go's JSON decoder replaces them.
- YAML is YAML 1.1 as go-yaml reads it, except that an unquoted timestamp (``2024-01-01``)
  stays a string (go-yaml keeps timestamps as strings when decoding into ``interface{}``),
  and ``1:30`` is a string, not a base-60 number. An integer too large for Python's
  int-to-text limit stays the string it was written as (go-yaml keeps a number it cannot
  parse as a string); one outside 64 bits becomes a float, as go-yaml reads it.
- Map keys become strings (ints, floats and booleans as text); a null key is refused, as
  sigs.k8s.io/yaml refuses it. Duplicate keys are refused as the API server's strict
  decoding refuses them (``strict decoding error: duplicate field "metadata.name"``).
- ``.inf`` and ``.nan`` cannot be written as JSON: refused (``json: unsupported value``).
- Alias expansion is bounded: a recursive alias is refused, and so is a document whose
  aliases expand it past :data:`MAX_EXPANDED_NODES` nodes or :data:`MAX_EXPANDED_BYTES`
  bytes of scalars (billion laughs), before anything is expanded. Nesting deeper than
  :data:`MAX_DEPTH` is refused in YAML and JSON alike.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

MAX_DEPTH = 100
"""Deepest nesting a document may have (Kubernetes' decoders allow 10000; no manifest
of a kind orchestra knows nests past about 30, and Python recursion must stay bounded)."""

MAX_EXPANDED_NODES = 100_000
"""Most nodes a YAML document that uses aliases may expand to."""

MAX_EXPANDED_BYTES = 3 * 1024 * 1024
"""Most bytes of scalars a YAML document that uses aliases may expand to: the API
server's request body limit (3 MiB)."""

_INT_TEXT_LIMIT = 4300  # Python's default int <-> str digit limit (sys.int_info)
_INT_BITS_LIMIT = 1024  # past float64's range

_Base: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class DecodeError(Exception):
    """The text is not a document the API server's decoder would accept.

    ``strict`` marks the API server's strict-decoding errors (duplicate fields), which are
    reported as ``<Kind> in version "<v>" cannot be handled as a <Kind>: ...``.
    """

    def __init__(self, message: str, *, strict: bool = False, document: Any = None,
                 path: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.strict = strict
        self.document = document
        self.path = path
        """Where in the document, when known (cut short: a deep path is long)."""


# ---------------------------------------------------------------------------
# Text


def decode_text(data: bytes) -> str:
    """UTF-8 text of a manifest; bytes that are not UTF-8 are refused as go-yaml refuses
    them, unless the text is JSON (Go's JSON decoder replaces them with U+FFFD)."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        if data.lstrip()[:1] in (b"{", b"["):
            return data.decode("utf-8", errors="replace")
        raise DecodeError(f"error converting YAML to JSON: yaml: invalid leading UTF-8 "
                          f"octet (at byte {exc.start})") from None


# ---------------------------------------------------------------------------
# YAML


class _Mapping(dict[Any, Any]):
    """A decoded mapping that remembers keys written twice (reported with their path)."""

    __slots__ = ("duplicates",)

    def __init__(self) -> None:
        super().__init__()
        self.duplicates: list[str] = []


def _go_key(key: Any, value: Any) -> str:
    """A YAML map key as sigs.k8s.io/yaml turns it into a JSON object key."""
    if isinstance(key, str):
        return key
    if isinstance(key, bool):
        return "true" if key else "false"
    if isinstance(key, int):
        return str(key)
    if isinstance(key, float):
        if math.isnan(key):
            return ".nan"
        if math.isinf(key):
            return ".inf" if key > 0 else "-.inf"
        return f"{key:g}"
    if key is None:
        shown = json.dumps(value)[:64] if isinstance(value, str) else "..."
        raise DecodeError(f"error converting YAML to JSON: unsupported map key of type: "
                          f"%!s(<nil>), key: <nil>, value: {shown}")
    raise DecodeError(f"error converting YAML to JSON: unsupported map key of type: "
                      f"{type(key).__name__}")


class _Loader(_Base):  # type: ignore[misc]
    """PyYAML's safe loader with go-yaml v2's reading of scalars and strict mappings."""

    yaml_implicit_resolvers: dict[str, list[tuple[str, Any]]] = {
        first: [(tag, regexp) for tag, regexp in resolvers
                if tag not in ("tag:yaml.org,2002:timestamp", "tag:yaml.org,2002:int",
                               "tag:yaml.org,2002:float")]
        for first, resolvers in _Base.yaml_implicit_resolvers.items()
    }

    def construct_document(self, node: Node) -> Any:
        _check_graph(node)
        return super().construct_document(node)

    def construct_mapping(self, node: Any, deep: bool = False) -> Any:
        own = [(k, v) for k, v in node.value if k.tag != "tag:yaml.org,2002:merge"]
        self.flatten_mapping(node)
        merged = node.value[:len(node.value) - len(own)]
        out = _Mapping()
        lines: dict[str, int] = {}
        for index, (key_node, value_node) in enumerate((*merged, *own)):
            try:
                key = self.construct_object(key_node, deep=deep)
                hash(key)
            except TypeError:
                raise DecodeError("error converting YAML to JSON: unsupported map key of "
                                  "type: a mapping or a sequence") from None
            value = self.construct_object(value_node, deep=deep)
            text = _go_key(key, value)
            if index >= len(merged):
                if text in lines:
                    out.duplicates.append(text)
                lines[text] = key_node.start_mark.line
            out[text] = value
        return out

    def construct_yaml_map(self, node: Any) -> Iterator[Any]:
        data = _Mapping()
        yield data
        value = self.construct_mapping(node)
        data.update(value)
        data.duplicates.extend(value.duplicates)

    def construct_go_int(self, node: Any) -> Any:
        text = str(node.value)
        try:
            value = self.construct_yaml_int(node)
        except ValueError:  # past Python's digit limit: go-yaml keeps it as a string
            return text
        if -(2**63) <= value < 2**64:
            return value
        try:
            return float(value)
        except OverflowError:
            return text

    def construct_plain_timestamp(self, node: Any) -> Any:
        return str(node.value)

    def construct_go_binary(self, node: Any) -> Any:
        data: bytes = self.construct_yaml_binary(node)
        return data.decode("utf-8", errors="replace")


_Loader.add_constructor("tag:yaml.org,2002:map", _Loader.construct_yaml_map)
_Loader.add_constructor("tag:yaml.org,2002:int", _Loader.construct_go_int)
_Loader.add_constructor("tag:yaml.org,2002:timestamp", _Loader.construct_plain_timestamp)
_Loader.add_constructor("tag:yaml.org,2002:binary", _Loader.construct_go_binary)
# go-yaml v2's numbers: no base 60 (``1:30`` stays a string), ``1e3`` is a float.
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:int",
    re.compile(r"^[-+]?(?:0b[0-1_]+|0[0-7_]+|0|[1-9][0-9_]*|0x[0-9a-fA-F_]+)$"),
    list("-+0123456789"))
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
               r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"),
    list("-+0123456789."))


def _check_graph(root: Node) -> None:
    """Refuse a composed document with a recursive alias, nesting past MAX_DEPTH, or
    aliases that expand it past the limits, without expanding anything.

    One pass over the node graph (each node once), bottom-up: a node's expanded size is
    its own plus its children's, shared children counted each time they are referenced.
    """
    sizes: dict[int, tuple[int, int, int]] = {}  # id -> (nodes, bytes, depth)
    on_path: set[int] = set()
    aliased = False
    stack: list[tuple[Node, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        key = id(node)
        if done:
            on_path.discard(key)
            nodes, size, depth = 1, 0, 0
            for child in _children(node):
                c = sizes[id(child)]
                nodes += c[0]
                size += c[1]
                depth = max(depth, c[2])
            if isinstance(node, ScalarNode):
                size += len(node.value)
            sizes[key] = (nodes, size, depth + 1)
            if depth + 1 > MAX_DEPTH:
                raise DecodeError(f"error converting YAML to JSON: yaml: exceeded max depth "
                                  f"of {MAX_DEPTH}")
            if aliased and (nodes > MAX_EXPANDED_NODES or size > MAX_EXPANDED_BYTES):
                raise DecodeError(
                    f"error converting YAML to JSON: yaml: document contains excessive "
                    f"aliasing (it expands past {MAX_EXPANDED_NODES} nodes or "
                    f"{MAX_EXPANDED_BYTES} bytes, the API server's request size limit)")
            continue
        if key in on_path:
            raise DecodeError("error converting YAML to JSON: yaml: anchor value contains "
                              "itself")
        if key in sizes:
            aliased = True
            continue
        on_path.add(key)
        stack.append((node, True))
        if len(on_path) > MAX_DEPTH + 1:
            raise DecodeError(f"error converting YAML to JSON: yaml: exceeded max depth of "
                              f"{MAX_DEPTH}")
        for child in _children(node):
            cid = id(child)
            if cid in on_path:
                raise DecodeError("error converting YAML to JSON: yaml: anchor value "
                                  "contains itself")
            if cid in sizes:
                aliased = True
            else:
                stack.append((child, False))


def _children(node: Node) -> Iterator[Node]:
    if isinstance(node, SequenceNode):
        yield from node.value
    elif isinstance(node, MappingNode):
        for k, v in node.value:
            yield k
            yield v


def yaml_documents(text: str) -> Iterator[Any]:
    """The documents of a YAML stream, each checked and made plain (see the module), in
    order (empty ones as None).

    A document that parses but is refused (an alias bomb, a duplicate key, ...) comes
    out as its :class:`DecodeError`, and the stream goes on; text that does not parse
    raises :class:`DecodeError`, since nothing after it can be read reliably.
    """
    loader = _Loader(text)
    try:
        while True:
            try:
                if not loader.check_node():
                    return
                node = loader.get_node()
            except yaml.YAMLError as exc:
                detail = str(exc)
                if isinstance(exc, yaml.MarkedYAMLError) and exc.problem_mark is not None:
                    detail = f"line {exc.problem_mark.line + 1}: {exc.problem}"
                raise DecodeError(f"error converting YAML to JSON: yaml: {detail[:512]}"
                                  ) from None
            except RecursionError:
                raise DecodeError(f"error converting YAML to JSON: yaml: exceeded max depth "
                                  f"of {MAX_DEPTH}") from None
            try:
                yield plain(loader.construct_document(node))
            except DecodeError as exc:
                yield exc
            except (yaml.YAMLError, RecursionError, ValueError, TypeError) as exc:
                yield DecodeError(f"error converting YAML to JSON: yaml: "
                                  f"{str(exc)[:512]}")
            finally:  # (a construction that failed half-way leaves its state behind)
                loader.constructed_objects = {}
                loader.recursive_objects = {}
                loader.state_generators = []
    finally:
        loader.dispose()


# ---------------------------------------------------------------------------
# JSON


def _json_object(pairs: list[tuple[str, Any]]) -> _Mapping:
    out = _Mapping()
    for k, v in pairs:
        if k in out:
            out.duplicates.append(k)
        out[k] = v
    return out


def _json_constant(name: str) -> Any:
    raise DecodeError(f"invalid character '{name[0]}' looking for beginning of value")


def _json_int(text: str) -> Any:
    if len(text) > _INT_TEXT_LIMIT:
        raise DecodeError(f"json: cannot unmarshal number {text[:32]}... into Go value of "
                          f"type float64")
    return int(text)


def json_document(text: str) -> Any:
    """One JSON document, plain (see the module); :class:`DecodeError` if it is not one.

    A :class:`json.JSONDecodeError` is left to the caller (who may try YAML next).
    """
    try:
        doc = json.loads(text, object_pairs_hook=_json_object, parse_constant=_json_constant,
                         parse_int=_json_int)
    except RecursionError:
        raise DecodeError(f"json: exceeded max depth of {MAX_DEPTH}") from None
    return plain(doc)


# ---------------------------------------------------------------------------
# Plain values


def _field(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def plain(doc: Any, *, keep_objects: bool = False) -> Any:
    """``doc`` made of JSON types only, with no surrogates, no NaN/Inf, no duplicate
    keys, no nesting past MAX_DEPTH; :class:`DecodeError` otherwise.

    With ``keep_objects`` (a dict given to ``model_validate``, not decoded text), values
    of other types and NaN/Inf are kept for the model's own checks to judge.

    Iterative (no recursion), and linear in the expanded size, which the YAML graph
    check has bounded before.
    """
    root: list[Any] = [None]
    # (value, container, slot, path, depth)
    stack: list[tuple[Any, Any, Any, str, int]] = [(doc, root, 0, "", 0)]
    duplicates: list[str] = []
    while stack:
        value, into, slot, path, depth = stack.pop()
        if depth > MAX_DEPTH:
            shown = path if len(path) <= 120 else f"{path[:120]}..."
            raise DecodeError(f"json: exceeded max depth of {MAX_DEPTH}", path=shown)
        cls = value.__class__
        if cls is str:
            into[slot] = value if value.isascii() else fix_text(value)
        elif cls is int:
            if value.bit_length() > _INT_BITS_LIMIT:  # (Go would overflow a float64)
                head = str(abs(value) >> (value.bit_length() - 64))[:20]
                raise DecodeError(f"json: cannot unmarshal number {head}... into Go value "
                                  f"of type float64")
            into[slot] = value
        elif value is None or cls is bool:
            into[slot] = value
        elif cls is float:
            if keep_objects:
                into[slot] = value
            elif math.isnan(value) or math.isinf(value):
                shown = "NaN" if math.isnan(value) else ("+Inf" if value > 0 else "-Inf")
                raise DecodeError(f"error converting YAML to JSON: json: unsupported value: "
                                  f"{shown}")
            else:
                into[slot] = value
        elif isinstance(value, dict):
            out: dict[str, Any] = {}
            into[slot] = out
            for dup in getattr(value, "duplicates", ()):
                duplicates.append(_field(path, dup))
            for k, v in value.items():
                if k.__class__ is not str:
                    k = _go_key(k, v)
                k = k if k.isascii() else fix_text(k)
                out[k] = None
                stack.append((v, out, k, _field(path, k), depth + 1))
        elif isinstance(value, list | tuple | set | frozenset) and (
                not keep_objects or cls in (list, tuple)):
            items = list(value)
            into[slot] = items
            for i, v in enumerate(items):
                stack.append((v, items, i, f"{path}[{i}]", depth + 1))
        elif isinstance(value, bytes):
            into[slot] = value.decode("utf-8", errors="replace")
        elif keep_objects:
            into[slot] = value
        else:
            into[slot] = fix_text(str(value))
    if duplicates:
        shown = ", ".join(f'duplicate field "{d[:256]}"' for d in sorted(duplicates)[:16])
        raise DecodeError(f"strict decoding error: {shown}", strict=True, document=root[0])
    return root[0]


def fix_text(text: str) -> str:
    """``text`` with lone surrogates replaced by U+FFFD, as Go's JSON decoder reads
    ``"\\ud800"``."""
    return _SURROGATE.sub("\ufffd", text)


_SURROGATE = re.compile("[\ud800-\udfff]")
