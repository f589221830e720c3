"""Sending an update to an order's workflow and mapping the outcome to HTTP, in one place."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

import structlog
from fastapi import Depends, Header
from pydantic import BaseModel
from temporalio.client import WorkflowUpdateFailedError
from temporalio.service import RPCError, RPCStatusCode

from api.deps import DbDep, SettingsDep, TemporalConnection, TemporalDep
from api.errors import ProblemError, refusal_to_problem, rpc_to_problem
from domain.orders import OrderView
from store import queries
from store.db import Database


class OrderCommands:
    """Commands to running orders: found in the read model, delivered as Temporal updates."""

    def __init__(
        self,
        db: Database,
        temporal: TemporalConnection,
        timeout: timedelta,
        idempotency_key: str | None = None,
    ) -> None:
        self.db = db
        self.temporal = temporal
        self.timeout = timeout
        self.idempotency_key = idempotency_key

    async def update(self, order_no: str, update: Any, arg: BaseModel) -> OrderView:
        """Run `update` on the order's workflow; 404 unknown order, 409 closed or refused."""
        structlog.contextvars.bind_contextvars(order_no=order_no)
        record = await queries.get_order(self.db, order_no)
        if record is None:
            raise ProblemError(404, f"Order {order_no} not found", order_no=order_no)
        structlog.contextvars.bind_contextvars(workflow_id=record.workflow_id)
        if record.closed:
            raise _closed(order_no, record.status)
        client = await self.temporal.get()
        handle = client.get_workflow_handle(record.workflow_id)
        try:
            view: OrderView = await handle.execute_update(
                update, arg, id=self._update_id(update), rpc_timeout=self.timeout
            )
        except WorkflowUpdateFailedError as exc:
            raise refusal_to_problem(exc, order_no) from exc
        except RPCError as exc:
            if exc.status == RPCStatusCode.NOT_FOUND:  # the workflow ended meanwhile
                latest = await queries.get_order(self.db, order_no)
                raise _closed(order_no, latest.status if latest else "closed") from exc
            raise rpc_to_problem(exc, order_no) from exc
        return view

    def _update_id(self, update: Any) -> str | None:
        # Temporal deduplicates updates by id: the same key on a retry gets the first answer.
        if self.idempotency_key is None:
            return None
        return f"{getattr(update, '__name__', update)}:{self.idempotency_key}"


def _closed(order_no: str, status: str) -> ProblemError:
    return ProblemError(
        409,
        f"Order {order_no} is {status} and closed; it accepts no more commands",
        order_no=order_no,
        type_="InvalidState",
    )


def get_commands(
    db: DbDep,
    temporal: TemporalDep,
    settings: SettingsDep,
    idempotency_key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            min_length=1,
            max_length=200,
            description="Send the same key when retrying: the command runs once and the retry "
            "gets the first answer.",
        ),
    ] = None,
) -> OrderCommands:
    return OrderCommands(
        db, temporal, timedelta(seconds=settings.command_timeout_seconds), idempotency_key
    )


CommandsDep = Annotated[OrderCommands, Depends(get_commands)]
