"""The delivery promise (交期承诺): when an order's goods will ship and reach the customer.

Pure arithmetic in the company's working time (domain/calendar.py). A line ships from stock
at the dispatch SLA's end from confirmation; what stock does not cover waits for supply: goods
already coming (scheduled receipts: open production orders, by their due date) or, failing
that, a new production order due after the product's lead time in working days, then the
dispatch window. Delivery adds the customer's transit time (working days). The order's promise
follows its delivery policy: `complete` ships once, on the latest line's date; `partial` ships
each part on its own date. Every promise carries its basis in words a clerk can read.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime

from pydantic import BaseModel, Field

from domain.calendar import BusinessCalendar, Clock, Duration
from domain.statuses import DeliveryPolicy

FROM_STOCK = ("from stock", "现货")


class Receipt(BaseModel):
    """Goods expected in: an open production order's outstanding quantity by its due date."""

    due_date: date
    quantity: int
    source: str = Field(description="The production order's id.")
    late: bool = Field(
        default=False,
        description="Its production deadline passed: expected the working day after its due "
        "date (or after today, if later) at the earliest.",
    )


class StockPosition(BaseModel):
    """What a product has for others to promise from (available-to-promise's inputs)."""

    on_hand: int = 0
    reserved: int = 0
    safety_stock: int = 0
    receipts: list[Receipt] = Field(default_factory=list)


def available_to_promise(position: StockPosition, by: date) -> int:
    """On hand - reserved - safety stock + scheduled receipts due by `by` (never below 0)."""
    coming = sum(r.quantity for r in position.receipts if r.due_date <= by)
    return max(0, position.on_hand - position.reserved - position.safety_stock + coming)


def supply_date(quantity: int, position: StockPosition, today: date) -> tuple[date, str] | None:
    """The earliest date available-to-promise covers `quantity`, with the receipt that makes
    it (`""` when stock on hand does); None when neither stock nor receipts ever do."""
    if available_to_promise(position.model_copy(update={"receipts": []}), today) >= quantity:
        return today, ""
    for receipt in sorted(position.receipts, key=lambda r: (r.due_date, r.source)):
        if available_to_promise(position, receipt.due_date) >= quantity:
            return max(receipt.due_date, today), receipt.source
    return None


class LineSupply(BaseModel):
    """One order line as confirmation sees it."""

    line_no: int
    sku: str
    quantity: int
    from_stock: int = Field(description="Reserved for this line now.")
    position: StockPosition = Field(
        default_factory=StockPosition,
        description="Supply for what is not reserved: the line's own production orders as "
        "receipts, and what stock others may still promise.",
    )
    lead_time_days: int = 0
    production_order_id: str | None = Field(
        default=None, description="The production order a shortage gets (its id is known)."
    )


class PromisePart(BaseModel):
    """Part of a line that ships on one date."""

    quantity: int
    ship_date: date
    delivery_date: date
    basis: str
    basis_zh: str


class LinePromise(BaseModel):
    line_no: int
    sku: str
    quantity: int
    ship_date: date
    delivery_date: date
    basis: str
    basis_zh: str
    parts: list[PromisePart]


class ShipmentPromise(BaseModel):
    """A shipment the promise foresees: `complete` has one, `partial` one per date."""

    ship_date: date
    delivery_date: date
    lines: list[int]


class OrderPromise(BaseModel):
    delivery_policy: DeliveryPolicy
    promised_date: date = Field(description="When the last goods reach the customer.")
    ship_date: date
    first_delivery_date: date = Field(description="When the first goods arrive.")
    basis: str
    basis_zh: str
    lines: list[LinePromise]
    shipments: list[ShipmentPromise]


class PromiseTerms(BaseModel):
    """What the promise counts with: confirmation time, dispatch window, transit."""

    confirmed_at: datetime
    dispatch: str = Field(default="P3D", description="The dispatch SLA (working clock).")
    transit_days: int = Field(default=1, ge=0)


def promise_order(
    calendar: BusinessCalendar,
    lines: Sequence[LineSupply],
    terms: PromiseTerms,
    delivery_policy: DeliveryPolicy,
) -> OrderPromise:
    """Each line's promise, and the order's by its delivery policy."""
    promised = [promise_line(calendar, line, terms) for line in lines]
    if delivery_policy is DeliveryPolicy.COMPLETE:
        latest = max(promised, key=lambda p: (p.delivery_date, p.line_no))
        shipments = [
            ShipmentPromise(
                ship_date=max(p.ship_date for p in promised),
                delivery_date=latest.delivery_date,
                lines=[p.line_no for p in promised],
            )
        ]
    else:
        by_date: dict[tuple[date, date], list[int]] = {}
        for line in promised:
            for part in line.parts:
                by_date.setdefault((part.ship_date, part.delivery_date), []).append(line.line_no)
        shipments = [
            ShipmentPromise(ship_date=ship, delivery_date=delivery, lines=sorted(set(nos)))
            for (ship, delivery), nos in sorted(by_date.items())
        ]
        latest = max(promised, key=lambda p: (p.delivery_date, p.line_no))
    basis, basis_zh = _order_basis(promised, latest)
    return OrderPromise(
        delivery_policy=delivery_policy,
        promised_date=shipments[-1].delivery_date,
        ship_date=shipments[-1].ship_date,
        first_delivery_date=shipments[0].delivery_date,
        basis=basis,
        basis_zh=basis_zh,
        lines=promised,
        shipments=shipments,
    )


