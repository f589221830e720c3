"""The schema's migrations (store/migrations) on SQLite and PostgreSQL: they build exactly the
tables' models, the alembic CLI works from the repository root, and a database made by the code
before migrations (tests/fixtures/pre_alembic_*.sql) upgrades in place with every row kept and
its open orders then completing."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import sys
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from sqlalchemy import Connection, insert, inspect, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool
from sqlmodel import SQLModel
from temporalio.client import Client

from api.main import create_app
from bench.stack import libpq_url
from domain.audit import AuditSeal
from domain.messages import SaveOrderViewInput
from settings import Settings
from store import audit, migrate, read_model, throttle
from store.audit.check import Report
from store.db import Database
from tests.audit_chain import LEGACY_TABLE, legacy_append
from tests.auth import ActAs
from tests.conftest import create_customer, create_product
from tests.helpers import post_ok, postgres_schema, run_program, submit_ok
from worker import build_worker

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).parent / "fixtures"

# Columns revisions after the baseline add to its tables (integers, nullable): 0006.
ADDED_COLUMNS = [("customer", "transit_days")]

Rows = dict[str, dict[tuple[Any, ...], dict[str, Any]]]  # table: {primary key: row}


@contextmanager
def empty_database(kind: str, tmp_path: Path) -> Iterator[str]:
    """The URL of an empty database: a new SQLite file, or a new PostgreSQL schema."""
    if kind == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'orders.db'}"
        return
    with postgres_schema("orders_migrate") as (url, _):
        yield url


def run_script(kind: str, url: str, script: str) -> None:
    """Run SQL as it is, past SQLAlchemy: how the code before migrations left its database."""
    if kind == "sqlite":
        path = url.removeprefix("sqlite+aiosqlite:///")
        with sqlite3.connect(path) as conn:
            conn.executescript(script)
        return
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        conn.execute(script.encode())


async def tables_of(url: str) -> set[str]:
    engine = create_async_engine(url, poolclass=NullPool)
    try:
        async with engine.connect() as conn:
            return await conn.run_sync(lambda sync: set(inspect(sync).get_table_names()))
    finally:
        await engine.dispose()


def column_names(conn: Connection, table: str) -> set[str]:
    return {column["name"] for column in inspect(conn).get_columns(table)}


async def every_row(url: str) -> Rows:
    """Every row of every table, by primary key, with the columns the database has (none in a
    table a later revision adds)."""
    engine = create_async_engine(url, poolclass=NullPool)
    rows: Rows = {}
    try:
        async with engine.connect() as conn:
            present = await conn.run_sync(lambda sync: set(inspect(sync).get_table_names()))
            for table in SQLModel.metadata.sorted_tables:
                if table.name not in present:
                    rows[table.name] = {}
                    continue
                there = await conn.run_sync(column_names, table.name)
                columns = [column for column in table.columns if column.name in there]
                key = list(table.primary_key.columns)
                found = await conn.execute(select(*key, *columns))
                rows[table.name] = {
                    tuple(row[: len(key)]): dict(
                        zip([c.name for c in columns], row[len(key) :], strict=True)
                    )
                    for row in found
                }
    finally:
        await engine.dispose()
    return rows


def as_before(before: Rows, after: Rows) -> Rows:
    """`after` with only the columns each table had `before`."""
    return {
        table: {
            key: {name: row[name] for name in next(iter(before[table].values()), row)}
            for key, row in rows.items()
        }
        for table, rows in after.items()
    }


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
async def test_the_migrations_build_exactly_the_models(kind: str, tmp_path: Path) -> None:
    with empty_database(kind, tmp_path) as url:
        with pytest.raises(migrate.NotCurrent, match="alembic upgrade head"):
            await migrate.require_current(url)
        # Two at once (a migration per replica) take turns: the second finds nothing to do.
        await asyncio.gather(migrate.upgrade(url), migrate.upgrade(url))
        assert await migrate.differences(url) == []  # `alembic check`'s answer
        await migrate.require_current(url)
        await migrate.upgrade(url)  # at head already: nothing to do, nothing fails
        assert set(SQLModel.metadata.tables) | {"alembic_version"} == await tables_of(url)


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
async def test_the_alembic_command_works_from_the_repository_root(
    kind: str, tmp_path: Path
) -> None:
    """`alembic upgrade head`, `check`, `downgrade base`, on settings.py's DATABASE_URL."""
    with empty_database(kind, tmp_path) as url:
        env = os.environ | {"DATABASE_URL": url}
        for args in (["upgrade", "head"], ["check"], ["downgrade", "base"], ["upgrade", "head"]):
            done = await run_program([sys.executable, "-m", "alembic", *args], cwd=ROOT, env=env)
            assert done.returncode == 0, f"alembic {' '.join(args)}: {done.stderr}"
            if args == ["downgrade", "base"]:
                assert await tables_of(url) == {"alembic_version"}
        await migrate.require_current(url)


