"""Master data: customers (credit limits, regions, terms) and products (prices, stock)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request

from api.auth import Allowed, allowed, current_principal, in_scope, visible_customers
from api.bodies import IdPath
from api.deps import DbDep
from api.errors import ProblemDetails, ProblemError
from api.invoices import release_credit_hold
from api.principal import Principal
from api.record import record_command
from domain.auth import Permission
from store import queries
from store.tables import (
    CreditHoldRelease,
    Customer,
    CustomerCreate,
    CustomerPublic,
    CustomerUpdate,
    ProductCreate,
    ProductPublic,
    StockAdjustment,
)

router = APIRouter(tags=["catalog"])
ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ProblemDetails} for status in (401, 403, 404, 409, 422)
}
Reader = Annotated[Principal, allowed(Permission.CATALOG_READ)]
Editor = Annotated[Principal, allowed(Permission.CATALOG_WRITE)]
Limit = Annotated[int, Query(ge=1, le=500)]
Offset = Annotated[int, Query(ge=0, le=10**9)]


async def _public(db: DbDep, customers: Sequence[Customer]) -> list[CustomerPublic]:
    on_hold = await queries.customers_on_credit_hold(db, [c.customer_id for c in customers])
    return [
        CustomerPublic.model_validate(
            customer.model_dump() | {"credit_hold": customer.customer_id in on_hold}
        )
        for customer in customers
    ]


@router.get("/customers")
async def list_customers(
    db: DbDep, principal: Reader, limit: Limit = 100, offset: Offset = 0
) -> list[CustomerPublic]:
    """Customers (a scoped sales rep: their own)."""
    visible = await visible_customers(db, principal)
    return await _public(
        db, await queries.list_customers(db, limit=limit, offset=offset, visible=visible)
    )


@router.post("/customers", status_code=201, responses=ERRORS)
async def create_customer(body: CustomerCreate, db: DbDep, admin: Editor) -> CustomerPublic:
    try:
        customer = await queries.create_customer(db, body)
    except queries.AlreadyExists as exc:
        raise ProblemError(409, f"Customer {body.customer_id} already exists") from exc
    await record_command(
        db, admin, "create_customer", "ok", detail={"customer_id": body.customer_id}
    )
    return CustomerPublic.model_validate(customer, from_attributes=True)


@router.get("/customers/{customer_id}", responses=ERRORS)
async def get_customer(customer_id: IdPath, db: DbDep, principal: Reader) -> CustomerPublic:
    customer = await queries.get_customer(db, customer_id)
    if customer is None or not await in_scope(db, principal, customer_id):
        raise ProblemError(404, f"Customer {customer_id} not found")
    (public,) = await _public(db, [customer])
    return public


CREDIT_FIELDS = {"credit_limit", "payment_terms"}


@router.patch("/customers/{customer_id}", responses=ERRORS)
async def update_customer(
    customer_id: IdPath,
    body: CustomerUpdate,
    db: DbDep,
    request: Request,
    principal: Annotated[Principal, Depends(current_principal)],
) -> CustomerPublic:
    """Change master data (`admin`); the credit limit and payment terms are `finance`'s
    (credit:write). Orders already entered keep the terms they were approved on."""
    changed = body.model_dump(exclude_unset=True)
    needed = {Permission.CREDIT_WRITE} if CREDIT_FIELDS & changed.keys() else set()
    if changed.keys() - CREDIT_FIELDS:
        needed.add(Permission.CATALOG_WRITE)
    for permission in sorted(needed):
        await Allowed(permission)(request, principal)
    customer = await queries.update_customer(db, customer_id, body)
    if customer is None:
        raise ProblemError(404, f"Customer {customer_id} not found")
    await record_command(
        db,
        principal,
        "update_customer",
        "ok",
        detail={
            "customer_id": customer_id,
            "changes": body.model_dump(mode="json", exclude_unset=True),
        },
    )
    (public,) = await _public(db, [customer])
    return public


@router.post("/customers/{customer_id}/credit-hold/release", responses=ERRORS)
async def release_customer_credit_hold(
    customer_id: IdPath,
    body: CreditHoldRelease,
    db: DbDep,
    finance: Annotated[Principal, allowed(Permission.CREDIT_WRITE)],
) -> CustomerPublic:
    """Finance lifts the credit hold that dunning put on a customer."""
    customer = await release_credit_hold(db, finance, customer_id, body.comment)
    (public,) = await _public(db, [customer])
    return public


@router.get("/products")
async def list_products(
    db: DbDep, _: Reader, limit: Limit = 100, offset: Offset = 0
) -> list[ProductPublic]:
    rows = await queries.list_products(db, limit=limit, offset=offset)
    return [ProductPublic.model_validate(row, from_attributes=True) for row in rows]


@router.post("/products", status_code=201, responses=ERRORS)
async def create_product(body: ProductCreate, db: DbDep, admin: Editor) -> ProductPublic:
    try:
        product = await queries.create_product(db, body)
    except queries.AlreadyExists as exc:
        raise ProblemError(409, f"Product {body.sku} already exists") from exc
    await record_command(db, admin, "create_product", "ok", detail={"sku": body.sku})
    return ProductPublic.model_validate(product, from_attributes=True)


@router.get("/products/{sku}", responses=ERRORS)
async def get_product(sku: IdPath, db: DbDep, _: Reader) -> ProductPublic:
    product = await queries.get_product(db, sku)
    if product is None:
        raise ProblemError(404, f"Product {sku} not found")
    return ProductPublic.model_validate(product, from_attributes=True)


@router.post("/products/{sku}/stock", responses=ERRORS)
async def adjust_stock(
    sku: IdPath,
    body: StockAdjustment,
    db: DbDep,
    warehouse: Annotated[Principal, allowed(Permission.STOCK_WRITE)],
) -> ProductPublic:
    """Receive (positive `delta`) or write off (negative) stock; never below what is reserved."""
    try:
        product = await queries.adjust_stock(db, sku, body.delta, body.reason)
    except queries.StockTooLow as exc:
        raise ProblemError(409, str(exc)) from exc
    if product is None:
        raise ProblemError(404, f"Product {sku} not found")
    await record_command(
        db, warehouse, "adjust_stock", "ok", detail={"sku": sku, "delta": body.delta}
    )
    return ProductPublic.model_validate(product, from_attributes=True)
