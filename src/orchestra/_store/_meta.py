"""Cheap copies of immutable models with a few fields replaced.

Why not ``model_copy(update=...)``: it copies the private and extra state and the
fields-set through generic code, several times slower on the store's hot path. These
copies are only ever made from validated, immutable models (never thawed ones), with
values that are themselves immutable (str, int, tuples, FrozenDict, models), so the
result is as immutable as its source.
"""

from __future__ import annotations

from typing import Any, TypeVar

from orchestra.objects._model import Model

M = TypeVar("M", bound=Model)

_set = object.__setattr__

# Fields-sets are shared between copies (nothing mutates the fields-set of an immutable
# model: thaw() and model_copy() copy it first), and interned, because a new set per
# stored object would cost hundreds of bytes per object for no use.
_FIELDS_SETS: dict[frozenset[str], set[str]] = {}


def replace(model: M, changes: dict[str, Any]) -> M:
    """A copy of ``model`` with the fields in ``changes`` (attribute names) replaced."""
    cls = type(model)
    new = cls.__new__(cls)
    fields = dict(model.__dict__)
    fields.update(changes)
    _set(new, "__dict__", fields)
    fields_set = model.__pydantic_fields_set__
    if not fields_set.issuperset(changes):
        union = frozenset(fields_set.union(changes))
        shared = _FIELDS_SETS.get(union)
        if shared is None:
            shared = set(union)
            if len(_FIELDS_SETS) < 4096:
                _FIELDS_SETS[union] = shared
        fields_set = shared
    _set(new, "__pydantic_fields_set__", fields_set)
    _set(new, "__pydantic_extra__", None)
    _set(new, "__pydantic_private__", None)
    return new
