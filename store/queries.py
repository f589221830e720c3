"""Reads and master-data writes the API needs. Orders themselves change only through Temporal."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from decimal import Decimal
from typing import Any, NamedTuple

from sqlalchemy import Connection, bindparam, func, update
from sqlalchemy import select as sa_select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import defer
from sqlmodel import SQLModel, col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from domain.money import MAX_STOCK
from domain.statuses import OPEN_PRODUCTION, OrderStatus
from store.db import Database
from store.tables import (
    CreditHold,
    Customer,
    CustomerCreate,
    CustomerUpdate,
    OrderRecord,
    Product,
    ProductCreate,
    ProductionOrder,
    ReturnRecord,
    Shipment,
    StockMovement,
    utcnow,
)

# Orders whose promise is kept (the goods reached the customer) or void (ended without them).
KEPT_OR_ENDED = [
    OrderStatus.DELIVERED.value,
    OrderStatus.COMPLETED.value,
    OrderStatus.CANCELLED.value,
    OrderStatus.CANCELLING.value,
    OrderStatus.REJECTED.value,
    OrderStatus.INVALID.value,
]

# `GET /production-orders?status=open`: every production order still to produce.
OPEN_PRODUCTION_FILTER = "open"


class AlreadyExists(Exception):
    pass


class StockTooLow(Exception):
    """The adjustment would take stock below what is reserved (or beyond the maximum)."""


# Load an order's row without `view`, the whole order as JSON (large; parsed on load).
WITHOUT_VIEW = defer(OrderRecord.view)  # type: ignore[arg-type]


async def get_order(db: Database, order_no: str) -> OrderRecord | None:
    """The order's read-model row, with the whole order as JSON (`view`)."""
    async with db.reader() as session:
        return await session.get(OrderRecord, order_no)


class OrderKeys(NamedTuple):
    """What a command or a view needs to find an order's workflow and check the caller."""

    workflow_id: str
    customer_id: str
    status: str
    closed: bool


# The reads every API request about an order or shipment makes: plain statements built once
# (an ORM `get` costs about three times the CPU), on a connection, not a session.
_ORDERS = SQLModel.metadata.tables["orderrecord"]
_SHIPMENTS = SQLModel.metadata.tables["shipment"]
_PRODUCTS = SQLModel.metadata.tables["product"]
_RETURNS = SQLModel.metadata.tables["returnrecord"]
_ORDER_KEYS = sa_select(
    _ORDERS.c.workflow_id, _ORDERS.c.customer_id, _ORDERS.c.status, _ORDERS.c.closed
).where(_ORDERS.c.order_no == bindparam("order_no"))
_SHIPMENT_OWNER = sa_select(_SHIPMENTS.c.order_no, _SHIPMENTS.c.return_no).where(
    _SHIPMENTS.c.id == bindparam("shipment_id")
)
_PRICES = sa_select(_PRODUCTS.c.sku, _PRODUCTS.c.unit_price).where(
    _PRODUCTS.c.sku.in_(bindparam("skus", expanding=True))
)
_RETURN_STATUSES = (
    sa_select(_RETURNS.c.return_no, _RETURNS.c.status)
    .where(_RETURNS.c.order_no == bindparam("order_no"))
    .order_by(_RETURNS.c.requested_at)
)


_PRODUCTS_FOR_ENTRY = sa_select(
    _PRODUCTS.c.sku, _PRODUCTS.c.name, _PRODUCTS.c.unit_price, _PRODUCTS.c.lead_time_days
).where(_PRODUCTS.c.sku.in_(bindparam("skus", expanding=True)))


_CUSTOMERS = SQLModel.metadata.tables["customer"]
_TRANSIT_DAYS = sa_select(_CUSTOMERS.c.transit_days).where(
    _CUSTOMERS.c.customer_id == bindparam("customer_id")
)


def transit_days(conn: Connection, customer_id: str) -> int | None:
    """The customer's transit days (None: the policy's default applies)."""
    value = conn.execute(_TRANSIT_DAYS, {"customer_id": customer_id}).scalar()
    return None if value is None else int(value)


