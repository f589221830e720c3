"""The approver's inbox: orders waiting for *my* approval level, the most urgent deadline
first, with what the decision needs (reasons, the customer's credit position, the lines) and
approve / reject in place. The list refreshes itself (`/app/inbox/list`, when the live updates
of `web.live` name an order it shows or one now awaiting approval) so another approver's
decision shows without a reload."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from api.auth import visible_customers
from api.principal import Principal
from domain.auth import Permission, Role
from domain.orders import DeadlineView
from store import worklists
from web.actions import BY_NAME
from web.pages.orders import next_deadline
from web.render import render
from web.session import Page, state

router = APIRouter()
Approver = Annotated[Principal, Depends(Page(Permission.ORDERS_APPROVE))]

INBOX_LIMIT = 500  # pending orders considered (the oldest)
INBOX_SHOWN = 50  # of those waiting for me, the most urgent shown (with 10,000 pending, a
# page of every one took 1 MB and most of a second to render)
CHOOSING = ("approval", "approvals", "deadlines")
SHOWING = ("credit", "lines", "customer_name", "notes", "promise")
MY_LEVEL = {Role.APPROVER_L1: 1, Role.APPROVER_L2: 2}


@dataclass(frozen=True)
class InboxItem:
    order_no: str
    customer_id: str
    customer_name: str | None
    total: Decimal
    received_at: datetime
    entered_by: str
    level: int
    reasons: list[dict[str, Any]]
    credit: dict[str, Any] | None
    lines: list[dict[str, Any]]
    notes: str | None
    deadline: DeadlineView | None
    promise: dict[str, Any] | None = None


@dataclass(frozen=True)
class Inbox:
    items: list[InboxItem]  # the most urgent INBOX_SHOWN
    waiting: int  # all that wait for me (of the INBOX_LIMIT oldest pending)


async def inbox_items(request: Request, principal: Principal) -> Inbox:
    """Two reads: what choosing and ordering need of the pending orders (their approval state
    and deadlines), then what the page shows of the most urgent `INBOX_SHOWN` only."""
    found = state(request)
    visible = await visible_customers(found.db, principal)
    level = MY_LEVEL.get(principal.role)
    mine: list[tuple[worklists.PendingApproval, DeadlineView | None]] = []
    pending = await worklists.pending_approvals(
        found.db, visible=visible, limit=INBOX_LIMIT, parts=CHOOSING
    )
    for row in pending:
        approval = row.parts["approval"] or {}
        decided = {decision.get("approver") for decision in row.parts["approvals"] or []}
        if approval.get("awaiting_level") != level:
            continue
        if principal.name == row.entered_by or principal.name in decided:
            continue  # separation of duties: the workflow would refuse it
        mine.append((row, next_deadline(list(row.parts["deadlines"] or []))))
    far = datetime.max.replace(tzinfo=None)
    mine.sort(
        key=lambda pair: (
            pair[1].due_at.replace(tzinfo=None) if pair[1] else far,
            pair[0].received_at.replace(tzinfo=None),
        )
    )
    shown = mine[:INBOX_SHOWN]
    details = {
        row.order_no: row.parts
        for row in await worklists.pending_approvals(
            found.db,
            visible=visible,
            limit=INBOX_SHOWN,
            parts=SHOWING,
            order_nos=[row.order_no for row, _ in shown],
        )
    }
    items = []
    for row, deadline in shown:
        parts = details.get(row.order_no)
        if parts is None:  # decided between the two reads
            continue
        approval = row.parts["approval"] or {}
        items.append(
            InboxItem(
                order_no=row.order_no,
                customer_id=row.customer_id,
                customer_name=parts["customer_name"],
                total=row.total,
                received_at=row.received_at,
                entered_by=row.entered_by,
                level=int(approval["awaiting_level"]),
                reasons=list(approval.get("reasons") or []),
                credit=parts["credit"],
                lines=list(parts["lines"] or []),
                notes=parts["notes"],
                deadline=deadline,
                promise=parts["promise"],
            )
        )
    return Inbox(items, len(mine))


async def _render(request: Request, principal: Principal, template: str) -> Response:
    return render(
        request,
        template,
        principal,
        inbox=await inbox_items(request, principal),
        approve=BY_NAME["approve"],
        reject=BY_NAME["reject"],
        done=request.query_params.get("done"),
    )


@router.get("/app/inbox")
async def inbox(request: Request, principal: Approver) -> Response:
    return await _render(request, principal, "inbox.html")


@router.get("/app/inbox/list")
async def inbox_list(request: Request, principal: Approver) -> Response:
    """The list alone, for the page's live refresh."""
    return await _render(request, principal, "partials/inbox_list.html")
