"""The order workflow's activities: master-data checks, stock, production, shipping, billing.

They are short database steps, run as local activities (one history event each, no task-queue
round trip). Each is idempotent: its rows are keyed by order and step, so a retry after a
crash finds what the first attempt wrote and returns it instead of acting twice.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import structlog
from sqlalchemy import (
    BigInteger,
    Row,
    Table,
    and_,
    bindparam,
    case,
    exists,
    func,
    insert,
    or_,
    type_coerce,
    update,
)
from sqlalchemy import select as sa_select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import SQLModel, col, select
from sqlmodel.ext.asyncio.session import AsyncSession
from temporalio import activity
from temporalio.exceptions import ApplicationError

from domain.approval import ApprovalPolicy, credit_exposure
from domain.calendar import BusinessCalendar, Duration
from domain.messages import (
    ActivityName,
    AuditRecord,
    CancelInvoicesResult,
    CheckCreditInput,
    CompensateInput,
    CompensateResult,
    CreateShipmentInput,
    CreditCheckResult,
    CreditOrderInput,
    CreditResult,
    DeliverShipmentInput,
    DispatchShipmentInput,
    EscalationRecord,
    IssueInvoiceInput,
    LineReservation,
    PlanProductionInput,
    PlanProductionResult,
    RecordPaymentInput,
    RecordPaymentResult,
    RecordProductionInput,
    RecordProductionResult,
    RefundPaymentsResult,
    ReserveStockInput,
    ReserveStockResult,
    Resolution,
    SaveOrderViewInput,
    ValidatedLine,
    ValidateOrderInput,
    ValidateOrderResult,
)
from domain.money import MAX_ORDER_TOTAL, round_money
from domain.orders import (
    CreditNoteView,
    CreditView,
    DeliveryPolicy,
    InvoiceView,
    PaymentView,
    Problem,
    ProductionOrderView,
    RefundView,
    ShipmentLineView,
    ShipmentView,
    net_days,
)
from store import audit
from store.db import Database, DbConnection
from store.prepared import prepare
from store.queries import lock_order
from store.tables import (
    CreditNote,
    Invoice,
    Payment,
    Product,
    ProductionOrder,
    Refund,
    Reservation,
    Shipment,
    StockMovement,
)

log = structlog.get_logger(__name__)


class OrderActivities:
    """The activities, bound to the database and the approval policy the worker was given."""

    def __init__(self, db: Database, policy: ApprovalPolicy, calendar: BusinessCalendar) -> None:
        self.db = db
        self.policy = policy
        self.calendar = calendar

    def all(self) -> list[Callable[..., Any]]:
        return [
            self.validate_order,
            self.reserve_stock,
            self.plan_production,
            self.record_production,
            self.create_shipment,
            self.dispatch_shipment,
            self.deliver_shipment,
            self.issue_invoice,
            self.record_payment,
            self.save_order_view,
            self.credit_order,
            self.cancel_production_orders,
            self.release_reservations,
            self.check_credit,
            self.cancel_shipments,
            self.refund_payments,
            self.cancel_invoices,
        ]

    # --- entry ------------------------------------------------------------------------------

    @activity.defn(name=ActivityName.VALIDATE_ORDER)
    async def validate_order(self, inp: ValidateOrderInput) -> ValidateOrderResult:
        """Entry validation (录入校验): master data, prices, totals and credit exposure.

        Read-only, except that a refused attempt is written to the audit trail.
        """
        req = inp.request
        problems: list[Problem] = []
        lines: list[ValidatedLine] = []
        async with self.db.reading() as conn:
            customer = await _customer_credit(conn, req.customer_id)
            skus = list({line.sku for line in req.lines})
            products = {p.sku: p for p in await conn.execute(_PRODUCTS_FOR_ENTRY, {"skus": skus})}
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
        on_hold = customer is not None and bool(customer.on_hold)
        total = round_money(sum((line.amount for line in lines), Decimal(0)))
        if total > MAX_ORDER_TOTAL:
            problems.append(
                Problem(
                    field="lines",
                    message=f"Order total {total} exceeds the maximum of {MAX_ORDER_TOTAL}.",
                )
            )
        credit = None
        if customer is not None:
            receivables = _receivables(customer)
            credit = CreditView(
                credit_limit=customer.credit_limit,
                open_receivables=receivables,
                exposure=credit_exposure(
                    receivables, total, req.payment_terms or customer.payment_terms
                ),
            )
        today = inp.at.astimezone(ZoneInfo(self.calendar.timezone)).date()  # the company's
        if req.requested_delivery_date and req.requested_delivery_date < today:
            problems.append(
                Problem(
                    field="requested_delivery_date",
                    message=f"Requested delivery date {req.requested_delivery_date} is in the past.",
                )
            )
        if problems:
            await self._audit(
                [
                    AuditRecord(
                        id=inp.audit_id,
                        at=inp.at,
                        order_no=inp.order_no,
                        action="submit_order",
                        actor=req.entered_by,
                        outcome="invalid",
                        detail={"problems": [p.model_dump() for p in problems]},
                    )
                ]
            )
            log.info("order_entry_invalid", problems=len(problems))
        return ValidateOrderResult(
            problems=problems,
            customer_name=customer.name if customer else None,
            customer_group=customer.customer_group if customer else None,
            delivery_policy=req.delivery_policy
            or (customer.delivery_policy if customer else DeliveryPolicy.COMPLETE),
            credit_hold=on_hold,
            payment_terms=req.payment_terms or (customer.payment_terms if customer else None),
            customer_payment_terms=customer.payment_terms if customer else None,
            lines=lines if not problems else [],
            total=total,
            credit=credit,
            policy=self.policy,
        )

    # --- stock and production ------------------------------------------------------------

    @activity.defn(name=ActivityName.RESERVE_STOCK)
    async def reserve_stock(self, inp: ReserveStockInput) -> ReserveStockResult:
        """Reserve (库存预留) each line up to its quantity as far as stock allows; never more
        than is on hand. The lines are the target: after an amendment, what is no longer
        needed is released and what is new is reserved, so a repeat changes nothing."""
        results: list[LineReservation] = []
        wanted = {line.line_no: line for line in inp.lines}
        async with self.db.writing() as conn:
            await lock_order(conn, inp.order_no)
            rows = {
                row.line_no: dict(row._mapping)
                for row in await conn.execute(_RESERVATIONS_OF, {"order_no": inp.order_no})
            }
            touched: dict[int, dict[str, Any]] = {}
            for line_no, row in rows.items():
                target = wanted.get(line_no)
                if row["status"] == "active" and (target is None or target.sku != row["sku"]):
                    await _release(conn, row["sku"], row["quantity"])
                    row.update(quantity=0, status="released")
                    touched[row["id"]] = row
            added: list[dict[str, Any]] = []
            for line in inp.lines:
                row = rows.get(line.line_no) or {}
                if row:
                    touched[row["id"]] = row
                else:
                    row.update(order_no=inp.order_no, line_no=line.line_no, quantity=0)
                    row.update(created_at=inp.at)
                    added.append(row)
                row.update(sku=line.sku, status="active")
                if row["quantity"] > line.quantity:
                    await _release(conn, line.sku, row["quantity"] - line.quantity)
                    row["quantity"] = line.quantity
                elif row["quantity"] < line.quantity:
                    available = await lock_product(conn, line.sku)
                    take = max(0, min(line.quantity - row["quantity"], available))
                    if take:
                        await reserve(conn, line.sku, take)
                        row["quantity"] += take
                results.append(
                    LineReservation(
                        line_no=line.line_no,
                        sku=line.sku,
                        reserved_quantity=row["quantity"],
                        short_quantity=max(0, line.quantity - row["quantity"]),
                    )
                )
            if touched:
                await conn.execute(
                    _SET_RESERVATION,
                    [
                        {
                            "reservation_id": row["id"],
                            "sku": row["sku"],
                            "quantity": row["quantity"],
                            "status": row["status"],
                            "updated_at": inp.at,
                        }
                        for row in touched.values()
                    ],
                )
            if added:
                await conn.execute(
                    _INSERT_RESERVATION, [row | {"updated_at": inp.at} for row in added]
                )
        log.info("stock_reserved", lines=[r.model_dump() for r in results])
        return ReserveStockResult(lines=results)

    @activity.defn(name=ActivityName.PLAN_PRODUCTION)
    async def plan_production(self, inp: PlanProductionInput) -> PlanProductionResult:
        """A production order (生产计划) per short line, due after the product's lead time."""
        planned: list[ProductionOrderView] = []
        async with self.db.writer() as session:
            for shortage in inp.shortages:
                po_id = f"PO-{inp.order_no}-{shortage.line_no}" + (
                    f"-r{inp.revision}" if inp.revision > 1 else ""
                )
                po = await session.get(ProductionOrder, po_id)
                if po is None:
                    po = ProductionOrder(
                        id=po_id,
                        order_no=inp.order_no,
                        line_no=shortage.line_no,
                        sku=shortage.sku,
                        quantity=shortage.quantity,
                        # Lead times are working days in the company calendar.
                        due_date=self.calendar.add(inp.at, Duration(days=shortage.lead_time_days))
                        .astimezone(ZoneInfo(self.calendar.timezone))
                        .date(),
                        created_at=inp.at,
                    )
                    session.add(po)
                planned.append(_production_view(po))
        log.info("production_planned", production_orders=[p.id for p in planned])
        return PlanProductionResult(production_orders=planned)

    @activity.defn(name=ActivityName.RECORD_PRODUCTION)
    async def record_production(self, inp: RecordProductionInput) -> RecordProductionResult:
        """Book produced goods into stock and reserve them for the order's line.

        `produced_quantity` is cumulative, so a repeated report changes nothing.
        """
        async with self.db.writer() as session:
            po = await session.get(ProductionOrder, inp.production_order_id, with_for_update=True)
            if po is None or po.order_no != inp.order_no:
                raise ApplicationError(
                    f"Production order {inp.production_order_id} is not part of {inp.order_no}",
                    type="NotFound",
                    non_retryable=True,
                )
            reservation = await _reservation(session, po.order_no, po.line_no)
            if reservation is None:
                raise ApplicationError("No reservation for the produced line", non_retryable=True)
            added = inp.produced_quantity - po.produced_quantity
            if added > 0:
                await lock_product(await session.connection(), po.sku)
                to_reserve = max(0, min(added, po.quantity - po.produced_quantity))
                await session.exec(
                    update(Product)
                    .where(col(Product.sku) == po.sku)
                    .values(
                        stock_on_hand=Product.stock_on_hand + added,
                        reserved=Product.reserved + to_reserve,
                    )
                )
                session.add(
                    StockMovement(
                        sku=po.sku,
                        delta=added,
                        reason=f"produced {po.id}",
                        order_no=po.order_no,
                        at=inp.at,
                    )
                )
                reservation.quantity += to_reserve
                reservation.updated_at = inp.at
                po.produced_quantity = inp.produced_quantity
                if po.produced_quantity >= po.quantity:
                    po.status = "completed"
                    po.completed_at = inp.at
                session.add_all([reservation, po])
            view = _production_view(po)
            reserved = reservation.quantity
        log.info("production_recorded", production_order=view.id, produced=view.produced_quantity)
        return RecordProductionResult(production_order=view, line_reserved_quantity=reserved)

    # --- shipping ----------------------------------------------------------------------------

    @activity.defn(name=ActivityName.CREATE_SHIPMENT)
    async def create_shipment(self, inp: CreateShipmentInput) -> ShipmentView:
        """The shipment and its pick list (拣货单), once everything is reserved."""
        shipment_id = f"SH-{inp.order_no}-{inp.seq}"
        new = {
            "id": shipment_id,
            "order_no": inp.order_no,
            "return_no": None,
            "status": "ready",
            "lines": [line.model_dump() for line in inp.lines],
            "created_at": inp.at,
        }
        async with self.db.writing() as conn:
            view = ShipmentView.model_validate(await _insert_once(conn, _SHIPMENTS, new))
        log.info("shipment_created", shipment=shipment_id)
        return view

    @activity.defn(name=ActivityName.DISPATCH_SHIPMENT)
    async def dispatch_shipment(self, inp: DispatchShipmentInput) -> ShipmentView:
        """Goods leave (发货): stock and reservations go down by what the shipment carries."""
        async with self.db.writing() as conn:
            shipment = await _shipment_row(conn, inp.order_no, inp.shipment_id)
            if shipment["status"] == "ready":
                lines: list[dict[str, Any]] = [
                    {
                        "product": str(ln["sku"]),
                        "qty": int(ln["quantity"]),
                        "order": inp.order_no,
                        "line": int(ln["line_no"]),
                        "at": inp.at,
                    }
                    for ln in shipment["lines"]
                ]
                for line in lines:
                    await lock_product(conn, line["product"])
                    await conn.execute(_SHIP_STOCK, line)
                    await conn.execute(_SHIP_RESERVATION, line)
                if lines:
                    await conn.execute(
                        _INSERT_MOVEMENT,
                        [
                            {
                                "sku": line["product"],
                                "delta": -line["qty"],
                                "reason": f"shipped {inp.shipment_id}",
                                "order_no": inp.order_no,
                                "at": inp.at,
                            }
                            for line in lines
                        ],
                    )
                changed = {
                    "status": "dispatched",
                    "carrier": inp.carrier,
                    "tracking_no": inp.tracking_no,
                    "dispatched_at": inp.at,
                }
                await conn.execute(_SET_SHIPMENT, changed | {"shipment_id": inp.shipment_id})
                shipment |= changed
        view = ShipmentView.model_validate(shipment)
        log.info("shipment_dispatched", shipment=view.id, carrier=view.carrier)
        return view

    @activity.defn(name=ActivityName.DELIVER_SHIPMENT)
    async def deliver_shipment(self, inp: DeliverShipmentInput) -> ShipmentView:
        """The customer signed for the goods (签收)."""
        async with self.db.writing() as conn:
            shipment = await _shipment_row(conn, inp.order_no, inp.shipment_id)
            if shipment["status"] == "dispatched":
                changed = {
                    "status": "delivered",
                    "signed_by": inp.signed_by,
                    "delivered_at": inp.at,
                }
                await conn.execute(_SET_SHIPMENT, changed | {"shipment_id": inp.shipment_id})
                shipment |= changed
        view = ShipmentView.model_validate(shipment)
        log.info("shipment_delivered", shipment=view.id)
        return view

    # --- billing -----------------------------------------------------------------------------

    @activity.defn(name=ActivityName.ISSUE_INVOICE)
    async def issue_invoice(self, inp: IssueInvoiceInput) -> InvoiceView:
        """The invoice (开票); due at once for prepaid orders, after the net days otherwise."""
        invoice_id = f"INV-{inp.order_no}-{inp.seq}"
        # Net days count from the company's date, not UTC's: at 07:30 in Shanghai it is still
        # the day before in UTC, and the invoice would fall due a day early.
        issued_on = inp.at.astimezone(ZoneInfo(self.calendar.timezone)).date()
        new = {
            "id": invoice_id,
            "order_no": inp.order_no,
            "customer_id": inp.customer_id,
            "amount": inp.amount,
            "paid_amount": Decimal(0),
            "credited_amount": Decimal(0),
            "payment_terms": inp.payment_terms,
            "due_date": issued_on + timedelta(days=net_days(inp.payment_terms) or 0),
            "status": "issued",
            "issued_at": inp.at,
        }
        async with self.db.writing() as conn:
            view = InvoiceView.model_validate(await _insert_once(conn, _INVOICES, new))
        log.info("invoice_issued", invoice=invoice_id, amount=str(view.amount))
        return view

    @activity.defn(name=ActivityName.RECORD_PAYMENT)
    async def record_payment(self, inp: RecordPaymentInput) -> RecordPaymentResult:
        """A payment against the invoice; the same payment id or reference counts once."""
        async with self.db.writing() as conn:
            found = (
                await conn.execute(_INVOICE_FOR_UPDATE, {"invoice_id": inp.invoice_id})
            ).first()
            if found is None or found.order_no != inp.order_no:
                raise ApplicationError(
                    f"Invoice {inp.invoice_id} is not part of {inp.order_no}",
                    type="NotFound",
                    non_retryable=True,
                )
            invoice = dict(found._mapping)
            # This payment: by its id, else by its reference on the order (the same transfer
            # reported twice).
            row = (
                await conn.execute(
                    _PAYMENT_OF,
                    {
                        "payment_id": inp.payment_id,
                        "order_no": inp.order_no,
                        "reference": inp.reference,
                    },
                )
            ).first()
            if row is None:
                payment = {
                    "id": inp.payment_id,
                    "order_no": inp.order_no,
                    "invoice_id": inp.invoice_id,
                    "amount": inp.amount,
                    "method": inp.method,
                    "reference": inp.reference,
                    "received_at": inp.at,
                }
                await conn.execute(_INSERT_PAYMENT, payment)
                invoice["paid_amount"] += inp.amount
                if invoice["amount"] - invoice["paid_amount"] - invoice["credited_amount"] <= 0:
                    invoice["status"] = "paid"  # as `Invoice.settle_if_covered`
                await conn.execute(
                    _SET_INVOICE_PAID,
                    {
                        "invoice_id": inp.invoice_id,
                        "paid_amount": invoice["paid_amount"],
                        "status": invoice["status"],
                    },
                )
            else:
                payment = dict(row._mapping)
            result = RecordPaymentResult(
                payment=PaymentView.model_validate(payment),
                invoice=InvoiceView.model_validate(invoice),
            )
        log.info("payment_recorded", payment=result.payment.id, amount=str(result.payment.amount))
        return result

    # --- read model and audit --------------------------------------------------------------

    @activity.defn(name=ActivityName.SAVE_ORDER_VIEW)
    async def save_order_view(self, inp: SaveOrderViewInput) -> None:
        """Write the order's read-model row (only forward: an older `seq` never overwrites).

        Saves of orders running at the same time share a transaction (`save_views`)."""
        await self.db.grouped(save_views).write(inp)

    # --- compensation (cancellation undoes each step, once) -------------------------------

    @activity.defn(name=ActivityName.CANCEL_PRODUCTION_ORDERS)
    async def cancel_production_orders(self, inp: CompensateInput) -> CompensateResult:
        """Cancel the order's production orders that are not complete."""
        async with self.db.writer() as session:
            rows = (
                await session.exec(
                    select(ProductionOrder).where(
                        col(ProductionOrder.order_no) == inp.order_no,
                        col(ProductionOrder.status) == "planned",
                        *_only(ProductionOrder.id, inp.ids),
                    )
                )
            ).all()
            for po in rows:
                po.status = "cancelled"
                po.completed_at = inp.at
                session.add(po)
        log.info("production_orders_cancelled", ids=[po.id for po in rows], reason=inp.reason)
        return CompensateResult(ids=[po.id for po in rows])

    @activity.defn(name=ActivityName.RELEASE_RESERVATIONS)
    async def release_reservations(self, inp: CompensateInput) -> CompensateResult:
        """Give the order's reserved stock back to everyone else."""
        released: list[str] = []
        async with self.db.writer() as session:
            rows = (
                await session.exec(
                    select(Reservation)
                    .where(
                        col(Reservation.order_no) == inp.order_no,
                        col(Reservation.status) == "active",
                    )
                    .with_for_update()
                )
            ).all()
            for reservation in rows:
                if reservation.quantity:
                    await _release(
                        await session.connection(), reservation.sku, reservation.quantity
                    )
                    released.append(f"{reservation.sku}x{reservation.quantity}")
                reservation.quantity = 0
                reservation.status = "released"
                reservation.updated_at = inp.at
                session.add(reservation)
        log.info("reservations_released", released=released, reason=inp.reason)
        return CompensateResult(ids=released)

    @activity.defn(name=ActivityName.CHECK_CREDIT)
    async def check_credit(self, inp: CheckCreditInput) -> CreditCheckResult:
        """The customer's credit now: open receivables plus what this order adds, and holds."""
        async with self.db.reading() as conn:
            customer = await _customer_credit(conn, inp.customer_id)
        if customer is None:
            raise ApplicationError("customer vanished", type="NotFound", non_retryable=True)
        receivables = _receivables(customer)
        return CreditCheckResult(
            credit=CreditView(
                credit_limit=customer.credit_limit,
                open_receivables=receivables,
                exposure=receivables + inp.uninvoiced_amount,
            ),
            on_credit_hold=bool(customer.on_hold),
        )

    @activity.defn(name=ActivityName.CANCEL_SHIPMENTS)
    async def cancel_shipments(self, inp: CompensateInput) -> CompensateResult:
        """Withdraw the pick lists of shipments not yet dispatched."""
        async with self.db.writer() as session:
            rows = (
                await session.exec(
                    select(Shipment).where(
                        col(Shipment.order_no) == inp.order_no,
                        col(Shipment.status) == "ready",
                        *_only(Shipment.id, inp.ids),
                    )
                )
            ).all()
            for shipment in rows:
                shipment.status = "cancelled"
                session.add(shipment)
        log.info("shipments_cancelled", ids=[s.id for s in rows], reason=inp.reason)
        return CompensateResult(ids=[s.id for s in rows])

    @activity.defn(name=ActivityName.REFUND_PAYMENTS)
    async def refund_payments(self, inp: CompensateInput) -> RefundPaymentsResult:
        """Pay back every payment of the order, once each (the refund id derives from it)."""
        refunds: list[RefundView] = []
        async with self.db.writer() as session:
            payments = (
                await session.exec(select(Payment).where(col(Payment.order_no) == inp.order_no))
            ).all()
            for payment in payments:
                refund = await session.get(Refund, f"RF-{payment.id}")
                if refund is None:
                    refund = Refund(
                        id=f"RF-{payment.id}",
                        order_no=inp.order_no,
                        payment_id=payment.id,
                        amount=payment.amount,
                        reason=inp.reason[:200],
                        refunded_at=inp.at,
                    )
                    session.add(refund)
                refunds.append(
                    RefundView(
                        id=refund.id,
                        payment_id=refund.payment_id,
                        amount=refund.amount,
                        refunded_at=refund.refunded_at,
                    )
                )
        log.info("payments_refunded", ids=[r.id for r in refunds], reason=inp.reason)
        return RefundPaymentsResult(refunds=refunds)

    @activity.defn(name=ActivityName.CREDIT_ORDER)
    async def credit_order(self, inp: CreditOrderInput) -> CreditResult:
        """Credit part of an order (a paid-for backorder that was short-closed), once."""
        result = await credit_order(self.db, inp)
        log.info("order_credited", credit_note=result.credit_note.id, amount=str(inp.amount))
        return result

    @activity.defn(name=ActivityName.CANCEL_INVOICES)
    async def cancel_invoices(self, inp: CompensateInput) -> CancelInvoicesResult:
        """Void unpaid invoices; an invoice with payments gets a credit note instead."""
        result = CancelInvoicesResult()
        async with self.db.writer() as session:
            invoices = (
                await session.exec(
                    select(Invoice).where(
                        col(Invoice.order_no) == inp.order_no,
                        col(Invoice.status).in_(["issued", "paid", "credited"]),
                        *_only(Invoice.id, inp.ids),
                    )
                )
            ).all()
            for invoice in invoices:
                if invoice.paid_amount == 0 and invoice.status == "issued":
                    invoice.status = "void"
                    result.voided.append(invoice.id)
                    session.add(invoice)
                    continue
                note = await session.get(CreditNote, f"CN-{invoice.id}")
                if note is None:
                    note = CreditNote(
                        id=f"CN-{invoice.id}",
                        order_no=inp.order_no,
                        invoice_id=invoice.id,
                        amount=invoice.amount,
                        reason=inp.reason[:200],
                        issued_at=inp.at,
                    )
                    invoice.status = "credited"
                    session.add_all([note, invoice])
                result.credit_notes.append(
                    CreditNoteView(
                        id=note.id,
                        invoice_id=note.invoice_id,
                        amount=note.amount,
                        issued_at=note.issued_at,
                    )
                )
        log.info(
            "invoices_cancelled",
            voided=result.voided,
            credit_notes=[n.id for n in result.credit_notes],
            reason=inp.reason,
        )
        return result

    async def _audit(self, records: list[AuditRecord]) -> None:
        async with self.db.writing() as conn:
            await _add_audit(conn, records)


