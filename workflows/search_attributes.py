"""The custom search attributes ops filter on in the Temporal UI.

Registered with the dev server by the run command and the tests (`--search-attribute`), and by
`temporal operator search-attribute create` on a cluster (see the README).
"""

from __future__ import annotations

from typing import Any

from temporalio import workflow
from temporalio.common import SearchAttributeKey, SearchAttributeUpdate

with workflow.unsafe.imports_passed_through():
    from domain.orders import OrderView

ORDER_STATUS = SearchAttributeKey.for_keyword("OrderStatus")
CUSTOMER_ID = SearchAttributeKey.for_keyword("CustomerId")
ORDER_TOTAL = SearchAttributeKey.for_float("OrderTotal")
OVERDUE = SearchAttributeKey.for_bool("Overdue")
ESCALATION_LEVEL = SearchAttributeKey.for_int("EscalationLevel")

# Each key with its type as `temporal server start-dev --search-attribute Name=Type` spells it.
CLI_TYPES: dict[str, str] = {
    ORDER_STATUS.name: "Keyword",
    CUSTOMER_ID.name: "Keyword",
    ORDER_TOTAL.name: "Double",
    OVERDUE.name: "Bool",
    ESCALATION_LEVEL.name: "Int",
}


def cli_flags() -> list[str]:
    """`--search-attribute Name=Type` flags for `temporal server start-dev`."""
    flags: list[str] = []
    for name, type_name in CLI_TYPES.items():
        flags += ["--search-attribute", f"{name}={type_name}"]
    return flags


ALL_KEYS = (ORDER_STATUS, CUSTOMER_ID, ORDER_TOTAL, OVERDUE, ESCALATION_LEVEL)


def publish(view: OrderView, published: dict[str, object], *, deadlines: bool) -> dict[str, object]:
    """Set the order's search attributes (when they changed) and its current details.

    Args:
        view: The order as it stands.
        published: The values set last time.
        deadlines: Whether the order runs deadlines (and so publishes `Overdue` and
            `EscalationLevel`); orders started before them never did.

    Returns:
        The values now set, for the next call.
    """
    values: dict[str, object] = {
        "status": view.status.value,
        "customer": view.customer_id,
        "total": float(view.total),
    }
    updates: list[SearchAttributeUpdate[Any]] = [
        ORDER_STATUS.value_set(view.status.value),
        CUSTOMER_ID.value_set(view.customer_id),
        ORDER_TOTAL.value_set(float(view.total)),
    ]
    if deadlines:
        values |= {"overdue": view.overdue, "level": view.escalation_level}
        updates += [
            OVERDUE.value_set(view.overdue),
            ESCALATION_LEVEL.value_set(view.escalation_level),
        ]
    if values != published:
        workflow.upsert_search_attributes(updates)
    waiting = f"\n\n**Waiting for:** {view.waiting_for}" if view.waiting_for else ""
    overdue = f"\n\n**Overdue:** escalation level {view.escalation_level}" if view.overdue else ""
    promise = view.promise
    promised = (
        f"\n\n**Promised:** {promise.promised_date} (first {promise.first_promised_date}); "
        f"{promise.basis}"
        if promise is not None
        else ""
    )
    workflow.set_current_details(
        f"**{view.status.label_en} ({view.status.label_zh})**{promised}{waiting}{overdue}"
    )
    return values
