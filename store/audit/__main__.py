"""`python -m store.audit verify [--no-anchor] [--checkpoint FILE ...]` and
`python -m store.audit checkpoint`.

`verify` checks that the entries are exactly 1..N, each sealed by a known audit key
(`AUDIT_KEYS`), each linked to the one before it, and that every checkpoint of the audit anchor
(a Temporal workflow at TEMPORAL_ADDRESS, `audit-anchor-<TASK_QUEUE>`) and of each FILE still
holds: the chain reaches its entry with its hash. It names the first bad entry and counts them.
Exit status: 0 all verify; 1 an entry is bad, or a checkpoint is not signed with our keys;
2 usage; 3 the entries verify but there was no anchor to compare with (not found, not reachable,
or no checkpoint yet), so deleting the chain's last entries would not show (`--no-anchor` does
not ask, and exits 0 then).

`checkpoint` prints a signed checkpoint of the chain's head as JSON, to keep where a database
writer cannot reach, for a later `verify --checkpoint FILE`; it refuses (1) when the chain does
not verify.

A tool run beside the service: besides the database, it asks Temporal for the anchor.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import sys
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter

from domain.audit import AuditCheckpoint, CheckpointAuditInput
from domain.contract import CHECKPOINTS_QUERY, audit_anchor_id
from settings import Settings, get_settings
from store.audit import checkpoint, verify
from store.audit.check import Report
from store.db import Database


async def anchor_checkpoints(settings: Settings) -> list[AuditCheckpoint]:
    """The checkpoints the audit anchor keeps in Temporal (its workflow's query)."""
    client = await Client.connect(
        settings.temporal_address,
        namespace=settings.temporal_namespace,
        data_converter=dataclasses.replace(
            pydantic_data_converter, payload_codec=settings.payload_codec()
        ),
    )
    handle = client.get_workflow_handle(audit_anchor_id(settings.task_queue))
    found: list[AuditCheckpoint] = await handle.query(
        CHECKPOINTS_QUERY, result_type=list[AuditCheckpoint], rpc_timeout=timedelta(seconds=10)
    )
    return found


def read_checkpoints(path: Path) -> list[AuditCheckpoint]:
    """The checkpoints in a file `checkpoint` wrote: one JSON object, or a list of them."""
    data = json.loads(path.read_text(encoding="utf-8"))
    return [
        AuditCheckpoint.model_validate(item)
        for item in (data if isinstance(data, list) else [data])
    ]


def _print(report: Report, settings: Settings) -> None:
    for point in report.unsigned:
        print(
            f"a checkpoint of {point.at.isoformat()} (entry {point.seq}) is NOT signed with our keys"
        )
    legacy = f", {report.legacy} from before keys (plain SHA-256)" if report.legacy else ""
    if report.legacy:
        legacy += f"; AUDIT_LEGACY_ENTRIES accepts {settings.audit_legacy_entries}"
    if not report.bad:
        print(f"audit chain OK: {report.entries} entries verify{legacy}")
        return
    first = report.first
    print(f"audit chain BROKEN at entry {first[0]}: {first[1]}" if first else "audit chain BROKEN")
    print(f"  {report.bad} bad entries; {report.entries} entries in the table{legacy}")
    for seq, why in sorted(report.named)[1:]:
        print(f"  entry {seq}: {why}")
    if report.malformed:
        print(f"  entries whose seq is not a number: {', '.join(report.malformed[:10])}")


async def _anchor(settings: Settings) -> tuple[list[AuditCheckpoint], str]:
    """The anchor's checkpoints, and what to say about them."""
    name = f"{audit_anchor_id(settings.task_queue)} at {settings.temporal_address}"
    try:
        kept = await asyncio.wait_for(anchor_checkpoints(settings), 30)
    except Exception as exc:  # not found, not reachable: said plainly, never hidden
        return [], f"NONE: {name} did not answer ({type(exc).__name__}: {exc})"
    if not kept:
        return [], f"NONE: {name} keeps no checkpoint yet"
    latest = max(kept, key=lambda point: point.seq)
    return (
        kept,
        f"{len(kept)} checkpoints of {name}, the latest at entry {latest.seq} ({latest.at})",
    )


async def _verify(settings: Settings, files: list[Path], use_anchor: bool) -> int:
    exported = [point for path in files for point in read_checkpoints(path)]
    kept, anchor = await _anchor(settings) if use_anchor else ([], "not asked (--no-anchor)")
    db = Database(settings.database_url, audit_seal=settings.audit_seal())
    try:
        report = await verify(db, [*kept, *exported])
    finally:
        await db.dispose()
    _print(report, settings)
    print(f"anchor: {anchor}")
    if exported:
        print(f"checkpoints from {', '.join(map(str, files))}: {len(exported)}")
    if not report.ok:
        return 1
    if use_anchor and not kept:
        print("the entries verify, but deleting the chain's last entries would not show")
        return 3
    return 0


async def _checkpoint(settings: Settings) -> int:
    db = Database(settings.database_url, audit_seal=settings.audit_seal())
    try:
        # The head first: the verification after it covers at least every entry up to it.
        result = await db.read(checkpoint, db.audit_seal, CheckpointAuditInput(), datetime.now(UTC))
        report = await verify(db)
    finally:
        await db.dispose()
    if not report.ok:
        _print(report, settings)
        print("no checkpoint of a chain that does not verify", file=sys.stderr)
        return 1
    print(result.checkpoint.model_dump_json(indent=2))
    return 0


def _arguments() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m store.audit", description="The audit chain's tool."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    verifying = commands.add_parser(
        "verify", help="check the whole chain (exit status: 0 ok, 1 bad, 3 no anchor)"
    )
    verifying.add_argument(
        "--checkpoint",
        type=Path,
        action="append",
        default=[],
        metavar="FILE",
        help="also compare with a checkpoint `checkpoint` wrote",
    )
    verifying.add_argument(
        "--no-anchor", action="store_true", help="do not ask Temporal for the anchor's checkpoints"
    )
    commands.add_parser("checkpoint", help="print a signed checkpoint of the chain's head (JSON)")
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    args = _arguments().parse_args(argv)
    settings = get_settings()
    if args.command == "verify":
        status = asyncio.run(_verify(settings, args.checkpoint, not args.no_anchor))
    else:
        status = asyncio.run(_checkpoint(settings))
    sys.exit(status)


if __name__ == "__main__":
    main()
