"""What the API takes is what its schema says: counts are JSON integers and flags JSON booleans
(no `"1"` or `true` taken as 1), ids are visible characters in bodies, paths and filters (no NUL,
control or invisible formatting characters), free text has no control characters but tab and
line breaks, each refusal a 422 naming the field."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from tests.conftest import unique
from tests.helpers import error_fields

LINE = {"sku": "VALVE-25", "quantity": 1}


def order(**fields: Any) -> dict[str, Any]:
    return {"customer_id": "C-1001", "lines": [LINE]} | fields


def customer(**fields: Any) -> dict[str, Any]:
    return {"customer_id": unique("C"), "name": "Strict Co", "region": "east"} | fields


def product(**fields: Any) -> dict[str, Any]:
    return {"sku": unique("SKU"), "name": "Strict part", "unit_price": 10} | fields


USER = {"username": "strict-user", "password": "a-long-password-1", "role": "sales"}
RETURN = {"lines": [{"sku": "VALVE-25", "quantity": 1}], "reason": "x", "resolution": "refund"}


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        # Counts: JSON integers only.
        ("/orders", order(lines=[LINE | {"quantity": True}]), "lines[0].quantity"),
        ("/orders", order(lines=[LINE | {"quantity": "1"}]), "lines[0].quantity"),
        ("/orders", order(lines=[LINE | {"quantity": 1.0}]), "lines[0].quantity"),
        ("/products", product(stock_on_hand="5"), "stock_on_hand"),
        ("/products", product(lead_time_days=True), "lead_time_days"),
        ("/products/VALVE-25/stock", {"delta": True, "reason": "count"}, "delta"),
        (
            "/orders/SO-X/returns",
            RETURN | {"lines": [{"sku": "A", "quantity": "1"}]},
            "lines[0].quantity",
        ),
        ("/production-orders/PO-X/complete", {"produced_quantity": "2"}, "produced_quantity"),
        ("/returns/RT-X/inspect", {"accepted_quantity": True}, "accepted_quantity"),
        # Flags: JSON booleans only.
        ("/customers", customer(active="true"), "active"),
        ("/customers", customer(active=1), "active"),
        # Ids: visible characters only.
        ("/orders", order(customer_id="ADV-😀\u0000"), "customer_id"),
        ("/orders", order(lines=[LINE | {"sku": "VALVE\u000725"}]), "lines[0].sku"),
        ("/customers", customer(customer_id="ADV-😀\u0000"), "customer_id"),
        ("/customers", customer(customer_id="C\u200b1"), "customer_id"),
        ("/customers", customer(customer_id="C 1"), "customer_id"),
        ("/products", product(sku="SKU\u202e1"), "sku"),
        (
            "/orders/SO-X/returns",
            RETURN | {"lines": [{"sku": "A\u0000", "quantity": 1}]},
            "lines[0].sku",
        ),
        # Free text: no control characters but tab and line breaks (a NUL breaks PostgreSQL).
        ("/orders", order(notes="call\u0000me"), "notes"),
        ("/orders/SO-X/hold", {"reason": "credit\u0007"}, "reason"),
        (
            "/orders/SO-X/payments",
            {"amount": 1, "method": "bank", "reference": "B\u0000"},
            "reference",
        ),
        ("/shipments/SH-X/dispatch", {"carrier": "SF", "tracking_no": "]N\u0000"}, "tracking_no"),
        ("/customers", customer(name="Strict\u0000Co"), "name"),
        ("/products/VALVE-25/stock", {"delta": 1, "reason": "count\u001b"}, "reason"),
        ("/orders/SO-X/repair", {"reason": "stuck\u0000"}, "reason"),
        # People and keys (admin).
        ("/api-keys", {"name": "erp-strict", "expires_in_days": True}, "expires_in_days"),
        ("/api-keys", {"name": "erp-strict", "expires_in_days": "30"}, "expires_in_days"),
        ("/users", USER | {"customer_ids": ["C\u00001"]}, "customer_ids[0]"),
        ("/users", USER | {"regions": ["ea\u200bst"]}, "regions[0]"),
        ("/users", USER | {"display_name": "Li\u0000"}, "display_name"),
        ("/users", USER | {"active": "true"}, "active"),
    ],
)
async def test_a_body_of_the_wrong_types_is_a_422_naming_the_field(
    api: httpx.AsyncClient, path: str, body: dict[str, Any], field: str
) -> None:
    response = await api.post(path, json=body)
    assert response.status_code == 422, response.text
    assert field in error_fields(response), response.text
    # Refused at the edge, by the schema: not taken in and found wrong later (no order begun).
    assert response.json()["detail"] == "The request does not match the schema"


@pytest.mark.parametrize(
    ("method", "path", "field"),
    [
        ("GET", "/orders/SO%00X", "order_no"),
        ("POST", "/orders/SO%01X/cancel", "order_no"),
        ("GET", "/returns/R%7FX", "return_no"),
        ("GET", "/customers/C%E2%80%AE1", "customer_id"),
        ("GET", "/products/%C2%A0", "sku"),
        ("GET", "/shipments/SH%0AX", "shipment_id"),
        ("GET", "/production-orders/PO%09X", "po_id"),
        ("GET", "/orders?customer_id=C%00", "customer_id"),
        ("GET", "/audit?order_no=SO%00X", "order_no"),
        ("PATCH", "/users/a%00b", "username"),
        ("DELETE", "/api-keys/k%0Ay", "key_id"),
    ],
)
async def test_an_id_in_a_path_or_filter_is_visible_characters(
    api: httpx.AsyncClient, method: str, path: str, field: str
) -> None:
    body = (
        {"reason_code": "customer_request"}
        if method == "POST"
        else {}
        if method == "PATCH"
        else None
    )
    response = await api.request(method, path, json=body)
    assert response.status_code == 422, response.text
    assert error_fields(response) == {field}


async def test_visible_ids_of_any_script_and_amounts_as_decimal_strings_are_taken(
    api: httpx.AsyncClient,
) -> None:
    customer_id = f"客户-{uuid.uuid4().hex[:8]}"
    response = await api.post("/customers", json=customer(customer_id=customer_id))
    assert response.status_code == 201, response.text
    assert (await api.get(f"/customers/{customer_id}")).json()["customer_id"] == customer_id
    # Tabs and line breaks are text.
    response = await api.post("/customers", json=customer(name="Wang\tand sons\r\nShanghai"))
    assert response.status_code == 201, response.text
    # Amounts are JSON numbers or decimal strings, as `Money` was always published.
    response = await api.post("/products", json=product(unit_price="100.50"))
    assert response.status_code == 201, response.text
    assert response.json()["unit_price"] == 100.5
