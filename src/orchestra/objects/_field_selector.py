"""Field selectors (k8s.io/apimachinery/pkg/fields/selector.go): ``spec.nodeName=n1,
status.phase!=Running``, equality on dotted field paths, parsed, printed and escaped as
Kubernetes does. An invalid one raises :class:`orchestra.Invalid` (``what`` is
``"field selector"``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from orchestra._errors import FieldError, Invalid
from orchestra.objects._base import KubeObject

_CAMEL = re.compile(r"(?<=[a-z0-9])([A-Z])")


def _snake(name: str) -> str:
    return _CAMEL.sub(r"_\1", name).lower()


def _field_string(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace(",", "\\,").replace("=", "\\=")


def _unescape(value: str) -> str:
    if "\\" not in value and "=" not in value and "," not in value:
        return value
    out: list[str] = []
    escaped = False
    for c in value:
        if escaped:
            if c not in "\\,=":
                raise ValueError(f"invalid field selector: invalid escape sequence: \\{c}")
            out.append(c)
            escaped = False
        elif c == "\\":
            escaped = True
        elif c in ",=":
            raise ValueError(f"invalid field selector: unescaped character in value: {c}")
        else:
            out.append(c)
    if escaped:
        raise ValueError("invalid field selector: invalid escape sequence: \\")
    return "".join(out)


def _split_terms(text: str) -> list[str]:
    terms: list[str] = []
    start = 0
    i = 0
    while i < len(text):
        c = text[i]
        if c == "\\":
            i += 2
            continue
        if c == ",":
            terms.append(text[start:i])
            start = i + 1
        i += 1
    terms.append(text[start:])
    return terms


def _split_term(term: str) -> tuple[str, str, str] | None:
    i = 0
    while i < len(term):
        if term[i] == "\\":
            i += 2
            continue
        for op in ("!=", "==", "="):
            if term.startswith(op, i):
                return term[:i], op, term[i + len(op):]
        i += 1
    return None


class FieldSelector:
    """``spec.nodeName=n1,status.phase!=Running``: equality on dotted field paths.

    ``requirements`` holds ``(path, "=" | "!=", value)`` sorted like Kubernetes sorts the
    terms. ``matches`` resolves a path over an object's snake_case attributes
    (``spec.nodeName`` -> ``obj.spec.node_name``); a missing field or ``None`` reads as
    ``""``, booleans as ``true``/``false``.
    """

    __slots__ = ("_compiled", "requirements")

    requirements: tuple[tuple[str, str, str], ...]
    _compiled: tuple[tuple[tuple[tuple[str, str], ...], bool, str], ...]

    def __init__(self, requirements: Iterable[tuple[str, str, str]] = ()) -> None:
        reqs = tuple(sorted(set(requirements)))
        for field, op, _ in reqs:
            if op not in ("=", "!="):
                raise Invalid("field selector", f'invalid operator "{op}" for field "{field}"')
        object.__setattr__(self, "requirements", reqs)
        object.__setattr__(self, "_compiled", tuple(
            (_compile_path(field), op == "=", value)
            for field, op, value in reqs))

    @classmethod
    def parse(cls, text: str) -> FieldSelector:
        reqs: list[tuple[str, str, str]] = []
        for term in sorted(_split_terms(text)):
            if not term:
                continue
            split = _split_term(term)
            if split is None:
                raise Invalid("field selector", [FieldError(
                    "", f"invalid selector: '{text}'; can't understand '{term}'")])
            lhs, op, rhs = split
            try:
                value = _unescape(rhs)
            except ValueError as exc:
                raise Invalid("field selector", [FieldError("", str(exc))]) from None
            reqs.append((lhs, "!=" if op == "!=" else "=", value))
        return cls(reqs)

    @classmethod
    def coerce(cls, value: FieldSelector | str | Mapping[str, str] | None) -> FieldSelector:
        """``None`` (everything), a string, a ``{path: value}`` map, or a FieldSelector."""
        if value is None:
            return cls()
        if isinstance(value, FieldSelector):
            return value
        if isinstance(value, str):
            return cls.parse(value)
        if isinstance(value, Mapping):
            return cls((k, "=", v) for k, v in value.items())
        raise TypeError(f"not a field selector: {type(value).__name__}")

    @property
    def empty(self) -> bool:
        return not self.requirements

    def value_of(self, obj: KubeObject, path: str) -> str:
        """The string a field path reads as on ``obj``."""
        return _resolve(obj, _compile_path(path))

    def matches(self, obj: KubeObject) -> bool:
        for parts, equal, value in self._compiled:
            if (_resolve(obj, parts) == value) is not equal:
                return False
        return True

    def __str__(self) -> str:
        return ",".join(f"{f}{op}{_escape(v)}" for f, op, v in self.requirements)

    def __repr__(self) -> str:
        return f"FieldSelector.parse({str(self)!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, FieldSelector):
            return NotImplemented
        return self.requirements == other.requirements

    def __hash__(self) -> int:
        return hash(self.requirements)

    def __setattr__(self, name: str, value: Any) -> None:
        raise TypeError("FieldSelector objects are immutable")

    def __reduce__(self) -> tuple[Any, ...]:
        return (FieldSelector, (self.requirements,))


def _compile_path(path: str) -> tuple[tuple[str, str], ...]:
    return tuple((p, _snake(p)) for p in path.split("."))


def _resolve(obj: object, parts: tuple[tuple[str, str], ...]) -> str:
    """Maps are looked up by the part as written (label keys keep their case),
    attributes by its snake_case form."""
    cur: object = obj
    for raw, snake in parts:
        if cur is None:
            return ""
        cur = cur.get(raw) if isinstance(cur, Mapping) else getattr(cur, snake, None)
    return _field_string(cur)
