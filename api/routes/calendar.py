"""`GET /calendar/working-time`: "when is 3 working days from now" in the company calendar."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel

from api.auth import allowed
from api.errors import FieldProblem, ProblemDetails, ProblemError
from api.principal import Principal
from domain.auth import Permission
from domain.calendar import (
    FIRST_YEAR,
    LAST_YEAR,
    MAX_DURATION_DAYS,
    BusinessCalendar,
    Clock,
    Duration,
)

router = APIRouter(prefix="/calendar", tags=["calendar"])
ERRORS: dict[int | str, dict[str, Any]] = {422: {"model": ProblemDetails}}


class WorkingTime(BaseModel):
    start: datetime
    duration: str
    clock: Clock
    end: datetime
    timezone: str


@router.get("/working-time", responses=ERRORS)
async def working_time(
    request: Request,
    _: Annotated[Principal, allowed(Permission.CATALOG_READ)],
    start: Annotated[
        datetime,
        Query(
            description="ISO 8601; without an offset it is the company's local time. "
            f"Years {FIRST_YEAR} to {LAST_YEAR}."
        ),
    ],
    duration: Annotated[
        str,
        Query(
            max_length=40,
            description="ISO 8601: `P3D` is three working days, `PT4H` four working hours; "
            f"at most {MAX_DURATION_DAYS} days (`P{MAX_DURATION_DAYS}D`) in all.",
        ),
    ],
    clock: Clock = Clock.WORKING,
) -> WorkingTime:
    """The moment `duration` after `start` in the company's working calendar."""
    calendar: BusinessCalendar = request.app.state.calendar
    zone = ZoneInfo(calendar.timezone)
    # The year as written, before any conversion: 0001-01-01T00:00+14:00 is in year 0 in UTC.
    if not FIRST_YEAR <= start.year <= LAST_YEAR:
        raise _refused("start", f"the calendar answers for years {FIRST_YEAR} to {LAST_YEAR}")
    if start.tzinfo is None:
        start = start.replace(tzinfo=zone)
    try:
        parsed = Duration.parse(duration)
        if parsed.length_days > MAX_DURATION_DAYS:
            raise ValueError(f"at most {MAX_DURATION_DAYS} days (P{MAX_DURATION_DAYS}D)")
        end = calendar.add(start, parsed, clock)
    except ValueError as exc:
        raise _refused("duration", str(exc)) from exc
    return WorkingTime(
        start=start.astimezone(zone),
        duration=duration,
        clock=clock,
        end=end.astimezone(zone),
        timezone=calendar.timezone,
    )


def _refused(field: str, message: str) -> ProblemError:
    return ProblemError(422, message, errors=[FieldProblem(field=field, message=message)])
