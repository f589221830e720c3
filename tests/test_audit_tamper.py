"""Someone who can write the database but lacks the audit key tampers with the audit chain:
each way is reported, with the first bad entry.

Every test works on its own copy of a real database: the session's, after orders ran through
the stack and commands were recorded on the chain (`snapshot`)."""

from __future__ import annotations

import dataclasses
import sqlite3
import sys
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import ValidationError
from sqlalchemy import Connection, select, update
from sqlmodel import SQLModel

from domain.audit import (
    GENESIS,
    LEGACY,
    AuditCheckpoint,
    AuditSeal,
    legacy_hash,
)
from settings import Settings
from store import audit, migrate
from store.audit.check import Report
from store.db import Database
from tests.audit_chain import copy_sqlite, entries, legacy_append, sql
from tests.conftest import create_customer, create_product
from tests.helpers import api_for, post_ok, run_program, submit_ok, worker_environment

AUDIT = SQLModel.metadata.tables["auditentry"]
# What the writer knows of the key: its id (it is on every row), never its secret.
ATTACKER = "a-secret-the-attacker-chose-0123456789"
Link = Callable[[str, dict[str, Any], str], str | None]


@dataclasses.dataclass
class Snapshot:
    path: Path
    order_no: str


@pytest.fixture(scope="module")
async def snapshot(
    api: httpx.AsyncClient,
    db: Database,
    settings: Settings,
    tmp_path_factory: pytest.TempPathFactory,
) -> Snapshot:
    """The session's database after an order ran to its end through the stack, and 60
    commands were recorded on the chain."""
    customer, product = await create_customer(api), await create_product(api)
    order = await submit_ok(
        api, customer_id=customer["customer_id"], lines=[{"sku": product["sku"], "quantity": 2}]
    )
    shipment = order["shipments"][0]["id"]
    await post_ok(api, f"/shipments/{shipment}/dispatch", {"carrier": "SF", "tracking_no": "T"})
    await post_ok(api, f"/shipments/{shipment}/deliver", {"signed_by": "Wang"})
    payment = {"amount": order["total"], "method": "bank_transfer", "reference": "R"}
    await post_ok(api, f"/orders/{order['order_no']}/payments", payment)
    await db.write(audit.append, db.audit_seal, entries("cmd", 60))
    path = tmp_path_factory.mktemp("audit") / "snapshot.db"
    copy_sqlite(settings.database_url, path)
    return Snapshot(path, order["order_no"])


@dataclasses.dataclass
class Copy:
    url: str
    db: Database
    n: int  # entries in the chain
    order_no: str

    def sql(self, statement: str, *params: tuple[Any, ...]) -> None:
        sql(self.url, statement, *params)

    async def verify(self, checkpoints: list[AuditCheckpoint] | None = None) -> Report:
        return await audit.verify(self.db, checkpoints or [])


@pytest.fixture
async def copy(snapshot: Snapshot, settings: Settings, tmp_path: Path) -> AsyncIterator[Copy]:
    url = copy_sqlite(f"sqlite+aiosqlite:///{snapshot.path}", tmp_path / "copy.db")
    db = Database(url, audit_seal=settings.audit_seal())
    try:
        report = await audit.verify(db)
        assert report.ok and report.entries >= 70, report.named  # as it was, before tampering
        yield Copy(url, db, report.entries, snapshot.order_no)
    finally:
        await db.dispose()


def rewrite(
    conn: Connection,
    start: int,
    link: Link,
    key_id: str,
    edit: dict[str, Any],
    until: int | None = None,
) -> None:
    """What a writer does to hide an edit: change entry `start`, then give it and every entry
    after it (up to `until`) a new hash with `link` under `key_id`, each linked to the one
    before."""
    prev = conn.execute(select(AUDIT.c.hash).where(AUDIT.c.seq == start - 1)).scalar() or GENESIS
    rewritten = select(AUDIT).where(AUDIT.c.seq >= start).order_by(AUDIT.c.seq)
    if until is not None:
        rewritten = rewritten.where(AUDIT.c.seq <= until)
    rows = conn.execute(rewritten)
    for row in rows.mappings().all():
        entry = dict(row) | (edit if row["seq"] == start else {})
        entry |= {"key_id": key_id, "prev_hash": prev}
        entry["hash"] = prev = link(prev, entry, key_id) or ""
        conn.execute(update(AUDIT).where(AUDIT.c.id == entry["id"]).values(**entry))


