"""The promise arithmetic (domain/promise.py): pure, in the company calendar of 2026."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from domain.calendar import BusinessCalendar
from domain.orders import DeliveryPolicy
from domain.policy import CalendarPolicy
from domain.promise import (
    LineSupply,
    PromiseTerms,
    Receipt,
    StockPosition,
    available_to_promise,
    promise_order,
    requested_too_soon,
    supply_date,
)

SHANGHAI = ZoneInfo("Asia/Shanghai")


@pytest.fixture(scope="module")
def calendar() -> BusinessCalendar:
    return CalendarPolicy().build([2026, 2027])


def at(day: date, hour: int = 10) -> datetime:
    return datetime(day.year, day.month, day.day, hour, tzinfo=SHANGHAI).astimezone(UTC)


def terms(day: date, transit: int = 1, dispatch: str = "P3D") -> PromiseTerms:
    return PromiseTerms(confirmed_at=at(day), dispatch=dispatch, transit_days=transit)


def test_from_stock_ships_at_the_dispatch_slas_end_and_arrives_after_transit(
    calendar: BusinessCalendar,
) -> None:
    line = LineSupply(line_no=1, sku="A", quantity=5, from_stock=5)
    # Monday 7 Dec 2026, 10:00: three working days to Thursday, one day's transit to Friday.
    promise = promise_order(calendar, [line], terms(date(2026, 12, 7)), DeliveryPolicy.COMPLETE)
    assert promise.ship_date == date(2026, 12, 10)
    assert promise.promised_date == date(2026, 12, 11)
    assert promise.basis == "from stock" and promise.basis_zh == "现货"
    # Over a weekend: Thursday 10 Dec → Tuesday 15 Dec; three days' transit → Friday 18 Dec.
    later = promise_order(calendar, [line], terms(date(2026, 12, 10), 3), DeliveryPolicy.COMPLETE)
    assert (later.ship_date, later.promised_date) == (date(2026, 12, 15), date(2026, 12, 18))


def test_short_across_spring_festival_2026(calendar: BusinessCalendar) -> None:
    """Friday 13 Feb 2026, five working days' lead time: Saturday 14 Feb is a make-up working
    day, 15-23 Feb are off, so production is due Friday 27 Feb; dispatch counts Saturday 28 Feb
    (make-up), 2 and 3 March; transit one day: 4 March."""
    line = LineSupply(
        line_no=1,
        sku="A",
        quantity=10,
        from_stock=0,
        lead_time_days=5,
        production_order_id="PO-X-1",
    )
    promise = promise_order(calendar, [line], terms(date(2026, 2, 13)), DeliveryPolicy.COMPLETE)
    assert promise.lines[0].parts[0].basis == "after production order PO-X-1 due 2026-02-27"
    assert promise.ship_date == date(2026, 3, 3)
    assert promise.promised_date == date(2026, 3, 4)
    assert promise.basis == "line 1 after production order PO-X-1 due 2026-02-27"


def test_short_across_national_day_2026(calendar: BusinessCalendar) -> None:
    """Wednesday 30 Sep 2026, two working days: 1-7 Oct are off, so due Friday 9 Oct;
    dispatch counts Saturday 10 Oct (make-up), 12 and 13 Oct; two days' transit: 15 Oct."""
    line = LineSupply(line_no=1, sku="A", quantity=4, from_stock=0, lead_time_days=2)
    promise = promise_order(calendar, [line], terms(date(2026, 9, 30), 2), DeliveryPolicy.COMPLETE)
    assert promise.lines[0].basis == "after production (2 working days) due 2026-10-09"
    assert (promise.ship_date, promise.promised_date) == (date(2026, 10, 13), date(2026, 10, 15))


def test_complete_is_the_latest_line_partial_each_its_own(calendar: BusinessCalendar) -> None:
    lines = [
        LineSupply(line_no=1, sku="A", quantity=5, from_stock=5),
        LineSupply(
            line_no=2,
            sku="B",
            quantity=6,
            from_stock=2,
            lead_time_days=5,
            production_order_id="PO-Y-2",
        ),
    ]
    day = date(2026, 12, 7)  # Monday; production due Monday 14 Dec, ship Thursday 17 Dec
    complete = promise_order(calendar, lines, terms(day), DeliveryPolicy.COMPLETE)
    assert [(s.ship_date, s.lines) for s in complete.shipments] == [(date(2026, 12, 17), [1, 2])]
    assert complete.promised_date == complete.first_delivery_date == date(2026, 12, 18)
    partial = promise_order(calendar, lines, terms(day), DeliveryPolicy.PARTIAL)
    assert [(s.ship_date, s.delivery_date, s.lines) for s in partial.shipments] == [
        (date(2026, 12, 10), date(2026, 12, 11), [1, 2]),
        (date(2026, 12, 17), date(2026, 12, 18), [2]),
    ]
    assert partial.first_delivery_date == date(2026, 12, 11)
    assert partial.promised_date == date(2026, 12, 18)
    assert [p.quantity for p in partial.lines[1].parts] == [2, 4]


