"""Finance's reads: `store.finance` (invoices open / overdue / paid, receivables per customer,
credit holds) on SQLite and PostgreSQL, and `GET /invoices` (filters, pagination, dunning
level, field-level 422, its documented permission)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import httpx

from store import finance
from store.db import Database
from store.finance import InvoiceFilter
from store.tables import CreditHold, Customer, Invoice, OrderRecord
from tests.conftest import unique

TODAY = date(2026, 6, 15)


def invoice(tag: str, n: int, customer: str, **fields: Any) -> Invoice:
    values: dict[str, Any] = {
        "id": f"INV-{tag}-{n}",
        "order_no": f"{tag}-O{n}",
        "customer_id": customer,
        "amount": Decimal("1000.00"),
        "payment_terms": "net_30",
        "due_date": TODAY + timedelta(days=5),
        "issued_at": datetime(2026, 5, 1, tzinfo=UTC) + timedelta(hours=n),
    } | fields
    return Invoice(**values)


async def seed(db: Database, tag: str) -> tuple[str, str]:
    """Two customers: A owes 1000 (not due) + 600 of 1000 overdue, has a paid, a prepaid and
    a void invoice, and is on credit hold; B owes 250 overdue."""
    a, b = f"{tag}-A", f"{tag}-B"
    async with db.writer() as session:
        session.add(
            Customer(customer_id=a, name="华东 A", region="east", credit_limit=Decimal(5000))
        )
        session.add(
            Customer(customer_id=b, name="B & co", region="east", credit_limit=Decimal(100))
        )
    async with db.writer() as session:
        session.add(invoice(tag, 1, a))
        late = TODAY - timedelta(days=3)
        session.add(invoice(tag, 2, a, due_date=late, paid_amount=Decimal("400.00")))
        session.add(invoice(tag, 3, a, status="paid", paid_amount=Decimal("1000.00")))
        session.add(invoice(tag, 4, a, payment_terms="prepaid"))
        session.add(invoice(tag, 5, a, status="void"))
        session.add(invoice(tag, 6, b, amount=Decimal("250.00"), due_date=late))
        session.add(
            CreditHold(
                customer_id=a,
                order_no=f"{tag}-O2",
                reason="invoice overdue",
                placed_at=datetime(2026, 6, 14, tzinfo=UTC),
            )
        )
    return a, b


async def test_invoices_receivables_and_holds(store: Database) -> None:
    tag = unique("FIN")
    a, b = await seed(store, tag)

    async def ids(
        status: InvoiceFilter | None, customer: str | None = None, **page: int
    ) -> list[Any]:
        rows, total = await finance.list_invoices(
            store,
            status=status,
            customer_id=customer,
            today=TODAY,
            limit=page.get("limit", 50),
            offset=page.get("offset", 0),
            visible={a, b},
        )
        return [total, [row.id.rsplit("-", 1)[1] for row in rows]]

    assert await ids(InvoiceFilter.OPEN) == [4, ["2", "6", "1", "4"]]  # earliest due first
    assert await ids(InvoiceFilter.OVERDUE) == [2, ["2", "6"]]
    assert await ids(InvoiceFilter.PAID) == [1, ["3"]]
    assert await ids(None, b) == [1, ["6"]]
    assert await ids(InvoiceFilter.OPEN, limit=2, offset=1) == [4, ["6", "1"]]
    rows, total = await finance.list_invoices(
        store, status=None, customer_id=None, today=TODAY, limit=10, offset=0, visible={b}
    )
    assert total == 1 and rows[0].outstanding == Decimal("250.00")

    owed = await finance.receivables(store, today=TODAY, visible={a, b})
    assert [(r.customer_id, r.open_amount, r.overdue_amount, r.invoices) for r in owed] == [
        (a, Decimal("1600.00"), Decimal("600.00"), 2),  # not the prepaid one
        (b, Decimal("250.00"), Decimal("250.00"), 1),
    ]
    assert owed[0].credit_limit == Decimal("5000.00") and owed[1].name == "B & co"

    holds = await finance.credit_holds(store, visible={a, b})
    assert [(h.customer_id, h.name, h.order_no) for h in holds] == [(a, "华东 A", f"{tag}-O2")]
    assert await finance.credit_holds(store, visible={b}) == []


async def test_the_invoices_endpoint(api: httpx.AsyncClient, db: Database) -> None:
    tag = unique("FINAPI")
    a, b = await seed(db, tag)
    now = datetime.now(UTC)
    due = now.astimezone(ZoneInfo("Asia/Shanghai")).date() - timedelta(days=2)  # the company's
    async with db.writer() as session:
        session.add(invoice(tag, 7, b, due_date=due, order_no=f"{tag}-O7"))
        session.add(
            OrderRecord(
                order_no=f"{tag}-O7",
                workflow_id=f"order-{tag}-O7",
                customer_id=b,
                status="SHIPPED",
                total=Decimal("1000.00"),
                priority="normal",
                entered_by="sales",
                fingerprint="x",
                received_at=now,
                updated_at=now,
                view={
                    "deadlines": [
                        {
                            "sla": "invoice_payment",
                            "key": f"INV-{tag}-7",
                            "started_at": (now - timedelta(days=34)).isoformat(),
                            "due_at": (now - timedelta(days=4)).isoformat(),
                            "status": "breached",
                            "escalation_level": 2,
                        }
                    ]
                },
            )
        )
    answer = await api.get("/invoices", params={"status": "overdue", "customer_id": b})
    assert answer.status_code == 200, answer.text
    page = answer.json()
    mine = next(item for item in page["items"] if item["id"] == f"INV-{tag}-7")
    assert mine["overdue"] and mine["days_overdue"] == 2 and mine["dunning_level"] == 2
    assert mine["outstanding"] == 1000 and mine["status"] == "issued"
    assert {item["customer_id"] for item in page["items"]} == {b}
    paged = (await api.get("/invoices", params={"customer_id": a, "limit": 2})).json()
    assert paged["total"] == 5 and len(paged["items"]) == 2 and paged["limit"] == 2

    for params, field in (
        ({"status": "late"}, "status"),
        ({"limit": 0}, "limit"),
        ({"offset": -1}, "offset"),
        ({"customer_id": "x" * 200}, "customer_id"),
    ):
        refused = await api.get("/invoices", params=params)
        assert refused.status_code == 422, refused.text
        assert [error["field"] for error in refused.json()["errors"]] == [field]
    operation = (await api.get("/openapi.json")).json()["paths"]["/invoices"]["get"]
    assert operation["x-permission"] == "reports:read"
    assert {p["name"] for p in operation["parameters"]} == {
        "status",
        "customer_id",
        "limit",
        "offset",
    }
