"""The demo catalog the run command seeds: customers and products that show every path."""

from __future__ import annotations

from decimal import Decimal

import structlog
from sqlmodel import col, select

from domain.auth import Role
from domain.passwords import hash_password
from store.db import Database
from store.tables import Customer, Product, StockMovement, User

DEMO_PASSWORD = "demo"
log = structlog.get_logger(__name__)

DEMO_CUSTOMERS = [
    # customer_id, name, region, group, credit limit, payment terms, active
    (
        "C-1001",
        "华东机电贸易有限公司 East China Machinery Trading",
        "east",
        "distributor",
        500_000,
        "net_30",
        True,
    ),
    (
        "C-1002",
        "北方工业集团 Northern Industrial Group",
        "north",
        "key_account",
        2_000_000,
        "net_60",
        True,
    ),
    (
        "C-1003",
        "深圳创新电子 Shenzhen Innovate Electronics",
        "south",
        "retail",
        50_000,
        "prepaid",
        True,
    ),
    ("C-1004", "西部建材 Western Building Supply", "west", "distributor", 80_000, "net_30", True),
    ("C-1005", "停业客户 Dormant Customer Ltd", "east", "retail", 0, "net_30", False),
]

DEMO_PRODUCTS = [
    # sku, name, unit price, stock on hand, safety stock, lead time days
    ("PUMP-100", "Centrifugal pump 100 L/min", 1_200, 200, 20, 10),
    ("MOTOR-5K", "Electric motor 5 kW", 3_500, 40, 5, 15),
    ("VALVE-25", "Ball valve DN25", 85, 5_000, 500, 7),
    ("CTRL-PLC", "PLC controller unit", 9_800, 3, 2, 20),
    ("GEAR-X7", "Gearbox X7 (made to order)", 15_000, 0, 0, 30),
]


async def seed_demo_catalog(db: Database) -> tuple[int, int]:
    """Insert what is missing; never touch rows that exist (their stock has moved on)."""
    added_customers = added_products = 0
    async with db.writer() as session:
        for cid, name, region, group, limit, terms, active in DEMO_CUSTOMERS:
            if await session.get(Customer, cid) is None:
                session.add(
                    Customer(
                        customer_id=cid,
                        name=name,
                        region=region,
                        customer_group=group,
                        credit_limit=Decimal(limit),
                        payment_terms=terms,
                        active=active,
                    )
                )
                added_customers += 1
        for sku, pname, price, stock, safety, lead in DEMO_PRODUCTS:
            if await session.get(Product, sku) is None:
                session.add(
                    Product(
                        sku=sku,
                        name=pname,
                        unit_price=Decimal(price),
                        stock_on_hand=stock,
                        safety_stock=safety,
                        lead_time_days=lead,
                    )
                )
                if stock:
                    session.add(StockMovement(sku=sku, delta=stock, reason="demo seed"))
                added_products += 1
    return added_customers, added_products


async def seed_demo_users(db: Database) -> list[str]:
    """Development only: one user per role, named after it, password `demo` (flagged `demo`,
    so they cannot sign in anywhere else)."""
    added: list[str] = []
    async with db.writer() as session:
        for role in Role:
            if await session.get(User, role.value) is None:
                session.add(
                    User(
                        username=role.value,
                        display_name=f"Demo {role.value}",
                        role=role,
                        password_hash=hash_password(DEMO_PASSWORD),
                        demo=True,
                    )
                )
                added.append(role.value)
    return added


async def disable_demo_users(db: Database) -> int:
    """Outside development: demo users left in a database are switched off."""
    async with db.writer() as session:
        rows = (await session.exec(select(User).where(col(User.demo), col(User.active)))).all()
        for user in rows:
            user.active = False
            session.add(user)
    if rows:
        log.warning("demo_users_disabled", users=[u.username for u in rows])
    return len(rows)


DEMO_ORDERS: list[dict[str, object]] = [
    {
        "order_no": "DEMO-0001",
        "customer_id": "C-1001",
        "lines": [{"sku": "VALVE-25", "quantity": 100}, {"sku": "PUMP-100", "quantity": 2}],
        "notes": "Auto-approved: ready to ship",
    },
    {
        "order_no": "DEMO-0002",
        "customer_id": "C-1002",
        "lines": [{"sku": "MOTOR-5K", "quantity": 30}, {"sku": "CTRL-PLC", "quantity": 10}],
        "notes": "Large order: needs supervisor and manager approval",
    },
    {
        "order_no": "DEMO-0003",
        "customer_id": "C-1003",
        "lines": [{"sku": "PUMP-100", "quantity": 5}],
        "notes": "Prepaid customer: awaiting payment",
    },
    {
        "order_no": "DEMO-0004",
        "customer_id": "C-1004",
        "lines": [{"sku": "GEAR-X7", "quantity": 2}],
        "priority": "rush",
        "notes": "Rush, made to order: needs approval, then production",
    },
]
