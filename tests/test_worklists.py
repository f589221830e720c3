"""The web app's reads of order views by JSON path (`store.worklists`) and the order-number
search of `list_orders`, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from store import queries, worklists
from store.db import Database
from store.tables import Escalation, OrderRecord
from tests.conftest import unique


def record(order_no: str, status: str, view: dict[str, Any], at: datetime) -> OrderRecord:
    return OrderRecord(
        order_no=order_no,
        workflow_id=f"order-{order_no}",
        customer_id="C-WL",
        status=status,
        total=Decimal("1234.50"),
        priority="normal",
        entered_by="sales.wl",
        fingerprint="x",
        received_at=at,
        updated_at=at,
        view=view,
    )


async def test_glances_pending_approvals_and_the_number_search(store: Database) -> None:
    now = datetime.now(UTC)
    tag = unique("WL")
    deadline = {
        "sla": "approval",
        "key": "approval",
        "started_at": now.isoformat(),
        "due_at": (now + timedelta(hours=2)).isoformat(),
        "status": "on_track",
    }
    pending = {
        "waiting_for": "approval by level 1 (supervisor)",
        "deadlines": [deadline],
        "approval": {"required_levels": 1, "awaiting_level": 1, "reasons": []},
        "approvals": [],
        "credit": {"credit_limit": "1000", "open_receivables": "0", "exposure": "1234.5"},
        "lines": [{"sku": "S", "quantity": 1}],
        "customer_name": "ACME <b>",
        "notes": None,
    }
    async with store.writer() as session:
        session.add(record(f"{tag}-A", "PENDING_APPROVAL", pending, now))
        session.add(record(f"{tag}-B", "SHIPPED", {"deadlines": []}, now + timedelta(seconds=1)))
    found = await worklists.glances(store, [f"{tag}-A", f"{tag}-B"])
    assert found[f"{tag}-A"].waiting_for == "approval by level 1 (supervisor)"
    assert found[f"{tag}-A"].deadlines[0]["sla"] == "approval"
    assert found[f"{tag}-B"] == worklists.Glance(None, [])
    inbox = [
        p
        for p in await worklists.pending_approvals(store, visible=None, limit=500)
        if p.order_no.startswith(tag)
    ]
    assert [p.order_no for p in inbox] == [f"{tag}-A"]
    assert inbox[0].parts["approval"]["awaiting_level"] == 1
    assert inbox[0].parts["customer_name"] == "ACME <b>"
    assert await worklists.pending_approvals(store, visible={"C-OTHER"}, limit=500) == []
    # The inbox's two reads: a few parts of every pending order, the rest of the chosen ones.
    (few,) = await worklists.pending_approvals(
        store, visible=None, limit=500, parts=("approval",), order_nos=[f"{tag}-A"]
    )
    assert few.parts == {"approval": pending["approval"]}
    assert await worklists.pending_approvals(store, visible=None, limit=5, order_nos=[]) == []
    rows, total = await queries.list_orders(
        store, status=None, customer_id=None, limit=10, offset=0, number=tag
    )
    assert total == 2 and [r.order_no for r in rows] == [f"{tag}-B", f"{tag}-A"]
    rows, total = await queries.list_orders(
        store, status=None, customer_id=None, limit=10, offset=0, number="%"
    )
    assert total == 0  # a wildcard is searched for as a character


async def test_status_counts_and_escalations_fired_since(store: Database) -> None:
    now = datetime.now(UTC)
    tag = unique("OPS")
    late = record(f"{tag}-A", "SHIPPED", {"deadlines": []}, now)
    late.overdue, late.customer_id = True, f"{tag}-C"
    on_time = record(f"{tag}-B", "SHIPPED", {"deadlines": []}, now)
    on_time.customer_id = f"{tag}-C"
    async with store.writer() as session:
        session.add(late)
        session.add(on_time)
        for n, at in enumerate((now - timedelta(days=1), now - timedelta(minutes=1), now)):
            session.add(
                Escalation(
                    id=f"{tag}-E{n}",
                    order_no=f"{tag}-A",
                    sla="dispatch",
                    key="dispatch",
                    step=n,
                    kind="escalation",
                    level=n,
                    notify=["warehouse"],
                    due_at=now,
                    fired_at=at,
                )
            )
    assert await worklists.status_counts(store, visible={f"{tag}-C"}) == {"SHIPPED": (2, 1)}
    fired = await worklists.escalations_since(store, now - timedelta(hours=1), limit=10)
    assert [e.id for e in fired if e.id.startswith(tag)] == [f"{tag}-E2", f"{tag}-E1"]
