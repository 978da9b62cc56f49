"""The scalar types every kind shares: RFC 3339 times (and their formatting and
parsing), resource quantities as written, and IntOrString."""

from __future__ import annotations

import datetime as _dt
import math
import re
from typing import Annotated, Any

from pydantic import BeforeValidator

from orchestra.objects._messages import invalid


def _to_time(v: Any) -> Any:
    if isinstance(v, _dt.datetime):
        if v.tzinfo is None:
            v = v.replace(tzinfo=_dt.UTC)
        return v.astimezone(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return v


Time = Annotated[str, BeforeValidator(_to_time)]
"""An RFC 3339 timestamp, kept as the string Kubernetes puts on the wire."""


_last_formatted: tuple[int, str] = (-1, "")


def format_time(seconds_since_epoch: float) -> str:
    """RFC 3339 with second precision and ``Z``, as Kubernetes writes ``metav1.Time``."""
    # A busy control plane stamps thousands of objects within the same second.
    global _last_formatted
    whole = math.floor(seconds_since_epoch)
    last, text = _last_formatted
    if whole == last:
        return text
    text = _dt.datetime.fromtimestamp(whole, _dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    _last_formatted = (whole, text)
    return text


def parse_time(text: str) -> float:
    """Seconds since the epoch of an RFC 3339 timestamp."""
    return _dt.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


_QUANTITY_MESSAGE = ("quantities must match the regular expression "
                     "'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'")
_QUANTITY_RE = re.compile(
    r"^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[KMGTPE]i|[numkMGTPE]|[eE][+-]?\d+)?$"
)


_VALID_QUANTITIES: set[str] = set()


def _to_quantity(v: Any) -> Any:
    if v.__class__ is str and v in _VALID_QUANTITIES:
        return v
    if isinstance(v, bool):
        raise ValueError(invalid(v, _QUANTITY_MESSAGE))
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if not math.isfinite(v):  # (no quantity is infinite; JSON cannot even carry one)
            raise ValueError(invalid(v, _QUANTITY_MESSAGE))
        return repr(v) if not v.is_integer() else str(int(v))
    if isinstance(v, str) and _QUANTITY_RE.match(v):
        if len(_VALID_QUANTITIES) < 4096:
            _VALID_QUANTITIES.add(v)
        return v
    raise ValueError(invalid(v, _QUANTITY_MESSAGE))


QuantityValue = Annotated[str, BeforeValidator(_to_quantity)]
"""A resource quantity as written (``"500m"``, ``"1Gi"``); numbers become their string.

Parse with ``orchestra.objects.Quantity`` for arithmetic and comparison.
"""


def _to_int_or_string(v: Any) -> Any:
    if isinstance(v, bool):
        raise ValueError(invalid(v, "must be an integer or a string"))
    if isinstance(v, int | str):
        return v
    if isinstance(v, float) and v.is_integer():
        return int(v)
    raise ValueError(invalid(v, "must be an integer or a string"))


IntOrString = Annotated[int | str, BeforeValidator(_to_int_or_string)]