# --- helpers -------------------------------------------------------------------------------


_REPLACED = (
    "seq",
    "status",
    "total",
    "closed",
    "overdue",
    "escalation_level",
    "updated_at",
    "view",
)


@functools.cache
def _view_upsert(dialect: str) -> Any:
    """Insert an order's row, or replace the columns that change if its `seq` is newer (a
    plain statement: this runs at every point every order waits)."""
    table = SQLModel.metadata.tables["orderrecord"]
    upsert = (sqlite_insert if dialect == "sqlite" else pg_insert)(table)
    statement = upsert.on_conflict_do_update(
        index_elements=[table.c.order_no],
        set_={name: upsert.excluded[name] for name in _REPLACED},
        where=table.c.seq < upsert.excluded.seq,
    )
    prepare(statement)
    return statement


async def save_views(conn: DbConnection, saves: list[SaveOrderViewInput]) -> None:
    """Read-model rows of one or more orders, with their audit entries and escalation log.

    One statement writes the rows: an order's newest save inserts or replaces its row, and an
    older one (a retry, a late arrival) never overwrites a newer row."""
    newest: dict[str, SaveOrderViewInput] = {}
    for inp in saves:
        kept = newest.get(inp.view.order_no)
        if kept is None or inp.seq > kept.seq:
            newest[inp.view.order_no] = inp
    rows = [_view_row(inp) for inp in newest.values()]
    await conn.execute(_view_upsert(conn.dialect.name), rows)
    await _add_audit(conn, [record for inp in saves for record in inp.audit])
    for inp in saves:
        await log_escalations(conn, inp.escalations, inp.resolutions)


