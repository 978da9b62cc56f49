"""Label and field selectors, with Kubernetes' grammar, semantics and messages.

Invariants:

- A :class:`Selector` is immutable and hashable; two selectors are equal when they hold
  the same requirements (order does not matter: requirements are kept sorted by key, as
  Kubernetes sorts them), so ``Selector.parse(str(sel)) == sel``.
- ``a=b``/``a==b`` are stored as ``In {b}`` and ``a!=b`` as ``NotIn {b}``; they print
  back in their short form.
- ``Selector.nothing()`` (what a nil ``LabelSelector`` means to a controller) matches no
  label set; ``Selector.everything()`` (an empty one) matches every label set. Like
  Kubernetes, both print as ``""``: only the first round-trips through ``parse``.
- Every invalid selector raises :class:`orchestra.Invalid` (``what`` is ``"selector"``
  or ``"field selector"``) whose message is the one Kubernetes gives.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any, Final, Literal

from orchestra._errors import FieldError, Invalid
from orchestra.objects._base import (
    KubeObject,
    LabelSelector,
    label_key_error,
    label_value_error,
)

Operator = Literal["In", "NotIn", "Exists", "DoesNotExist", "Gt", "Lt"]
OPERATORS: Final[tuple[str, ...]] = ("In", "NotIn", "Exists", "DoesNotExist", "Gt", "Lt")
_LABEL_SELECTOR_OPERATORS: Final = ("In", "NotIn", "Exists", "DoesNotExist")

_IN, _NOT_IN, _EXISTS, _NOT_EXISTS, _GT, _LT = range(6)
_OP_CODE: Final[dict[str, int]] = {op: i for i, op in enumerate(OPERATORS)}


def _go_string_list(values: Iterable[str]) -> str:
    """Go's ``%#v`` of a ``[]string``, as ``field.Invalid`` prints one."""
    return "[]string{" + ", ".join('"' + v.replace('"', '\\"') + '"' for v in values) + "}"


def _is_int64(text: str) -> bool:
    body = text[1:] if text[:1] in ("+", "-") else text
    if not body or not body.isascii() or not body.isdigit():
        return False
    return -(2**63) <= int(text) <= 2**63 - 1


class Requirement:
    """One condition on one label key. Immutable and hashable.

    ``values`` is empty for ``Exists``/``DoesNotExist`` and holds exactly one integer for
    ``Gt``/``Lt`` (node selector terms only).
    """

    __slots__ = ("_hash", "_sort_key", "key", "operator", "values")

    key: str
    operator: Operator
    values: frozenset[str]
    _sort_key: tuple[str, int, tuple[str, ...]]
    _hash: int

    def __init__(self, key: str, operator: str, values: Iterable[str] = (), *,
                 path: str = "") -> None:
        vals = frozenset(values)
        errors = _requirement_errors(key, operator, sorted(vals), path)
        if errors:
            raise Invalid("selector", errors)
        object.__setattr__(self, "key", key)
        object.__setattr__(self, "operator", operator)
        object.__setattr__(self, "values", vals)
        sort_key = (key, _OP_CODE[operator], tuple(sorted(vals)))
        object.__setattr__(self, "_sort_key", sort_key)
        object.__setattr__(self, "_hash", hash(sort_key))

    def __setattr__(self, name: str, value: Any) -> None:
        raise TypeError("Requirement objects are immutable")

    def __reduce__(self) -> tuple[Any, ...]:
        return (Requirement, (self.key, self.operator, tuple(sorted(self.values))))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Requirement):
            return NotImplemented
        return self._sort_key == other._sort_key

    def __lt__(self, other: Requirement) -> bool:
        return self._sort_key < other._sort_key

    def __hash__(self) -> int:
        return self._hash

    def __repr__(self) -> str:
        return f"Requirement({self.key!r}, {self.operator!r}, {sorted(self.values)!r})"

    def matches(self, labels: Mapping[str, str]) -> bool:
        value = labels.get(self.key)
        op = self.operator
        if op == "In":
            return value is not None and value in self.values
        if op == "NotIn":
            return value is None or value not in self.values
        if op == "Exists":
            return value is not None
        if op == "DoesNotExist":
            return value is None
        return _compare(op, value, next(iter(self.values)))

    def __str__(self) -> str:
        op = self.operator
        if op == "Exists":
            return self.key
        if op == "DoesNotExist":
            return "!" + self.key
        values = sorted(self.values)
        if op == "Gt":
            return f"{self.key}>{values[0]}"
        if op == "Lt":
            return f"{self.key}<{values[0]}"
        if len(values) == 1:
            return f"{self.key}{'=' if op == 'In' else '!='}{values[0]}"
        word = "in" if op == "In" else "notin"
        return f"{self.key} {word} ({','.join(values)})"

    def to_dict(self) -> dict[str, Any]:
        """A ``matchExpressions`` entry (``Gt``/``Lt`` as node selector terms spell them)."""
        out: dict[str, Any] = {"key": self.key, "operator": self.operator}
        if self.values:
            out["values"] = sorted(self.values)
        return out


