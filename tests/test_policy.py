"""The policy file: the shipped one is valid, and a wrong one is refused with line and field."""

from __future__ import annotations

from pathlib import Path

import pytest

from api.main import create_app
from domain.calendar import Clock
from domain.policy import PolicyError, Sla, parse_policy
from settings import Settings


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
    ],
)
def test_a_bad_file_names_the_line_and_the_field(text: str, expected: list[str]) -> None:
    with pytest.raises(PolicyError) as raised:
        parse_policy(text, source="my-policy.yaml")
    message = str(raised.value)
    assert message.startswith("my-policy.yaml: ")
    for part in expected:
        assert part in message, message


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
