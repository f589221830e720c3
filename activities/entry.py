"""Order entry (录入): the request checked against master data, prices, totals and credit.

A short database step, run as a local activity (one history event, no task-queue round trip).
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import structlog
from sqlalchemy import Connection, Row
from temporalio import activity

from domain.approval import ApprovalPolicy
from domain.calendar import BusinessCalendar
from domain.messages import (
    ActivityName,
    AuditRecord,
    ValidatedLine,
    ValidateOrderInput,
    ValidateOrderResult,
)
from domain.money import MAX_ORDER_TOTAL, round_money
from domain.orders import DeliveryPolicy, Problem, delivery_date_problem
from store import audit, billing, queries
from store.db import Database

log = structlog.get_logger(__name__)


class EntryActivities:
    """Entry, bound to the database, the approval policy and the company calendar."""

    def __init__(self, db: Database, policy: ApprovalPolicy, calendar: BusinessCalendar) -> None:
        self.db = db
        self.policy = policy
        self.calendar = calendar

    def all(self) -> list[Callable[..., Any]]:
        return [self.validate_order]

    @activity.defn(name=ActivityName.VALIDATE_ORDER)
    async def validate_order(self, inp: ValidateOrderInput) -> ValidateOrderResult:
        """Entry validation (录入校验): master data, prices, totals and credit exposure.

        Read-only, except that a refused attempt is written to the audit trail.
        """
        req = inp.request
        problems: list[Problem] = []
        lines: list[ValidatedLine] = []
        customer, products = await self.db.read(
            _customer_and_products, req.customer_id, {line.sku for line in req.lines}
        )
        if customer is None:
            problems.append(
                Problem(
                    field="customer_id", message=f"Customer {req.customer_id!r} does not exist."
                )
            )
        elif not customer.active:
            problems.append(
                Problem(field="customer_id", message=f"Customer {req.customer_id!r} is not active.")
            )
        for index, line in enumerate(req.lines):
            at = f"lines[{index}]"
            product = products.get(line.sku)
            if product is None:
                problems.append(Problem(field=f"{at}.sku", message=f"Unknown SKU {line.sku!r}."))
            if line.quantity <= 0:
                problems.append(
                    Problem(field=f"{at}.quantity", message="Quantity must be positive.")
                )
            if line.unit_price is not None and line.unit_price < 0:
                problems.append(
                    Problem(field=f"{at}.unit_price", message="Unit price must not be negative.")
                )
            if product is None or line.quantity <= 0:
                continue
            list_price = product.unit_price
            unit_price = round_money(line.unit_price if line.unit_price is not None else list_price)
            discount = (
                round_money((list_price - unit_price) * 100 / list_price)
                if list_price > 0
                else Decimal(0)
            )
            lines.append(
                ValidatedLine(
                    line_no=index + 1,
                    sku=product.sku,
                    name=product.name,
                    quantity=line.quantity,
                    list_price=list_price,
                    unit_price=unit_price,
                    discount_pct=discount,
                    amount=round_money(unit_price * line.quantity),
                    lead_time_days=product.lead_time_days,
                )
            )
        total = round_money(sum((line.amount for line in lines), Decimal(0)))
        if total > MAX_ORDER_TOTAL:
            problems.append(
                Problem(
                    field="lines",
                    message=f"Order total {total} exceeds the maximum of {MAX_ORDER_TOTAL}.",
                )
            )
        today = inp.at.astimezone(ZoneInfo(self.calendar.timezone)).date()  # the company's
        wrong = req.requested_delivery_date and delivery_date_problem(
            req.requested_delivery_date, today
        )
        if wrong:
            problems.append(
                Problem(
                    field="requested_delivery_date",
                    message=f"Requested delivery date {req.requested_delivery_date} {wrong}.",
                )
            )
        if problems:
            refused = AuditRecord(
                id=inp.audit_id,
                at=inp.at,
                order_no=inp.order_no,
                action="submit_order",
                actor=req.entered_by,
                outcome="invalid",
                detail={"problems": [p.model_dump() for p in problems]},
            )
            await self.db.write(audit.append_records, self.db.audit_seal, [refused])
            log.info("order_entry_invalid", problems=len(problems))
        return ValidateOrderResult(
            problems=problems,
            customer_name=customer.name if customer else None,
            customer_group=customer.customer_group if customer else None,
            delivery_policy=req.delivery_policy
            or (customer.delivery_policy if customer else DeliveryPolicy.COMPLETE),
            credit_hold=customer is not None and bool(customer.on_hold),
            payment_terms=req.payment_terms or (customer.payment_terms if customer else None),
            customer_payment_terms=customer.payment_terms if customer else None,
            lines=lines if not problems else [],
            total=total,
            credit=(
                billing.credit_view(customer, total, req.payment_terms or customer.payment_terms)
                if customer is not None
                else None
            ),
            policy=self.policy,
        )


def _customer_and_products(
    conn: Connection, customer_id: str, skus: set[str]
) -> tuple[Row[Any] | None, dict[str, Any]]:
    """What entry reads, in one snapshot: the customer's credit and the products ordered."""
    return billing.customer_credit(conn, customer_id), queries.products_for_entry(conn, skus)
