"""Working-time arithmetic in the company calendar (China, 2026), with no server at all, and
`GET /calendar/working-time`, whose answers stay 200 or 422 and quick for any input."""

from __future__ import annotations

import time as clock
from datetime import UTC, date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from domain.calendar import MAX_DURATION_DAYS, BusinessCalendar, Clock, Duration
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


# Inputs that answered 500 (OverflowError) after 2-4.5 s of work, and the bounds themselves.
EXTREMES = [
    ({"start": "9999-12-31T20:00:00", "duration": "P1D"}, "start"),
    ({"start": "2026-11-20T17:00:00", "duration": "P999999999D"}, "duration"),
    ({"start": "2026-11-20T17:00:00", "duration": "PT99999999H", "clock": "calendar"}, "duration"),
    ({"start": "0001-01-01T00:00:00+14:00", "duration": "PT1H"}, "start"),
    ({"start": "1969-12-31T23:59:59Z", "duration": "PT1H"}, "start"),
    ({"start": "3000-01-01T00:00:00", "duration": "PT1H"}, "start"),
    ({"start": "2026-11-20T17:00:00", "duration": f"P{MAX_DURATION_DAYS}DT1S"}, "duration"),
    ({"start": "2026-11-20T17:00:00", "duration": "P523W"}, "duration"),
]
# A request of the endpoint is a few milliseconds; this leaves room for a busy CI machine.
QUICK_SECONDS = 1.0


@pytest.mark.parametrize(("params", "field"), EXTREMES)
async def test_working_time_refuses_what_it_cannot_answer_quickly(
    api: httpx.AsyncClient, params: dict[str, str], field: str
) -> None:
    started = clock.perf_counter()
    response = await api.get("/calendar/working-time", params=params)
    assert clock.perf_counter() - started < QUICK_SECONDS
    assert response.status_code == 422, response.text
    assert error_fields(response) == {field}
    # The connection is still good for the next request.
    response = await api.get(
        "/calendar/working-time", params={"start": "2026-11-20T17:00:00", "duration": "PT1H"}
    )
    assert response.status_code == 200, response.text


@pytest.mark.parametrize("clock_", list(Clock))
@pytest.mark.parametrize(
    ("start", "duration"),
    [
        ("1970-01-01T00:00:00", f"P{MAX_DURATION_DAYS}D"),
        ("2999-12-31T23:59:59-23:59", f"P{MAX_DURATION_DAYS}D"),
        ("2999-12-31T23:59:59+23:59", f"-P{MAX_DURATION_DAYS}D"),
        ("2026-11-20T17:00:00", f"PT{MAX_DURATION_DAYS * 24}H"),
    ],
)
async def test_working_time_answers_up_to_its_bounds_quickly(
    api: httpx.AsyncClient, start: str, duration: str, clock_: Clock
) -> None:
    started = clock.perf_counter()
    response = await api.get(
        "/calendar/working-time",
        params={"start": start, "duration": duration, "clock": clock_.value},
    )
    assert clock.perf_counter() - started < QUICK_SECONDS
    # Working hours beyond three years of working time are refused, naming the duration;
    # everything else within the bounds is answered.
    if response.status_code == 422:
        assert clock_ is Clock.WORKING and error_fields(response) == {"duration"}, response.text
    else:
        assert response.status_code == 200, response.text


def _offset(minutes: int) -> timezone:
    return timezone(timedelta(minutes=minutes))


def _duration(
    sign: str, w: int | None, d: int | None, h: int | None, m: int | None, s: float | None
) -> str:
    text = f"{sign}P" + "".join(f"{n}{unit}" for n, unit in ((w, "W"), (d, "D")) if n is not None)
    clock_part = "".join(
        f"{n}{unit}" for n, unit in ((h, "H"), (m, "M"), (s, "S")) if n is not None
    )
    return text + (f"T{clock_part}" if clock_part else "")


STARTS = st.one_of(
    st.datetimes(
        min_value=datetime(1, 1, 1),
        max_value=datetime(9999, 12, 31, 23, 59, 59),
        timezones=st.one_of(st.none(), st.integers(-1439, 1439).map(_offset)),
    ).map(datetime.isoformat),
    st.sampled_from([p["start"] for p, _ in EXTREMES]),
    st.text(max_size=40),
)
NUMBER = st.one_of(st.none(), st.integers(0, 10**3), st.integers(0, 10**15))
DURATIONS = st.one_of(
    st.builds(
        _duration,
        st.sampled_from(["", "-", "+"]),
        NUMBER,
        NUMBER,
        NUMBER,
        NUMBER,
        st.one_of(NUMBER, st.floats(0, 1e20, allow_nan=False, allow_infinity=False)),
    ),
    st.sampled_from([p["duration"] for p, _ in EXTREMES]),
    st.text(max_size=45),
)


@settings(
    max_examples=300,
    deadline=None,  # the test times each request itself
    derandomize=True,  # the same cases on every run: CI never fails on a new draw
    suppress_health_check=[HealthCheck.too_slow],
)
@given(start=STARTS, duration=DURATIONS, clock_=st.sampled_from([c.value for c in Clock]))
async def test_working_time_is_200_or_422_and_quick_for_any_input(
    api: httpx.AsyncClient, start: str, duration: str, clock_: str
) -> None:
    started = clock.perf_counter()
    response = await api.get(
        "/calendar/working-time", params={"start": start, "duration": duration, "clock": clock_}
    )
    assert clock.perf_counter() - started < QUICK_SECONDS, (start, duration, clock_)
    assert response.status_code in (200, 422), (start, duration, clock_, response.text)
    if response.status_code == 422:
        assert error_fields(response), response.text
        assert error_fields(response) <= {"start", "duration"}, response.text
    else:
        assert datetime.fromisoformat(response.json()["end"]).tzinfo is not None
