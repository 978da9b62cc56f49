"""The error vocabulary: small and flat, each named for the condition that raises it.

Messages name the object (``kind "name"``) the way the Kubernetes API server does, so
that a user who knows ``kubectl`` recognises them. No message ever contains a Secret's
data: code that builds a message from an object's content must not include
``data``/``stringData`` values.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

MAX_MESSAGE = 4096
"""Longest message an error carries: past it, the middle is cut (``...``), so that no
input, however large, makes an error message large."""


def _bounded(text: str) -> str:
    if len(text) <= MAX_MESSAGE:
        return text
    half = MAX_MESSAGE // 2 - 16
    return f"{text[:half]} ...({len(text) - 2 * half} characters cut)... {text[-half:]}"


class OrchestraError(Exception):
    """Base of every error orchestra raises on purpose. Its message is at most
    :data:`MAX_MESSAGE` characters long."""

    def __init__(self, *args: object) -> None:
        if args and isinstance(args[0], str) and len(args[0]) > MAX_MESSAGE:
            args = (_bounded(args[0]), *args[1:])
        super().__init__(*args)


class NotFound(OrchestraError):
    """The named object does not exist (``pods "web" not found``)."""


class AlreadyExists(OrchestraError):
    """``create`` of an object whose namespace/name is taken (``pods "web" already exists``)."""


class Conflict(OrchestraError):
    """An update carried a stale ``metadata.resourceVersion``: re-read and try again."""


class Gone(OrchestraError):
    """A watch asked to resume from a resourceVersion older than the kept history."""


class Timeout(OrchestraError):
    """``wait_for`` (or another bounded wait) ran out of time; the message says why."""


class Forbidden(OrchestraError):
    """Admission refused the object: a quota, a limit range or another policy."""


class TooManyRequests(OrchestraError):
    """The request is refused for now and may succeed later (HTTP 429): an eviction that
    a PodDisruptionBudget does not allow yet. ``causes`` carries the API server's details
    (``The disruption budget web needs 3 healthy pods and has 3 currently``)."""

    def __init__(self, message: str, causes: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.causes = causes


class RuntimeUnavailable(OrchestraError):
    """A container runtime or network backend cannot be used here; the message says how
    to fix it."""


class FieldError:
    """One failed field: its path (``spec.containers[0].image``) and what was wrong."""

    __slots__ = ("message", "path")

    def __init__(self, path: str, message: str) -> None:
        self.path = path
        self.message = message

    def __repr__(self) -> str:
        return f"FieldError({self.path!r}, {self.message!r})"

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


class Invalid(OrchestraError):
    """An object failed validation. ``errors`` lists every failed field path.

    The message reads like the API server's:
    ``Deployment.apps "web" is invalid: spec.replicas: Invalid value: -1: must be >= 0``,
    and with several errors ``... is invalid: [spec.replicas: ..., spec.selector: ...]``.
    """

    def __init__(self, what: str, errors: Sequence[FieldError] | str, *,
                 message: str | None = None) -> None:
        if isinstance(errors, str):
            errors = [FieldError("", errors)]
        self.what = what
        self.errors: list[FieldError] = list(errors)
        if message is None:
            # Several errors read as the API server's aggregate: "[first, second]", each
            # once; past _MAX_LISTED, the rest are counted, not listed.
            messages = list(dict.fromkeys(_bounded_part(str(e)) for e in self.errors))
            if len(messages) > _MAX_LISTED:
                rest = len(messages) - _MAX_LISTED
                messages = [*messages[:_MAX_LISTED], f"and {rest} more errors"]
            detail = f"[{', '.join(messages)}]" if len(messages) > 1 else "".join(messages)
            message = f"{what} is invalid: {detail}" if what else detail
        super().__init__(message)

    @property
    def paths(self) -> list[str]:
        """The failed field paths, in the order they were found."""
        return [e.path for e in self.errors]


# Raised errors show as users name them (orchestra.Timeout, not orchestra._errors.Timeout):
# in tracebacks, pytest reports and reprs. Each is importable under that name.
for _error in (OrchestraError, NotFound, AlreadyExists, Conflict, Gone, Timeout, Forbidden,
               TooManyRequests, RuntimeUnavailable, Invalid):
    _error.__module__ = "orchestra"


_MAX_LISTED = 20
_MAX_PART = 1024


def _bounded_part(text: str) -> str:
    return text if len(text) <= _MAX_PART else f"{text[:_MAX_PART - 3]}..."


def hide_from_tracebacks(excinfo: Any) -> bool:
    """pytest's ``__tracebackhide__`` for orchestra's modules that users call into.

    When an orchestra error reaches a user's test (a Timeout, a NotFound), the frames
    inside orchestra only separate the test's line from the message that explains it,
    so pytest hides them. Any other exception is a bug, and keeps every frame.
    """
    return excinfo is not None and isinstance(getattr(excinfo, "value", None), OrchestraError)
