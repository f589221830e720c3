"""Reading orders for routes: the current order (live from its workflow, or archived), the
current return, an order's breached deadlines, the overdue report. A service, not a router:
orders, returns, reports and the web app use it."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog
from pydantic import BaseModel
from temporalio.service import RPCError

from api.auth import in_scope
from api.deps import DbDep, SettingsDep, TemporalDep
from api.errors import ProblemError
from api.principal import Principal
from api.schemas import OverdueDeadline, ReturnPublic, return_public
from domain.contract import VIEW_QUERY, return_workflow_id
from domain.orders import DeadlineView, OrderView, workflow_id_for
from domain.returns import ReturnView
from domain.statuses import DeadlineStatus, OrderStatus
from store import queries

log = structlog.get_logger(__name__)


async def current_order(
    db: DbDep, temporal: TemporalDep, settings: SettingsDep, order_no: str, principal: Principal
) -> OrderView:
    """The order as it is now, with its returns (404 outside the caller's customers)."""
    # Every line about an order names it and its workflow (the id derives from the number).
    structlog.contextvars.bind_contextvars(order_no=order_no, workflow_id=workflow_id_for(order_no))
    record = await queries.order_keys(db, order_no)
    if record is None or not await in_scope(db, principal, record.customer_id):
        raise ProblemError(404, f"Order {order_no} not found", order_no=order_no)
    view: OrderView | None = None
    if not record.closed:
        try:
            handle = (await temporal.get()).get_workflow_handle(record.workflow_id)
            view = await handle.query(
                VIEW_QUERY,
                result_type=OrderView,
                rpc_timeout=timedelta(seconds=settings.command_timeout_seconds),
            )
        except (RPCError, ProblemError) as exc:
            # No worker or no Temporal: the read model is at most one step behind the workflow.
            log.warning("order_query_failed", error=str(exc))
    if view is None:  # closed (archived), or the workflow could not answer
        archived = await queries.get_order(db, order_no)
        if archived is None:  # rows are never deleted; only a database swapped under us
            raise ProblemError(404, f"Order {order_no} not found", order_no=order_no)
        view = OrderView.model_validate(archived.view)
    returns = await queries.return_statuses(db, order_no)
    view.returns = [{"return_no": number, "status": status} for number, status in returns]
    view.return_status = returns[-1][1] if returns else None
    return view


async def current_return(
    db: DbDep, temporal: TemporalDep, settings: SettingsDep, return_no: str, principal: Principal
) -> ReturnPublic:
    """The return's status and steps: live while it runs, from the read model after (404
    outside the caller's customers)."""
    record = await queries.get_return(db, return_no)
    if record is not None and not await in_scope(db, principal, record.customer_id):
        raise ProblemError(404, f"Return {return_no} not found")
    if principal.scoped and record is None:
        raise ProblemError(404, f"Return {return_no} not found")
    if record is not None and record.view.get("closed"):
        return return_public(ReturnView.model_validate(record.view))
    try:
        handle = (await temporal.get()).get_workflow_handle(return_workflow_id(return_no))
        view: ReturnView = await handle.query(
            VIEW_QUERY,
            result_type=ReturnView,
            rpc_timeout=timedelta(seconds=settings.command_timeout_seconds),
        )
        return return_public(view)
    except (RPCError, ProblemError) as exc:
        if record is None:
            raise ProblemError(404, f"Return {return_no} not found") from exc
        return return_public(ReturnView.model_validate(record.view))


def _human(seconds: int) -> str:
    days, rest = divmod(seconds, 86_400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    parts = [
        f"{days}d" if days else "",
        f"{hours}h" if hours else "",
        f"{minutes}m" if minutes else "",
    ]
    return " ".join(p for p in parts if p) or f"{seconds}s"


def overdue_deadlines(
    order_no: str, customer_id: str, deadlines: Iterable[dict[str, Any]], now: datetime
) -> list[OverdueDeadline]:
    """An order's breached deadlines as its read model stored them (its view's `deadlines`):
    how late each is at `now`, its escalation level and who holds it. The report and the
    order list (`GET /orders`) both show these."""
    found: list[OverdueDeadline] = []
    for raw in deadlines:
        deadline = DeadlineView.model_validate(raw)
        if deadline.status is not DeadlineStatus.BREACHED:
            continue
        late = max(0, int((now - deadline.due_at).total_seconds()))
        found.append(
            OverdueDeadline(
                order_no=order_no,
                customer_id=customer_id,
                sla=deadline.sla,
                key=deadline.key,
                due_at=deadline.due_at,
                overdue_seconds=late,
                overdue_for=_human(late),
                escalation_level=deadline.escalation_level,
                held_by=deadline.held_by,
            )
        )
    return found


class OverdueStage(BaseModel):
    stage: OrderStatus
    label: dict[str, str]
    count: int
    deadlines: list[OverdueDeadline]


class OverdueReport(BaseModel):
    generated_at: datetime
    orders: int
    stages: list[OverdueStage]


async def overdue_by_stage(db: DbDep, limit: int) -> OverdueReport:
    """Overdue orders grouped by the stage (status) they are stuck in, the stage with the most
    breached deadlines first (`GET /reports/overdue`, the web app's operations page)."""
    now = datetime.now(UTC)
    stages: dict[OrderStatus, list[OverdueDeadline]] = {}
    rows = await queries.overdue_orders(db, limit=limit)
    for row in rows:
        late = overdue_deadlines(row.order_no, row.customer_id, row.view.get("deadlines", []), now)
        if late:
            stages.setdefault(OrderStatus(row.status), []).extend(late)
    return OverdueReport(
        generated_at=now,
        orders=len(rows),
        stages=[
            OverdueStage(
                stage=stage,
                label={"en": stage.label_en, "zh": stage.label_zh},
                count=len(items),
                deadlines=items,
            )
            for stage, items in sorted(stages.items(), key=lambda kv: -len(kv[1]))
        ],
    )