def _view_row(inp: SaveOrderViewInput) -> dict[str, Any]:
    view = inp.view
    return {
        "order_no": view.order_no,
        "workflow_id": view.workflow_id,
        "customer_id": view.customer_id,
        "priority": view.priority.value,
        "entered_by": view.entered_by,
        "fingerprint": inp.fingerprint,
        "received_at": view.received_at,
        "seq": inp.seq,
        "status": view.status.value,
        "total": view.total,
        "closed": view.closed,
        "overdue": view.overdue,
        "escalation_level": view.escalation_level,
        "updated_at": view.updated_at,
        "view": view.model_dump(mode="json"),
    }


async def _add_audit(conn: DbConnection, records: list[AuditRecord]) -> None:
    """Audit entries join the tamper-evident chain in the same transaction as the effect."""
    await audit.append(
        conn,
        [
            audit.new_entry(**record.model_dump(mode="json") | {"at": record.at})
            for record in records
        ],
    )


async def _reservation(session: AsyncSession, order_no: str, line_no: int) -> Reservation | None:
    query = select(Reservation).where(
        col(Reservation.order_no) == order_no, col(Reservation.line_no) == line_no
    )
    return (await session.exec(query.with_for_update())).first()


def _only(column: Any, ids: list[str] | None) -> list[Any]:
    return [] if ids is None else [col(column).in_(ids)]