def products_for_entry(conn: Connection, skus: set[str]) -> dict[str, Any]:
    """What entry needs of these products (name, list price, lead time), by SKU."""
    rows = conn.execute(_PRODUCTS_FOR_ENTRY, {"skus": list(skus)})
    return {row.sku: row for row in rows}


async def order_keys(db: Database, order_no: str) -> OrderKeys | None:
    async with db.reading() as conn:
        row = (await conn.execute(_ORDER_KEYS, {"order_no": order_no})).first()
    return None if row is None else OrderKeys(*row)


async def shipment_owner(db: Database, shipment_id: str) -> tuple[str, str | None] | None:
    """The order a shipment belongs to, and the return it replaces goods for (if any)."""
    async with db.reading() as conn:
        row = (await conn.execute(_SHIPMENT_OWNER, {"shipment_id": shipment_id})).first()
    return None if row is None else (row.order_no, row.return_no)


async def list_orders(
    db: Database,
    *,
    status: str | None,
    customer_id: str | None,
    limit: int,
    offset: int,
    overdue: bool | None = None,
    visible: set[str] | None = None,
    number: str | None = None,
    promised: tuple[date | None, date] | None = None,
) -> tuple[Sequence[OrderRecord], int]:
    """Newest first; `visible`: only these customers' orders (a scoped sales rep); `number`:
    order numbers containing it (the web app's search); `promised` (from, to): orders whose
    goods have not reached the customer and whose current promised date is in that range.

    The rows come without their `view` (the whole order as JSON): a page needs the columns
    only, and an index on (status or customer, received_at, order_no) serves it in order."""
    query = select(OrderRecord).options(WITHOUT_VIEW)
    count = select(func.count()).select_from(OrderRecord)
    if visible is not None:
        query = query.where(col(OrderRecord.customer_id).in_(visible))
        count = count.where(col(OrderRecord.customer_id).in_(visible))
    if overdue is not None:
        query = query.where(col(OrderRecord.overdue) == overdue)
        count = count.where(col(OrderRecord.overdue) == overdue)
    if status:
        query = query.where(col(OrderRecord.status) == status)
        count = count.where(col(OrderRecord.status) == status)
    if customer_id:
        query = query.where(col(OrderRecord.customer_id) == customer_id)
        count = count.where(col(OrderRecord.customer_id) == customer_id)
    if number:
        query = query.where(col(OrderRecord.order_no).contains(number, autoescape=True))
        count = count.where(col(OrderRecord.order_no).contains(number, autoescape=True))
    if promised is not None:
        promised_date = col(OrderRecord.view)[("promise", "promised_date")].as_string()
        since, until = promised
        conditions = [
            promised_date.is_not(None),
            promised_date <= until.isoformat(),
            col(OrderRecord.status).not_in(KEPT_OR_ENDED),
        ]
        if since is not None:
            conditions.append(promised_date >= since.isoformat())
        query = query.where(*conditions)
        count = count.where(*conditions)
    query = query.order_by(col(OrderRecord.received_at).desc(), col(OrderRecord.order_no).desc())
    async with db.reader() as session:
        rows = (await session.exec(query.offset(offset).limit(limit))).all()
        total = (await session.exec(count)).one()
    return rows, int(total)


async def promises_of(db: Database, order_nos: Sequence[str]) -> dict[str, dict[str, Any]]:
    """The promise of each of these orders (the view's `promise`), by order number."""
    if not order_nos:
        return {}
    query = select(OrderRecord.order_no, col(OrderRecord.view)["promise"]).where(
        col(OrderRecord.order_no).in_(list(order_nos))
    )
    async with db.reader() as session:
        rows = (await session.exec(query)).all()
    return {order_no: promise for order_no, promise in rows if promise}


