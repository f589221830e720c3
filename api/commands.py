"""Commands to orders and returns: sent as Temporal updates, their outcome mapped to HTTP and
recorded, in one place.

A service the routes call, not a router. It answers with the HTTP models (`OrderPublic`,
`ReturnPublic`) built from the workflow's answer, never with the workflow's own JSON: a field
added to an HTTP answer is no field of a history payload."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

import structlog
from fastapi import Depends, Header
from pydantic import BaseModel
from temporalio.client import WorkflowHandle, WorkflowUpdateFailedError
from temporalio.service import RPCError, RPCStatusCode

from api.auth import in_scope
from api.deps import DbDep, SettingsDep, TemporalConnection, TemporalDep
from api.errors import ProblemError, refusal_to_problem, rpc_to_problem
from api.principal import Principal
from api.record import outcome_of, record_command
from api.schemas import OrderPublic, ReturnPublic, order_public, return_public
from domain.contract import OrderUpdate, ReturnUpdate, return_workflow_id
from domain.orders import FromCaller, OrderView
from domain.returns import ReturnView
from domain.statuses import OrderStatus
from store import queries
from store.db import Database


class Commands:
    """Commands to running orders and returns: found in the read model, delivered as Temporal
    updates by name, under the request's idempotency key."""

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

    async def update(
        self,
        principal: Principal,
        order_no: str,
        update: OrderUpdate,
        arg: FromCaller,
        *,
        settled: OrderStatus | None = None,
    ) -> OrderPublic:
        """Run `update` on the order's workflow as `principal`; 404 unknown order (or one
        outside the caller's customers), 409 closed or refused. The order records what it
        does with the caller's role and source; a refusal is recorded here.

        `settled`: a command that asks for this final state (cancel: CANCELLED) answers with
        the archived order once it has ended so, whoever asks."""
        structlog.contextvars.bind_contextvars(order_no=order_no)
        arg = arg.model_copy(update={"caller": principal.caller})
        try:
            return order_public(await self._update(principal, order_no, update, arg, settled))
        except ProblemError as exc:
            await record_command(
                self.db,
                principal,
                update.value,
                outcome_of(exc.problem.status),
                order_no=order_no,
                detail={"detail": exc.problem.detail},
            )
            raise

    async def find(self, principal: Principal, order_no: str) -> queries.OrderKeys:
        """The order's keys, if the caller may see it (else 404: its existence is none of
        their business)."""
        record = await queries.order_keys(self.db, order_no)
        if record is None or not await in_scope(self.db, principal, record.customer_id):
            raise ProblemError(404, f"Order {order_no} not found", order_no=order_no)
        return record

    async def _update(
        self,
        principal: Principal,
        order_no: str,
        update: OrderUpdate,
        arg: BaseModel,
        settled: OrderStatus | None,
    ) -> OrderView:
        # The workflow decides, not the read model's `closed`: a step's read-model write can
        # land before Temporal has recorded the step (a server lost mid-step), and the retry
        # of that step must reach the workflow.
        record = await self.find(principal, order_no)
        structlog.contextvars.bind_contextvars(workflow_id=record.workflow_id)
        handle = (await self.temporal.get()).get_workflow_handle(record.workflow_id)
        try:
            answer: OrderView = await run_update(
                handle,
                update,
                arg,
                update_id(update, self.idempotency_key),
                OrderView,
                self.timeout,
                order_no,
            )
        except WorkflowEnded:
            archived = await queries.get_order(self.db, order_no)
            status = archived.status if archived else "closed"
            if archived is not None and settled is not None and status == settled:
                return OrderView.model_validate(archived.view)
            raise _closed(order_no, status) from None
        return answer

    async def update_return(
        self, principal: Principal, return_no: str, update: ReturnUpdate, arg: BaseModel
    ) -> ReturnPublic:
        """Run `update` on the return's workflow as `principal`; recorded accepted or refused.
        A retry under the same idempotency key gets the first answer, also after the return
        has ended."""
        action = f"return_{update.value}"
        record = await queries.get_return(self.db, return_no)
        order_no = record.order_no if record is not None else ""
        try:
            if record is not None and not await in_scope(self.db, principal, record.customer_id):
                raise ProblemError(404, f"Return {return_no} not found")
            client = await self.temporal.get()
            handle = client.get_workflow_handle(return_workflow_id(return_no))
            try:
                view: ReturnView = await run_update(
                    handle,
                    update,
                    arg,
                    update_id(update, self.idempotency_key),
                    ReturnView,
                    self.timeout,
                    order_no or None,
                    return_no=return_no,
                )
            except WorkflowEnded:
                if record is None:
                    raise ProblemError(
                        404, f"Return {return_no} not found, or already closed"
                    ) from None
                raise ProblemError(
                    409,
                    f"Return {return_no} is {record.status} and closed; "
                    "it accepts no more commands",
                    type_="InvalidState",
                ) from None
        except ProblemError as exc:
            await record_command(
                self.db,
                principal,
                action,
                outcome_of(exc.problem.status),
                order_no=order_no,
                detail={"return_no": return_no, "detail": exc.problem.detail},
            )
            raise
        await record_command(
            self.db,
            principal,
            action,
            "ok",
            order_no=view.order_no,
            detail={"return_no": return_no, "status": view.status},
        )
        return return_public(view)


