"""The policy file: the shipped one is valid, and a wrong one is refused with line and field."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from api.main import create_app
from domain.calendar import Clock, Duration
from domain.policy import CalendarPolicy, PolicyError, Sla, parse_policy
from settings import Settings
from tests.conftest import TEST_TIERS


def test_the_shipped_policy_is_valid_and_complete() -> None:
    policy = Settings().load_policy()
    assert set(policy.slas) == set(Sla)
    rush = policy.resolve(Sla.APPROVAL, tier="standard", priority="rush")
    key_account = policy.resolve(Sla.APPROVAL, tier="key_account", priority="normal")
    assert rush is not None and rush.duration == "PT1H"
    assert key_account is not None and key_account.duration == "PT2H"
    payment = policy.resolve(Sla.INVOICE_PAYMENT, tier=None, priority="normal")
    assert payment is not None and payment.clock is Clock.CALENDAR
    assert [s.at for s in payment.ladder] == ["due-P3D", "due", "due+P7D", "due+P14D"]
    calendar = policy.calendar.build([2026])
    assert calendar.timezone == "Asia/Shanghai"


def test_overrides_apply_tier_then_priority() -> None:
    policy = parse_policy(
        """
slas:
  dispatch:
    duration: P3D
    ladder: [{at: due, kind: escalation, level: 1}]
    tier: {vip: {duration: P2D, clock: calendar}}
    priority: {rush: {duration: P1D}}