def _compare(op: str, value: str | None, bound: str) -> bool:
    if value is None or not _is_int64(value):
        return False
    return int(value) > int(bound) if op == "Gt" else int(value) < int(bound)


def _requirement_errors(key: str, op: str, vals: list[str], path: str) -> list[FieldError]:
    """``labels.NewRequirement``'s checks, with its messages."""
    errors: list[FieldError] = []

    def at(child: str) -> str:
        return f"{path}.{child}" if path else child

    err = label_key_error(key)
    if err:
        errors.append(FieldError(at("key"), f'Invalid value: "{key}": {err}'))
    values_path = at("values")
    if op in ("In", "NotIn"):
        if not vals:
            errors.append(FieldError(values_path, f"Invalid value: {_go_string_list(vals)}: "
                                     "for 'in', 'notin' operators, values set can't be empty"))
    elif op in ("Exists", "DoesNotExist"):
        if vals:
            errors.append(FieldError(values_path, f"Invalid value: {_go_string_list(vals)}: "
                                     "values set must be empty for exists and does not exist"))
    elif op in ("Gt", "Lt"):
        if len(vals) != 1:
            errors.append(FieldError(values_path, f"Invalid value: {_go_string_list(vals)}: "
                                     "for 'Gt', 'Lt' operators, exactly one value is required"))
        for i, v in enumerate(vals):
            if not _is_int64(v):
                errors.append(FieldError(f"{values_path}[{i}]", f'Invalid value: "{v}": '
                                         "for 'Gt', 'Lt' operators, the value must be an "
                                         "integer"))
    else:
        supported = ", ".join(f'"{o}"' for o in OPERATORS)
        errors.append(FieldError(at("operator"),
                                 f'Unsupported value: "{op}": supported values: {supported}'))
    for i, v in enumerate(vals):
        err = label_value_error(v)
        if err:
            errors.append(FieldError(f"{values_path}[{i}]", f'Invalid value: "{v}": {err}'))
    return errors