def promise_line(calendar: BusinessCalendar, line: LineSupply, terms: PromiseTerms) -> LinePromise:
    """From stock what is reserved; the rest after the supply that covers it."""
    dispatch = Duration.parse(terms.dispatch)
    today = calendar.local_date(terms.confirmed_at)
    parts: list[PromisePart] = []

    def part(quantity: int, ready: date | None, basis: tuple[str, str]) -> None:
        start = terms.confirmed_at if ready is None else calendar.close_of_business_on(ready)
        ship = calendar.local_date(calendar.add(start, dispatch, Clock.WORKING))
        delivery = calendar.working_days_after(ship, terms.transit_days)
        parts.append(
            PromisePart(
                quantity=quantity,
                ship_date=ship,
                delivery_date=delivery,
                basis=basis[0],
                basis_zh=basis[1],
            )
        )

    stock = min(line.from_stock, line.quantity)
    if stock > 0:
        part(stock, None, FROM_STOCK)
    short = line.quantity - stock
    if short > 0:
        receipts = [
            r.model_copy(
                update={"due_date": calendar.working_days_after(max(r.due_date, today), 1)}
            )
            if r.late
            else r
            for r in line.position.receipts
        ]
        late = {r.source for r in receipts if r.late}
        position = line.position.model_copy(update={"receipts": receipts})
        found = supply_date(short, position, today)
        if found is not None and not found[1]:
            part(short, None, FROM_STOCK)
        elif found is not None:
            day, source = found
            part(short, day, _after(source, day, late=source in late))
        else:
            due = calendar.local_date(
                calendar.add(terms.confirmed_at, Duration(days=line.lead_time_days))
            )
            if line.production_order_id:
                part(short, due, _after(line.production_order_id, due))
            else:
                part(
                    short,
                    due,
                    (
                        f"after production ({line.lead_time_days} working days) due {due}",
                        f"生产完成后 ({line.lead_time_days}个工作日) {due}到期",
                    ),
                )
    last = max(parts, key=lambda p: p.delivery_date)
    return LinePromise(
        line_no=line.line_no,
        sku=line.sku,
        quantity=line.quantity,
        ship_date=max(p.ship_date for p in parts),
        delivery_date=last.delivery_date,
        basis=last.basis,
        basis_zh=last.basis_zh,
        parts=parts,
    )


def requested_too_soon(requested: date | None, promise: OrderPromise) -> date | None:
    """The earliest possible date when the customer asked for an earlier one, else None."""
    if requested is None:
        return None
    return promise.promised_date if requested < promise.promised_date else None


def _after(source: str, due: date, *, late: bool = False) -> tuple[str, str]:
    if late:
        return (
            f"after production order {source} (late) expected {due}",
            f"待生产单 {source} 完成 (已延误, 预计{due})",
        )
    return f"after production order {source} due {due}", f"待生产单 {source} 完成 ({due}到期)"


def _order_basis(lines: list[LinePromise], latest: LinePromise) -> tuple[str, str]:
    if all(part.basis == FROM_STOCK[0] for line in lines for part in line.parts):
        return FROM_STOCK
    return f"line {latest.line_no} {latest.basis}", f"第{latest.line_no}行{latest.basis_zh}"


class PromiseChange(BaseModel):
    """The promised date moved: from what, to what, why."""

    at: datetime
    old: date
    new: date
    reason: str


class PromiseView(BaseModel):
    """The order's promise: the first (what on-time delivery is measured against, never
    changed) and the current one, with every move and its reason."""

    confirmed_at: datetime
    revision: int = Field(default=1, description="The order's revision it was made for.")
    first_promised_date: date
    promised_date: date
    ship_date: date
    first_delivery_date: date
    basis: str
    basis_zh: str
    delivery_policy: DeliveryPolicy
    lines: list[LinePromise] = Field(default_factory=list)
    shipments: list[ShipmentPromise] = Field(default_factory=list)
    history: list[PromiseChange] = Field(default_factory=list)
    earliest_possible_date: date | None = Field(
        default=None,
        description="Set when the requested delivery date is earlier than the promise.",
    )
    warning: str | None = None


def keep_promise(
    current: PromiseView | None,
    promise: OrderPromise,
    *,
    at: datetime,
    reason: str,
    requested: date | None,
    revision: int = 1,
) -> tuple[PromiseView, PromiseChange | None]:
    """The order's promise after this one was computed: the first stays; a move is recorded."""
    change = None
    if current is not None and current.promised_date != promise.promised_date:
        change = PromiseChange(
            at=at, old=current.promised_date, new=promise.promised_date, reason=reason
        )
    view = PromiseView(
        confirmed_at=current.confirmed_at if current else at,
        revision=revision,
        first_promised_date=current.first_promised_date if current else promise.promised_date,
        history=[*(current.history if current else []), *([change] if change else [])],
        **promise.model_dump(
            include={
                "promised_date",
                "ship_date",
                "first_delivery_date",
                "basis",
                "basis_zh",
                "delivery_policy",
                "lines",
                "shipments",
            }
        ),
    )
    return against_requested(view, requested), change


def against_requested(view: PromiseView, requested: date | None) -> PromiseView:
    """The promise with its warning for this requested delivery date (none if it can be met)."""
    earliest = (
        view.promised_date if requested is not None and requested < view.promised_date else None
    )
    warning = (
        f"requested delivery date {requested} is earlier than possible: the earliest is {earliest}"
        if earliest
        else None
    )
    return view.model_copy(update={"earliest_possible_date": earliest, "warning": warning})
