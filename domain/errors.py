"""Why the workflow refuses a command: the `type` of the ApplicationError it raises.

The API maps each to one HTTP status (see `api/errors.py`).
"""

from __future__ import annotations


class Refusal:
    INVALID_STATE = "InvalidState"  # 409: the order's state forbids it now
    CONFLICT = "Conflict"  # 409: the same order number with different content
    FORBIDDEN = "Forbidden"  # 403: separation of duties, missing approval level
    INVALID = "Invalid"  # 422: the content is wrong (e.g. overpayment)
    NOT_FOUND = "NotFound"  # 404: no such shipment / production order on this order
    ORDER_INVALID = "OrderInvalid"  # entry validation failed: the attempt is not a live order
