"""Kubernetes' field error messages, word for word: ``Invalid value: ...`` and
``Unsupported value: ...``, with values printed as Go prints them."""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterable, Mapping
from typing import Any

MAX_VALUE = 256
"""Longest text of a value quoted in an error message; longer ones are cut (``"aaa..."``),
so that a message stays small whatever the input."""


def truncate(text: str, limit: int = MAX_VALUE) -> str:
    """``text`` cut to ``limit`` characters (``...`` marks the cut)."""
    return text if len(text) <= limit else f"{text[:limit]}..."


def int_text(value: int) -> str:
    """An integer's decimal text, cut short (with its digit count) when it is huge: never
    hits Python's int-to-text limit."""
    bits = value.bit_length()
    if bits < 800:  # (240 digits: cheap, and far below Python's int-to-text limit)
        return truncate(str(value))
    digits = int(bits * 0.30103) + 1
    head = abs(value) >> (bits - 200)  # the leading ~60 digits' worth
    return f"{'-' if value < 0 else ''}{str(head)[:20]}...({digits} digits)"


def go_value(value: Any) -> str:
    """A value as Kubernetes prints it after ``Invalid value:`` (Go's ``%v``/``%q``/``%#v``),
    cut to about :data:`MAX_VALUE` characters."""
    try:
        return _go_value(value)
    except (ValueError, TypeError, RecursionError):  # (a value no manifest could hold)
        return f"<{type(value).__name__}>"


def _go_value(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return int_text(value)
    if isinstance(value, float):
        if value != value:
            return "NaN"
        if value in (float("inf"), float("-inf")):
            return "+Inf" if value > 0 else "-Inf"
        return str(value)
    if isinstance(value, str):
        return json.dumps(truncate(value), ensure_ascii=False).encode(
            "utf-8", "backslashreplace").decode("utf-8")
    if isinstance(value, Mapping):
        inner = ", ".join(
            f"{json.dumps(truncate(str(k)))}:{json.dumps(truncate(str(v)))}"
            for k, v in sorted(value.items())[:32]
        )
        return truncate(f"map[string]string{{{inner}}}", 4 * MAX_VALUE)
    to_dict = getattr(value, "to_dict", None)  # an object model (no import: _base uses this)
    if callable(to_dict):
        return truncate(json.dumps(to_dict(), separators=(",", ":"), sort_keys=True),
                        4 * MAX_VALUE)
    if isinstance(value, list | tuple):
        return truncate(repr(value[:32]), MAX_VALUE)
    return truncate(repr(value), MAX_VALUE)


def invalid(value: Any, message: str) -> str:
    return f"Invalid value: {go_value(value)}: {message}"


def port_number_error(port: int) -> str | None:
    """Kubernetes' port-number check (``IsValidPortNum``) as a field message; None for a
    valid port."""
    return None if 1 <= port <= 65535 else invalid(port, "must be between 1 and 65535, "
                                                         "inclusive")


def unsupported(value: Any, supported: Iterable[str]) -> str:
    values = ", ".join(json.dumps(s, ensure_ascii=False) for s in supported)
    return f"Unsupported value: {go_value(value)}: supported values: {values}"


def did_you_mean(word: str, names: Iterable[str]) -> str:
    """``; did you mean "image"?`` when one of ``names`` is ``word`` but for case, or
    close to it; else ""."""
    choices = list(names)
    folded = {n.lower(): n for n in choices}
    close = ([folded[word.lower()]] if word.lower() in folded
             else difflib.get_close_matches(word, choices, n=1, cutoff=0.75))
    return f'; did you mean "{close[0]}"?' if close else ""
