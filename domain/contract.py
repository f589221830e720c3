"""The names the API and the workflows agree on: workflow types, updates, the query, search
attributes and workflow ids.

The API sends every command by name (its answer decodes as the type the API asks for), so it
need not import workflow code. `tests/test_contract.py` proves each name is one the workflows
register; a workflow may adopt these constants for its `name=` arguments.
"""

from __future__ import annotations

from enum import StrEnum

ORDER_WORKFLOW = "OrderWorkflow"
RETURN_WORKFLOW = "ReturnWorkflow"
AUDIT_ANCHOR_WORKFLOW = "AuditAnchorWorkflow"

VIEW_QUERY = "view"
"""Both workflows answer it with their view (`OrderView`, `ReturnView`)."""
CHECKPOINTS_QUERY = "checkpoints"
"""The audit anchor answers it with the checkpoints it keeps (`list[AuditCheckpoint]`)."""


class OrderUpdate(StrEnum):
    """The order workflow's updates (its handlers' method names)."""

    SUBMIT = "submit"
    APPROVE = "approve"
    REJECT = "reject"
    REPORT_PRODUCTION = "report_production"
    DISPATCH = "dispatch"
    DELIVER = "deliver"
    PAY = "pay"
    AMEND = "amend"
    SHORT_CLOSE = "short_close"
    HOLD = "hold"
    RELEASE = "release"
    CANCEL = "cancel"
    CONFIRM = "confirm"


class ReturnUpdate(StrEnum):
    """The return workflow's updates (its handlers' method names)."""

    APPROVE = "approve"
    REFUSE = "refuse"
    RECEIVE = "receive"
    INSPECT = "inspect"
    DISPATCH = "dispatch"
    DELIVER = "deliver"


# Search attributes the API sets when it starts an order (the rest the workflow upserts).
ORDER_STATUS_ATTRIBUTE = "OrderStatus"
CUSTOMER_ID_ATTRIBUTE = "CustomerId"


def return_workflow_id(return_no: str) -> str:
    """The return's workflow id: one workflow per return number, ever."""
    return f"return-{return_no}"


def audit_anchor_id(task_queue: str) -> str:
    """The audit anchor's workflow id: one per deployment (its workers' task queue)."""
    return f"audit-anchor-{task_queue}"