class Selector:
    """A conjunction of label :class:`Requirement` s. Immutable and hashable.

    Build with :meth:`parse`, :meth:`from_labels`, :meth:`from_label_selector`,
    :meth:`everything`, :meth:`nothing` or :meth:`coerce`.
    """

    __slots__ = ("_eq", "_hash", "_nothing", "_rest", "_str", "requirements")

    requirements: tuple[Requirement, ...]
    _nothing: bool
    _eq: tuple[tuple[str, str], ...]
    _rest: tuple[tuple[str, int, frozenset[str]], ...]
    _hash: int
    _str: str | None

    def __init__(self, requirements: Iterable[Requirement] = (), *, nothing: bool = False
                 ) -> None:
        reqs = tuple(sorted(set(requirements)))
        set_ = object.__setattr__
        set_(self, "requirements", () if nothing else reqs)
        set_(self, "_nothing", nothing)
        # Compiled form for matches(): single-value In first (the common case),
        # then the rest.
        eq: list[tuple[str, str]] = []
        rest: list[tuple[str, int, frozenset[str]]] = []
        for r in self.requirements:
            if r.operator == "In" and len(r.values) == 1:
                eq.append((r.key, next(iter(r.values))))
            else:
                rest.append((r.key, _OP_CODE[r.operator], r.values))
        set_(self, "_eq", tuple(eq))
        set_(self, "_rest", tuple(rest))
        set_(self, "_hash", hash((nothing, self.requirements)))
        set_(self, "_str", None)

    # -- construction ---------------------------------------------------------------

    @classmethod
    def everything(cls) -> Selector:
        """Matches every label set (an empty selector)."""
        return _EVERYTHING

    @classmethod
    def nothing(cls) -> Selector:
        """Matches no label set (a nil selector)."""
        return _NOTHING

    @classmethod
    def from_labels(cls, labels: Mapping[str, str]) -> Selector:
        """``key=value`` for every label, as ``labels.SelectorFromSet`` (validated)."""
        return cls(Requirement(k, "In", (v,)) for k, v in labels.items())

    @classmethod
    def from_label_selector(cls, selector: LabelSelector | Mapping[str, Any] | None
                            ) -> Selector:
        """Kubernetes' ``LabelSelectorAsSelector``: ``None`` matches nothing, ``{}`` everything.

        ``selector`` is a :class:`LabelSelector` or its dict form
        (``{"matchLabels": ..., "matchExpressions": [...]}``).
        """
        if selector is None:
            return _NOTHING
        if isinstance(selector, LabelSelector):
            match_labels: Mapping[str, str] = selector.match_labels or {}
            exprs: list[tuple[str, str, Iterable[str]]] = [
                (e.key, e.operator, e.values or ()) for e in selector.match_expressions or ()
            ]
        elif isinstance(selector, Mapping):
            unknown = set(selector) - {"matchLabels", "matchExpressions"}
            if unknown:
                raise Invalid("selector", [FieldError(k, f'unknown field "{k}"')
                                           for k in sorted(unknown)])
            match_labels = selector.get("matchLabels") or {}
            exprs = []
            for i, e in enumerate(selector.get("matchExpressions") or ()):
                if not isinstance(e, Mapping) or "key" not in e or "operator" not in e:
                    raise Invalid("selector", [FieldError(f"matchExpressions[{i}]",
                                                          "Required value: key and operator")])
                exprs.append((e["key"], e["operator"], e.get("values") or ()))
        else:
            raise TypeError(f"not a label selector: {type(selector).__name__}")
        if not match_labels and not exprs:
            return _EVERYTHING
        reqs = [Requirement(k, "In", (v,), path=f"matchLabels[{k}]")
                for k, v in match_labels.items()]
        for i, (key, op, values) in enumerate(exprs):
            if op not in _LABEL_SELECTOR_OPERATORS:
                raise Invalid("selector", [FieldError(
                    f"matchExpressions[{i}].operator",
                    f'"{op}" is not a valid label selector operator')])
            reqs.append(Requirement(key, op, values, path=f"matchExpressions[{i}]"))
        return cls(reqs)

    @classmethod
    def parse(cls, text: str) -> Selector:
        """Parse Kubernetes' string form: ``app=web,tier in (fe,be),!canary,env notin (x)``."""
        return _parse_cached(text)

    @classmethod
    def coerce(cls, value: Selector | str | Mapping[str, Any] | LabelSelector | None
               ) -> Selector:
        """What ``list(selector=...)`` accepts: ``None`` (everything), a string, a
        ``matchLabels``/``matchExpressions`` dict or :class:`LabelSelector`, a plain label
        map, or a Selector."""
        if value is None:
            return _EVERYTHING
        if isinstance(value, Selector):
            return value
        if isinstance(value, str):
            return cls.parse(value)
        if isinstance(value, LabelSelector):
            return cls.from_label_selector(value)
        if isinstance(value, Mapping):
            if value and set(value) <= {"matchLabels", "matchExpressions"} and not any(
                isinstance(v, str) for v in value.values()
            ):
                return cls.from_label_selector(value)
            return cls.from_labels(value)
        raise TypeError(f"not a selector: {type(value).__name__}")

    def __and__(self, other: Selector) -> Selector:
        if not isinstance(other, Selector):
            return NotImplemented
        if self._nothing or other._nothing:
            return _NOTHING
        return Selector(self.requirements + other.requirements)

    # -- reading ------------------------------------------------------------------

    @property
    def empty(self) -> bool:
        """True for a selector without requirements (matches everything).

        ``nothing()`` is not empty, as in Kubernetes.
        """
        return not self.requirements and not self._nothing

    @property
    def is_nothing(self) -> bool:
        return self._nothing

    def matches(self, labels: Mapping[str, str]) -> bool:
        """Whether a label set satisfies every requirement."""
        get = labels.get
        for key, value in self._eq:
            if get(key) != value:
                return False
        for key, op, values in self._rest:
            v = get(key)
            if op == _IN:
                if v is None or v not in values:
                    return False
            elif op == _NOT_IN:
                if v is not None and v in values:
                    return False
            elif op == _EXISTS:
                if v is None:
                    return False
            elif op == _NOT_EXISTS:
                if v is not None:
                    return False
            elif not _compare(OPERATORS[op], v, next(iter(values))):
                return False
        return not self._nothing

    def to_label_selector(self) -> dict[str, Any]:
        """The ``{"matchLabels": ..., "matchExpressions": [...]}`` form."""
        if self._nothing:
            raise ValueError("a selector matching nothing has no LabelSelector form")
        labels = {k: v for k, v in self._eq}
        exprs = [r.to_dict() for r in self.requirements
                 if not (r.operator == "In" and len(r.values) == 1)]
        out: dict[str, Any] = {}
        if labels and len(labels) == len(self._eq):
            out["matchLabels"] = labels
        else:
            exprs = [r.to_dict() for r in self.requirements]
        if exprs:
            out["matchExpressions"] = exprs
        return out

    def __str__(self) -> str:
        s: str | None = self._str
        if s is None:
            s = ",".join(str(r) for r in self.requirements)
            object.__setattr__(self, "_str", s)
        return s

    def __repr__(self) -> str:
        if self._nothing:
            return "Selector.nothing()"
        return f"Selector.parse({str(self)!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Selector):
            return NotImplemented
        return self._nothing == other._nothing and self.requirements == other.requirements

    def __hash__(self) -> int:
        return self._hash

    def __setattr__(self, name: str, value: Any) -> None:
        raise TypeError("Selector objects are immutable")

    def __reduce__(self) -> tuple[Any, ...]:
        if self._nothing:
            return (_nothing_selector, ())
        return (Selector, (self.requirements,))