def plain_sha256(prev: str, entry: dict[str, Any], key_id: str) -> str:
    return legacy_hash(prev, entry)


async def test_an_edited_entry_is_reported(copy: Copy) -> None:
    middle = copy.n // 2
    copy.sql("UPDATE auditentry SET actor = 'approver_l2' WHERE seq = ?", (middle,))
    report = await copy.verify()
    assert report.first is not None and report.first[0] == middle
    assert "does not match its content" in report.first[1] and report.bad == 1
    # A hash no HMAC could be (not even ASCII) is reported the same way, not choked on.
    copy.sql("UPDATE auditentry SET hash = 'ü' WHERE seq = ?", (copy.n,))
    report = await copy.verify()
    assert report.first is not None
    assert report.named[1] == (copy.n, report.first[1]) and report.bad == 2


@pytest.mark.parametrize(
    ("how", "key_id", "bad_after"),
    [
        ("plain SHA-256, the key id kept", "test-a1", "all"),
        ("plain SHA-256, marked as from before keys", LEGACY, "all"),
        ("a MAC under a key of the writer's, the key id kept", "test-a1", "all"),
        ("a MAC under a key id of the writer's", "evil", "all"),
    ],
)
async def test_a_changed_actor_with_every_later_hash_recomputed_is_reported(
    copy: Copy, how: str, key_id: str, bad_after: str
) -> None:
    """The issue's attack: the actor of an entry changed and the chain after it re-hashed."""
    victim = copy.n // 3
    link: Link = plain_sha256
    if "MAC" in how:
        link = AuditSeal.of({key_id: ATTACKER}, key_id).link
    await copy.db.write(rewrite, victim, link, key_id, {"actor": "approver_l2"})

    report = await copy.verify()
    assert report.first is not None and report.first[0] == victim, report.named
    assert report.bad == (copy.n - victim + 1 if bad_after == "all" else 1)
    why = report.first[1]
    if key_id == "evil":
        assert why == "sealed with an unknown audit key 'evil'"
    elif key_id == LEGACY:
        assert why == "unkeyed (plain SHA-256), past the 0 entries from before keys"
    else:
        assert "does not match its content" in why


async def test_a_deleted_entry_is_reported(copy: Copy) -> None:
    middle = copy.n // 2
    copy.sql("DELETE FROM auditentry WHERE seq = ?", (middle,))
    report = await copy.verify()
    assert report.first == (middle, f"missing: entries {middle} to {middle}")
    assert report.named[1] == (middle + 1, f"entry {middle} before it is missing")
    assert report.bad == 2


async def test_deleting_the_last_50_entries_shows_against_a_checkpoint(
    copy: Copy, settings: Settings, tmp_path: Path
) -> None:
    """No link breaks: only a checkpoint of the head, kept elsewhere, shows it; here one the
    command line exported (the anchor's, in Temporal: test_audit_anchor.py)."""
    env = worker_environment(settings) | {"DATABASE_URL": copy.url}
    tool = [sys.executable, "-m", "store.audit"]
    exported = await run_program([*tool, "checkpoint"], env=env)
    assert exported.returncode == 0, exported.stderr
    point = AuditCheckpoint.model_validate_json(exported.stdout)
    assert point.seq == copy.n and point.key_id == settings.audit_key_id
    (tmp_path / "checkpoint.json").write_text(exported.stdout)

    copy.sql("DELETE FROM auditentry WHERE seq > ?", (copy.n - 50,))
    assert (await copy.verify()).ok  # what the chain alone can tell
    report = await copy.verify([point])
    first = copy.n - 49
    assert report.first == (
        first,
        f"missing: the chain ends at {first - 1}, a checkpoint saw it reach {copy.n}",
    )
    assert report.bad == 50

    checked = await run_program(
        [*tool, "verify", "--no-anchor", "--checkpoint", str(tmp_path / "checkpoint.json")],
        env=env,
    )
    assert checked.returncode == 1, checked.stdout + checked.stderr
    assert f"audit chain BROKEN at entry {first}: missing" in checked.stdout
    assert "50 bad entries" in checked.stdout

    # Without the exported checkpoint, and no anchor for this database (its task queue has
    # none): the rest verifies, and the tool says what it could not check, exit status 3.
    unanchored = env | {"TASK_QUEUE": f"no-anchor-{uuid.uuid4().hex[:6]}"}
    alone = await run_program([*tool, "verify"], env=unanchored)
    assert alone.returncode == 3, alone.stdout + alone.stderr
    assert f"audit chain OK: {first - 1} entries verify" in alone.stdout
    assert "anchor: NONE" in alone.stdout
    assert "deleting the chain's last entries would not show" in alone.stdout


