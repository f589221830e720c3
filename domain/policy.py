"""The deadline policy: business calendar, SLAs per customer tier and priority, and ladders.

One YAML file (`ORDERS_POLICY_FILE`, default `domain/orders-policy.yaml`) holds it all. A file
with a mistake is refused as a whole, with the line and the field of every problem.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import date, datetime, time
from decimal import Decimal
from enum import StrEnum
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

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
    WRITTEN_CONFIRMATION = "written_confirmation"  # a large order awaits the customer's signature


class StepKind(StrEnum):
    REMINDER = "reminder"
    ESCALATION = "escalation"
    ACTION = "action"


class StepAction(StrEnum):
    EXPIRE = "expire"  # cancel the order (approval or prepaid payment that never came)
    CREDIT_HOLD = "credit_hold"  # put the customer on credit hold


# The SLAs each action makes sense on, as the order workflow carries them out
# (workflows/ladders.py): an expiry cancels an order that has not shipped, which only an
# undecided approval and an unpaid prepayment warrant (a return's workflow cannot cancel at
# all); a credit hold is lifted only by paying the invoice whose dunning placed it.
ACTION_SLAS: dict[StepAction, frozenset[Sla]] = {
    StepAction.EXPIRE: frozenset({Sla.APPROVAL, Sla.PREPAID_PAYMENT, Sla.WRITTEN_CONFIRMATION}),
    StepAction.CREDIT_HOLD: frozenset({Sla.INVOICE_PAYMENT}),
}


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
            # Only forms that plan on either clock (see `problem_on`).
            raise ValueError("use `75%`, `due`, `due+PT2H`, `due-P1D` or `start+PT1H`")
        if match["percent"] is not None and not 0 <= float(match["percent"]) <= 100:
            raise ValueError("a percentage of the window is between 0% and 100%")
        if match["offset"]:
            offset = Duration.parse(match["offset"])
            if match["anchor"] == "start" and offset.negative:
                # It would fire the moment the SLA's clock starts: a mistake, whatever it meant.
                raise ValueError(
                    "a step cannot fire before the SLA's clock starts: use `start+...`, "
                    "a percentage such as `75%`, or `due-...`"
                )
        return value.replace(" ", "")

    @model_validator(mode="after")
    def _action_needs_kind(self) -> LadderStep:
        if (self.kind is StepKind.ACTION) != (self.action is not None):
            raise ValueError("an `action` step names its action, and only action steps do")
        if self.kind is StepKind.ESCALATION and self.level < 1:
            raise ValueError("an escalation has a level of 1 or more")
        return self

    def problem_on(self, clock: Clock) -> str | None:
        """Why the calendar cannot plan this step on `clock` (None: it can)."""
        match = _AT.match(self.at)
        assert match is not None
        if clock is Clock.WORKING and match["offset"]:
            offset = Duration.parse(match["offset"])
            # Working hours before a deadline have no single answer (which day's hours?), so
            # BusinessCalendar.add refuses them; refused here, a planning activity never fails.
            if offset.negative and offset.seconds:
                return (
                    f"`{self.at}`: on the working clock only whole working days count back "
                    "from the deadline (`due-P1D`); use a percentage such as `90%`, or the "
                    "calendar clock"
                )
        return None

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

    @field_validator("clock", "use_dates", "ladder")
    @classmethod
    def _not_null(cls, value: object) -> object:
        # Optional only because overrides leave them out; an SLA itself needs a value, or
        # every order's planning would fail on it.
        if value is None:
            raise ValueError("an SLA's own value cannot be null: leave it out for the default")
        return value

    def layers(self, tier: str | None, priority: str) -> list[tuple[tuple[str, ...], SlaOverride]]:
        """What applies to an order, in order, each with its place in the file: this SLA, then
        its tier's override, then its priority's."""
        layers: list[tuple[tuple[str, ...], SlaOverride]] = [((), self)]
        if (by_tier := self.tier.get(tier or "")) is not None:
            layers.append((("tier", tier or ""), by_tier))
        if (by_priority := self.priority.get(priority)) is not None:  # type: ignore[call-overload]
            layers.append((("priority", priority), by_priority))
        return layers


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

    @field_validator("extra_workdays")
    @classmethod
    def _not_also_a_day_off(cls, value: list[date], info: ValidationInfo) -> list[date]:
        both = sorted(set(value) & set(info.data.get("holidays", ())))
        if both:
            days = ", ".join(str(day) for day in both)
            raise ValueError(f"{days}: a company day off and a working day at once")
        return value

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


class PromisePolicy(_Strict):
    """How delivery dates are promised at confirmation (domain/promise.py)."""

    transit_days: int = Field(
        default=1, ge=0, le=60, description="Working days in transit, for customers without."
    )
    requested_date_too_soon: Literal["warning", "approval"] = Field(
        default="warning",
        description="A requested date before the promise: a warning on the order, or an "
        "approval reason (`requested_date_unachievable`).",
    )
    written_confirmation_limit: Decimal = Field(
        default=Decimal(500_000),
        ge=0,
        description="An order total above this waits for the customer's written confirmation "
        "(书面确认), as does one with non-standard terms.",
    )
    written_confirmation_final_action: Literal["expire", "escalate_only"] = Field(
        default="expire",
        description="What the written_confirmation ladder's action step does: `expire` cancels "
        "the order; `escalate_only` makes it one more escalation.",
    )


class OrderPolicy(_Strict):
    """The whole file."""

    calendar: CalendarPolicy = Field(default_factory=CalendarPolicy)
    promise: PromisePolicy = Field(default_factory=PromisePolicy)
    slas: dict[Sla, SlaPolicy] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _ladders_fit_their_slas(self) -> OrderPolicy:
        """Refuse at start-up what would otherwise fail for every order it applies to: a step
        the calendar cannot plan on the clock it runs on, an action the SLA cannot take."""
        problems: dict[tuple[str | int, ...], str] = {}
        for sla, base in self.slas.items():
            every_layer: list[tuple[tuple[str, ...], SlaOverride]] = [
                ((), base),
                *((("tier", name), override) for name, override in base.tier.items()),
                *((("priority", name), override) for name, override in base.priority.items()),
            ]
            for where, layer in every_layer:
                for index, step in enumerate(layer.ladder or ()):
                    if step.action is not None and sla not in ACTION_SLAS[step.action]:
                        allowed = " and ".join(sorted(ACTION_SLAS[step.action]))
                        problems[("slas", sla.value, *where, "ladder", index, "action")] = (
                            f"`{step.action}` does not apply to {sla}, only to {allowed}"
                        )
            # A ladder may run on a clock set in another layer (a tier's `clock: working` under
            # the SLA's own ladder): check each ladder on every clock an order can give it.
            for tier in [None, *base.tier]:
                for priority in ("normal", "rush"):
                    clock_from: tuple[str, ...] = ()
                    ladder_from: tuple[str, ...] = ()
                    clock, ladder = Clock.WORKING, list[LadderStep]()
                    for where, layer in base.layers(tier, priority):
                        if layer.clock is not None:
                            clock_from, clock = where, layer.clock
                        if layer.ladder is not None:
                            ladder_from, ladder = where, layer.ladder
                    for index, step in enumerate(ladder):
                        problem = step.problem_on(clock)
                        if problem is None:
                            continue
                        if clock_from != ladder_from:
                            source = _dotted(("slas", sla.value, *clock_from))
                            problem += f" (the working clock comes from {source})"
                        loc = ("slas", sla.value, *ladder_from, "ladder", index, "at")
                        problems.setdefault(loc, problem)
        if problems:
            # One error per problem, each at its own field, so the file's line numbers apply.
            raise ValidationError.from_exception_data(
                type(self).__name__,
                [
                    InitErrorDetails(
                        type=PydanticCustomError("policy", "{problem}", {"problem": problem}),
                        loc=loc,
                        input=None,
                    )
                    for loc, problem in problems.items()
                ],
            )
        return self

    def resolve(self, sla: Sla, *, tier: str | None, priority: str) -> ResolvedSla | None:
        """The SLA for an order: the base, then its tier's override, then its priority's."""
        base = self.slas.get(sla)
        if base is None:
            return None
        fields: dict[str, Any] = {}
        for _, layer in base.layers(tier, priority):
            fields |= layer.model_dump(
                exclude_none=True, include={"duration", "clock", "use_dates"}
            )
            if layer.ladder is not None:
                fields["ladder"] = layer.ladder
        fields.setdefault("duration", None)
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
