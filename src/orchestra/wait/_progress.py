"""A progress line for long waits (``wait_for``, and so rollouts): on a terminal, one
line on stderr rewritten in place; in a notebook, a display updated in place; anywhere
else (pipes, CI logs, pytest's capture) nothing at all. It shows only once a wait has
lasted ``delay`` seconds (real time), so quick waits print nothing, and it is erased
(terminal) or marked done (notebook) when the wait ends."""

from __future__ import annotations

import os
import sys
import time
from typing import Any, TextIO

__all__ = ["DELAY", "Progress"]

DELAY = 1.0  # seconds a wait lasts before its progress shows


def _notebook_display() -> Any:
    """IPython's display handle factory, when running in a Jupyter kernel."""
    if "ipykernel" not in sys.modules or "IPython" not in sys.modules:
        return None
    try:
        from IPython import get_ipython
        from IPython.display import display
    except ImportError:
        return None
    shell = get_ipython()
    if shell is None or type(shell).__name__ != "ZMQInteractiveShell":
        return None
    return display


class Progress:
    """``update(text)`` as the wait goes on; ``close(ok)`` at its end."""

    def __init__(self, what: str, *, delay: float | None = None, interval: float = 0.5,
                 stream: TextIO | None = None) -> None:
        self.what = what
        self._delay = DELAY if delay is None else delay
        self._interval = interval
        self._start = time.monotonic()
        self._last = 0.0
        self._stream = stream if stream is not None else sys.stderr
        self._display = None if stream is not None else _notebook_display()
        self._handle: Any = None
        self._shown = False
        off = os.environ.get("ORCHESTRA_PROGRESS", "") in ("0", "false", "no")
        tty = bool(getattr(self._stream, "isatty", lambda: False)())
        self.enabled = not off and (self._display is not None or tty)

    def update(self, status: str) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        waited = now - self._start
        if waited < self._delay or (self._shown and now - self._last < self._interval):
            return
        self._last = now
        text = f"waiting for {self.what}: {status} ({int(waited)}s)"
        if self._display is not None:
            if self._handle is None:
                self._handle = self._display({"text/plain": text}, raw=True, display_id=True)
            else:
                self._handle.update({"text/plain": text}, raw=True)
        else:
            self._stream.write("\r\x1b[K" + text[:200])
            self._stream.flush()
        self._shown = True

    def close(self, ok: bool) -> None:
        if not self._shown:
            return
        self._shown = False
        if self._handle is not None:
            waited = int(time.monotonic() - self._start)
            self._handle.update({"text/plain": f"{self.what}: {'done' if ok else 'gave up'} "
                                               f"after {waited}s"}, raw=True)
        else:
            self._stream.write("\r\x1b[K")
            self._stream.flush()