async def test_a_checkpoint_not_signed_with_our_keys_is_refused(copy: Copy) -> None:
    forged = AuditSeal.of({"test-a1": ATTACKER}, "test-a1").checkpoint(
        1, GENESIS, datetime.now(UTC)
    )
    report = await copy.verify([forged])
    assert not report.ok and report.unsigned == [forged] and report.bad == 0


async def test_an_entry_without_a_seq_is_refused_by_the_schema(copy: Copy) -> None:
    row = ("forged", datetime.now(UTC).isoformat(), copy.order_no, "order_approved")
    with pytest.raises(sqlite3.IntegrityError, match=r"NOT NULL.*auditentry\.seq"):
        copy.sql(
            "INSERT INTO auditentry (id, seq, at, order_no, action, actor, role, source, "
            "outcome, detail, prev_hash, hash) VALUES (?, NULL, ?, ?, ?, 'approver_l2', "
            "'approver_l2', '', 'ok', '{}', '', '')",
            row,
        )


async def test_forged_entries_are_marked_by_get_audit_and_reported(
    copy: Copy, settings: Settings
) -> None:
    """A forged `order_approved` by approver_l2 for a real order: after the chain's end, linked
    to it and hashed as the code before keys did; and one with seq 0, which lists first."""
    last = await copy.db.read(
        lambda conn: conn.execute(select(AUDIT.c.hash).where(AUDIT.c.seq == copy.n)).scalar_one()
    )
    at = datetime.now(UTC)
    forged = audit.new_entry(
        id="forged-approval",
        at=at,
        order_no=copy.order_no,
        action="order_approved",
        actor="approver_l2",
        role="approver_l2",
        outcome="ok",
    )
    forged |= {"seq": copy.n + 1, "prev_hash": last, "key_id": LEGACY}
    forged["hash"] = legacy_hash(last, forged)
    first = {**forged, "id": "forged-first", "seq": 0, "prev_hash": GENESIS}
    first["hash"] = legacy_hash(GENESIS, first)
    await copy.db.write(lambda conn: conn.execute(AUDIT.insert(), [forged, first]))

    own = settings.model_copy(update={"database_url": copy.url})
    async with api_for(own) as api:
        listed = (await api.get("/audit", params={"order_no": copy.order_no})).json()
    marked = {e["id"]: e["problem"] for e in listed if not e["verified"]}
    assert listed[0]["id"] == "forged-first" and listed[-1]["id"] == "forged-approval"
    assert marked == {
        "forged-first": "seq 0: the chain starts at 1",
        "forged-approval": "unkeyed (plain SHA-256), past the 0 entries from before keys",
    }
    report = await copy.verify()
    assert report.first == (0, "seq 0: the chain starts at 1")
    assert report.named[1] == (copy.n + 1, marked["forged-approval"]) and report.bad == 2


