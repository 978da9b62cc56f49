"""Container logs in the CRI format that the kubelet reads and containerd writes.

One record per line: ``<RFC3339Nano timestamp> <stream> <tag> <content>\\n`` where stream
is ``stdout`` or ``stderr`` and tag is ``F`` (the record ends a line) or ``P`` (a piece of
a longer line that continues in the next record of the same stream). A line longer than
:data:`MAX_RECORD` bytes is split into ``P`` records, so that no reader needs an
unbounded buffer. Timestamps are on the runtime's clock, so ``since`` and the cluster's
other times agree even on a scaled or manual clock.

Readers (:func:`read_log`, :func:`follow_log`) join ``P`` pieces back into whole lines
before decoding (a split never corrupts a multi-byte character), skip records they
cannot parse, and never block the event loop: file reads run in a worker thread.
"""

from __future__ import annotations

import asyncio
import datetime as _dt
import os
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import BinaryIO

from orchestra._clock import Clock

MAX_RECORD = 16 * 1024
STREAMS = ("stdout", "stderr")


def format_timestamp(t: float) -> str:
    """RFC3339 with nanoseconds (fixed width, UTC), as containerd writes them."""
    sec = int(t // 1)
    nanos = round((t - sec) * 1e9)
    if nanos >= 1_000_000_000:
        sec += 1
        nanos -= 1_000_000_000
    base = _dt.datetime.fromtimestamp(sec, _dt.UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{base}.{nanos:09d}Z"


def parse_timestamp(text: str) -> float:
    """Seconds since the epoch from an RFC3339 (nano) timestamp; ``ValueError`` if bad."""
    s = text.strip()
    if s.endswith(("Z", "z")):
        s = s[:-1] + "+00:00"
    frac = 0.0
    dot = s.find(".")
    if dot != -1:
        end = dot + 1
        while end < len(s) and s[end].isdigit():
            end += 1
        frac = float("0" + s[dot:end]) if end > dot + 1 else 0.0
        s = s[:dot] + s[end:]
    parsed = _dt.datetime.fromisoformat(s)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=_dt.UTC)
    return parsed.timestamp() + frac


@dataclass(frozen=True, slots=True)
class LogLine:
    """One whole line of a container's output (without its newline)."""

    time: float
    stream: str
    text: str


def encode_record(t: float, stream: str, content: bytes, *, partial: bool = False) -> bytes:
    """One CRI record; ``content`` must not contain a newline."""
    tag = b"P" if partial else b"F"
    return b"%s %s %s %s\n" % (format_timestamp(t).encode(), stream.encode(), tag, content)


class CriLogWriter:
    """Appends a container's output to one CRI log file.

    ``write`` takes raw chunks as they come from a pipe, buffers the unfinished line of
    each stream and emits a record per complete line (a ``P`` record whenever the
    unfinished part reaches :data:`MAX_RECORD`). ``close`` emits what is left as final
    ``F`` records. Writes are small appends to a local file, flushed per chunk so that
    readers in other tasks see them at once.
    """

    def __init__(self, path: str, clock: Clock) -> None:
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        self.path = path
        self._clock = clock
        self._file: BinaryIO | None = open(path, "ab")  # noqa: SIM115 - closed in close()
        self._pending: dict[str, bytearray] = {s: bytearray() for s in STREAMS}

    def write(self, stream: str, data: bytes) -> None:
        if self._file is None or not data:
            return
        now = self._clock.now()
        buf = self._pending.setdefault(stream, bytearray())
        buf += data
        out: list[bytes] = []
        while True:
            nl = buf.find(b"\n")
            if nl == -1:
                break
            line = bytes(buf[:nl])
            del buf[: nl + 1]
            out.extend(_split_line(now, stream, line))
        while len(buf) >= MAX_RECORD:
            out.append(encode_record(now, stream, bytes(buf[:MAX_RECORD]), partial=True))
            del buf[:MAX_RECORD]
        if out:
            self._file.write(b"".join(out))
            self._file.flush()

    def write_line(self, stream: str, text: str) -> None:
        """A whole line, e.g. a runtime's own message."""
        self.write(stream, text.encode() + b"\n")

    def close(self) -> None:
        if self._file is None:
            return
        now = self._clock.now()
        for stream, buf in self._pending.items():
            if buf:
                self._file.write(encode_record(now, stream, bytes(buf)))
                buf.clear()
        self._file.close()
        self._file = None


def _split_line(now: float, stream: str, line: bytes) -> list[bytes]:
    out = []
    while len(line) > MAX_RECORD:
        out.append(encode_record(now, stream, line[:MAX_RECORD], partial=True))
        line = line[MAX_RECORD:]
    out.append(encode_record(now, stream, line))
    return out


class _Joiner:
    """Turns records into whole lines, keeping the unfinished pieces per stream."""

    def __init__(self) -> None:
        self._pieces: dict[str, list[bytes]] = {}
        self._first: dict[str, float] = {}

    def feed(self, raw: bytes) -> LogLine | None:
        """One record without its newline (content may hold ``\\r``: no splitlines)."""
        parts = raw.split(b" ", 3)
        if len(parts) < 3:
            return None
        try:
            t = parse_timestamp(parts[0].decode("ascii"))
        except (ValueError, UnicodeDecodeError):
            return None
        stream = parts[1].decode("ascii", "replace")
        content = parts[3] if len(parts) == 4 else b""
        pieces = self._pieces.setdefault(stream, [])
        if not pieces:
            self._first[stream] = t
        pieces.append(content)
        if parts[2] == b"P":
            return None
        self._pieces[stream] = []
        return LogLine(self._first[stream], stream, b"".join(pieces).decode("utf-8", "replace"))


def parse_records(data: bytes) -> list[LogLine]:
    """Whole lines from CRI log bytes (an unfinished trailing record is ignored)."""
    joiner = _Joiner()
    lines = []
    end = data.rfind(b"\n")
    for raw in data[:end].split(b"\n") if end != -1 else ():
        line = joiner.feed(raw)
        if line is not None:
            lines.append(line)
    return lines


def select(
    lines: Sequence[LogLine], *, tail: int | None = None, since: float | None = None
) -> Sequence[LogLine]:
    """Lines at or after ``since``, then the last ``tail`` of them (kubectl's order)."""
    if since is not None:
        lines = [ln for ln in lines if ln.time >= since]
    if tail is not None:
        lines = lines[-tail:] if tail > 0 else []
    return lines


def format_line(line: LogLine, *, timestamps: bool = False) -> str:
    return f"{format_timestamp(line.time)} {line.text}" if timestamps else line.text


def render(
    lines: Iterable[LogLine],
    *,
    tail: int | None = None,
    since: float | None = None,
    timestamps: bool = False,
) -> str:
    """The text ``kubectl logs`` prints: one line each, newline-terminated."""
    chosen = select(list(lines), tail=tail, since=since)
    return "".join(format_line(ln, timestamps=timestamps) + "\n" for ln in chosen)


def read_lines_sync(path: str) -> list[LogLine]:
    """Every whole line of a log file; a missing file has none."""
    try:
        with open(path, "rb") as f:
            return parse_records(f.read())
    except FileNotFoundError:
        return []


async def read_log(
    path: str,
    *,
    tail: int | None = None,
    since: float | None = None,
    timestamps: bool = False,
) -> str:
    """``kubectl logs`` text for one log file, read in a worker thread."""
    lines = await asyncio.to_thread(read_lines_sync, path)
    return render(lines, tail=tail, since=since, timestamps=timestamps)


def _read_from(path: str, offset: int) -> bytes:
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            return f.read()
    except FileNotFoundError:
        return b""


async def follow_log(
    path: str,
    *,
    finished: Callable[[], bool],
    tail: int | None = None,
    interval: float = 0.05,
) -> AsyncIterator[str]:
    """Lines of ``path`` as they are written (the last ``tail`` existing ones first),
    until ``finished()`` is true and the file is drained.

    Polls the file every ``interval`` seconds of real time: log files live on local disk,
    and polling needs neither inotify nor the cluster clock (which may be a manual one).
    """
    offset = 0
    joiner = _Joiner()
    first = True
    while True:
        done = finished()  # checked before reading, so that nothing written is missed
        data = await asyncio.to_thread(_read_from, path, offset)
        end = data.rfind(b"\n") + 1
        offset += end
        lines = []
        for raw in data[: end - 1].split(b"\n") if end else ():
            line = joiner.feed(raw)
            if line is not None:
                lines.append(line)
        if first:
            lines = list(select(lines, tail=tail))
            first = False
        for line in lines:
            yield line.text
        if done:
            return
        await asyncio.sleep(interval)
