"""The deadline policy: business calendar, SLAs per customer tier and priority, and ladders.

One YAML file (`ORDERS_POLICY_FILE`, default `domain/orders-policy.yaml`) holds it all. A file
with a mistake is refused as a whole, with the line and the field of every problem.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import date, datetime, time
from enum import StrEnum
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from domain.calendar import BusinessCalendar, Clock, Duration

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_HOURS = re.compile(r"^(\d{2}):(\d{2})-(\d{2}):(\d{2})$")
_AT = re.compile(
    r"^(?:(?P<percent>\d{1,3}(?:\.\d+)?)%|(?P<anchor>due|start)(?P<offset>[-+]P\S+)?)$"
)


class Sla(StrEnum):
    """The deadlines an order can have, with the moment each one's clock starts."""

    APPROVAL = "approval"  # order enters PENDING_APPROVAL
    PREPAID_PAYMENT = "prepaid_payment"  # invoice issued at approval
    PRODUCTION = "production"  # production order created
    DISPATCH = "dispatch"  # order received
    DELIVERY = "delivery"  # dispatch
    INVOICE_PAYMENT = "invoice_payment"  # invoice issued (credit terms)
    AFTER_SALES = "after_sales"  # a return requested, until it is approved or refused


class StepKind(StrEnum):
    REMINDER = "reminder"
    ESCALATION = "escalation"
    ACTION = "action"


class StepAction(StrEnum):
    EXPIRE = "expire"  # cancel the order (approval or prepaid payment that never came)
    CREDIT_HOLD = "credit_hold"  # put the customer on credit hold


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LadderStep(_Strict):
    """One rung: when it fires (`75%`, `due`, `due+P1D`, `due-P1D`, `start+PT2H`), what it is,
    and who is notified."""

    at: str
    kind: StepKind
    level: int = Field(default=0, ge=0, le=9)
    notify: list[str] = Field(default_factory=list)
    action: StepAction | None = None
    message: str | None = None

    @field_validator("at")
    @classmethod
    def _valid_at(cls, value: str) -> str:
        match = _AT.match(value.replace(" ", ""))
        if match is None:
            raise ValueError("use `75%`, `due`, `due+P1D`, `due-PT2H` or `start+PT1H`")
        if match["percent"] is not None and not 0 <= float(match["percent"]) <= 100:
            raise ValueError("a percentage of the window is between 0% and 100%")
        if match["offset"]:
            Duration.parse(match["offset"])
        return value.replace(" ", "")

    @model_validator(mode="after")
    def _action_needs_kind(self) -> LadderStep:
        if (self.kind is StepKind.ACTION) != (self.action is not None):
            raise ValueError("an `action` step names its action, and only action steps do")
        if self.kind is StepKind.ESCALATION and self.level < 1:
            raise ValueError("an escalation has a level of 1 or more")
        return self

    def fire_at(
        self, start: datetime, due: datetime, calendar: BusinessCalendar, clock: Clock
    ) -> datetime:
        match = _AT.match(self.at)
        assert match is not None
        if match["percent"] is not None:
            return calendar.fraction_of(start, due, float(match["percent"]) / 100, clock)
        anchor = due if match["anchor"] == "due" else start
        if not match["offset"]:
            return anchor
        return calendar.add(anchor, Duration.parse(match["offset"]), clock)


class SlaOverride(_Strict):
    duration: str | None = None
    clock: Clock | None = None
    use_dates: bool | None = None
    ladder: list[LadderStep] | None = None

    @field_validator("duration")
    @classmethod
    def _valid_duration(cls, value: str | None) -> str | None:
        if value is not None:
            duration = Duration.parse(value)
            if duration.negative:
                raise ValueError("an SLA duration is positive")
        return value


class SlaPolicy(SlaOverride):
    """An SLA's window and ladder, with overrides by customer tier and by priority.

    `use_dates`: where the order has a date for it (requested delivery date, invoice due date,
    production due date), that date is the deadline and `duration` only the fallback.
    """

    clock: Clock | None = Clock.WORKING
    use_dates: bool | None = True
    ladder: list[LadderStep] | None = Field(default_factory=list)
    tier: dict[str, SlaOverride] = Field(default_factory=dict)
    priority: dict[Literal["normal", "rush"], SlaOverride] = Field(default_factory=dict)


class ResolvedSla(BaseModel):
    """An SLA as it applies to one order's tier and priority."""

    sla: Sla
    duration: str | None
    clock: Clock
    use_dates: bool
    ladder: list[LadderStep]