async def test_rotating_the_key_keeps_older_entries_verifying(
    copy: Copy, settings: Settings
) -> None:
    keys = settings.audit_keys | {"test-a2": "next-audit-key-Rb7mW2qX9sLc4NvT8hKz1FpY"}
    rotated = settings.model_copy(update={"audit_keys": keys, "audit_key_id": "test-a2"})
    db = Database(copy.url, audit_seal=rotated.audit_seal())
    try:
        await db.write(audit.append, db.audit_seal, entries("rotated", 5))
        report = await audit.verify(db)
        assert report.ok and report.entries == copy.n + 5
        key_ids = await db.read(
            lambda conn: conn.execute(select(AUDIT.c.key_id).order_by(AUDIT.c.seq)).scalars().all()
        )
        assert key_ids[-6:] == ["test-a1"] + ["test-a2"] * 5
    finally:
        await db.dispose()
    # A verifier without the retired key cannot vouch for what it sealed, and says so.
    retired = AuditSeal.of({"test-a2": keys["test-a2"]}, "test-a2")
    without = Database(copy.url, audit_seal=retired)
    try:
        report = await audit.verify(without)
        assert report.first == (1, "sealed with an unknown audit key 'test-a1'")
    finally:
        await without.dispose()


async def test_entries_from_before_keys_verify_only_as_the_start_the_verifier_was_told(
    tmp_path: Path,
) -> None:
    """A database from before keys begins with plain SHA-256 entries: they verify as far as
    `AUDIT_LEGACY_ENTRIES` says, and rewriting them breaks the first keyed entry's link (its
    MAC covers the last one's hash). Re-hashing the keyed entries as such entries too, which
    would break no link, shows past that count."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'orders.db'}"
    await migrate.upgrade(url)
    seal = AuditSeal.of({"k1": "a-secret-audit-key-of-32-characters-or-more"}, "k1", 5)
    db = Database(url, audit_seal=seal)
    try:
        await db.write(legacy_append, seal, entries("old", 5))
        await db.write(audit.append, seal, entries("new", 3))
        report = await audit.verify(db)
        assert report.ok and (report.entries, report.legacy) == (8, 5)

        await db.write(rewrite, 2, plain_sha256, LEGACY, {"actor": "mallory"}, 5)
        report = await audit.verify(db)
        assert report.first == (6, "not linked to entry 5 (its prev_hash is not that entry's hash)")
        assert report.bad == 1

        await db.write(rewrite, 6, plain_sha256, LEGACY, {})
        report = await audit.verify(db)
        why = "unkeyed (plain SHA-256), past the 5 entries from before keys"
        assert report.first == (6, why) and report.bad == 3
    finally:
        await db.dispose()


async def test_the_settings_refuse_a_public_or_missing_audit_key_outside_development() -> None:
    secrets: dict[str, Any] = {
        "auth_secret": "auth-secret-Hx4tM9wQ2zR7vK1cN6bY3pLs",
        "encrypt_payloads": False,
        "allow_unencrypted_payloads": True,
    }
    with pytest.raises(ValidationError, match="AUDIT_KEYS"):
        Settings(environment="production", **secrets)  # none set: the development key
    key = {"k1": "Zq8v3LrT0pXw5NcY7bHs2JdK9mFa4GeU"}
    with pytest.raises(ValidationError, match="active audit key 'k2'"):
        Settings(audit_keys=key, audit_key_id="k2")
    with pytest.raises(ValidationError, match="shorter than 32"):
        Settings(audit_keys={"k1": "short"}, audit_key_id="k1")
    with pytest.raises(ValidationError, match=r"AUDIT_KEYS\['k1'\] is too guessable"):
        Settings(
            environment="production", **secrets, audit_keys={"k1": "a" * 40}, audit_key_id="k1"
        )
    own = Settings(environment="production", **secrets, audit_keys=key, audit_key_id="k1")
    assert own.audit_seal().key_id == "k1"


async def test_a_seq_that_is_not_a_number_is_reported(copy: Copy) -> None:
    """SQLite keeps text in an INTEGER column: the entry is reported, and so is its gap."""
    middle = copy.n // 2
    copy.sql("UPDATE auditentry SET seq = 'x' WHERE seq = ?", (middle,))
    report = await copy.verify()
    assert len(report.malformed) == 1 and report.first == (
        middle,
        f"missing: entries {middle} to {middle}",
    )
    assert report.bad == 3  # the entry, its place, and the entry after it
