"""One label selector requirement (``key in (a,b)``, ``!key``, ``key>3``): its operators,
Kubernetes' checks and messages (``labels.NewRequirement``), matching and printing.

A :class:`Requirement` is immutable and hashable; ``a=b`` is held as ``In {b}`` and
``a!=b`` as ``NotIn {b}``. Building an invalid one raises :class:`orchestra.Invalid`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Final, Literal

from orchestra._errors import FieldError, Invalid
from orchestra.objects._messages import unsupported
from orchestra.objects._names import label_key_error, label_value_error

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
        errors.append(FieldError(at("operator"), unsupported(op, OPERATORS)))
    for i, v in enumerate(vals):
        err = label_value_error(v)
        if err:
            errors.append(FieldError(f"{values_path}[{i}]", f'Invalid value: "{v}": {err}'))
    return errors
