"""Go-style durations (``"1.5s"``, ``"200ms"``, ``"2m"``, ``"1h30m"``) as seconds.

The fake runtime's annotations use them, as Kubernetes users know them from kubelet
flags. A bare number means seconds, so ``"2"`` and ``"2s"`` agree.
"""

from __future__ import annotations

import re

_UNITS = {
    "ns": 1e-9,
    "us": 1e-6,
    "µs": 1e-6,
    "μs": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
}
_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)")
_NUMBER = re.compile(r"\d+(?:\.\d*)?|\.\d+")


def parse_duration(text: str) -> float:
    """Seconds in ``text``; raises ``ValueError`` naming the text if it is not a
    non-negative duration."""
    s = text.strip()
    if _NUMBER.fullmatch(s):
        return float(s)
    if not s:
        raise ValueError(f"invalid duration {text!r}")
    pos = 0
    total = 0.0
    while pos < len(s):
        m = _PART.match(s, pos)
        if m is None:
            raise ValueError(f"invalid duration {text!r}")
        total += float(m.group(1)) * _UNITS[m.group(2)]
        pos = m.end()
    return total
