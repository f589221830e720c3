"""A requested delivery date is one every deadline can be planned for: not in the past, not
more than ten years ahead. The fuzz found that `9999-12-31` was taken and wedged the order: its
deadline planning overflowed on every retry, so the order answered no command again."""

from __future__ import annotations

from datetime import date, timedelta

import httpx
import pytest

from domain.orders import delivery_date_problem
from tests.helpers import Factory, error_fields, post_ok, submit

FAR = ["9999-12-31", (date.today() + timedelta(days=3700)).isoformat()]


def test_a_date_is_taken_from_today_to_ten_years_ahead() -> None:
    today = date(2026, 12, 7)
    assert delivery_date_problem(today, today) is None
    assert delivery_date_problem(today + timedelta(days=3660), today) is None
    assert delivery_date_problem(today - timedelta(days=1), today) == "must not be in the past"
    assert "ten years" in str(delivery_date_problem(today + timedelta(days=3661), today))
    assert "ten years" in str(delivery_date_problem(date.max, today))


@pytest.mark.parametrize("requested", FAR)
async def test_an_order_for_a_date_too_far_ahead_is_refused_and_no_order_begun(
    api: httpx.AsyncClient, new_customer: Factory, new_product: Factory, requested: str
) -> None:
    customer, product = await new_customer(), await new_product(stock_on_hand=10)
    line = {"sku": product["sku"], "quantity": 1}
    response = await submit(
        api, customer_id=customer["customer_id"], lines=[line], requested_delivery_date=requested
    )
    assert response.status_code == 422, response.text
    assert error_fields(response) == {"requested_delivery_date"}
    order_no = response.json()["order_no"]
    assert (await api.get(f"/orders/{order_no}")).status_code == 404


@pytest.mark.parametrize("requested", FAR)
async def test_an_amendment_to_a_date_too_far_ahead_is_refused_and_the_order_goes_on(
    api: httpx.AsyncClient, new_customer: Factory, new_product: Factory, requested: str
) -> None:
    customer, product = await new_customer(), await new_product(stock_on_hand=10)
    line = {"sku": product["sku"], "quantity": 1}
    response = await submit(api, customer_id=customer["customer_id"], lines=[line])
    assert response.status_code == 201, response.text
    order_no = response.json()["order_no"]
    response = await api.patch(
        f"/orders/{order_no}", json={"requested_delivery_date": requested, "reason": "customer"}
    )
    assert response.status_code == 422, response.text
    assert error_fields(response) == {"requested_delivery_date"}
    shipments = (await api.get(f"/shipments?order_no={order_no}")).json()
    dispatched = await post_ok(
        api, f"/shipments/{shipments[0]['id']}/dispatch", {"carrier": "SF", "tracking_no": "T1"}
    )
    assert dispatched["status"] == "SHIPPED"
