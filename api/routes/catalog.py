"""Master data: customers (credit limits, regions, terms) and products (prices, stock)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any

from fastapi import APIRouter, Query

from api.deps import DbDep
from api.errors import ProblemDetails, ProblemError
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
    status: {"model": ProblemDetails} for status in (404, 409, 422)
}
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
async def list_customers(db: DbDep, limit: Limit = 100, offset: Offset = 0) -> list[CustomerPublic]:
    return await _public(db, await queries.list_customers(db, limit=limit, offset=offset))


@router.post("/customers", status_code=201, responses=ERRORS)
async def create_customer(body: CustomerCreate, db: DbDep) -> CustomerPublic:
    try:
        customer = await queries.create_customer(db, body)
    except queries.AlreadyExists as exc:
        raise ProblemError(409, f"Customer {body.customer_id} already exists") from exc
    return CustomerPublic.model_validate(customer, from_attributes=True)


@router.get("/customers/{customer_id}", responses=ERRORS)
async def get_customer(customer_id: str, db: DbDep) -> CustomerPublic:
    customer = await queries.get_customer(db, customer_id)
    if customer is None:
        raise ProblemError(404, f"Customer {customer_id} not found")
    (public,) = await _public(db, [customer])
    return public


@router.patch("/customers/{customer_id}", responses=ERRORS)
async def update_customer(customer_id: str, body: CustomerUpdate, db: DbDep) -> CustomerPublic:
    """Change master data, e.g. finance raising a credit limit. Orders already entered keep
    the terms they were approved on."""
    customer = await queries.update_customer(db, customer_id, body)
    if customer is None:
        raise ProblemError(404, f"Customer {customer_id} not found")
    (public,) = await _public(db, [customer])
    return public


@router.post("/customers/{customer_id}/credit-hold/release", responses=ERRORS)
async def release_customer_credit_hold(
    customer_id: str, body: CreditHoldRelease, db: DbDep
) -> CustomerPublic:
    """Finance lifts the credit hold that dunning put on a customer."""
    customer = await queries.get_customer(db, customer_id)
    if customer is None:
        raise ProblemError(404, f"Customer {customer_id} not found")
    if not await queries.release_credit_holds(db, customer_id, body.by):
        raise ProblemError(409, f"Customer {customer_id} is not on credit hold")
    (public,) = await _public(db, [customer])
    return public


@router.get("/products")
async def list_products(db: DbDep, limit: Limit = 100, offset: Offset = 0) -> list[ProductPublic]:
    rows = await queries.list_products(db, limit=limit, offset=offset)
    return [ProductPublic.model_validate(row, from_attributes=True) for row in rows]


@router.post("/products", status_code=201, responses=ERRORS)
async def create_product(body: ProductCreate, db: DbDep) -> ProductPublic:
    try:
        product = await queries.create_product(db, body)
    except queries.AlreadyExists as exc:
        raise ProblemError(409, f"Product {body.sku} already exists") from exc
    return ProductPublic.model_validate(product, from_attributes=True)


@router.get("/products/{sku}", responses=ERRORS)
async def get_product(sku: str, db: DbDep) -> ProductPublic:
    product = await queries.get_product(db, sku)
    if product is None:
        raise ProblemError(404, f"Product {sku} not found")
    return ProductPublic.model_validate(product, from_attributes=True)


@router.post("/products/{sku}/stock", responses=ERRORS)
async def adjust_stock(sku: str, body: StockAdjustment, db: DbDep) -> ProductPublic:
    """Receive (positive `delta`) or write off (negative) stock; never below what is reserved."""
    try:
        product = await queries.adjust_stock(db, sku, body.delta, body.reason)
    except queries.StockTooLow as exc:
        raise ProblemError(409, str(exc)) from exc
    if product is None:
        raise ProblemError(404, f"Product {sku} not found")
    return ProductPublic.model_validate(product, from_attributes=True)
