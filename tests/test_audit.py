"""The audit log: every step of an order, chained by keyed MACs, so tampering shows (the
tampering cases themselves: test_audit_tamper.py; the anchor: test_audit_anchor.py)."""

from __future__ import annotations

import subprocess
import sys

import httpx
from sqlalchemy import text

from settings import Settings
from store.db import Database
from tests.helpers import Factory, post_ok, run_program, submit_ok, worker_environment


async def verify(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    """`python -m store.audit verify` with the settings' database and audit keys."""
    return await run_program(
        [sys.executable, "-m", "store.audit", "verify", *args], env=worker_environment(settings)
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
    assert all(e["verified"] and e["problem"] is None for e in entries)
    assert {e["key_id"] for e in entries} == {settings.audit_key_id}

    result = await verify(settings, "--no-anchor")
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
    result = await verify(settings, "--no-anchor")
    assert result.returncode == 1 and f"BROKEN at entry {victim['seq']}:" in result.stdout
    marked = (await api.get("/audit", params={"order_no": order_no})).json()
    assert [(e["seq"], e["verified"]) for e in marked if not e["verified"]] == [
        (victim["seq"], False)
    ]
    assert "does not match its content" in marked[0]["problem"]
    async with db.writer() as session:
        await session.exec(  # type: ignore[call-overload]
            text("UPDATE auditentry SET actor = :actor WHERE id = :id").bindparams(
                actor=victim["actor"], id=victim["id"]
            )
        )
    assert (await verify(settings, "--no-anchor")).returncode == 0


async def test_the_audit_log_cannot_be_changed_through_the_api(api: httpx.AsyncClient) -> None:
    for method in ("POST", "PUT", "PATCH", "DELETE"):
        assert (await api.request(method, "/audit")).status_code == 405
