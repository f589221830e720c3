"""The company's business calendar (工作日历) and working-time arithmetic.

Working days are the configured weekdays, less public holidays, plus make-up working days
(调休, e.g. a Saturday worked before Spring Festival), plus the company's own overrides. Working
hours are one or more intervals per working day (e.g. 09:00-12:00 and 13:00-18:00), in the
company's time zone. Everything here is pure: given the same calendar data the answers never
change, which is what deadlines replayed years later need.

Durations are ISO 8601 (`P3D`, `PT4H`, `P1DT2H30M`, `-P1D`). On the working clock a day is a
working day (the same time of day, that many working days later) and hours, minutes and seconds
are working time; on the calendar clock they are plain elapsed time.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

DAY_SECONDS = 86_400
_SEARCH_LIMIT_DAYS = 3 * 366  # a calendar with no working day in three years is broken
# What the calendar is asked about from outside (`GET /calendar/working-time`): moments in
# these years and durations up to ten years, so every answer stays far inside what a date
# holds (year 1 to 9999) and takes at most a few thousand steps of a day.
FIRST_YEAR = 1970
LAST_YEAR = 2999
MAX_DURATION_DAYS = 3660

_DURATION = re.compile(
    r"^(?P<sign>[-+])?P(?:(?P<weeks>\d+)W)?(?:(?P<days>\d+)D)?"
    r"(?:T(?:(?P<hours>\d+)H)?(?:(?P<minutes>\d+)M)?(?:(?P<seconds>\d+(?:\.\d+)?)S)?)?$"
)


class Clock(StrEnum):
    WORKING = "working"
    CALENDAR = "calendar"


@dataclass(frozen=True)
class Duration:
    """An ISO 8601 duration split into whole days and the time part (in seconds)."""

    days: int = 0
    seconds: float = 0.0
    negative: bool = False

    @classmethod
    def parse(cls, text: str) -> Duration:
        """Parse `P3D`, `PT4H`, `P1DT2H30M`, `P2W`, `-P1D`. Years and months are refused:
        their length is ambiguous for a deadline."""
        match = _DURATION.match(text.strip()) if isinstance(text, str) else None
        if match is None or text.strip() in ("P", "-P", "+P") or text.strip().endswith("T"):
            raise ValueError(
                f"{text!r} is not an ISO 8601 duration such as P3D, PT4H or P1DT30M "
                "(years and months are not allowed)"
            )
        parts = match.groupdict()
        days = int(parts["days"] or 0) + 7 * int(parts["weeks"] or 0)
        seconds = (
            int(parts["hours"] or 0) * 3600
            + int(parts["minutes"] or 0) * 60
            + float(parts["seconds"] or 0)
        )
        return cls(days=days, seconds=seconds, negative=parts["sign"] == "-")

    @property
    def length_days(self) -> float:
        """How long, in days of 24 hours (a working day counted as one)."""
        return self.days + self.seconds / DAY_SECONDS

    def __str__(self) -> str:
        text = "-P" if self.negative else "P"
        if self.days:
            text += f"{self.days}D"
        if self.seconds or not self.days:
            hours, rest = divmod(self.seconds, 3600)
            minutes, seconds = divmod(rest, 60)
            text += "T"
            text += f"{int(hours)}H" if hours else ""
            text += f"{int(minutes)}M" if minutes else ""
            if seconds or not (hours or minutes):
                text += f"{seconds:g}S"
        return text


@dataclass(frozen=True)
class BusinessCalendar:
    """Working days and hours in one time zone, with holidays and make-up working days."""

    timezone: str = "Asia/Shanghai"
    weekdays: frozenset[int] = frozenset({0, 1, 2, 3, 4})  # Monday is 0
    hours: tuple[tuple[int, int], ...] = ((9 * 3600, 12 * 3600), (13 * 3600, 18 * 3600))
    holidays: frozenset[date] = frozenset()
    workdays: frozenset[date] = frozenset()  # make-up and company working days
    _tz: ZoneInfo = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.hours:
            raise ValueError("a calendar needs at least one working-hours interval")
        previous_end = 0
        for start, end in self.hours:
            if not 0 <= start < end <= DAY_SECONDS or start < previous_end:
                raise ValueError("working hours must be ordered, non-overlapping, within a day")
            previous_end = end
        object.__setattr__(self, "_tz", ZoneInfo(self.timezone))

    @classmethod
    def build(
        cls,
        *,
        timezone: str,
        weekdays: Iterable[int],
        hours: Iterable[tuple[time, time | None]],
        country: str | None,
        years: Iterable[int],
        holidays: Iterable[date] = (),
        workdays: Iterable[date] = (),
    ) -> BusinessCalendar:
        """A calendar with the country's public holidays and make-up days (from the `holidays`
        package) for `years`, plus the company's own days off and working days."""
        public: set[date] = set()
        make_up: set[date] = set()
        if country:
            import holidays as holiday_data

            country_holidays = holiday_data.country_holidays(country, years=list(years))
            public = set(country_holidays)
            make_up = set(getattr(country_holidays, "weekend_workdays", ()))
        company_holidays, company_workdays = set(holidays), set(workdays)
        # The company's own days win over the country's both ways: its working days over public
        # holidays, its days off over make-up working days (a 调休 Saturday it gives off).
        return cls(
            timezone=timezone,
            weekdays=frozenset(weekdays),
            hours=tuple(
                (_seconds(start), DAY_SECONDS if end is None else _seconds(end))
                for start, end in hours
            ),
            holidays=frozenset((public | company_holidays) - company_workdays),
            workdays=frozenset((make_up - company_holidays) | company_workdays),
        )

    # --- days -------------------------------------------------------------------------------

    def is_working_day(self, day: date) -> bool:
        if day in self.workdays:
            return True
        return day.weekday() in self.weekdays and day not in self.holidays

    def _next_working_day(self, day: date, step: int = 1) -> date:
        for _ in range(_SEARCH_LIMIT_DAYS):
            day += timedelta(days=step)
            if self.is_working_day(day):
                return day
        raise ValueError("the calendar has no working day within three years")

    def close_of_business(self, day: date) -> datetime:
        """The end of the working day `day`, or of the last working day before it."""
        if not self.is_working_day(day):
            day = self._next_working_day(day, -1)
        return self._at(day, self.hours[-1][1])

    def local_date(self, moment: datetime) -> date:
        """The company's date at `moment`."""
        return moment.astimezone(self._tz).date()

    def working_days_after(self, day: date, days: int) -> date:
        """The working day `days` working days after `day` (`day` itself, or the next working
        day if it is not one, for 0)."""
        return self.local_date(self.add_working_days(self.close_of_business_on(day), days))

    def close_of_business_on(self, day: date) -> datetime:
        """The end of working hours on `day`, working day or not."""
        return self._at(day, self.hours[-1][1])

    def end_of_day(self, day: date) -> datetime:
        """Midnight after `day`, local time: a date-only deadline on the calendar clock."""
        return self._at(day + timedelta(days=1), 0)

    # --- arithmetic -------------------------------------------------------------------------

    def add(self, start: datetime, duration: Duration, clock: Clock = Clock.WORKING) -> datetime:
        """`start` plus `duration` on the given clock (UTC result)."""
        if clock is Clock.CALENDAR:
            local = start.astimezone(self._tz)
            sign = -1 if duration.negative else 1
            # Whole days in local wall time (a day stays a day across a DST change).
            shifted = (local.replace(tzinfo=None) + timedelta(days=sign * duration.days)).replace(
                tzinfo=self._tz
            )
            return (shifted + timedelta(seconds=sign * duration.seconds)).astimezone(UTC)
        if duration.negative:
            if duration.seconds:
                raise ValueError("only whole working days can be counted backwards")
            return self.add_working_days(start, -duration.days)
        moment = self.add_working_days(start, duration.days) if duration.days else start
        if duration.seconds or not duration.days:
            moment = self.add_working_time(moment, duration.seconds)
        return moment

    def add_working_days(self, start: datetime, days: int) -> datetime:
        """The same time of day, `days` working days later (or earlier, when negative).

        A start outside working hours counts from the next working moment.
        """
        day, seconds = self._normalize(start)
        step = 1 if days >= 0 else -1
        for _ in range(abs(days)):
            day = self._next_working_day(day, step)
        return self._at(day, seconds)

    def add_working_time(self, start: datetime, seconds: float) -> datetime:
        """`seconds` of working time after `start`."""
        if seconds < 0:
            raise ValueError("working time is only added forwards")
        local = start.astimezone(self._tz)
        day = local.date()
        offset = _seconds_of_day(local)
        remaining = seconds
        for _ in range(_SEARCH_LIMIT_DAYS):
            if self.is_working_day(day):
                for begin, end in self.hours:
                    if offset >= end:
                        continue
                    from_ = max(begin, offset)
                    available = end - from_
                    if remaining <= available:
                        return self._at(day, from_ + remaining)
                    remaining -= available
                    offset = end
            day += timedelta(days=1)
            offset = 0
        raise ValueError("the calendar has no working time within three years")

    def working_seconds_between(self, start: datetime, end: datetime) -> float:
        """Working time from `start` to `end` (0 when `end` is not after `start`)."""
        if end <= start:
            return 0.0
        first = start.astimezone(self._tz).date()
        last = end.astimezone(self._tz).date()
        total = 0.0
        day = first
        while day <= last:
            if self.is_working_day(day):
                for begin, finish in self.hours:
                    lo = max(self._at(day, begin), start)
                    hi = min(self._at(day, finish), end)
                    if hi > lo:
                        total += (hi - lo).total_seconds()
            day += timedelta(days=1)
        return total

    def fraction_of(
        self, start: datetime, due: datetime, fraction: float, clock: Clock = Clock.WORKING
    ) -> datetime:
        """The moment `fraction` of the way from `start` to `due` on the given clock."""
        if clock is Clock.CALENDAR:
            return start + (due - start) * fraction
        return self.add_working_time(start, self.working_seconds_between(start, due) * fraction)

    # --- helpers ----------------------------------------------------------------------------

    def _normalize(self, start: datetime) -> tuple[date, float]:
        """The working day and time of day a working-day count starts from."""
        local = start.astimezone(self._tz)
        day, seconds = local.date(), _seconds_of_day(local)
        first_begin, last_end = self.hours[0][0], self.hours[-1][1]
        if self.is_working_day(day) and seconds <= last_end:
            return day, max(seconds, first_begin)
        return self._next_working_day(day), first_begin

    def _at(self, day: date, seconds: float) -> datetime:
        # Add in wall time, then attach the zone: "09:00 local" even on a DST day.
        naive = datetime.combine(day, time()) + timedelta(seconds=seconds)
        return naive.replace(tzinfo=self._tz).astimezone(UTC)


def _seconds(value: time) -> int:
    return value.hour * 3600 + value.minute * 60 + value.second


def _seconds_of_day(moment: datetime) -> float:
    return moment.hour * 3600 + moment.minute * 60 + moment.second + moment.microsecond / 1e6
