"""Cron schedules: parsing them as Kubernetes does, and the schedule arithmetic the CronJob
controller uses (next fire time, missed runs).

Schedules are parsed as Kubernetes parses them (robfig/cron ``ParseStandard``): five
fields, ranges, lists, steps, month and weekday names, ``?``, the ``@`` macros and
``@every <duration>``; error messages are robfig's. Fire times are whole minutes of wall
clock time in an IANA zone (the process's local zone when none is given).
"""

from __future__ import annotations

import datetime as _dt
import functools
import math
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from orchestra.objects._scalars import parse_time

if TYPE_CHECKING:
    from orchestra.objects._batch import CronJob


def time_zone_error(name: str) -> str | None:
    """Why ``spec.timeZone`` is not usable, or None."""
    if name.lower() == "local":
        return ("timeZone must be an explicit time zone as defined in "
                "https://www.iana.org/time-zones")
    try:
        _zone(name)
    except ValueError:
        return f"unknown time zone {name}"
    return None


@functools.lru_cache(maxsize=256)
def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ValueError(f"unknown time zone {name}") from None


_MONTH_NAMES = {n: i + 1 for i, n in enumerate(
    ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"))}
_DOW_NAMES = {n: i for i, n in enumerate(("sun", "mon", "tue", "wed", "thu", "fri", "sat"))}


@dataclass(frozen=True)
class _Bounds:
    low: int
    high: int
    names: dict[str, int] | None = None


_MINUTE = _Bounds(0, 59)
_HOUR = _Bounds(0, 23)
_DOM = _Bounds(1, 31)
_MONTH = _Bounds(1, 12, _MONTH_NAMES)
_DOW = _Bounds(0, 6, _DOW_NAMES)

_INT = re.compile(r"^[+-]?[0-9]+$")


def _parse_int(text: str) -> int:
    if not _INT.match(text):
        raise ValueError(
            f'failed to parse int from {text}: strconv.Atoi: parsing "{text}": invalid syntax'
        )
    number = int(text)
    if number < 0:
        raise ValueError(f"negative number ({number}) not allowed: {text}")
    return number


def _parse_int_or_name(text: str, bounds: _Bounds) -> int:
    if bounds.names is not None and text.lower() in bounds.names:
        return bounds.names[text.lower()]
    return _parse_int(text)


def _parse_range(expr: str, bounds: _Bounds) -> tuple[set[int], bool]:
    """One comma-separated part: ``*``, ``?``, ``N``, ``N-M``, each with ``/step``."""
    range_and_step = expr.split("/")
    low_and_high = range_and_step[0].split("-")
    single = len(low_and_high) == 1
    star = False
    if low_and_high[0] in ("*", "?"):
        start, end, star = bounds.low, bounds.high, True
    else:
        start = _parse_int_or_name(low_and_high[0], bounds)
        if len(low_and_high) == 1:
            end = start
        elif len(low_and_high) == 2:
            end = _parse_int_or_name(low_and_high[1], bounds)
        else:
            raise ValueError(f"too many hyphens: {expr}")
    if len(range_and_step) == 1:
        step = 1
    elif len(range_and_step) == 2:
        step = _parse_int(range_and_step[1])
        if single:  # "N/step" means "N-max/step"
            end = bounds.high
        if step > 1:
            star = False
    else:
        raise ValueError(f"too many slashes: {expr}")
    if start < bounds.low:
        raise ValueError(f"beginning of range ({start}) below minimum ({bounds.low}): {expr}")
    if end > bounds.high:
        raise ValueError(f"end of range ({end}) above maximum ({bounds.high}): {expr}")
    if start > end:
        raise ValueError(f"beginning of range ({start}) beyond end of range ({end}): {expr}")
    if step == 0:
        raise ValueError(f"step of range should be a positive number: {expr}")
    return set(range(start, end + 1, step)), star


def _parse_field(field: str, bounds: _Bounds) -> tuple[frozenset[int], bool]:
    values: set[int] = set()
    star = False
    for part in field.split(","):
        bits, part_star = _parse_range(part, bounds)
        values |= bits
        star = star or part_star
    return frozenset(values), star


_DURATION_PART = re.compile(r"([0-9]*\.?[0-9]+)(ns|us|µs|ms|s|m|h)")
_DURATION_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0,
                   "h": 3600.0}


def _parse_go_duration(text: str) -> float:
    """Go's ``time.ParseDuration`` (unsigned), in seconds."""
    if text == "0":
        return 0.0
    pos, total = 0, 0.0
    while pos < len(text):
        m = _DURATION_PART.match(text, pos)
        if not m:
            break
        total += float(m.group(1)) * _DURATION_UNITS[m.group(2)]
        pos = m.end()
    if pos != len(text) or not text:
        raise ValueError(f'failed to parse duration @every {text}: time: invalid duration "{text}"')
    return total


_MACROS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}


