"""Prepared statements on SQLite give what SQLAlchemy gives, statement by statement.

Every prepared statement the hot path runs is also run by SQLAlchemy first, inside a savepoint
that is then rolled back: the rows (values, keys), the row count and, for a write, every table's
contents afterwards must be the same both ways. The scenario walks an order's whole life
through the real activities and queries, and must run each prepared statement as a plan.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import Connection, Executable, text
from sqlalchemy.dialects.postgresql import Insert as PostgresInsert
from sqlalchemy.dialects.sqlite import Insert as SQLiteInsert
from sqlalchemy.exc import IntegrityError, StatementError
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlmodel import SQLModel

from activities.orders import OrderActivities
from domain.approval import ApprovalPolicy
from domain.calendar import BusinessCalendar
from domain.messages import (
    AuditRecord,
    CreateShipmentInput,
    DeliverShipmentInput,
    DispatchShipmentInput,
    EscalationRecord,
    IssueInvoiceInput,
    RecordPaymentInput,
    ReserveStockInput,
    SaveOrderViewInput,
    StockLine,
    ValidateOrderInput,
)
from domain.orders import OrderLineRequest, OrderRequest, ShipmentLineView
from domain.statuses import OrderStatus
from store import audit as audit_chain
from store import prepared, queries
from store.db import Database, PostgresConnection
from store.sqlite_inline import DirectConnection
from store.tables import CustomerCreate
from tests.conftest import unique
from tests.test_store import NOW, new_sku, order_view


def _outcome(result: Any) -> tuple[list[tuple[Any, ...]], list[dict[str, Any]], int]:
    rows = list(result) if getattr(result, "returns_rows", True) else []
    return [tuple(r) for r in rows], [dict(r._mapping) for r in rows], result.rowcount


# Each table's columns but a serial key, which PostgreSQL's sequences move on past a rollback.
_TABLES = {
    table.name: ", ".join(
        f'"{c.name}"' for c in table.columns if c is not table.autoincrement_column
    )
    for table in SQLModel.metadata.sorted_tables
}


def _sorted(rows: Any) -> list[tuple[Any, ...]]:
    return sorted((tuple(row) for row in rows), key=repr)


class Shadow:
    """Runs each prepared statement through SQLAlchemy first (a write inside a savepoint,
    rolled back, with every table's contents taken), then as a plan, and compares."""

    def __init__(self) -> None:
        self.planned: set[int] = set()
        self.compared = 0

    def check(self, statement: Executable, parameters: Any, result: Any, expected: Any) -> None:
        if isinstance(result, prepared.Rows):
            self.planned.add(id(statement))
        rows, mappings, count = _outcome(result)
        assert (rows, mappings) == expected[:2], statement
        if expected[2] != -1 and not (isinstance(parameters, list) and len(parameters) > 1):
            # Unless SQLAlchemy does not know the count (psycopg with its implicit RETURNING) or
            # it is an executemany's, which is the driver's: then the plan's is psycopg's own.
            assert count == expected[2], statement
        self.compared += 1

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        sqlite_execute = DirectConnection.execute
        postgres_execute = PostgresConnection.execute

        def sqlite_contents(sync: Connection) -> list[list[tuple[Any, ...]]]:
            return [
                _sorted(sync.exec_driver_sql(f'SELECT {c} FROM "{t}"')) for t, c in _TABLES.items()
            ]

        async def on_sqlite(
            conn: DirectConnection, statement: Executable, parameters: Any = None
        ) -> Any:
            if not prepared.is_prepared(statement):
                return await sqlite_execute(conn, statement, parameters)
            sync = conn.sync_connection
            if not sync.in_transaction():
                sync.begin()
            savepoint = sync.begin_nested()
            try:
                expected = _outcome(sync.execute(statement, parameters))
                contents = sqlite_contents(sync)
            finally:
                savepoint.rollback()
            result = await sqlite_execute(conn, statement, parameters)
            self.check(statement, parameters, result, expected)
            assert sqlite_contents(sync) == contents, statement
            return result

        async def postgres_contents(conn: AsyncConnection) -> list[list[tuple[Any, ...]]]:
            return [
                _sorted(await conn.execute(text(f'SELECT {c} FROM "{t}"')))
                for t, c in _TABLES.items()
            ]

        async def on_postgres(
            conn: PostgresConnection, statement: Executable, parameters: Any = None
        ) -> Any:
            if not prepared.is_prepared(statement):
                return await postgres_execute(conn, statement, parameters)
            sa = conn.connection
            driver = (await sa.get_raw_connection()).driver_connection
            assert driver is not None
            if driver.autocommit:  # a read
                expected = _outcome(await sa.execute(statement, parameters))
                contents = None
            else:
                savepoint = await sa.begin_nested()
                try:
                    expected = _outcome(await sa.execute(statement, parameters))
                    contents = await postgres_contents(sa)
                finally:
                    await savepoint.rollback()
            result = await postgres_execute(conn, statement, parameters)
            self.check(statement, parameters, result, expected)
            if contents is not None:
                assert await postgres_contents(sa) == contents, statement
            return result

        monkeypatch.setattr(DirectConnection, "execute", on_sqlite)
        monkeypatch.setattr(PostgresConnection, "execute", on_postgres)


async def test_prepared_statements_match_sqlalchemy_over_an_orders_life(
    store: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    shadow = Shadow()
    shadow.install(monkeypatch)
    acts = OrderActivities(store, ApprovalPolicy(), BusinessCalendar())
    customer_id, order_no = unique("C"), unique("SO")
    sku, other = await new_sku(store, stock=10), await new_sku(store, stock=3)
    await queries.create_customer(
        store,
        CustomerCreate(customer_id=customer_id, name="c", region="r", credit_limit=Decimal(900)),
    )
    request = OrderRequest(
        customer_id=customer_id,
        lines=[
            OrderLineRequest(sku=sku, quantity=4, unit_price=Decimal("9.50")),
            OrderLineRequest(sku=other, quantity=5),
        ],
        entered_by="s",
    )
    entry = ValidateOrderInput(order_no=order_no, request=request, audit_id=unique("A"), at=NOW)
    assert (await acts.validate_order(entry)).valid

    lines = [StockLine(line_no=1, sku=sku, quantity=4), StockLine(line_no=2, sku=other, quantity=5)]
    reserved = await acts.reserve_stock(ReserveStockInput(order_no=order_no, lines=lines, at=NOW))
    assert [r.short_quantity for r in reserved.lines] == [0, 2]
    amended = [
        StockLine(line_no=1, sku=sku, quantity=2),
        StockLine(line_no=2, sku=other, quantity=3),
    ]
    await acts.reserve_stock(ReserveStockInput(order_no=order_no, lines=amended, at=NOW))

    shipment = await acts.create_shipment(
        CreateShipmentInput(
            order_no=order_no,
            lines=[
                ShipmentLineView(line_no=1, sku=sku, quantity=2),
                ShipmentLineView(line_no=2, sku=other, quantity=3),
            ],
            at=NOW,
        )
    )
    dispatch = DispatchShipmentInput(
        order_no=order_no, shipment_id=shipment.id, carrier="SF", tracking_no="T1", at=NOW
    )
    assert (await acts.dispatch_shipment(dispatch)).status == "dispatched"
    assert (await acts.dispatch_shipment(dispatch)).status == "dispatched"  # a retry
    deliver = DeliverShipmentInput(
        order_no=order_no, shipment_id=shipment.id, signed_by="x", at=NOW
    )
    assert (await acts.deliver_shipment(deliver)).status == "delivered"

    invoice = await acts.issue_invoice(
        IssueInvoiceInput(
            order_no=order_no,
            customer_id=customer_id,
            amount=Decimal("47.00"),
            payment_terms="net_30",
            at=NOW,
        )
    )
    for payment_id, amount in (("P1", "7"), ("P1", "7"), ("P2", "40")):
        paid = await acts.record_payment(
            RecordPaymentInput(
                order_no=order_no,
                invoice_id=invoice.id,
                payment_id=payment_id,
                amount=Decimal(amount),
                method="bank",
                reference=payment_id,
                at=NOW,
            )
        )
    assert paid.invoice.status == "paid"

    def audit_record(n: int) -> AuditRecord:
        return AuditRecord(
            id=f"{order_no}-{n}",
            at=NOW,
            order_no=order_no,
            action="x",
            actor="system",
            outcome="ok",
        )

    escalation = EscalationRecord(
        id=unique("E"),
        order_no=order_no,
        sla="dispatch",
        key="k",
        step=1,
        kind="escalate",
        level=1,
        notify=["ops"],
        due_at=NOW,
        fired_at=NOW,
    )
    for seq in (1, 2, 2):  # the last a retry: nothing new
        await acts.save_order_view(
            SaveOrderViewInput(
                view=order_view(order_no, OrderStatus.COMPLETED, customer_id),
                seq=seq,
                fingerprint="f",
                audit=[audit_record(seq), audit_record(seq + 10)],
                escalations=[escalation],
            )
        )

    keys = await queries.order_keys(store, order_no)
    assert keys is not None and keys.status == OrderStatus.COMPLETED.value
    assert await queries.shipment_owner(store, shipment.id) == (order_no, None)
    assert await queries.shipment_owner(store, "SH-none") is None
    assert set(await queries.price_of(store, {sku, other, "NOPE"})) == {sku, other}
    assert await queries.return_statuses(store, order_no) == []

    on_postgres = store.url.get_backend_name() == "postgresql"
    foreign = SQLiteInsert if on_postgres else PostgresInsert
    postgres_only = set() if on_postgres else {id(audit_chain._LOCK), id(queries._LOCK_ORDER)}
    expected = {
        key
        for key, statement in prepared._PREPARED.items()
        if not isinstance(statement, foreign) and key not in postgres_only
    }
    assert shadow.planned == expected
    assert shadow.compared > len(expected)


async def test_a_plan_raises_sqlalchemys_errors_and_leaves_what_it_cannot_do_to_it(
    store: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(prepared, "_PREPARED", dict(prepared._PREPARED))  # this test's own
    insert = text("INSERT INTO customer (customer_id) VALUES (:customer_id)")
    prepared.prepare(insert)
    async with store.writing() as conn:
        with pytest.raises(IntegrityError):  # NOT NULL columns left out: SQLite refuses
            await conn.execute(insert, {"customer_id": "C-x"})
    async with store.writing() as conn:
        with pytest.raises(StatementError, match="A value is required"):  # SQLAlchemy's words
            await conn.execute(insert, {})
    async with store.reading() as conn:
        result = await conn.execute(queries._PRICES, {"skus": []})  # an empty IN
        assert not isinstance(result, prepared.Rows) and result.all() == []
    assert await queries.price_of(store, set()) == {}
