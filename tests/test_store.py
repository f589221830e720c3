"""The store's guarantees on both databases: SQLite (default) and PostgreSQL (production).

PostgreSQL is the one at TEST_DATABASE_URL (default 127.0.0.1:5432, database `test`); each run
works in a schema of its own and drops it. Where it is not reachable the PostgreSQL cases skip
and say so, unless REQUIRE_POSTGRES=1 (CI), where they fail.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from sqlalchemy import Connection, inspect, text
from sqlmodel import col, func, select

from activities.billing import BillingActivities
from activities.entry import EntryActivities
from activities.inventory import InventoryActivities
from activities.read_model import ReadModelActivities
from activities.shipping import ShippingActivities
from domain.approval import ApprovalPolicy
from domain.calendar import BusinessCalendar
from domain.messages import (
    AuditRecord,
    CheckCreditInput,
    CompensateInput,
    CreateShipmentInput,
    IssueInvoiceInput,
    RecordPaymentInput,
    ReserveStockInput,
    SaveOrderViewInput,
    StockLine,
    ValidateOrderInput,
    ValidateOrderResult,
)
from domain.orders import (
    OrderLineRequest,
    OrderRequest,
    OrderView,
    Priority,
    ShipmentLineView,
    status_label,
)
from domain.statuses import OrderStatus, ProductionOrderStatus
from store import queries
from store.db import Database
from store.tables import (
    AuditEntry,
    CreditHold,
    CustomerCreate,
    OrderRecord,
    Product,
    ProductCreate,
    ProductionOrder,
    Reservation,
)
from tests.conftest import unique

NOW = datetime(2026, 11, 23, 9, 30, tzinfo=UTC)


class Acts:
    """The order's activities of each business area, as the worker composes them."""

    def __init__(self, db: Database) -> None:
        calendar = BusinessCalendar()
        self.entry = EntryActivities(db, ApprovalPolicy(), calendar)
        self.inventory = InventoryActivities(db)
        self.shipping = ShippingActivities(db)
        self.billing = BillingActivities(db, calendar)
        self.read_model = ReadModelActivities(db)


@pytest.fixture
def acts(store: Database) -> Acts:
    return Acts(store)


async def new_sku(db: Database, stock: int) -> str:
    sku = unique("SKU")
    await queries.create_product(
        db, ProductCreate(sku=sku, name="p", unit_price=Decimal(10), stock_on_hand=stock)
    )
    return sku


async def reserve(acts: Acts, order_no: str, sku: str, quantity: int) -> int:
    result = await acts.inventory.reserve_stock(
        ReserveStockInput(
            order_no=order_no, lines=[StockLine(line_no=1, sku=sku, quantity=quantity)], at=NOW
        )
    )
    return result.lines[0].reserved_quantity


async def test_concurrent_reservations_never_oversell(store: Database, acts: Acts) -> None:
    sku = await new_sku(store, stock=25)
    demands = [3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5, 8]  # 52 wanted, 25 on hand
    got = await asyncio.gather(*(reserve(acts, unique("SO"), sku, q) for q in demands))
    assert sum(got) == 25
    assert all(0 <= g <= q for g, q in zip(got, demands, strict=True))
    async with store.reader() as session:
        product = await session.get(Product, sku)
        rows = (
            await session.exec(
                select(func.sum(Reservation.quantity)).where(col(Reservation.sku) == sku)
            )
        ).one()
    assert product is not None and product.reserved == 25 == rows


async def test_reservation_is_idempotent_per_order_and_line(store: Database, acts: Acts) -> None:
    sku = await new_sku(store, stock=10)
    order_no = unique("SO")
    assert await reserve(acts, order_no, sku, 4) == 4
    assert await reserve(acts, order_no, sku, 4) == 4
    both = await asyncio.gather(reserve(acts, order_no, sku, 4), reserve(acts, order_no, sku, 4))
    assert list(both) == [4, 4]
    product = await queries.get_product(store, sku)
    assert product is not None and product.reserved == 4


async def test_stock_adjustment_never_goes_below_reserved(store: Database, acts: Acts) -> None:
    sku = await new_sku(store, stock=10)
    await reserve(acts, unique("SO"), sku, 7)
    with pytest.raises(queries.StockTooLow):
        await queries.adjust_stock(store, sku, -4, "write-off")
    product = await queries.adjust_stock(store, sku, -3, "write-off")
    assert product is not None and (product.stock_on_hand, product.reserved) == (7, 7)
    assert await queries.adjust_stock(store, "NOPE", 1, "x") is None


