"""Working-time arithmetic in the company calendar (China, 2026), with no server at all."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

import httpx
import pytest

from domain.calendar import BusinessCalendar, Clock, Duration
from tests.helpers import error_fields

SHANGHAI = ZoneInfo("Asia/Shanghai")
CN = BusinessCalendar.build(
    timezone="Asia/Shanghai",
    weekdays=range(5),
    hours=[(time(9), time(12)), (time(13), time(18))],
    country="CN",
    years=[2026, 2027],
)


def at(text: str) -> datetime:
    """A local Shanghai time, e.g. `2026-11-20 17:00`."""
    return datetime.fromisoformat(text).replace(tzinfo=SHANGHAI)


def local(moment: datetime) -> str:
    return moment.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M %a")


@pytest.mark.parametrize(
    ("start", "duration", "end"),
    [
        # Working hours across a weekend: Fri 17-18 (1h) + Mon 9-12 (3h).
        ("2026-11-20 17:00", "PT4H", "2026-11-23 12:00 Mon"),
        ("2026-11-20 17:00", "P3D", "2026-11-25 17:00 Wed"),
        # The lunch break is not working time.
        ("2026-11-23 11:00", "PT2H", "2026-11-23 14:00 Mon"),
        # Before, after and outside working hours count from the next working moment.
        ("2026-11-23 07:00", "PT1H", "2026-11-23 10:00 Mon"),
        ("2026-11-23 19:30", "PT1H", "2026-11-24 10:00 Tue"),
        ("2026-11-21 10:00", "PT4H", "2026-11-23 14:00 Mon"),
        ("2026-11-21 10:00", "P1D", "2026-11-24 09:00 Tue"),
        ("2026-11-23 19:30", "P1D", "2026-11-25 09:00 Wed"),
        # Ending exactly at close of business stays that day.
        ("2026-11-23 14:00", "PT4H", "2026-11-23 18:00 Mon"),
        ("2026-11-23 10:00", "P1DT2H30M", "2026-11-24 13:30 Tue"),
        # Spring Festival 2026: Feb 16-20 and 23 off; Saturdays Feb 14 and 28 are worked (调休).
        ("2026-02-13 10:00", "P1D", "2026-02-14 10:00 Sat"),
        ("2026-02-13 10:00", "P2D", "2026-02-24 10:00 Tue"),
        ("2026-02-14 17:00", "PT4H", "2026-02-24 12:00 Tue"),
        ("2026-02-27 17:00", "PT2H", "2026-02-28 10:00 Sat"),
        # National Day week: Oct 1-7 off, Saturday Oct 10 worked.
        ("2026-09-30 17:00", "P1D", "2026-10-08 17:00 Thu"),
        ("2026-10-09 17:00", "PT3H", "2026-10-10 11:00 Sat"),
        # Counting back: one working day before a deadline.
        ("2026-11-24 18:00", "-P1D", "2026-11-23 18:00 Mon"),
        ("2026-02-24 18:00", "-P1D", "2026-02-14 18:00 Sat"),
    ],
)
def test_working_clock(start: str, duration: str, end: str) -> None:
    assert local(CN.add(at(start), Duration.parse(duration))) == end


def test_calendar_clock_counts_plain_days() -> None:
    due = CN.add(at("2026-11-22 10:00"), Duration.parse("P30D"), Clock.CALENDAR)
    assert local(due) == "2026-12-22 10:00 Tue"
    assert local(CN.add(due, Duration.parse("-PT1H"), Clock.CALENDAR)) == "2026-12-22 09:00 Tue"


def test_days_and_boundaries() -> None:
    assert CN.is_working_day(date(2026, 2, 14))  # make-up Saturday
    assert not CN.is_working_day(date(2026, 2, 17))  # Spring Festival
    assert not CN.is_working_day(date(2026, 11, 22))  # an ordinary Sunday
    assert local(CN.close_of_business(date(2026, 11, 22))) == "2026-11-20 18:00 Fri"
    assert local(CN.end_of_day(date(2026, 11, 22))) == "2026-11-23 00:00 Mon"


def test_working_time_between_and_fractions() -> None:
    start, due = at("2026-11-20 17:00"), at("2026-11-23 12:00")
    assert CN.working_seconds_between(start, due) == 4 * 3600
    assert local(CN.fraction_of(start, due, 0.75)) == "2026-11-23 11:00 Mon"
    assert local(CN.fraction_of(start, due, 0.5, Clock.CALENDAR)) == "2026-11-22 02:30 Sun"


def test_company_overrides_win_over_public_data() -> None:
    calendar = BusinessCalendar.build(
        timezone="Asia/Shanghai",
        weekdays=range(5),
        hours=[(time(9), time(18))],
        country="CN",
        years=[2026],
        holidays=[date(2026, 12, 24)],
        workdays=[date(2026, 12, 26), date(2026, 10, 1)],
    )
    assert not calendar.is_working_day(date(2026, 12, 24))
    assert calendar.is_working_day(date(2026, 12, 26))  # a Saturday
    assert calendar.is_working_day(date(2026, 10, 1))  # National Day, worked here
    assert (
        local(calendar.add(at("2026-12-23 17:00"), Duration.parse("PT2H")))
        == "2026-12-25 10:00 Fri"
    )


def test_a_company_day_off_wins_over_a_make_up_working_day() -> None:
    # Saturday 2026-02-28 is worked in China (调休 for Spring Festival); this company gives it
    # off, and keeps the other make-up Saturday, Feb 14.
    calendar = BusinessCalendar.build(
        timezone="Asia/Shanghai",
        weekdays=range(5),
        hours=[(time(9), time(12)), (time(13), time(18))],
        country="CN",
        years=[2026],
        holidays=[date(2026, 2, 28)],
    )
    assert CN.is_working_day(date(2026, 2, 28))
    assert not calendar.is_working_day(date(2026, 2, 28))
    assert calendar.is_working_day(date(2026, 2, 14))
    assert (
        local(calendar.add(at("2026-02-27 17:00"), Duration.parse("PT2H")))
        == "2026-03-02 10:00 Mon"
    )
    assert local(calendar.add(at("2026-03-02 18:00"), Duration.parse("-P1D"))) == (
        "2026-02-27 18:00 Fri"
    )
    assert local(calendar.close_of_business(date(2026, 2, 28))) == "2026-02-27 18:00 Fri"


def test_a_round_the_clock_calendar_is_plain_time() -> None:
    always = BusinessCalendar(timezone="UTC", weekdays=frozenset(range(7)), hours=((0, 86_400),))
    start = datetime(2026, 11, 22, 23, 59, 58, tzinfo=UTC)
    assert always.add(start, Duration.parse("PT3S")) == datetime(2026, 11, 23, 0, 0, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "days", "seconds", "negative"),
    [
        ("P3D", 3, 0, False),
        ("PT4H", 0, 14_400, False),
        ("P1DT2H30M", 1, 9_000, False),
        ("P2W", 14, 0, False),
        ("PT0.5S", 0, 0.5, False),
        ("-P1D", 1, 0, True),
    ],
)
def test_durations_parse(text: str, days: int, seconds: float, negative: bool) -> None:
    assert Duration.parse(text) == Duration(days=days, seconds=seconds, negative=negative)
    assert Duration.parse(str(Duration.parse(text))) == Duration.parse(text)


@pytest.mark.parametrize("text", ["P1Y", "P1M", "P", "PT", "3D", "P1DT", "4 hours", ""])
def test_bad_durations_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="ISO 8601"):
        Duration.parse(text)


async def test_working_time_endpoint(api: httpx.AsyncClient) -> None:
    response = await api.get(
        "/calendar/working-time", params={"start": "2026-11-20T17:00:00+08:00", "duration": "PT4H"}
    )
    assert response.status_code == 200, response.text
    assert response.json() == {
        "start": "2026-11-20T17:00:00+08:00",
        "duration": "PT4H",
        "clock": "working",
        "end": "2026-11-23T12:00:00+08:00",
        "timezone": "Asia/Shanghai",
    }
    # No offset: the company's local time. Spring Festival is skipped.
    response = await api.get(
        "/calendar/working-time", params={"start": "2026-02-13T10:00", "duration": "P2D"}
    )
    assert response.json()["end"] == "2026-02-24T10:00:00+08:00"
    response = await api.get(
        "/calendar/working-time",
        params={"start": "2026-11-22T10:00:00Z", "duration": "P30D", "clock": "calendar"},
    )
    assert response.json()["end"] == "2026-12-22T18:00:00+08:00"


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"start": "2026-11-20T17:00:00", "duration": "3 days"}, "duration"),
        ({"start": "2026-11-20T17:00:00", "duration": "P1Y"}, "duration"),
        ({"start": "2026-11-20T17:00:00", "duration": "-PT1H"}, "duration"),
        ({"start": "yesterday", "duration": "P1D"}, "start"),
        ({"duration": "P1D"}, "start"),
        ({"start": "2026-11-20T17:00:00", "duration": "P1D", "clock": "sundial"}, "clock"),
    ],
)
async def test_working_time_endpoint_refuses_bad_input(
    api: httpx.AsyncClient, params: dict[str, str], field: str
) -> None:
    response = await api.get("/calendar/working-time", params=params)
    assert response.status_code == 422, response.text
    assert field in error_fields(response)
