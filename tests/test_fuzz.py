"""A property-based fuzz of the whole OpenAPI schema against the live app, worker and Temporal.

The API is served by uvicorn in this process (real HTTP, same worker and database as the other
tests); the schemathesis CLI generates requests from the schema and checks that no answer is a
500 and every answer matches the schema (status codes and bodies).
"""

from __future__ import annotations

import asyncio
import os
import re
import socket
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import uvicorn

from api.main import create_app
from domain.auth import Permission, Role, roles_with
from domain.passwords import hash_password
from settings import Settings
from store.db import Database
from store.tables import User
from tests.auth import token_for

PASSWORD = "fuzz-password"

EXAMPLES = os.environ.get("FUZZ_EXAMPLES", "60")


@pytest.fixture
async def served(settings: Settings, worker: None) -> AsyncIterator[str]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning")
    )
    task = asyncio.create_task(server.serve())
    while not server.started:  # noqa: ASYNC110 (uvicorn offers no event to await)
        await asyncio.sleep(0.01)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    await task


async def signed_in_config(base: str, db: Database, settings: Settings, folder: Path) -> Path:
    """A schemathesis config sending each operation the token of a role that may call it, so
    the fuzz reaches every route's validation and logic, not just its 403."""
    tokens: dict[Role, str] = {}
    async with db.writer() as session:
        for role in Role:
            name = f"fuzz-{role.value}"
            if await session.get(User, name) is None:
                session.add(User(username=name, role=role, password_hash=hash_password(PASSWORD)))
    async with httpx.AsyncClient(base_url=base) as client:
        for role in Role:
            tokens[role] = await token_for(client, f"fuzz-{role.value}", PASSWORD)
    lines = [f'headers = {{ Authorization = "Bearer {tokens[Role.OPS]}" }}']
    spec = create_app(settings).openapi()
    for operations in spec["paths"].values():
        for operation in operations.values():
            found = operation.get("x-permission")
            if not found:
                continue
            role = roles_with(Permission(found))[0]
            lines += [
                "",
                "[[operations]]",
                f'include-operation-id = "{operation["operationId"]}"',
                f'headers = {{ Authorization = "Bearer {tokens[role]}" }}',
            ]
    config = folder / "schemathesis.toml"
    config.write_text("\n".join(lines) + "\n")
    return config


async def test_no_request_the_schema_allows_gets_a_500_or_an_answer_outside_it(
    served: str, db: Database, settings: Settings, tmp_path: Path
) -> None:
    cli = Path(sys.executable).parent / "schemathesis"
    config = await signed_in_config(served, db, settings, tmp_path)
    process = await asyncio.create_subprocess_exec(
        str(cli),
        "--config-file",
        str(config),
        "run",
        f"{served}/openapi.json",
        "--checks",
        "not_a_server_error,response_schema_conformance,status_code_conformance",
        "--max-examples",
        EXAMPLES,
        "--workers",
        "2",
        "--seed",
        "20261122",
        # Its "coverage" phase crashes inside schemathesis on some schemas (not our API);
        # the fuzzing and stateful phases generate from every operation all the same.
        "--phases",
        "examples,fuzzing,stateful",
        "--request-timeout",
        "30",
        # Signing the fuzzer's own users out would leave it fuzzing 401s; test_auth covers
        # revocation and user changes.
        "--exclude-path",
        "/auth/revoke",
        "--exclude-path-regex",
        "^/users/",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(process.communicate(), timeout=600)
    text = output.decode(errors="replace")
    cases = re.search(r"(\d+) generated", text)
    print(f"fuzz: {cases.group(1) if cases else '?'} cases")
    assert process.returncode == 0, text[-6000:]
    assert cases is not None and int(cases.group(1)) > 1000, text[-2000:]