@dataclass(frozen=True)
class CronSchedule:
    """A parsed schedule. Fire times are whole minutes of wall-clock time in a zone.

    Day matching follows cron (and robfig/cron): when both day-of-month and day-of-week
    are restricted (neither is ``*``/``?``), a day matches if *either* does.
    ``every`` is set (seconds) for ``@every <duration>`` schedules instead.
    """

    minutes: frozenset[int] = frozenset()
    hours: frozenset[int] = frozenset()
    days_of_month: frozenset[int] = frozenset()
    months: frozenset[int] = frozenset()
    days_of_week: frozenset[int] = frozenset()
    dom_star: bool = False
    dow_star: bool = False
    every: float | None = None

    @functools.cached_property
    def sorted_hours(self) -> tuple[int, ...]:
        return tuple(sorted(self.hours))

    @functools.cached_property
    def sorted_minutes(self) -> tuple[int, ...]:
        return tuple(sorted(self.minutes))

    def _day_matches(self, day: _dt.date) -> bool:
        dom = day.day in self.days_of_month
        dow = day.isoweekday() % 7 in self.days_of_week
        if self.dom_star or self.dow_star:
            return dom and dow
        return dom or dow

    def next(self, after: float, tz: str | None = None) -> float:
        """The first fire time strictly after ``after`` (seconds since the epoch).

        ``tz`` is an IANA zone name; None means the process's local time zone, as
        Kubernetes uses the controller manager's. Across a DST change, wall times that
        do not exist are skipped and repeated ones fire twice, as with robfig/cron.
        Returns ``math.inf`` if the schedule never fires (``0 0 30 2 *``).
        """
        if self.every is not None:
            return math.floor(after) + max(1.0, math.floor(self.every))
        to_wall, from_wall = _converters(tz)
        start = to_wall(after)
        # Without a UTC offset change near "after", wall-clock order is time order there.
        steady = to_wall(after + _WINDOW_S) - to_wall(after - _WINDOW_S) == 2 * _WINDOW
        day = start.date()
        last_year = start.year + 5
        while day.year <= last_year:
            if day.month not in self.months:
                day = (_dt.date(day.year + 1, 1, 1) if day.month == 12
                       else _dt.date(day.year, day.month + 1, 1))
                continue
            if self._day_matches(day):
                found = self._first_in_day(day, after, start, steady, to_wall, from_wall)
                if found is not None:
                    return found
            day += _dt.timedelta(days=1)
        return math.inf

    def _first_in_day(
        self,
        day: _dt.date,
        after: float,
        start: _dt.datetime,
        steady: bool,
        to_wall: Callable[[float], _dt.datetime],
        from_wall: Callable[[_dt.datetime, int], float],
    ) -> float | None:
        best: float | None = None
        best_wall: _dt.datetime | None = None
        # A UTC offset change moves wall time by at most a few hours: near one, a wall
        # time a little before "start" may come after it, and order may differ.
        earliest = start if steady else start - _WINDOW
        skip_before = earliest.hour if earliest.date() == day else -1
        for hour in self.sorted_hours:
            if hour < skip_before:
                continue
            for minute in self.sorted_minutes:
                wall = _dt.datetime(day.year, day.month, day.day, hour, minute)
                if wall < earliest:
                    continue
                if best_wall is not None and wall > best_wall + _WINDOW:
                    return best
                first = from_wall(wall, 0)
                if to_wall(first) != wall:
                    continue  # in a DST gap: this wall time does not exist
                for ts in {first, from_wall(wall, 1)}:
                    if ts > after and (best is None or ts < best):
                        best, best_wall = ts, wall
                if steady and best is not None and best <= after + _WINDOW_S:
                    return best
        return best


_WINDOW = _dt.timedelta(hours=3)
_WINDOW_S = _WINDOW.total_seconds()


def _converters(
    tz: str | None,
) -> tuple[Callable[[float], _dt.datetime], Callable[[_dt.datetime, int], float]]:
    if tz is None:
        def to_wall_local(ts: float) -> _dt.datetime:
            return _dt.datetime.fromtimestamp(ts).replace(microsecond=0)

        def from_wall_local(wall: _dt.datetime, fold: int) -> float:
            return wall.replace(fold=fold).timestamp()

        return to_wall_local, from_wall_local
    zone = _zone(tz)

    def to_wall(ts: float) -> _dt.datetime:
        return _dt.datetime.fromtimestamp(ts, zone).replace(tzinfo=None, microsecond=0)

    def from_wall(wall: _dt.datetime, fold: int) -> float:
        return wall.replace(tzinfo=zone, fold=fold).timestamp()

    return to_wall, from_wall


