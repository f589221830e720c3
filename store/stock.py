"""Stock and reservations: the statements every step that moves goods shares (reserving,
releasing, shipping, producing, restocking a return).

Plain Core statements built once: SQLAlchemy's compiled cache serves them on every call. A
`bindparam` of an UPDATE must not be named like a column of its table (SQLAlchemy refuses it).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, case, insert, update
from sqlalchemy import select as sa_select
from sqlmodel import SQLModel
from temporalio.exceptions import ApplicationError

from domain.statuses import ReservationStatus

_PRODUCTS = SQLModel.metadata.tables["product"]
_RESERVATIONS = SQLModel.metadata.tables["reservation"]

_LOCK_PRODUCT = (
    sa_select(_PRODUCTS.c.stock_on_hand, _PRODUCTS.c.reserved)
    .where(_PRODUCTS.c.sku == bindparam("sku"))
    .with_for_update()
)
_RELEASE = (
    update(_PRODUCTS)
    .where(_PRODUCTS.c.sku == bindparam("product"))
    .values(reserved=_PRODUCTS.c.reserved - bindparam("qty"))
)
# The guard in WHERE makes overselling impossible even without the row lock.
_RESERVE = (
    update(_PRODUCTS)
    .where(
        _PRODUCTS.c.sku == bindparam("product"),
        _PRODUCTS.c.stock_on_hand - _PRODUCTS.c.reserved >= bindparam("qty"),
    )
    .values(reserved=_PRODUCTS.c.reserved + bindparam("qty"))
)
_ADD_STOCK = (
    update(_PRODUCTS)
    .where(_PRODUCTS.c.sku == bindparam("product"))
    .values(
        stock_on_hand=_PRODUCTS.c.stock_on_hand + bindparam("qty"),
        reserved=_PRODUCTS.c.reserved + bindparam("to_reserve"),
    )
)
_SHIP_STOCK = (
    update(_PRODUCTS)
    .where(_PRODUCTS.c.sku == bindparam("product"))
    .values(
        stock_on_hand=_PRODUCTS.c.stock_on_hand - bindparam("qty"),
        reserved=_PRODUCTS.c.reserved - bindparam("qty"),
    )
)
_SHIPPED_QUANTITY = _RESERVATIONS.c.quantity - bindparam("qty")
_SHIP_RESERVATION = (
    update(_RESERVATIONS)
    .where(
        _RESERVATIONS.c.order_no == bindparam("order"),
        _RESERVATIONS.c.line_no == bindparam("line"),
    )
    .values(
        quantity=_SHIPPED_QUANTITY,
        status=case(
            (_SHIPPED_QUANTITY <= 0, ReservationStatus.SHIPPED.value),
            else_=ReservationStatus.ACTIVE.value,
        ),
        updated_at=bindparam("at"),
    )
)
_RESERVATIONS_OF = sa_select(_RESERVATIONS).where(_RESERVATIONS.c.order_no == bindparam("order_no"))
_ACTIVE_RESERVATIONS_OF = (
    _RESERVATIONS_OF.where(_RESERVATIONS.c.status == ReservationStatus.ACTIVE)
    .order_by(_RESERVATIONS.c.line_no)
    .with_for_update()
)
_SET_RESERVATION = update(_RESERVATIONS).where(_RESERVATIONS.c.id == bindparam("reservation_id"))
_INSERT_RESERVATION = insert(_RESERVATIONS)
_INSERT_MOVEMENT = insert(SQLModel.metadata.tables["stockmovement"])


def lock_product(conn: Connection, sku: str) -> int:
    """Lock the product's row (PostgreSQL; SQLite's writer already holds the database) and
    answer what is available (not reserved); NotFound for an unknown SKU."""
    row = (conn.execute(_LOCK_PRODUCT, {"sku": sku})).first()
    if row is None:
        raise ApplicationError(f"Unknown SKU {sku!r}", type="NotFound", non_retryable=True)
    return int(row.stock_on_hand - row.reserved)


def reserve(conn: Connection, sku: str, quantity: int) -> None:
    """Reserve `quantity` of what is available; the caller has checked it (`lock_product`)."""
    result = conn.execute(_RESERVE, {"product": sku, "qty": quantity})
    if result.rowcount != 1:
        raise RuntimeError(f"stock of {sku} changed while reserving; retrying")


def release(conn: Connection, sku: str, quantity: int) -> None:
    """Give `quantity` reserved units back to everyone else."""
    if quantity:
        lock_product(conn, sku)
        conn.execute(_RELEASE, {"product": sku, "qty": quantity})


def release_order(conn: Connection, order_no: str, at: datetime) -> list[str]:
    """Give everything the order holds back to everyone else (a cancellation, a repair): its
    active reservations become `released`, once; what was released, as `SKUxN`."""
    rows = (conn.execute(_ACTIVE_RESERVATIONS_OF, {"order_no": order_no})).all()
    released: list[str] = []
    for row in rows:
        if row.quantity:
            release(conn, row.sku, row.quantity)
            released.append(f"{row.sku}x{row.quantity}")
    if rows:
        conn.execute(
            _SET_RESERVATION,
            [
                {
                    "reservation_id": row.id,
                    "quantity": 0,
                    "status": ReservationStatus.RELEASED,
                    "updated_at": at,
                }
                for row in rows
            ],
        )
    return released


def add_stock(conn: Connection, sku: str, quantity: int, *, reserve: int = 0) -> None:
    """Goods come in (produced, returned): on hand up by `quantity`, `reserve` of them held for
    the order that waits for them."""
    lock_product(conn, sku)
    conn.execute(_ADD_STOCK, {"product": sku, "qty": quantity, "to_reserve": reserve})


def ship(conn: Connection, order_no: str, lines: Sequence[dict[str, Any]], at: datetime) -> None:
    """Goods leave: stock and the order's reservations go down by each line's quantity."""
    for line in lines:
        sku = str(line["sku"])
        values = {
            "product": sku,
            "qty": int(line["quantity"]),
            "order": order_no,
            "line": int(line["line_no"]),
            "at": at,
        }
        lock_product(conn, sku)
        conn.execute(_SHIP_STOCK, values)
        conn.execute(_SHIP_RESERVATION, values)


def record_movements(conn: Connection, movements: list[dict[str, Any]]) -> None:
    """The stock ledger: one row per movement (`sku`, `delta`, `reason`, `order_no`, `at`), in
    one statement."""
    if movements:
        conn.execute(_INSERT_MOVEMENT, movements)


def reservations_of(conn: Connection, order_no: str) -> dict[int, dict[str, Any]]:
    """The order's reservation rows, by line number."""
    rows = conn.execute(_RESERVATIONS_OF, {"order_no": order_no})
    return {row.line_no: dict(row._mapping) for row in rows}


def save_reservations(
    conn: Connection,
    changed: Sequence[dict[str, Any]],
    added: Sequence[dict[str, Any]],
    at: datetime,
) -> None:
    """Write changed reservation rows (by `id`) and add new ones, one statement each."""
    if changed:
        conn.execute(
            _SET_RESERVATION,
            [
                {
                    "reservation_id": row["id"],
                    "sku": row["sku"],
                    "quantity": row["quantity"],
                    "status": row["status"],
                    "updated_at": at,
                }
                for row in changed
            ],
        )
    if added:
        conn.execute(_INSERT_RESERVATION, [row | {"updated_at": at} for row in added])