# The steps every order takes (entry, reservation, shipping, billing, the read model) run plain
# statements built once, on a connection, not the ORM's loads and unit of work: a deliver
# transaction costs 0.7 ms of CPU through the ORM, 0.4 ms like this. A `bindparam` of an UPDATE
# must not be named like a column of its table (SQLAlchemy refuses the statement).
_CUSTOMERS = SQLModel.metadata.tables["customer"]
_HOLDS = SQLModel.metadata.tables["credithold"]
_INVOICES = SQLModel.metadata.tables["invoice"]
_PAYMENTS = SQLModel.metadata.tables["payment"]
_SHIPMENTS = SQLModel.metadata.tables["shipment"]
_PRODUCTS = SQLModel.metadata.tables["product"]
_RESERVATIONS = SQLModel.metadata.tables["reservation"]

# A customer with their credit: holds not yet released, and what their issued invoices still
# owe (money is stored in cents: the raw integers are summed and converted once).
_CUSTOMER_CREDIT = sa_select(
    _CUSTOMERS,
    exists()
    .where(_HOLDS.c.customer_id == _CUSTOMERS.c.customer_id, _HOLDS.c.released_at.is_(None))
    .label("on_hold"),
    sa_select(
        func.coalesce(
            func.sum(
                type_coerce(_INVOICES.c.amount, BigInteger)
                - type_coerce(_INVOICES.c.paid_amount, BigInteger)
                - type_coerce(_INVOICES.c.credited_amount, BigInteger)
            ),
            0,
        )
    )
    .where(
        _INVOICES.c.customer_id == _CUSTOMERS.c.customer_id,
        _INVOICES.c.status == "issued",
        # A prepaid invoice is asked for before anything ships: not money owed on credit.
        _INVOICES.c.payment_terms != "prepaid",
    )
    .scalar_subquery()
    .label("receivables_cents"),
).where(_CUSTOMERS.c.customer_id == bindparam("customer_id"))
_PRODUCTS_FOR_ENTRY = sa_select(
    _PRODUCTS.c.sku, _PRODUCTS.c.name, _PRODUCTS.c.unit_price, _PRODUCTS.c.lead_time_days
).where(_PRODUCTS.c.sku.in_(bindparam("skus", expanding=True)))

