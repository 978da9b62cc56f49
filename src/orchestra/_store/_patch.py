"""JSON merge patch (RFC 7386), the ``application/merge-patch+json`` of ``kubectl patch``.

Invariant: neither argument is modified; the result shares no mutable container with
``patch`` (values taken from ``patch`` are copied), so a caller may keep using both.
"""

from __future__ import annotations

from typing import Any


def merge_patch(target: Any, patch: Any) -> Any:
    """Apply ``patch`` to ``target`` as RFC 7386 says.

    A patch that is not an object replaces the target whole; in an object patch, ``null``
    removes a member and any other value is merged into the member recursively. Lists are
    replaced, never merged (that is what strategic merge patch adds, and this is not it).
    """
    if not isinstance(patch, dict):
        return _copy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def _copy(value: Any) -> Any:
    """A deep copy of JSON taken literally: inside a list, ``null`` is a value."""
    if isinstance(value, list):
        return [_copy(v) for v in value]
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    return value
