"""The custom search attributes ops filter on in the Temporal UI.

Registered with the dev server by the run command and the tests (`--search-attribute`), and by
`temporal operator search-attribute create` on a cluster (see the README).
"""

from __future__ import annotations

from temporalio.common import SearchAttributeKey

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