_RESERVATIONS_OF = sa_select(_RESERVATIONS).where(_RESERVATIONS.c.order_no == bindparam("order_no"))
_SET_RESERVATION = update(_RESERVATIONS).where(_RESERVATIONS.c.id == bindparam("reservation_id"))
_INSERT_RESERVATION = insert(_RESERVATIONS)
_RELEASE = (
    update(_PRODUCTS)
    .where(_PRODUCTS.c.sku == bindparam("product"))
    .values(reserved=_PRODUCTS.c.reserved - bindparam("qty"))
)
# The guard in WHERE makes overselling impossible even without the row lock.
_RESERVE = (
    update(_PRODUCTS)
    .where(
        _PRODUCTS.c.sku == bindparam("product"),
        _PRODUCTS.c.stock_on_hand - _PRODUCTS.c.reserved >= bindparam("qty"),
    )
    .values(reserved=_PRODUCTS.c.reserved + bindparam("qty"))
)

_ESCALATIONS = SQLModel.metadata.tables["escalation"]
_ESCALATIONS_KNOWN = sa_select(_ESCALATIONS.c.id).where(
    _ESCALATIONS.c.id.in_(bindparam("ids", expanding=True))
)
_INSERT_ESCALATION = insert(_ESCALATIONS)

_INVOICE_FOR_UPDATE = (
    sa_select(_INVOICES).where(_INVOICES.c.id == bindparam("invoice_id")).with_for_update()
)
# Sets the columns its parameters name (besides `invoice_id`).
_SET_INVOICE_PAID = update(_INVOICES).where(_INVOICES.c.id == bindparam("invoice_id"))
_PAYMENT_OF = (
    sa_select(_PAYMENTS)
    .where(
        or_(
            _PAYMENTS.c.id == bindparam("payment_id"),
            and_(
                _PAYMENTS.c.order_no == bindparam("order_no"),
                _PAYMENTS.c.reference == bindparam("reference"),
            ),
        )
    )
    .order_by(case((_PAYMENTS.c.id == bindparam("payment_id"), 0), else_=1))
    .limit(1)
)
_INSERT_PAYMENT = insert(_PAYMENTS)