async def test_payments_count_once_and_money_stays_exact(store: Database, acts: Acts) -> None:
    order_no = unique("SO")
    invoice = await acts.billing.issue_invoice(
        IssueInvoiceInput(
            order_no=order_no,
            customer_id="C",
            amount=Decimal("100.10"),
            payment_terms="net_30",
            at=NOW,
        )
    )
    assert invoice == await acts.billing.issue_invoice(
        IssueInvoiceInput(
            order_no=order_no,
            customer_id="C",
            amount=Decimal("100.10"),
            payment_terms="net_30",
            at=NOW,
        )
    )
    assert str(invoice.due_date) == "2026-12-23"

    def pay(payment_id: str, amount: str, reference: str) -> RecordPaymentInput:
        return RecordPaymentInput(
            order_no=order_no,
            invoice_id=invoice.id,
            payment_id=payment_id,
            amount=Decimal(amount),
            method="bank",
            reference=reference,
            at=NOW,
        )

    await acts.billing.record_payment(pay("P1", "0.10", "R1"))
    await acts.billing.record_payment(pay("P1", "0.10", "R1"))  # a retried activity
    await acts.billing.record_payment(pay("P2", "0.10", "R1"))  # the same bank reference again
    result = await acts.billing.record_payment(pay("P3", "100.00", "R2"))
    assert result.invoice.paid_amount == Decimal("100.10")
    assert result.invoice.status == "paid"


async def test_entry_sees_the_customers_open_invoices_and_holds(
    store: Database, acts: Acts
) -> None:
    customer_id, sku = unique("C"), await new_sku(store, stock=5)
    await queries.create_customer(
        store,
        CustomerCreate(customer_id=customer_id, name="c", region="r", credit_limit=Decimal(500)),
    )

    async def enter() -> ValidateOrderResult:
        request = OrderRequest(
            customer_id=customer_id,
            lines=[
                OrderLineRequest(sku=sku, quantity=2, unit_price=Decimal("9.50")),
                OrderLineRequest(sku="NOPE", quantity=1),
            ],
            entered_by="s",
        )
        return await acts.entry.validate_order(
            ValidateOrderInput(order_no=unique("SO"), request=request, audit_id=unique("A"), at=NOW)
        )

    first = await enter()
    assert [p.field for p in first.problems] == ["lines[1].sku"]
    assert first.credit is not None and first.credit.open_receivables == 0
    assert (first.total, first.credit_hold) == (Decimal("19.00"), False)
    for n, (amount, status) in enumerate([("100.25", "issued"), ("40", "issued"), ("7", "void")]):
        await acts.billing.issue_invoice(
            IssueInvoiceInput(
                order_no=f"{customer_id}-{n}",
                customer_id=customer_id,
                amount=Decimal(amount),
                payment_terms="net_30",
                at=NOW,
            )
        )
        if status == "void":
            await acts.billing.cancel_invoices(
                CompensateInput(order_no=f"{customer_id}-{n}", reason="x", at=NOW)
            )
    await acts.billing.record_payment(
        RecordPaymentInput(
            order_no=f"{customer_id}-1",
            invoice_id=f"INV-{customer_id}-1-1",
            payment_id=unique("P"),
            amount=Decimal("15"),
            method="bank",
            reference="R",
            at=NOW,
        )
    )
    async with store.writer() as session:
        session.add(CreditHold(customer_id=customer_id, order_no="SO-x", placed_at=NOW))
    second = await enter()
    assert second.credit is not None and second.credit.open_receivables == Decimal("125.25")
    assert second.credit.exposure == Decimal("144.25") and second.credit_hold
    check = await acts.billing.check_credit(
        CheckCreditInput(customer_id=customer_id, order_no="SO-x", uninvoiced_amount=Decimal(1))
    )
    assert (check.credit.exposure, check.on_credit_hold) == (Decimal("126.25"), True)


async def test_shipment_is_created_once_and_amended_lines_move_the_reservation(
    store: Database, acts: Acts
) -> None:
    order_no, old_sku, new_sku_ = unique("SO"), await new_sku(store, 10), await new_sku(store, 10)
    lines = [
        StockLine(line_no=1, sku=old_sku, quantity=4),
        StockLine(line_no=2, sku=old_sku, quantity=3),
    ]
    await acts.inventory.reserve_stock(ReserveStockInput(order_no=order_no, lines=lines, at=NOW))
    amended = [
        StockLine(line_no=1, sku=new_sku_, quantity=12),
        StockLine(line_no=2, sku=old_sku, quantity=1),
    ]
    result = await acts.inventory.reserve_stock(
        ReserveStockInput(order_no=order_no, lines=amended, at=NOW)
    )
    assert [(r.reserved_quantity, r.short_quantity) for r in result.lines] == [(10, 2), (1, 0)]
    old, new = await queries.get_product(store, old_sku), await queries.get_product(store, new_sku_)
    assert old is not None and new is not None and (old.reserved, new.reserved) == (1, 10)

    shipment = CreateShipmentInput(
        order_no=order_no, lines=[ShipmentLineView(line_no=2, sku=old_sku, quantity=1)], at=NOW
    )
    created = await acts.shipping.create_shipment(shipment)
    assert (created.id, created.status) == (f"SH-{order_no}-1", "ready")
    assert await acts.shipping.create_shipment(shipment) == created  # a retried activity


def order_view(order_no: str, status: OrderStatus, customer_id: str = "C") -> OrderView:
    return OrderView(
        order_no=order_no,
        workflow_id=f"order-{order_no}",
        status=status,
        status_label=status_label(status),
        customer_id=customer_id,
        entered_by="s",
        priority=Priority.NORMAL,
        received_at=NOW,
        updated_at=NOW,
    )


