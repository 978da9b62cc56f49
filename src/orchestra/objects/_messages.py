"""Kubernetes' field error messages, word for word: ``Invalid value: ...`` and
``Unsupported value: ...``, with values printed as Go prints them."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any


def go_value(value: Any) -> str:
    """A value as Kubernetes prints it after ``Invalid value:`` (Go's ``%v``/``%q``/``%#v``)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, Mapping):
        inner = ", ".join(
            f"{json.dumps(str(k))}:{json.dumps(str(v))}" for k, v in sorted(value.items())
        )
        return f"map[string]string{{{inner}}}"
    to_dict = getattr(value, "to_dict", None)  # an object model (no import: _base uses this)
    if callable(to_dict):
        return json.dumps(to_dict(), separators=(",", ":"), sort_keys=True)
    return repr(value)


def invalid(value: Any, message: str) -> str:
    return f"Invalid value: {go_value(value)}: {message}"


def port_number_error(port: int) -> str | None:
    """Kubernetes' port-number check (``IsValidPortNum``) as a field message; None for a
    valid port."""
    return None if 1 <= port <= 65535 else invalid(port, "must be between 1 and 65535, "
                                                         "inclusive")


def unsupported(value: Any, supported: Iterable[str]) -> str:
    values = ", ".join(json.dumps(s) for s in supported)
    return f"Unsupported value: {go_value(value)}: supported values: {values}"
