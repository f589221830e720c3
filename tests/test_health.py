"""`GET /health` says `degraded`, with the reason, when the database answers reads but refuses
every write (an immutable SQLite file, a read-only PostgreSQL), not `database: ok`."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from settings import Settings
from store import migrate
from tests.helpers import api_for, postgres_schema


async def health_of(settings: Settings, database_url: str) -> tuple[int, dict[str, object], str]:
    async with api_for(settings.model_copy(update={"database_url": database_url})) as api:
        response = await api.get("/health")
    return response.status_code, response.json(), response.headers.get("retry-after", "")


async def test_an_immutable_sqlite_file_is_degraded(settings: Settings, tmp_path: Path) -> None:
    path = tmp_path / "orders.db"
    await migrate.upgrade(f"sqlite+aiosqlite:///{path}")
    status, body, retry = await health_of(settings, f"sqlite+aiosqlite:///{path}")
    assert (status, body["status"]) == (200, "ok"), body
    # The same file opened immutable (as a file nobody may write): reads work, writes cannot.
    status, body, retry = await health_of(
        settings, f"sqlite+aiosqlite:///file:{path}?immutable=1&uri=true"
    )
    assert (status, body["status"], retry) == (503, "degraded", "5"), body
    assert body["checks"] == {
        "api": "ok",
        "database": "degraded: cannot write: attempt to write a readonly database",
        "temporal": "ok",
    }


@pytest.mark.postgres
async def test_a_read_only_postgresql_is_degraded(settings: Settings) -> None:
    with postgres_schema("health_test") as (url, schema):
        await migrate.upgrade(url)
        status, body, _ = await health_of(settings, url)
        assert (status, body["status"]) == (200, "ok"), body
        read_only = make_url(url).update_query_dict(
            {"options": f"-csearch_path={schema} -cdefault_transaction_read_only=on"}
        )
        status, body, retry = await health_of(
            settings, read_only.render_as_string(hide_password=False)
        )
    assert (status, body["status"], retry) == (503, "degraded", "5"), body
    assert body["checks"] == {
        "api": "ok",
        "database": "degraded: cannot write: cannot execute UPDATE in a read-only transaction",
        "temporal": "ok",
    }