async def test_read_model_only_moves_forward(store: Database, acts: Acts) -> None:
    order_no = unique("SO")
    await acts.read_model.save_order_view(
        SaveOrderViewInput(view=order_view(order_no, OrderStatus.SHIPPED), seq=5, fingerprint="f")
    )
    await acts.read_model.save_order_view(
        SaveOrderViewInput(
            view=order_view(order_no, OrderStatus.READY_TO_SHIP), seq=3, fingerprint="f"
        )
    )
    async with store.reader() as session:
        record = await session.get(OrderRecord, order_no)
    assert record is not None and record.status == "SHIPPED" and record.seq == 5


async def test_one_orders_saves_at_the_same_time_keep_the_newest_and_log_once(
    store: Database, acts: Acts
) -> None:
    order_no = unique("SO")
    entry = AuditRecord(
        id=uuid.uuid4().hex, at=NOW, order_no=order_no, action="shipped", actor="w", outcome="ok"
    )
    await asyncio.gather(
        acts.read_model.save_order_view(
            SaveOrderViewInput(
                view=order_view(order_no, OrderStatus.SHIPPED),
                seq=5,
                fingerprint="f",
                audit=[entry],
            )
        ),
        acts.read_model.save_order_view(  # a retry of an older save, arriving at the same time
            SaveOrderViewInput(
                view=order_view(order_no, OrderStatus.READY_TO_SHIP),
                seq=3,
                fingerprint="f",
                audit=[entry],
            )
        ),
    )
    async with store.reader() as session:
        record = await session.get(OrderRecord, order_no)
        logged = (
            await session.exec(select(AuditEntry).where(col(AuditEntry.order_no) == order_no))
        ).all()
    assert record is not None and record.status == "SHIPPED" and record.seq == 5
    assert [e.id for e in logged] == [entry.id]


async def test_the_migrated_schema_lists_orders_from_its_index(store: Database) -> None:
    index = "ix_orderrecord_status_received"

    async with store.read_engine.connect() as conn:
        names = await conn.run_sync(
            lambda sync: {i["name"] for i in inspect(sync).get_indexes("orderrecord")}
        )
        assert index in names
        if store.read_engine.dialect.name == "sqlite":
            plan = await conn.execute(
                text(
                    "EXPLAIN QUERY PLAN SELECT order_no FROM orderrecord WHERE status = :s"
                    " ORDER BY received_at DESC, order_no DESC LIMIT 50"
                ),
                {"s": "PENDING_APPROVAL"},
            )
            steps = " ".join(str(row[-1]) for row in plan)
            assert index in steps and "TEMP B-TREE" not in steps  # no sort of all pending


async def test_the_schema_takes_the_longer_production_order_status(store: Database) -> None:
    """`partially_completed` is longer than the 16 characters the column had before migration
    0002 (PostgreSQL enforces the length; SQLite checks none)."""
    po_id = unique("PO")
    async with store.writer() as session:
        session.add(
            ProductionOrder(
                id=po_id,
                order_no=unique("SO"),
                line_no=1,
                sku="S",
                quantity=5,
                produced_quantity=2,
                due_date=datetime.now(UTC).date(),
                status=ProductionOrderStatus.PARTIALLY_COMPLETED,
                created_at=datetime.now(UTC),
            )
        )
    row = await queries.get_production_order(store, po_id)
    assert row is not None and row.status == "partially_completed"
    listed = await queries.list_production_orders(store, status="open", limit=1000, offset=0)
    assert po_id in {po.id for po in listed}


async def test_postgresql_reads_hold_no_transaction_and_writes_hold_one(store: Database) -> None:
    """On PostgreSQL a read connection runs each statement in its own transaction (no
    BEGIN/ROLLBACK round trips, no snapshot held between statements); a write connection is
    one transaction from its first statement to its commit."""
    if store.is_sqlite:
        pytest.skip("PostgreSQL's read connections")
    own_transaction = text("SELECT now() = statement_timestamp()")
    async with store.reading() as conn:
        await conn.execute(text("SELECT 1"))
        await asyncio.sleep(0.01)
        assert (await conn.execute(own_transaction)).scalar() is True
    async with store.writer() as session:
        conn = await session.connection()
        await conn.execute(text("SELECT 1"))
        await asyncio.sleep(0.01)
        assert (await conn.execute(own_transaction)).scalar() is False
    async with store.reader() as session:  # the ORM's reads too
        await session.exec(select(func.count()).select_from(OrderRecord))
        await asyncio.sleep(0.01)
        conn = await session.connection()
        assert (await conn.execute(own_transaction)).scalar() is True

    def two_statements(conn: Connection) -> bool:
        conn.execute(text("SELECT 1"))
        time.sleep(0.01)
        return bool(conn.execute(own_transaction).scalar())

    # The same for the steps that run in a thread.
    assert await store.read(two_statements) is True
    assert await store.write(two_statements) is False