async def deadlines_of(db: Database, order_nos: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
    """The deadlines of these orders as their read model stored them (the view's `deadlines`),
    by order number. Only that part of each view is read (JSON path in the database): a page of
    overdue orders does not load whole orders."""
    if not order_nos:
        return {}
    query = select(OrderRecord.order_no, col(OrderRecord.view)["deadlines"]).where(
        col(OrderRecord.order_no).in_(list(order_nos))
    )
    async with db.reader() as session:
        rows = (await session.exec(query)).all()
    return {order_no: list(deadlines or []) for order_no, deadlines in rows}


async def overdue_orders(db: Database, *, limit: int) -> Sequence[OrderRecord]:
    """Open orders with a breached deadline, the most escalated first."""
    query = (
        select(OrderRecord)
        .where(col(OrderRecord.overdue), col(OrderRecord.closed).is_(False))
        .order_by(col(OrderRecord.escalation_level).desc(), col(OrderRecord.received_at))
        .limit(limit)
    )
    async with db.reader() as session:
        return (await session.exec(query)).all()


_LOCK_ORDER = sa_select(func.pg_advisory_xact_lock(func.hashtext(bindparam("order_no"))))


def lock_order(conn: Connection, order_no: str) -> None:
    """Serialize writers of one order's rows (SQLite's writer already holds the database); a
    session's caller runs it with `store.db.in_session`."""
    if conn.dialect.name == "postgresql":
        conn.execute(_LOCK_ORDER, {"order_no": order_no})


async def return_statuses(db: Database, order_no: str) -> list[tuple[str, str]]:
    """An order's returns as (number, status), oldest first: what every view of the order
    shows of them, without loading each return's whole view."""
    async with db.reading() as conn:
        rows = (await conn.execute(_RETURN_STATUSES, {"order_no": order_no})).all()
    return [(row.return_no, row.status) for row in rows]


async def returns_in(session: AsyncSession, order_no: str) -> Sequence[ReturnRecord]:
    """An order's returns, oldest first, read in the caller's session (a writer holding
    `lock_order` sees every return requested before it)."""
    query = (
        select(ReturnRecord)
        .where(col(ReturnRecord.order_no) == order_no)
        .order_by(col(ReturnRecord.requested_at))
    )
    return (await session.exec(query)).all()


async def get_return(db: Database, return_no: str) -> ReturnRecord | None:
    async with db.reader() as session:
        return await session.get(ReturnRecord, return_no)


async def get_shipment(db: Database, shipment_id: str) -> Shipment | None:
    async with db.reader() as session:
        return await session.get(Shipment, shipment_id)


async def list_shipments(
    db: Database, *, status: str | None, limit: int, offset: int
) -> Sequence[Shipment]:
    query = select(Shipment).order_by(col(Shipment.created_at).desc())
    if status:
        query = query.where(col(Shipment.status) == status)
    async with db.reader() as session:
        return (await session.exec(query.offset(offset).limit(limit))).all()


async def get_production_order(db: Database, po_id: str) -> ProductionOrder | None:
    async with db.reader() as session:
        return await session.get(ProductionOrder, po_id)


async def list_production_orders(
    db: Database, *, status: str | None, limit: int, offset: int
) -> Sequence[ProductionOrder]:
    """The production orders in `status`, earliest due first; `open`: planned or partially
    completed, what the plant still has to produce."""
    query = select(ProductionOrder).order_by(col(ProductionOrder.due_date), col(ProductionOrder.id))
    if status == OPEN_PRODUCTION_FILTER:
        query = query.where(col(ProductionOrder.status).in_(OPEN_PRODUCTION))
    elif status:
        query = query.where(col(ProductionOrder.status) == status)
    async with db.reader() as session:
        return (await session.exec(query.offset(offset).limit(limit))).all()


# --- master data -------------------------------------------------------------------------


async def create_customer(db: Database, data: CustomerCreate) -> Customer:
    customer = Customer.model_validate(data)
    try:
        async with db.writer() as session:
            if await session.get(Customer, data.customer_id) is not None:
                raise AlreadyExists(data.customer_id)
            session.add(customer)
    except IntegrityError as exc:
        raise AlreadyExists(data.customer_id) from exc
    return customer


async def get_customer(db: Database, customer_id: str) -> Customer | None:
    async with db.reader() as session:
        return await session.get(Customer, customer_id)


async def list_customers(
    db: Database, *, limit: int, offset: int, visible: set[str] | None = None
) -> Sequence[Customer]:
    query = select(Customer).order_by(col(Customer.customer_id)).offset(offset).limit(limit)
    if visible is not None:
        query = query.where(col(Customer.customer_id).in_(visible))
    async with db.reader() as session:
        return (await session.exec(query)).all()


async def customers_on_credit_hold(db: Database, customer_ids: Sequence[str]) -> set[str]:
    query = select(CreditHold.customer_id).where(
        col(CreditHold.customer_id).in_(list(customer_ids)), col(CreditHold.released_at).is_(None)
    )
    async with db.reader() as session:
        return set((await session.exec(query)).all())


async def update_customer(db: Database, customer_id: str, data: CustomerUpdate) -> Customer | None:
    async with db.writer() as session:
        customer = await session.get(Customer, customer_id)
        if customer is None:
            return None
        for field, value in data.model_dump(exclude_unset=True).items():
            if value is not None:
                setattr(customer, field, value)
        session.add(customer)
    return customer


async def release_credit_holds(db: Database, customer_id: str, by: str) -> list[str]:
    """Finance lifts a customer's credit holds; returns the orders whose holds were lifted."""
    async with db.writer() as session:
        holds = (
            await session.exec(
                select(CreditHold).where(
                    col(CreditHold.customer_id) == customer_id,
                    col(CreditHold.released_at).is_(None),
                )
            )
        ).all()
        for hold in holds:
            hold.released_at = utcnow()
            hold.reason = f"{hold.reason}; released by {by}"[:200]
            session.add(hold)
    return [hold.order_no for hold in holds]


async def create_product(db: Database, data: ProductCreate) -> Product:
    product = Product.model_validate(data)
    try:
        async with db.writer() as session:
            if await session.get(Product, data.sku) is not None:
                raise AlreadyExists(data.sku)
            session.add(product)
            if data.stock_on_hand:
                session.add(
                    StockMovement(sku=data.sku, delta=data.stock_on_hand, reason="initial stock")
                )
    except IntegrityError as exc:
        raise AlreadyExists(data.sku) from exc
    return product


async def get_product(db: Database, sku: str) -> Product | None:
    async with db.reader() as session:
        return await session.get(Product, sku)


async def list_products(db: Database, *, limit: int, offset: int) -> Sequence[Product]:
    async with db.reader() as session:
        query = select(Product).order_by(col(Product.sku)).offset(offset).limit(limit)
        return (await session.exec(query)).all()


async def adjust_stock(db: Database, sku: str, delta: int, reason: str) -> Product | None:
    """Add or remove stock; never below what is reserved for orders. None if no such SKU."""
    async with db.writer() as session:
        result = await session.exec(
            update(Product)
            .where(
                col(Product.sku) == sku,
                col(Product.stock_on_hand) + delta >= col(Product.reserved),
                col(Product.stock_on_hand) + delta <= MAX_STOCK,
            )
            .values(stock_on_hand=col(Product.stock_on_hand) + delta)
        )
        if result.rowcount != 1:
            product = await session.get(Product, sku)
            if product is None:
                return None
            if delta > 0:
                raise StockTooLow(f"{sku} would hold more than {MAX_STOCK} units")
            raise StockTooLow(
                f"{sku} has {product.stock_on_hand} on hand and {product.reserved} reserved; "
                f"removing {-delta} would leave reserved orders without stock"
            )
        session.add(StockMovement(sku=sku, delta=delta, reason=reason, at=utcnow()))
        product = await session.get(Product, sku, populate_existing=True)
        assert product is not None
        return product


async def price_of(db: Database, skus: set[str]) -> dict[str, Decimal]:
    async with db.reading() as conn:
        return {
            row.sku: row.unit_price for row in await conn.execute(_PRICES, {"skus": list(skus)})
        }