class WorkflowEnded(Exception):
    """The workflow has ended, and ran no command under the update id asked for."""


async def run_update(
    handle: WorkflowHandle[Any, Any],
    update: OrderUpdate | ReturnUpdate,
    arg: BaseModel,
    update_id: str | None,
    result_type: type[Any],
    rpc_timeout: timedelta,
    order_no: str | None,
    *,
    return_no: str | None = None,
) -> Any:
    """Run `update` on the workflow (an order's, or a return's when `return_no` is given);
    its refusal or Temporal's trouble as a problem. An ended workflow takes no more commands
    (`WorkflowEnded`), except the retry of one it ran: the same update id gets that first
    outcome, even when that command ended it (the last payment) and its answer was lost."""
    try:
        try:
            return await handle.execute_update(
                update.value,
                arg,
                id=update_id,
                result_type=result_type,
                rpc_timeout=rpc_timeout,
            )
        except RPCError as exc:
            if exc.status != RPCStatusCode.NOT_FOUND:
                raise
            if update_id is None:
                raise WorkflowEnded from exc
        try:
            return await handle.get_update_handle(update_id, result_type=result_type).result(
                rpc_timeout=rpc_timeout
            )
        except RPCError as exc:
            if exc.status == RPCStatusCode.NOT_FOUND:  # none under this id
                raise WorkflowEnded from exc
            raise
    except WorkflowUpdateFailedError as exc:
        raise refusal_to_problem(exc, order_no, return_no=return_no) from exc
    except RPCError as exc:
        raise rpc_to_problem(exc, order_no, return_no=return_no) from exc


def _closed(order_no: str, status: str) -> ProblemError:
    return ProblemError(
        409,
        f"Order {order_no} is {status} and closed; it accepts no more commands",
        order_no=order_no,
        type_="InvalidState",
    )


IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=200,
        description="Send the same key when retrying: the command runs once and the retry "
        "gets the first answer.",
    ),
]


def update_id(update: OrderUpdate | ReturnUpdate, idempotency_key: str | None) -> str | None:
    """The Temporal update id for a command sent under `idempotency_key`: Temporal runs an
    update id once and answers every retry with the first outcome."""
    if idempotency_key is None:
        return None
    return f"{update.value}:{idempotency_key}"


async def get_commands(
    db: DbDep, temporal: TemporalDep, settings: SettingsDep, idempotency_key: IdempotencyKey = None
) -> Commands:
    return Commands(
        db, temporal, timedelta(seconds=settings.command_timeout_seconds), idempotency_key
    )


CommandsDep = Annotated[Commands, Depends(get_commands)]