async def test_a_database_with_some_of_the_tables_is_left_alone(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'orders.db'}"
    run_script("sqlite", url, "CREATE TABLE customer (customer_id VARCHAR(64) PRIMARY KEY);")
    with pytest.raises(RuntimeError, match="some of the tables"):
        await migrate.upgrade(url)
    assert await tables_of(url) == {"customer"}  # the failed upgrade rolled back whole


async def test_the_api_refuses_a_database_that_is_not_migrated(
    settings: Settings, tmp_path: Path
) -> None:
    own = settings.model_copy(update={"database_url": f"sqlite+aiosqlite:///{tmp_path / 'x.db'}"})
    app = create_app(own)
    with pytest.raises(migrate.NotCurrent, match="not migrated yet"):
        async with app.router.lifespan_context(app):
            pass


@asynccontextmanager
async def stack(own: Settings, client: Client) -> AsyncIterator[httpx.AsyncClient]:
    """The API and a worker of their own on `own`'s database and task queue."""
    app = create_app(own)
    db = Database(own.database_url, audit_seal=own.audit_seal())
    try:
        async with (
            app.router.lifespan_context(app),
            build_worker(client, db, own),
            httpx.AsyncClient(
                auth=ActAs(app), transport=httpx.ASGITransport(app=app), base_url="http://test"
            ) as api,
        ):
            yield api
    finally:
        await db.dispose()