"""
    )
    resolved = policy.resolve(Sla.DISPATCH, tier="vip", priority="rush")
    assert resolved is not None
    assert (resolved.duration, resolved.clock) == ("P1D", Clock.CALENDAR)
    assert len(resolved.ladder) == 1
    assert policy.resolve(Sla.APPROVAL, tier=None, priority="normal") is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "calendar:\n  timezone: Mars/Olympus\n",
            ["line 2: calendar.timezone", "unknown time zone"],
        ),
        ("calendar:\n  hours: ['18:00-09:00']\n", ["line 2: calendar.hours"]),
        ("calendar:\n  workdays: [mon, funday]\n", ["line 2: calendar.workdays"]),
        (
            "slas:\n  approval:\n    duration: PT4H\n    ladder:\n      - {at: due, kind: escalation, level: 1}\n"
            "      - {at: tomorrow, kind: reminder}\n",
            ["line 6: slas.approval.ladder[1].at"],
        ),
        (
            "slas:\n  approval:\n    duration: four hours\n",
            ["line 3: slas.approval.duration", "ISO 8601"],
        ),
        ("slas:\n  approval:\n    duration: P1M\n", ["line 3: slas.approval.duration"]),
        ("slas:\n  approvals:\n    duration: PT4H\n", ["line 2: slas.approvals"]),
        (
            "slas:\n  approval:\n    deadline: PT4H\n",
            ["line 3: slas.approval.deadline", "Extra inputs"],
        ),
        (
            "slas:\n  approval:\n    ladder:\n      - {at: due, kind: action}\n",
            ["line 4: slas.approval.ladder[0]", "names its action"],
        ),
        ("calendar: [\n", ["line", "not valid YAML"]),
        # Working hours cannot be counted back from a deadline (which day's hours?): refused
        # here rather than by every order's planning, which would retry it forever.
        (
            "slas:\n  delivery:\n    duration: P5D\n    ladder:\n"
            "      - {at: due, kind: escalation, level: 1}\n"
            "      - {at: due-PT2H, kind: reminder}\n",
            ["line 6: slas.delivery.ladder[1].at", "whole working days"],
        ),
        (
            "slas:\n  production:\n    ladder:\n      - {at: due-P1DT4H, kind: reminder}\n",
            ["line 4: slas.production.ladder[0].at", "whole working days"],
        ),
        # The SLA's own ladder is fine on its calendar clock, not on a tier's working clock.
        (
            "slas:\n  delivery:\n    clock: calendar\n    ladder:\n"
            "      - {at: due-PT2H, kind: reminder}\n    tier:\n      vip: {clock: working}\n",
            ["line 5: slas.delivery.ladder[0].at", "comes from slas.delivery.tier.vip"],
        ),
        (
            "slas:\n  delivery:\n    priority:\n      rush:\n        ladder:\n"
            "          - {at: due-PT30M, kind: reminder}\n",
            ["line 6: slas.delivery.priority.rush.ladder[0].at", "whole working days"],
        ),
        (
            "slas:\n  dispatch:\n    ladder:\n      - {at: start-PT1H, kind: reminder}\n",
            ["line 4: slas.dispatch.ladder[0].at", "before the SLA's clock starts"],
        ),
        # Actions only where the workflow can take them.
        (
            "slas:\n  dispatch:\n    ladder:\n"
            "      - {at: due+P1D, kind: action, action: expire, level: 2}\n",
            ["line 4: slas.dispatch.ladder[0].action", "only to approval and prepaid_payment"],
        ),
        (
            "slas:\n  after_sales:\n    tier:\n      vip:\n        ladder:\n"
            "          - {at: due, kind: action, action: expire, level: 1}\n",
            ["line 6: slas.after_sales.tier.vip.ladder[0].action", "does not apply"],
        ),
        (
            "slas:\n  approval:\n    ladder:\n"
            "      - {at: due, kind: action, action: credit_hold, level: 1}\n",
            ["line 4: slas.approval.ladder[0].action", "only to invoice_payment"],
        ),
        # An SLA's own clock cannot be emptied (an override's can be left out).
        ("slas:\n  approval:\n    clock: null\n", ["line 3: slas.approval.clock"]),
        (
            "calendar:\n  holidays: [2026-12-31]\n  extra_workdays: [2026-12-31]\n",
            ["line 3: calendar.extra_workdays", "2026-12-31"],
        ),
    ],
)
def test_a_bad_file_names_the_line_and_the_field(text: str, expected: list[str]) -> None:
    with pytest.raises(PolicyError) as raised:
        parse_policy(text, source="my-policy.yaml")
    message = str(raised.value)
    assert message.startswith("my-policy.yaml: ")
    for part in expected:
        assert part in message, message


def test_every_problem_is_named_at_once() -> None:
    with pytest.raises(PolicyError) as raised:
        parse_policy(
            "slas:\n  dispatch:\n    ladder:\n      - {at: due-PT1H, kind: reminder}\n"
            "      - {at: due, kind: action, action: credit_hold, level: 1}\n",
            source="p.yaml",
        )
    assert str(raised.value).splitlines() == [
        "p.yaml: line 5: slas.dispatch.ladder[1].action: `credit_hold` does not apply to "
        "dispatch, only to invoice_payment",
        "p.yaml: line 4: slas.dispatch.ladder[0].at: `due-PT1H`: on the working clock only "
        "whole working days count back from the deadline (`due-P1D`); use a percentage such "
        "as `90%`, or the calendar clock",
    ]


@pytest.mark.parametrize("clock", list(Clock))
def test_the_hint_for_a_bad_step_suggests_only_steps_that_plan(clock: Clock) -> None:
    with pytest.raises(PolicyError) as raised:
        parse_policy("slas:\n  delivery:\n    ladder: [{at: soon, kind: reminder}]\n")
    suggested = re.findall(r"`([^`]+)`", str(raised.value))
    assert len(suggested) >= 4, raised.value
    calendar = CalendarPolicy().build([2026])
    start = datetime(2026, 11, 20, 9, tzinfo=UTC)
    due = calendar.add(start, Duration.parse("P2D"), clock)
    for at in suggested:
        policy = parse_policy(
            f"slas:\n  delivery:\n    clock: {clock}\n    duration: P2D\n"
            f"    ladder: [{{at: '{at}', kind: reminder}}]\n"
        )
        sla = policy.resolve(Sla.DELIVERY, tier=None, priority="normal")
        assert sla is not None
        sla.ladder[0].fire_at(start, due, calendar, sla.clock)  # plans without an error


def test_the_test_tiers_load(policy_file: Path) -> None:
    """The shipped policy with the fast tiers the stack tests use (tests/conftest.py)."""
    policy = parse_policy(policy_file.read_text(encoding="utf-8"), source=str(policy_file))
    for sla, tiers in TEST_TIERS.items():
        assert set(tiers) <= set(policy.slas[Sla(sla)].tier)


async def test_the_api_refuses_to_start_with_a_bad_policy(tmp_path: Path) -> None:
    bad = tmp_path / "policy.yaml"
    bad.write_text("slas:\n  dispatch:\n    duration: soon\n")
    app = create_app(
        Settings(orders_policy_file=bad, database_url=f"sqlite+aiosqlite:///{tmp_path}/x.db")
    )
    with pytest.raises(PolicyError, match=r"line 3: slas\.dispatch\.duration"):
        async with app.router.lifespan_context(app):
            pass
    missing = Settings(orders_policy_file=tmp_path / "nope.yaml")
    with pytest.raises(PolicyError, match="cannot be read"):
        missing.load_policy()