def _nothing_selector() -> Selector:
    return _NOTHING


_EVERYTHING: Final = Selector()
_NOTHING: Final = Selector(nothing=True)


# ---------------------------------------------------------------------------
# The label selector string grammar (k8s.io/apimachinery/pkg/labels/selector.go)

_SPECIAL: Final = frozenset("=!(),><")
_IDENT, _NOT, _NE, _EQ, _EQEQ, _GT_T, _LT_T, _COMMA, _OPEN, _CLOSE, _IN_T, _NOTIN_T, _END = (
    range(13))
_PUNCT: Final[dict[str, int]] = {
    "!": _NOT, "!=": _NE, "=": _EQ, "==": _EQEQ, ">": _GT_T, "<": _LT_T,
    ",": _COMMA, "(": _OPEN, ")": _CLOSE,
}


def _lex(text: str) -> list[tuple[int, str]]:
    tokens: list[tuple[int, str]] = []
    i = 0
    n = len(text)
    while i < n:
        c = text[i]
        if c.isspace():
            i += 1
            continue
        if c in _SPECIAL:
            j = i + 1
            while j < n and text[j] in _SPECIAL and text[i:j + 1] in _PUNCT:
                j += 1
            lit = text[i:j]
            tok = _PUNCT.get(lit)
            if tok is None:
                raise _ParseError(f"error: unknown token '{lit}'")
            tokens.append((tok, lit))
            i = j
            continue
        j = i
        while j < n and not text[j].isspace() and text[j] not in _SPECIAL:
            j += 1
        tokens.append((_IDENT, text[i:j]))
        i = j
    tokens.append((_END, ""))
    return tokens


class _ParseError(Exception):
    pass