async def ship_and_pay(api: httpx.AsyncClient, order: dict[str, Any]) -> dict[str, Any]:
    shipment = order["shipments"][0]["id"]
    await post_ok(api, f"/shipments/{shipment}/dispatch", {"carrier": "SF", "tracking_no": "T"})
    await post_ok(api, f"/shipments/{shipment}/deliver", {"signed_by": "Wang"})
    payment = {"amount": order["total"], "method": "bank_transfer", "reference": order["order_no"]}
    return await post_ok(api, f"/orders/{order['order_no']}/payments", payment)


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
async def test_a_database_from_before_migrations_upgrades_in_place_and_its_orders_complete(
    kind: str,
    tmp_path: Path,
    settings: Settings,
    temporal_client: Client,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with empty_database(kind, tmp_path) as url:
        run_script(kind, url, (FIXTURES / f"pre_alembic_{kind}.sql").read_text())
        # Today's code runs the old phase: the columns later revisions add to existing tables
        # are there meanwhile (empty: the old code knew none), and gone before the upgrade.
        for table, column in ADDED_COLUMNS:
            run_script(kind, url, f"ALTER TABLE {table} ADD COLUMN {column} INTEGER")
        own = settings.model_copy(
            update={
                "database_url": url,
                "task_queue": f"migrate-{uuid.uuid4().hex[:6]}",
                "auto_approval_limit": Decimal(1000),  # 1,100 waits for one approval
            }
        )

        # The code before migrations, on its database: it knew no revisions, checked none,
        # and chained its audit entries with plain SHA-256.
        async def unchecked(url: str) -> None:
            pass

        monkeypatch.setattr(migrate, "require_current", unchecked)
        monkeypatch.setattr(audit, "append", legacy_append)
        # Nor did it throttle sign-ins: it had no table of failed attempts to read.
        monkeypatch.setattr(throttle, "state", lambda conn, keys: {})
        # Nor did it note when it wrote an order's row (the live updates' `changed_at`).
        monkeypatch.setattr(read_model, "_view_row", without_changed_at(read_model._view_row))
        async with stack(own, temporal_client) as api:
            customer = await create_customer(api, credit_limit=1_000_000)
            product = await create_product(api, unit_price=100, stock_on_hand=1000)
            cid, sku = customer["customer_id"], product["sku"]
            done = await submit_ok(api, customer_id=cid, lines=[{"sku": sku, "quantity": 5}])
            assert (await ship_and_pay(api, done))["status"] == "COMPLETED"
            parked = [
                await submit_ok(api, customer_id=cid, lines=[{"sku": sku, "quantity": 11}])
                for _ in range(2)
            ]
            assert {order["status"] for order in parked} == {"PENDING_APPROVAL"}
        monkeypatch.undo()
        for table, column in ADDED_COLUMNS:
            run_script(kind, url, f"ALTER TABLE {table} DROP COLUMN {column}")

        # Deployed: the workers and the API stopped, the migration runs, they start again.
        before = await every_row(url)
        assert "alembic_version" not in await tables_of(url)
        await migrate.upgrade(url)
        migrated = await every_row(url)
        assert as_before(before, migrated) == before
        assert {row["key_id"] for row in migrated["auditentry"].values()} == {""}
        assert await migrate.differences(url) == []  # as if it had been made by the migrations

        async with stack(own, temporal_client) as api:  # checks the revision this time
            decision = {"approver": "sup.zhang", "role": "approver_l1"}
            for order in parked:
                approved = await post_ok(api, f"/orders/{order['order_no']}/approve", decision)
                assert approved["status"] == "READY_TO_SHIP"
                assert (await ship_and_pay(api, approved))["status"] == "COMPLETED"
            closed = (await api.get(f"/orders/{done['order_no']}")).json()
            assert closed["status"] == "COMPLETED"

        after = await every_row(url)
        for table, rows in before.items():
            assert rows.keys() <= after[table].keys(), f"rows of {table} were lost"
        assert before["product"] and before["orderrecord"] and before["payment"]
        # Its entries from before keys verify once the verifier is told how many there were
        # (AUDIT_LEGACY_ENTRIES), and the keyed ones follow them: the chain holds across it.
        chain = await verify_chain(url, own)
        why = "unkeyed (plain SHA-256), past the 0 entries from before keys"
        assert chain.first == (1, why)
        chain = await verify_chain(url, own, audit_legacy_entries=chain.legacy)
        assert chain.ok, chain.named
        assert 0 < chain.legacy < chain.entries


def without_changed_at(
    row: Callable[[SaveOrderViewInput], dict[str, Any]],
) -> Callable[[SaveOrderViewInput], dict[str, Any]]:
    return lambda inp: {name: value for name, value in row(inp).items() if name != "changed_at"}


async def verify_chain(url: str, own: Settings, **settings: Any) -> Report:
    db = Database(url, audit_seal=own.model_copy(update=settings).audit_seal())
    try:
        return await audit.verify(db)
    finally:
        await db.dispose()


def audit_entries(prefix: str, count: int, start: int = 0) -> list[dict[str, Any]]:
    at = datetime(2026, 12, 1, 8, tzinfo=UTC)
    return [
        audit.new_entry(
            id=f"{prefix}-{n}",
            at=at + timedelta(minutes=n),
            order_no="SO-LEGACY",
            action="order_received",
            actor="sales",
            outcome="ok",
            detail={"n": n},
        )
        for n in range(start, start + count)
    ]


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
async def test_the_keyed_chain_revision_places_every_entry_and_old_entries_keep_verifying(
    kind: str, tmp_path: Path
) -> None:
    """Revision 0003: an entry without a `seq` gets one after the chain (in `at` order) and is
    reported, never deleted; the plain SHA-256 entries before keys verify, and keyed ones follow."""
    seal = AuditSeal.of({"k1": "a-secret-audit-key-of-32-characters-or-more"}, "k1", 5)
    with empty_database(kind, tmp_path) as url:
        await migrate.upgrade(url, "0002")
        db = Database(url, audit_seal=seal)
        try:
            await db.write(legacy_append, seal, audit_entries("old", 5))
            forged = [  # written past the chain (seq NULL): listed first, verified never
                {**entry, "seq": None, "prev_hash": "", "hash": "f" * 64}
                for entry in audit_entries("forged", 2)
            ]
            forged[0]["at"] += timedelta(hours=1)  # the later one, though first written
            await db.write(lambda conn: conn.execute(insert(LEGACY_TABLE), forged))
            await migrate.upgrade(url)
            assert await migrate.differences(url) == []

            rows = await db.read(
                lambda conn: conn.execute(text("SELECT id, seq, key_id FROM auditentry")).all()
            )
            placed = {row.id: (row.seq, row.key_id) for row in rows}
            assert placed == {
                **{f"old-{n}": (n + 1, "") for n in range(5)},
                "forged-1": (6, ""),
                "forged-0": (7, ""),
            }
            chain = await audit.verify(db)
            assert (chain.entries, chain.legacy, chain.bad) == (7, 7, 2)
            assert chain.first == (
                6,
                "unkeyed (plain SHA-256), past the 5 entries from before keys",
            )

            # The schema now refuses an entry without its place in the chain.
            nameless = {**forged[0], "id": "forged-again", "seq": None}
            with pytest.raises(IntegrityError):
                await db.write(lambda conn: conn.execute(insert(LEGACY_TABLE), [nameless]))

            # New entries are keyed, linked to the last one there, and verify.
            await db.write(audit.append, seal, audit_entries("new", 3))
            chain = await audit.verify(db)
            assert (chain.entries, chain.legacy, chain.bad) == (10, 7, 2)
            assert [seq for seq, _ in chain.named] == [6, 7]
        finally:
            await db.dispose()