@functools.lru_cache(maxsize=1024)
def parse_cron(schedule: str) -> CronSchedule:
    """Parse a schedule as Kubernetes does; ValueError with robfig/cron's message if bad."""
    spec = schedule.strip()
    if not spec:
        raise ValueError("empty spec string")
    if spec.startswith("TZ=") or spec.startswith("CRON_TZ="):
        raise ValueError("cannot use TZ or CRON_TZ in schedule, use timeZone field instead")
    if spec.startswith("@"):
        if spec.startswith("@every "):
            seconds = _parse_go_duration(spec[len("@every "):].strip())
            return CronSchedule(every=seconds)
        macro = _MACROS.get(spec)
        if macro is None:
            raise ValueError(f"unrecognized descriptor: {spec}")
        spec = macro
    fields = spec.split()
    if len(fields) != 5:
        raise ValueError(
            f"expected exactly 5 fields, found {len(fields)}: [{' '.join(fields)}]"
        )
    minutes, _ = _parse_field(fields[0], _MINUTE)
    hours, _ = _parse_field(fields[1], _HOUR)
    dom, dom_star = _parse_field(fields[2], _DOM)
    months, _ = _parse_field(fields[3], _MONTH)
    dow, dow_star = _parse_field(fields[4], _DOW)
    return CronSchedule(minutes, hours, dom, months, dow, dom_star, dow_star)


def next_cron_time(schedule: str, after: float, tz: str | None = None) -> float:
    """The first time strictly after ``after`` at which ``schedule`` fires in zone ``tz``.

    Seconds since the epoch in, seconds since the epoch out; ``math.inf`` if never.
    Raises ValueError for a bad schedule or an unknown zone.
    """
    return parse_cron(schedule).next(after, tz)


def cron_times_between(
    schedule: str, start: float, end: float, tz: str | None = None, limit: int = 100
) -> Iterable[float]:
    """Fire times in ``(start, end]``, at most ``limit`` of them, oldest first.

    What the CronJob controller needs to find missed schedules (it gives up after 100).
    """
    parsed = parse_cron(schedule)
    t = start
    for _ in range(limit):
        t = parsed.next(t, tz)
        if t > end:
            return
        yield t


@dataclass(frozen=True)
class ScheduleCheck:
    """Where a CronJob stands at ``now`` (Kubernetes' ``mostRecentScheduleTime``).

    ``earliest``: the time scheduling counts from (lastScheduleTime, else the creation
    time, moved up to ``now - startingDeadlineSeconds``). ``most_recent``: the latest
    fire time in ``(earliest, now]``, None if there is none. ``missed``: roughly how many
    fire times passed since ``earliest`` (more than 1: some were missed; more than 100:
    Kubernetes warns ``TooManyMissedTimes``).
    """

    earliest: float
    most_recent: float | None
    missed: int


def most_recent_schedule_time(
    cronjob: CronJob, now: float, *, include_starting_deadline: bool = True
) -> ScheduleCheck:
    """The CronJob controller's view of missed and due runs, computed as Kubernetes does.

    Raises ValueError for a schedule whose fire times are less than a second apart or
    that never fires in a useful way (like Kubernetes' "time difference between two
    schedules is less than 1 second").
    """
    spec = cronjob.spec
    schedule = parse_cron(spec.schedule)
    tz = spec.time_zone
    if cronjob.status is not None and cronjob.status.last_schedule_time:
        earliest = parse_time(cronjob.status.last_schedule_time)
    elif cronjob.metadata.creation_timestamp:
        earliest = parse_time(cronjob.metadata.creation_timestamp)
    else:
        earliest = now
    if include_starting_deadline and spec.starting_deadline_seconds is not None:
        earliest = max(earliest, now - spec.starting_deadline_seconds)
    t1 = schedule.next(earliest, tz)
    if now < t1:
        return ScheduleCheck(earliest, None, 0)
    t2 = schedule.next(t1, tz)
    if now < t2:
        return ScheduleCheck(earliest, t1, 0)
    between = round(t2 - t1)
    if between < 1:
        raise ValueError("time difference between two schedules is less than 1 second")
    missed = int(now - t1) // between + 1
    most_recent: float | None = None
    t = schedule.next(t1 + (missed - 2) * between, tz)
    while t <= now:
        most_recent = t
        t = schedule.next(t, tz)
    return ScheduleCheck(earliest, most_recent, missed)


def next_schedule_time(cronjob: CronJob, now: float) -> float:
    """When the CronJob next fires after ``now``'s most recent due time (for requeueing)."""
    check = most_recent_schedule_time(cronjob, now, include_starting_deadline=False)
    base = check.most_recent if check.most_recent is not None else check.earliest
    return parse_cron(cronjob.spec.schedule).next(base, cronjob.spec.time_zone)
