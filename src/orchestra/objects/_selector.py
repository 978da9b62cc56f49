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

Requirements live in ``_requirement``, the string grammar in ``_label_grammar`` and field
selectors in ``_field_selector``; what other modules use is re-exported here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Final

from orchestra._errors import FieldError, Invalid
from orchestra.objects._field_selector import FieldSelector as FieldSelector
from orchestra.objects._label_grammar import _ParseError, _Parser
from orchestra.objects._meta import LabelSelector
from orchestra.objects._requirement import (
    _EXISTS,
    _IN,
    _LABEL_SELECTOR_OPERATORS,
    _NOT_EXISTS,
    _NOT_IN,
    _OP_CODE,
    _compare,
)
from orchestra.objects._requirement import OPERATORS as OPERATORS
from orchestra.objects._requirement import Operator as Operator
from orchestra.objects._requirement import Requirement as Requirement


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