class CalendarPolicy(_Strict):
    timezone: str = "Asia/Shanghai"
    country: str | None = Field(default="CN", description="Public holidays and make-up days.")
    workdays: list[str] = Field(default_factory=lambda: list(WEEKDAYS[:5]))
    hours: list[str] = Field(default_factory=lambda: ["09:00-12:00", "13:00-18:00"])
    holidays: list[date] = Field(default_factory=list, description="Company days off.")
    extra_workdays: list[date] = Field(default_factory=list, description="Company working days.")

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo

        try:
            ZoneInfo(value)
        except Exception as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value

    @field_validator("workdays")
    @classmethod
    def _weekday_names(cls, value: list[str]) -> list[str]:
        unknown = [day for day in value if day not in WEEKDAYS]
        if unknown or not value:
            raise ValueError(f"workdays are some of {', '.join(WEEKDAYS)}")
        return value

    @field_validator("hours")
    @classmethod
    def _hour_ranges(cls, value: list[str]) -> list[str]:
        previous = -1
        for text in value:
            match = _HOURS.match(text)
            if match is None:
                raise ValueError(f"{text!r} is not a range such as 09:00-12:00")
            h1, m1, h2, m2 = (int(g) for g in match.groups())
            start, end = h1 * 60 + m1, h2 * 60 + m2
            if not (
                h1 < 24 and m1 < 60 and m2 < 60 and start < end <= 24 * 60 and start >= previous
            ):
                raise ValueError(f"{text!r}: ranges are within a day, ordered and disjoint")
            previous = end
        if not value:
            raise ValueError("at least one range of working hours")
        return value

    def build(self, years: Sequence[int]) -> BusinessCalendar:
        def parse(text: str) -> tuple[time, time | None]:
            h1, m1, h2, m2 = (int(g) for g in _HOURS.match(text).groups())  # type: ignore[union-attr]
            return time(h1, m1), None if (h2, m2) == (24, 0) else time(h2, m2)

        return BusinessCalendar.build(
            timezone=self.timezone,
            weekdays=[WEEKDAYS.index(day) for day in self.workdays],
            hours=[parse(text) for text in self.hours],
            country=self.country,
            years=years,
            holidays=self.holidays,
            workdays=self.extra_workdays,
        )


class OrderPolicy(_Strict):
    """The whole file."""

    calendar: CalendarPolicy = Field(default_factory=CalendarPolicy)
    slas: dict[Sla, SlaPolicy] = Field(default_factory=dict)

    def resolve(self, sla: Sla, *, tier: str | None, priority: str) -> ResolvedSla | None:
        """The SLA for an order: the base, then its tier's override, then its priority's."""
        base = self.slas.get(sla)
        if base is None:
            return None
        fields: dict[str, Any] = {
            "duration": base.duration,
            "clock": base.clock,
            "use_dates": base.use_dates,
            "ladder": base.ladder,
        }
        for override in (base.tier.get(tier or ""), base.priority.get(priority)):  # type: ignore[call-overload]
            if override is not None:
                fields |= override.model_dump(exclude_none=True, exclude={"ladder"})
                if override.ladder is not None:
                    fields["ladder"] = override.ladder
        return ResolvedSla(sla=sla, **fields)


class PolicyError(ValueError):
    """A policy file that cannot be used, with every problem's line and field."""


def parse_policy(text: str, *, source: str = "policy") -> OrderPolicy:
    """Parse and check a policy document; raise PolicyError naming lines and fields."""
    try:
        node = yaml.compose(text)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark is not None else "somewhere"
        raise PolicyError(
            f"{source}: {where}: not valid YAML: {getattr(exc, 'problem', exc)}"
        ) from exc
    lines: dict[tuple[str | int, ...], int] = {}
    if node is not None:
        _index_lines(node, (), lines)
    try:
        return OrderPolicy.model_validate(data or {})
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            loc = tuple(part for part in error["loc"] if not str(part).startswith("function-"))
            line = _line_of(loc, lines)
            field = _dotted(loc) or "(top level)"
            problems.append(f"{source}: line {line}: {field}: {error['msg']}")
        raise PolicyError("\n".join(problems)) from exc


def _index_lines(
    node: yaml.Node, path: tuple[str | int, ...], lines: dict[tuple[str | int, ...], int]
) -> None:
    lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            child = (*path, str(key.value))
            lines[child] = key.start_mark.line + 1
            _index_lines(value, child, lines)
            lines[child] = key.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _index_lines(item, (*path, index), lines)


def _line_of(loc: tuple[Any, ...], lines: dict[tuple[str | int, ...], int]) -> int:
    path = tuple(str(p) if not isinstance(p, int) else p for p in loc)
    while path and path not in lines:
        path = path[:-1]
    return lines.get(path, 1)


def _dotted(loc: tuple[Any, ...]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text