_SHIPMENT_FOR_UPDATE = (
    sa_select(_SHIPMENTS).where(_SHIPMENTS.c.id == bindparam("shipment_id")).with_for_update()
)
# Sets the columns its parameters name (besides `shipment_id`).
_SET_SHIPMENT = update(_SHIPMENTS).where(_SHIPMENTS.c.id == bindparam("shipment_id"))
_LOCK_PRODUCT = (
    sa_select(_PRODUCTS.c.stock_on_hand, _PRODUCTS.c.reserved)
    .where(_PRODUCTS.c.sku == bindparam("sku"))
    .with_for_update()
)
_SHIP_STOCK = (
    update(_PRODUCTS)
    .where(_PRODUCTS.c.sku == bindparam("product"))
    .values(
        stock_on_hand=_PRODUCTS.c.stock_on_hand - bindparam("qty"),
        reserved=_PRODUCTS.c.reserved - bindparam("qty"),
    )
)
_SHIPPED_QUANTITY = _RESERVATIONS.c.quantity - bindparam("qty")
_SHIP_RESERVATION = (
    update(_RESERVATIONS)
    .where(
        _RESERVATIONS.c.order_no == bindparam("order"),
        _RESERVATIONS.c.line_no == bindparam("line"),
    )
    .values(
        quantity=_SHIPPED_QUANTITY,
        status=case((_SHIPPED_QUANTITY <= 0, "shipped"), else_="active"),
        updated_at=bindparam("at"),
    )
)
_INSERT_MOVEMENT = insert(SQLModel.metadata.tables["stockmovement"])
prepare(
    _CUSTOMER_CREDIT,
    _PRODUCTS_FOR_ENTRY,
    _RESERVATIONS_OF,
    _SET_RESERVATION,
    _INSERT_RESERVATION,
    _RELEASE,
    _RESERVE,
    _ESCALATIONS_KNOWN,
    _INSERT_ESCALATION,
    _INVOICE_FOR_UPDATE,
    _SET_INVOICE_PAID,
    _PAYMENT_OF,
    _INSERT_PAYMENT,
    _SHIPMENT_FOR_UPDATE,
    _SET_SHIPMENT,
    _LOCK_PRODUCT,
    _SHIP_STOCK,
    _SHIP_RESERVATION,
    _INSERT_MOVEMENT,
)


