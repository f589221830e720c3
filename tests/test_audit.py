"""The audit log: every step of an order, chained by hashes, so tampering shows."""

from __future__ import annotations

import os
import subprocess
import sys

import httpx
from sqlalchemy import text

from settings import Settings
from store.db import Database
from tests.helpers import Factory, post_ok, run_program, submit_ok


async def verify(settings: Settings) -> subprocess.CompletedProcess[str]:
    return await run_program(
        [sys.executable, "-m", "store.audit", "verify"],
        env=os.environ | {"DATABASE_URL": settings.database_url},
    )


async def test_order_steps_are_audited_and_the_chain_verifies(
    api: httpx.AsyncClient,
    new_customer: Factory,
    new_product: Factory,
    db: Database,
    settings: Settings,
) -> None:
    customer, product = await new_customer(), await new_product()
    order = await submit_ok(
        api,
        customer_id=customer["customer_id"],
        lines=[{"sku": product["sku"], "quantity": 1}],
        priority="rush",
    )
    order_no = order["order_no"]
    await post_ok(
        api, f"/orders/{order_no}/approve", {"approver": "sup.zhang", "role": "approver_l1"}
    )
    entries = (await api.get("/audit", params={"order_no": order_no})).json()
    actions = [e["action"] for e in entries]
    assert actions[:2] == ["order_received", "approval_required"]
    assert ("order_approved", "sup.zhang") in [(e["action"], e["actor"]) for e in entries]
    seqs = [e["seq"] for e in entries]
    assert seqs == sorted(seqs) and all(e["hash"] and e["prev_hash"] for e in entries)

    result = await verify(settings)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "audit chain OK" in result.stdout

    # Someone edits an entry in the database: the chain shows where.
    victim = entries[0]
    async with db.writer() as session:
        await session.exec(  # type: ignore[call-overload]
            text("UPDATE auditentry SET actor = 'mallory' WHERE id = :id").bindparams(
                id=victim["id"]
            )
        )
    result = await verify(settings)
    assert result.returncode == 1 and f"BROKEN at entry {victim['seq']}" in result.stdout
    async with db.writer() as session:
        await session.exec(  # type: ignore[call-overload]
            text("UPDATE auditentry SET actor = :actor WHERE id = :id").bindparams(
                actor=victim["actor"], id=victim["id"]
            )
        )
    assert (await verify(settings)).returncode == 0


async def test_the_audit_log_cannot_be_changed_through_the_api(api: httpx.AsyncClient) -> None:
    for method in ("POST", "PUT", "PATCH", "DELETE"):
        assert (await api.request(method, "/audit")).status_code == 405
