"""CRI log files: writing, reading, following; and durations."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from orchestra._clock import ManualClock
from orchestra.runtime import _logs
from orchestra.runtime._durations import parse_duration


def test_record_format(tmp_path: Path) -> None:
    clock = ManualClock(start=1_700_000_000.5)
    path = str(tmp_path / "c" / "0.log")
    w = _logs.CriLogWriter(path, clock)
    w.write("stdout", b"hello\nwor")
    w.write("stderr", b"oops\n")
    w.write("stdout", b"ld\n")
    w.write("stdout", b"no newline")
    w.close()
    raw = Path(path).read_text().splitlines()
    assert raw[0] == "2023-11-14T22:13:20.500000000Z stdout F hello"
    assert raw[1] == "2023-11-14T22:13:20.500000000Z stderr F oops"
    assert raw[2].endswith(" stdout F world")
    assert raw[3].endswith(" stdout F no newline")
    lines = _logs.read_lines_sync(path)
    assert [(ln.stream, ln.text) for ln in lines] == [
        ("stdout", "hello"), ("stderr", "oops"), ("stdout", "world"), ("stdout", "no newline"),
    ]  # fmt: skip


def test_long_lines_are_split_into_partials(tmp_path: Path) -> None:
    path = str(tmp_path / "0.log")
    w = _logs.CriLogWriter(path, ManualClock())
    long = "é" * 20_000  # 40,000 bytes: the 16 KiB cuts fall inside characters
    w.write("stdout", long.encode() + b"\nshort\n")
    w.close()
    tags = [line.split(b" ")[2] for line in Path(path).read_bytes().split(b"\n")[:-1]]
    assert tags == [b"P", b"P", b"F", b"F"]
    assert [ln.text for ln in _logs.read_lines_sync(path)] == [long, "short"]


def test_tail_since_timestamps(tmp_path: Path) -> None:
    clock = ManualClock(start=1000.0)
    path = str(tmp_path / "0.log")
    w = _logs.CriLogWriter(path, clock)
    for i in range(5):
        w.write_line("stdout", f"line {i}")
        clock._mono += 1  # one line a second
    w.close()
    lines = _logs.read_lines_sync(path)
    assert _logs.render(lines, tail=2) == "line 3\nline 4\n"
    assert _logs.render(lines, tail=0) == ""
    assert _logs.render(lines, since=1003.0) == "line 3\nline 4\n"
    assert _logs.render(lines, tail=1, timestamps=True) == "1970-01-01T00:16:44.000000000Z line 4\n"


@given(st.floats(min_value=0, max_value=4e9, allow_nan=False))
def test_timestamps_round_trip(t: float) -> None:
    assert abs(_logs.parse_timestamp(_logs.format_timestamp(t)) - t) < 2e-6


def test_parse_timestamp_accepts_short_fractions_and_offsets() -> None:
    assert _logs.parse_timestamp("2016-10-06T00:17:09.6697942Z") == pytest.approx(
        1475713029.6697942
    )
    assert _logs.parse_timestamp("2016-10-06T02:17:09+02:00") == 1475713029.0


def test_garbage_records_are_skipped() -> None:
    data = b"not a record\n2016-10-06T00:17:09Z stdout F ok\n2016-10-06T00:17:09Z stdout F tr"
    assert [ln.text for ln in _logs.parse_records(data)] == ["ok"]


@pytest.mark.anyio
async def test_follow_until_finished(tmp_path: Path) -> None:
    path = str(tmp_path / "0.log")
    w = _logs.CriLogWriter(path, ManualClock())
    w.write_line("stdout", "old 1")
    w.write_line("stdout", "old 2")
    done = False
    got: list[str] = []

    async def follow() -> None:
        async for line in _logs.follow_log(path, finished=lambda: done, tail=1, interval=0.01):
            got.append(line)

    task = asyncio.ensure_future(follow())
    await asyncio.sleep(0.05)
    w.write("stdout", b"new ")
    w.write("stdout", b"line\n")
    w.close()
    done = True
    await asyncio.wait_for(task, 5)
    assert got == ["old 2", "new line"]


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("0", 0), ("2", 2), ("1.5s", 1.5), ("200ms", 0.2), ("2m", 120), ("1h", 3600),
     ("1h30m", 5400), ("300us", 0.0003), ("1m0.5s", 60.5)],
)  # fmt: skip
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "s", "1x", "-1s", "1.5 s", "soon"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


def test_carriage_returns_stay_inside_a_line(tmp_path: Path) -> None:
    path = str(tmp_path / "0.log")
    w = _logs.CriLogWriter(path, ManualClock())
    w.write("stdout", b"10%\r50%\r100%\n")
    w.close()
    assert [ln.text for ln in _logs.read_lines_sync(path)] == ["10%\r50%\r100%"]