async def _shipment_row(conn: DbConnection, order_no: str, shipment_id: str) -> dict[str, Any]:
    """The shipment's row, locked; `order_no` must own it (its order, or the return it replaces
    goods for)."""
    row = (await conn.execute(_SHIPMENT_FOR_UPDATE, {"shipment_id": shipment_id})).first()
    if row is None or order_no not in (row.order_no, row.return_no):
        raise ApplicationError(
            f"Shipment {shipment_id} is not part of {order_no}", type="NotFound", non_retryable=True
        )
    return dict(row._mapping)


async def lock_product(conn: DbConnection, sku: str) -> int:
    """Lock the product's row (PostgreSQL; SQLite's writer already holds the database) and
    answer what is available (not reserved); NotFound for an unknown SKU."""
    row = (await conn.execute(_LOCK_PRODUCT, {"sku": sku})).first()
    if row is None:
        raise ApplicationError(f"Unknown SKU {sku!r}", type="NotFound", non_retryable=True)
    return int(row.stock_on_hand - row.reserved)


async def _release(conn: DbConnection, sku: str, quantity: int) -> None:
    if quantity:
        await lock_product(conn, sku)
        await conn.execute(_RELEASE, {"product": sku, "qty": quantity})


async def reserve(conn: DbConnection, sku: str, quantity: int) -> None:
    result = await conn.execute(_RESERVE, {"product": sku, "qty": quantity})
    if result.rowcount != 1:
        raise RuntimeError(f"stock of {sku} changed while reserving; retrying")


async def _customer_credit(conn: DbConnection, customer_id: str) -> Row[Any] | None:
    """The customer's row with `on_hold` and `receivables_cents` (`_receivables`)."""
    return (await conn.execute(_CUSTOMER_CREDIT, {"customer_id": customer_id})).first()