def test_available_to_promise_counts_safety_stock_and_receipts_by_date() -> None:
    position = StockPosition(
        on_hand=20,
        reserved=8,
        safety_stock=5,
        receipts=[
            Receipt(due_date=date(2026, 12, 18), quantity=10, source="PO-1"),
            Receipt(due_date=date(2026, 12, 11), quantity=3, source="PO-2"),
        ],
    )
    assert available_to_promise(position, date(2026, 12, 7)) == 7
    assert available_to_promise(position, date(2026, 12, 11)) == 10
    assert available_to_promise(position, date(2026, 12, 18)) == 20
    today = date(2026, 12, 7)
    assert supply_date(7, position, today) == (today, "")
    assert supply_date(8, position, today) == (date(2026, 12, 11), "PO-2")
    assert supply_date(11, position, today) == (date(2026, 12, 18), "PO-1")
    assert supply_date(21, position, today) is None
    # Safety stock is not promised: without it 12 would be on hand now.
    assert supply_date(12, position.model_copy(update={"safety_stock": 0}), today) == (today, "")


def test_a_scheduled_receipt_carries_the_short_line(calendar: BusinessCalendar) -> None:
    position = StockPosition(
        receipts=[Receipt(due_date=date(2026, 12, 18), quantity=10, source="PO-Z-1")]
    )
    line = LineSupply(line_no=1, sku="A", quantity=4, from_stock=0, position=position)
    promise = promise_order(calendar, [line], terms(date(2026, 12, 7)), DeliveryPolicy.COMPLETE)
    assert promise.lines[0].basis == "after production order PO-Z-1 due 2026-12-18"
    # Due Friday 18 Dec: ship Wednesday 23 Dec, arrive Thursday 24 Dec.
    assert promise.promised_date == date(2026, 12, 24)
    # Stock others may promise (not needed for safety) ships at once.
    free = StockPosition(on_hand=10, reserved=2, safety_stock=4)
    line = LineSupply(line_no=1, sku="A", quantity=4, from_stock=0, position=free)
    promise = promise_order(calendar, [line], terms(date(2026, 12, 7)), DeliveryPolicy.COMPLETE)
    assert promise.basis == "from stock"


def test_requested_date_too_soon_names_the_earliest_possible_date(
    calendar: BusinessCalendar,
) -> None:
    line = LineSupply(line_no=1, sku="A", quantity=5, from_stock=5)
    promise = promise_order(calendar, [line], terms(date(2026, 12, 7)), DeliveryPolicy.COMPLETE)
    assert requested_too_soon(date(2026, 12, 9), promise) == date(2026, 12, 11)
    assert requested_too_soon(date(2026, 12, 11), promise) is None
    assert requested_too_soon(None, promise) is None


def test_a_late_production_order_is_expected_the_working_day_after(
    calendar: BusinessCalendar,
) -> None:
    """Due Friday 18 Dec 2026 and late: expected Monday 21 Dec at the earliest; ship Thursday
    24 Dec, arrive Friday 25 Dec. Already late on Tuesday 22 Dec: expected Wednesday 23 Dec."""
    receipt = Receipt(due_date=date(2026, 12, 18), quantity=4, source="PO-L-1", late=True)
    line = LineSupply(
        line_no=1, sku="A", quantity=4, from_stock=0, position=StockPosition(receipts=[receipt])
    )
    promise = promise_order(calendar, [line], terms(date(2026, 12, 18)), DeliveryPolicy.COMPLETE)
    assert promise.lines[0].basis == "after production order PO-L-1 (late) expected 2026-12-21"
    assert (promise.ship_date, promise.promised_date) == (date(2026, 12, 24), date(2026, 12, 25))
    later = promise_order(calendar, [line], terms(date(2026, 12, 22)), DeliveryPolicy.COMPLETE)
    assert later.lines[0].basis == "after production order PO-L-1 (late) expected 2026-12-23"
    # A receipt due today that is not late is not stock on hand.
    on_time = receipt.model_copy(update={"late": False})
    assert supply_date(4, StockPosition(receipts=[on_time]), date(2026, 12, 18)) == (
        date(2026, 12, 18),
        "PO-L-1",
    )
