"""Every request the benchmark sends to the API: who logs in as which role, and the bodies.

All request construction lives here, so a change of the API contract touches one file.
Identity comes from the bearer token (`POST /auth/token`, form fields `username` and
`password`); in development the API seeds one demo user per role, named after the role, with
the password `demo` (override with `BENCH_PASSWORD`).
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import Mapping
from typing import Any

import httpx

# Which demo user does what (one user per role, named after the role).
SUBMITTER = "integrator"  # POST /orders; delivery sign-offs reported by the carrier's system
APPROVER = {1: "approver_l1", 2: "approver_l2"}
WAREHOUSE = "warehouse"  # dispatch, stock
FINANCE = "finance"  # payments
PRODUCTION = "production"  # production reports
SALES = "sales"  # cancellations
OPS = "ops"  # reads and lists
ADMIN = "admin"  # master data

RETRY_STATUSES = {502, 503, 504}
RETRIES = 3


class ApiError(RuntimeError):
    """An answer the benchmark did not expect (it counts the order as lost)."""

    def __init__(self, response: httpx.Response) -> None:
        request = response.request
        super().__init__(
            f"{request.method} {request.url.path} -> {response.status_code}: {response.text[:300]}"
        )
        self.status_code = response.status_code


class ApiClient:
    """A thin client: one method per call the benchmark makes, each returning the JSON body."""

    def __init__(self, http: httpx.AsyncClient, password: str | None = None) -> None:
        self.http = http
        self.password = password or os.environ.get("BENCH_PASSWORD", "demo")
        self.auth: bool | None = None  # None until `detect_auth()`
        self.retries = 0  # 503s and dropped connections retried (safe: commands are idempotent)
        self._tokens: dict[str, tuple[str, float]] = {}
        self._lock = asyncio.Lock()

    # --- authentication -------------------------------------------------------------------

    async def detect_auth(self) -> bool:
        """True when the API issues tokens (the contract this client is written to)."""
        response = await self.http.post(
            "/auth/token", data={"username": SUBMITTER, "password": self.password}
        )
        self.auth = response.status_code != 404
        if self.auth:
            self._store_token(SUBMITTER, response)
        return self.auth

    async def _headers(self, role: str) -> dict[str, str]:
        if not self.auth:
            return {}
        token = self._tokens.get(role)
        if token is None or token[1] < time.monotonic():
            async with self._lock:
                token = self._tokens.get(role)
                if token is None or token[1] < time.monotonic():
                    response = await self.http.post(
                        "/auth/token", data={"username": role, "password": self.password}
                    )
                    token = self._store_token(role, response)
        return {"Authorization": f"Bearer {token[0]}"}

    def _store_token(self, role: str, response: httpx.Response) -> tuple[str, float]:
        if response.status_code != 200:
            raise ApiError(response)
        body = response.json()
        # Renew a minute before it expires.
        expires = time.monotonic() + max(float(body.get("expires_in", 3600)) - 60, 30)
        token = (str(body["access_token"]), expires)
        self._tokens[role] = token
        return token

    # --- plumbing -------------------------------------------------------------------------

    async def _call(
        self,
        method: str,
        url: str,
        role: str,
        *,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
        ok: tuple[int, ...] = (200,),
        command: bool = False,
    ) -> dict[str, Any]:
        headers = await self._headers(role)
        if command:
            # Retrying a command with the same key returns the first answer (a Temporal update id).
            headers["Idempotency-Key"] = uuid.uuid4().hex
        for attempt in range(RETRIES + 1):
            try:
                response = await self.http.request(
                    method, url, json=json, params=params, headers=headers
                )
            except httpx.TransportError:
                if attempt == RETRIES:
                    raise
                self.retries += 1
                await asyncio.sleep(0.2 * (attempt + 1))
                continue
            if response.status_code in RETRY_STATUSES and attempt < RETRIES:
                self.retries += 1
                await asyncio.sleep(0.2 * (attempt + 1))
                continue
            if response.status_code not in ok:
                raise ApiError(response)
            data: dict[str, Any] = response.json()
            return data
        raise AssertionError("unreachable")

    # --- master data ----------------------------------------------------------------------

    async def create_customer(self, customer_id: str, **fields: Any) -> dict[str, Any]:
        body = {
            "customer_id": customer_id,
            "name": f"Bench customer {customer_id}",
            "region": "east",
            "customer_group": "distributor",
            "credit_limit": 10**11,
            "payment_terms": "net_30",
        } | fields
        return await self._call("POST", "/customers", ADMIN, json=body, ok=(201,))

    async def create_product(self, sku: str, unit_price: int, stock: int) -> dict[str, Any]:
        body = {
            "sku": sku,
            "name": f"Bench product {sku}",
            "unit_price": unit_price,
            "stock_on_hand": stock,
            "safety_stock": 0,
            "lead_time_days": 5,
        }
        product = await self._call("POST", "/products", ADMIN, json=body, ok=(201,))
        if int(product.get("stock_on_hand", 0)) < stock:  # stock booked by the warehouse
            product = await self._call(
                "POST",
                f"/products/{sku}/stock",
                WAREHOUSE,
                json={"delta": stock - int(product.get("stock_on_hand", 0)), "reason": "bench"},
            )
        return product

    # --- orders ---------------------------------------------------------------------------

    async def submit(
        self,
        order_no: str,
        customer_id: str,
        lines: list[dict[str, Any]],
        priority: str | None = None,
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"order_no": order_no, "customer_id": customer_id, "lines": lines}
        if priority:
            body["priority"] = priority
        return await self._call("POST", "/orders", SUBMITTER, json=body, ok=(200, 201))

    async def approve(self, order_no: str, level: int = 1) -> dict[str, Any]:
        role = APPROVER[level]
        body: dict[str, Any] = {"comment": "bench"}
        return await self._call(
            "POST", f"/orders/{order_no}/approve", role, json=body, command=True
        )

    async def dispatch(self, shipment_id: str) -> dict[str, Any]:
        body = {"carrier": "SF", "tracking_no": f"SF-{shipment_id}"}
        return await self._call(
            "POST", f"/shipments/{shipment_id}/dispatch", WAREHOUSE, json=body, command=True
        )

    async def deliver(self, shipment_id: str) -> dict[str, Any]:
        body = {"signed_by": "Wang (consignee)"}
        return await self._call(
            "POST", f"/shipments/{shipment_id}/deliver", SUBMITTER, json=body, command=True
        )

    async def pay(self, order_no: str, amount: Any, reference: str) -> dict[str, Any]:
        body = {"amount": amount, "method": "bank_transfer", "reference": reference}
        return await self._call(
            "POST", f"/orders/{order_no}/payments", FINANCE, json=body, command=True
        )

    async def cancel(self, order_no: str) -> dict[str, Any]:
        body: dict[str, Any] = {"reason_code": "customer_request", "comment": "bench"}
        return await self._call(
            "POST", f"/orders/{order_no}/cancel", SALES, json=body, command=True
        )

    async def complete_production(self, production_order_id: str) -> dict[str, Any]:
        return await self._call(
            "POST",
            f"/production-orders/{production_order_id}/complete",
            PRODUCTION,
            command=True,
        )

    async def get_order(self, order_no: str) -> dict[str, Any]:
        return await self._call("GET", f"/orders/{order_no}", OPS)

    async def list_orders(self, **params: Any) -> dict[str, Any]:
        return await self._call("GET", "/orders", OPS, params=params)