class _Parser:
    """Recursive descent over the token list, mirroring Kubernetes' parser so that the
    same inputs fail with the same messages."""

    def __init__(self, text: str) -> None:
        self.tokens = _lex(text)
        self.pos = 0

    def peek(self, keywords: bool) -> tuple[int, str]:
        return self._resolve(self.tokens[self.pos], keywords)

    def take(self, keywords: bool) -> tuple[int, str]:
        tok = self._resolve(self.tokens[self.pos], keywords)
        if tok[0] != _END:
            self.pos += 1
        return tok

    @staticmethod
    def _resolve(tok: tuple[int, str], keywords: bool) -> tuple[int, str]:
        if keywords and tok[0] == _IDENT:
            if tok[1] == "in":
                return (_IN_T, tok[1])
            if tok[1] == "notin":
                return (_NOTIN_T, tok[1])
        return tok

    def parse(self) -> list[Requirement]:
        reqs: list[Requirement] = []
        while True:
            tok, lit = self.peek(False)
            if tok in (_IDENT, _NOT):
                try:
                    reqs.append(self.requirement())
                except _ParseError as exc:
                    raise _ParseError(f"unable to parse requirement: {exc}") from None
                tok, lit = self.take(False)
                if tok == _END:
                    return reqs
                if tok == _COMMA:
                    tok2, lit2 = self.peek(False)
                    if tok2 not in (_IDENT, _NOT):
                        raise _ParseError(f"found '{lit2}', expected: identifier after ','")
                else:
                    raise _ParseError(f"found '{lit}', expected: ',' or 'end of string'")
            elif tok == _END:
                return reqs
            else:
                raise _ParseError(f"found '{lit}', expected: !, identifier, or 'end of string'")

    def requirement(self) -> Requirement:
        tok, lit = self.take(False)
        negated = tok == _NOT
        if negated:
            tok, lit = self.take(False)
        if tok != _IDENT:
            raise _ParseError(f"found '{lit}', expected: identifier")
        key = lit
        err = label_key_error(key)
        if err:
            raise _ParseError(f'Invalid value: "{key}": {err}')
        nxt, _ = self.peek(False)
        if nxt in (_END, _COMMA):
            return Requirement(key, "DoesNotExist" if negated else "Exists")
        if negated:
            return Requirement(key, "DoesNotExist")  # Kubernetes then fails on the next token
        tok, lit = self.take(True)
        if tok in (_IN_T, _NOTIN_T):
            values = self.value_set()
            return Requirement(key, "In" if tok == _IN_T else "NotIn", values)
        if tok in (_EQ, _EQEQ, _NE):
            value = self.exact_value()
            return Requirement(key, "NotIn" if tok == _NE else "In", (value,))
        if tok in (_GT_T, _LT_T):
            value = self.exact_value()
            return Requirement(key, "Gt" if tok == _GT_T else "Lt", (value,))
        raise _ParseError(f"found '{lit}', expected: in, notin, =, ==, !=, gt, lt")

    def exact_value(self) -> str:
        tok, lit = self.peek(False)
        if tok in (_END, _COMMA):
            return ""
        tok, lit = self.take(False)
        if tok == _IDENT:
            return lit
        raise _ParseError(f"found '{lit}', expected: identifier")

    def value_set(self) -> set[str]:
        tok, lit = self.take(False)
        if tok != _OPEN:
            raise _ParseError(f"found '{lit}' expected: '('")
        tok, lit = self.peek(False)
        if tok == _CLOSE:
            self.take(False)
            return {""}
        if tok not in (_IDENT, _COMMA):
            raise _ParseError(f"found '{lit}', expected: ',', ')' or identifier")
        values: set[str] = set()
        while True:
            tok, lit = self.take(False)
            if tok == _IDENT:
                values.add(lit)
                tok2, lit2 = self.peek(False)
                if tok2 == _COMMA:
                    self.take(False)
                    if self.peek(False)[0] == _CLOSE:
                        values.add("")
                        break
                    continue
                if tok2 == _CLOSE:
                    break
                raise _ParseError(f"found '{lit2}', expected: ',' or ')'")
            if tok == _COMMA:
                values.add("")
                tok2, _ = self.peek(False)
                if tok2 == _CLOSE:
                    break
                continue
            raise _ParseError(f"found '{lit}', expected: ',', or identifier")
        self.take(False)  # the ')'
        return values


def _parse(text: str) -> Selector:
    try:
        reqs = _Parser(text).parse()
    except _ParseError as exc:
        raise Invalid("selector", [FieldError("", str(exc))]) from None
    except Invalid as exc:
        raise Invalid("selector", [FieldError("", "unable to parse requirement: " + "; ".join(
            str(e) for e in exc.errors))]) from None
    return Selector(reqs) if reqs else _EVERYTHING


_PARSE_CACHE: dict[str, Selector] = {}


def _parse_cached(text: str) -> Selector:
    sel = _PARSE_CACHE.get(text)
    if sel is None:
        sel = _parse(text)
        if len(_PARSE_CACHE) >= 4096:
            _PARSE_CACHE.clear()
        _PARSE_CACHE[text] = sel
    return sel


# ---------------------------------------------------------------------------
# Field selectors (k8s.io/apimachinery/pkg/fields/selector.go)

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
