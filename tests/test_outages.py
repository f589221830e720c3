"""When a part of the stack is down, callers get 503 with Retry-After, and retrying is safe."""

from __future__ import annotations

import socket
import uuid

import httpx
from temporalio.client import Client

from api.auth import issue_token
from api.deps import TemporalConnection
from api.main import create_app
from domain.auth import Role
from settings import Settings
from store.db import Database
from store.tables import User
from tests.auth import bearer
from tests.helpers import Factory, api_for, error_fields, submit_ok
from worker import build_worker


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_no_worker_answers_503_and_the_retry_finds_the_one_order(
    settings: Settings,
    db: Database,
    temporal_client: Client,
    new_customer: Factory,
    new_product: Factory,
) -> None:
    lonely = settings.model_copy(
        update={"task_queue": f"no-worker-{uuid.uuid4().hex[:6]}", "command_timeout_seconds": 1.0}
    )
    customer = await new_customer()
    product = await new_product(stock_on_hand=10)
    body = {
        "order_no": f"SO-{uuid.uuid4().hex[:8]}",
        "customer_id": customer["customer_id"],
        "lines": [{"sku": product["sku"], "quantity": 2}],
        "entered_by": "sales.li",
    }
    async with api_for(lonely) as api:
        response = await api.post("/orders", json=body)
        assert response.status_code == 503, response.text
        assert response.headers["retry-after"]
        async with build_worker(temporal_client, db, lonely):
            retried = await api.post("/orders", json=body)
            assert retried.status_code == 200, retried.text
            assert retried.json()["status"] == "READY_TO_SHIP"
        # One order: two units reserved, not four.
        assert (await api.get(f"/products/{product['sku']}")).json()["reserved"] == 2
        # With no worker to answer the query, the order is read from the read model.
        view = await api.get(f"/orders/{body['order_no']}")
        assert view.status_code == 200, view.text
        assert view.json()["status"] == "READY_TO_SHIP"


async def test_temporal_unreachable_is_503_never_500(
    settings: Settings, api: httpx.AsyncClient, new_customer: Factory, new_product: Factory
) -> None:
    customer = await new_customer()
    product = await new_product()
    existing = await submit_ok(
        api, customer_id=customer["customer_id"], lines=[{"sku": product["sku"], "quantity": 1}]
    )
    down = settings.model_copy(update={"temporal_address": f"127.0.0.1:{closed_port()}"})
    async with api_for(down) as api:
        health = await api.get("/health")
        assert health.status_code == 503
        assert health.json()["checks"]["database"] == "ok"
        assert health.json()["checks"]["temporal"].startswith("unreachable")
        response = await api.post(
            "/orders",
            json={"customer_id": "C", "lines": [{"sku": "A", "quantity": 1}], "entered_by": "x"},
        )
        assert response.status_code == 503 and response.headers["retry-after"]
        # Validation still comes first: a malformed body is a 422 whatever is down.
        response = await api.post("/orders", json={"customer_id": "C"})
        assert response.status_code == 422 and "lines" in error_fields(response)
        # Reads that need only the database still work, orders included (from the read model).
        assert (await api.get("/orders")).status_code == 200
        view = await api.get(f"/orders/{existing['order_no']}")
        assert view.status_code == 200 and view.json()["status"] == "READY_TO_SHIP"
        # Commands cannot be delivered: 503, nothing changes.
        response = await api.post(
            f"/orders/{existing['order_no']}/payments",
            json={"amount": 1, "method": "cash", "reference": "R"},
        )
        assert response.status_code == 503


async def test_database_unreachable_is_503(settings: Settings) -> None:
    gone = settings.model_copy(
        update={"database_url": f"postgresql+psycopg://nobody@127.0.0.1:{closed_port()}/none"}
    )
    # The lifespan would fail checking the schema; wire the state by hand instead.
    app = create_app(gone)
    app.state.settings = gone
    app.state.db = Database(gone.database_url, audit_seal=gone.audit_seal())
    app.state.temporal = TemporalConnection(gone)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    # A validly signed token: checking that it is not revoked needs the database too.
    token, _ = issue_token(User(username="ops", role=Role.OPS, password_hash=""), gone)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://test", headers=bearer(token)
    ) as api:
        response = await api.get("/orders")
        assert response.status_code == 503 and response.headers["retry-after"]
        assert (await api.get("/orders/SO-1")).status_code == 503
        assert (await api.get("/health")).json()["checks"]["database"].startswith("unreachable")
    await app.state.db.dispose()