def _receivables(customer: Row[Any]) -> Decimal:
    return round_money(Decimal(int(customer.receivables_cents)) / 100)


@functools.cache
def _insert_new(table: Table, dialect: str) -> Any:
    """Insert a row unless one with its key exists."""
    statement = (sqlite_insert if dialect == "sqlite" else pg_insert)(
        table
    ).on_conflict_do_nothing()
    prepare(statement)
    return statement


async def _insert_once(conn: DbConnection, table: Table, new: dict[str, Any]) -> dict[str, Any]:
    """Insert `new`, keyed by its `id`, unless a row with that id exists (a retry): the row as
    it is now. One statement when the row is new."""
    if (await conn.execute(_insert_new(table, conn.dialect.name), new)).rowcount == 1:
        return new
    row = (await conn.execute(sa_select(table).where(table.c.id == new["id"]))).one()
    return dict(row._mapping)


def _production_view(po: ProductionOrder) -> ProductionOrderView:
    return ProductionOrderView.model_validate(po, from_attributes=True)


def shipment_view(shipment: Shipment) -> ShipmentView:
    return ShipmentView(
        id=shipment.id,
        status=shipment.status,
        lines=[ShipmentLineView.model_validate(line) for line in shipment.lines],
        created_at=shipment.created_at,
        carrier=shipment.carrier,
        tracking_no=shipment.tracking_no,
        dispatched_at=shipment.dispatched_at,
        delivered_at=shipment.delivered_at,
        signed_by=shipment.signed_by,
    )


def _invoice_view(invoice: Invoice) -> InvoiceView:
    return InvoiceView.model_validate(invoice, from_attributes=True)


async def credit_order(db: Database, inp: CreditOrderInput) -> CreditResult:
    """A credit note on an order, once (its id, and its refund's, derive from `credit_id`):
    first taken off what the order still owes on its open invoices, oldest first; what exceeds
    that is refunded from what was paid."""
    note_id, refund_id = f"CN-{inp.credit_id}", f"RF-{inp.credit_id}"
    async with db.writer() as session:
        await lock_order(await session.connection(), inp.order_no)
        invoices = list(
            (
                await session.exec(
                    select(Invoice)
                    .where(col(Invoice.order_no) == inp.order_no)
                    .order_by(col(Invoice.issued_at), col(Invoice.id))
                )
            ).all()
        )
        note = await session.get(CreditNote, note_id)
        refund = await session.get(Refund, refund_id)
        if note is None:
            left, credited = inp.amount, list[str]()
            for invoice in invoices:
                if invoice.status != "issued" or left <= 0:
                    continue
                applied = min(left, invoice.outstanding)
                credited.append(invoice.id)
                invoice.credited_amount += applied
                invoice.settle_if_covered()
                left -= applied
                session.add(invoice)
            note = CreditNote(
                id=note_id,
                order_no=inp.order_no,
                # The invoice it settled first, else the order's latest (refunded against it).
                invoice_id=(credited or [i.id for i in invoices[-1:]] or [""])[0],
                amount=inp.amount,
                reason=inp.reason[:200],
                issued_at=inp.at,
            )
            session.add(note)
            paid = await _total(session, Payment.amount, Payment.order_no, inp.order_no)
            refunded = await _total(session, Refund.amount, Refund.order_no, inp.order_no)
            due = min(left, paid - refunded)
            if due > 0:
                refund = Refund(
                    id=refund_id,
                    order_no=inp.order_no,
                    payment_id=f"credit:{note_id}",
                    amount=due,
                    reason=inp.reason[:200],
                    refunded_at=inp.at,
                )
                session.add(refund)
        return CreditResult(
            credit_note=CreditNoteView(
                id=note.id, invoice_id=note.invoice_id, amount=note.amount, issued_at=note.issued_at
            ),
            refund=RefundView(
                id=refund.id,
                payment_id=refund.payment_id,
                amount=refund.amount,
                refunded_at=refund.refunded_at,
            )
            if refund is not None
            else None,
            invoices=[_invoice_view(invoice) for invoice in invoices],
        )


async def _total(session: AsyncSession, amount: Any, key: Any, order_no: str) -> Decimal:
    rows = (await session.exec(select(amount).where(col(key) == order_no))).all()
    return sum(rows, Decimal(0))


async def log_escalations(
    conn: DbConnection, records: list[EscalationRecord], resolutions: list[Resolution]
) -> None:
    """The escalation log: new steps once each, and when their deadlines were resolved."""
    if records:
        ids = [r.id for r in records]
        seen = set((await conn.execute(_ESCALATIONS_KNOWN, {"ids": ids})).scalars())
        new = [r.model_dump() for r in records if r.id not in seen]
        if new:
            await conn.execute(_INSERT_ESCALATION, new)
    for resolution in resolutions:
        rows = update(_ESCALATIONS).where(
            _ESCALATIONS.c.order_no == resolution.order_no,
            _ESCALATIONS.c.sla == resolution.sla,
            _ESCALATIONS.c.key == resolution.key,
            _ESCALATIONS.c.resolved_at.is_(None),
        )
        if resolution.ids is not None:
            rows = rows.where(_ESCALATIONS.c.id.in_(resolution.ids))
        await conn.execute(rows.values(resolved_at=resolution.at))
