"""Where one order's worker CPU goes: `python -m bench.account [--orders N]`.

Starts the stack like the suite, with the worker under `bench.variant_worker accounting`,
runs auto-approved orders one at a time (so the CPU of each cause is its own), and prints the
worker's CPU per order by cause: each activity type, workflow activations, creating workflow
instances, decoding and encoding payloads, and the rest (the SDK's polling and plumbing),
next to the process CPU of the worker, the API and the Temporal server. The worker runs its
workflows outside Temporal's sandbox, as in production; `--sandboxed` measures them inside.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from bench import flows, procstat
from bench.client import ApiClient, session
from bench.flows import Fixture
from bench.stack import start_own
from bench.variant_worker import GC_CAUSE


def _snapshot(pid: int, path: Path) -> dict[str, Any]:
    path.unlink(missing_ok=True)
    os.kill(pid, signal.SIGUSR1)
    deadline = time.monotonic() + 10
    while not path.exists() or not path.read_text().strip().endswith("}"):
        if time.monotonic() > deadline:
            raise RuntimeError("the accounting worker did not write its ledger")
        time.sleep(0.05)
    time.sleep(0.05)
    data: dict[str, Any] = json.loads(path.read_text())
    return data


async def account(
    orders: int, warm: int, sandboxed: bool = False, database_url: str | None = None
) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix="bench-account-"))
    ledger = workdir / "accounting.json"
    stack = await start_own(
        workdir,
        "INFO",
        database_url,
        worker_variant="accounting",
        worker_env={"BENCH_ACCOUNTING_OUT": str(ledger)},
        workflow_sandbox=sandboxed,
    )
    try:
        async with session(stack.api_url) as http:
            api = ApiClient(http)
            await api.detect_auth()
            rid = uuid.uuid4().hex[:6].upper()
            customer, sku = f"ACC-{rid}-C", f"ACC-{rid}-A"
            await api.create_customer(customer)
            await api.create_product(sku, flows.AUTO_PRICE, 10**9)
            fixture = Fixture(customer, sku)
            for _ in range(warm):
                await flows.auto_approved(api, fixture, f"ACC{rid}W")
            await asyncio.sleep(1)
            worker_pid = stack.workers[0].pid
            before = _snapshot(worker_pid, ledger)
            meter = procstat.CpuMeter(stack.pids()).start()
            for _ in range(orders):
                await flows.auto_approved(api, fixture, f"ACC{rid}")
            await asyncio.sleep(1)  # the archive step runs after the last answer
            cpu = meter.stop()
            after = _snapshot(worker_pid, ledger)
    finally:
        stack.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    causes: dict[str, dict[str, float]] = {}
    accounted = 0.0
    for cause, value in after["causes"].items():
        old = before["causes"].get(cause, {"cpu_s": 0.0, "count": 0})
        seconds = value["cpu_s"] - old["cpu_s"]
        calls = value["count"] - old["count"]
        if not cause.startswith(GC_CAUSE):  # inside the other causes, or in the rest
            accounted += seconds
        causes[cause] = {
            "ms_per_order": round(1000 * seconds / orders, 2),
            "calls_per_order": round(calls / orders, 2),
        }
    worker_cpu = after["process_cpu_s"] - before["process_cpu_s"]
    causes["rest: SDK polling, activity and update plumbing, logging threads"] = {
        "ms_per_order": round(1000 * (worker_cpu - accounted) / orders, 2),
        "calls_per_order": 0,
    }
    return {
        "orders": orders,
        "worker": "python -m bench.variant_worker accounting",
        "workflow_sandbox": sandboxed,
        "read_model": "PostgreSQL (fresh schema)" if database_url else "SQLite (fresh file)",
        "worker_cpu_ms_per_order": round(1000 * worker_cpu / orders, 1),
        "process_cpu_ms_per_order": cpu.ms_per(orders),
        "machine": procstat.machine(),
        "worker_by_cause": causes,
    }


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.account", description=__doc__)
    parser.add_argument("--orders", type=int, default=40)
    parser.add_argument("--warm", type=int, default=10)
    parser.add_argument(
        "--sandboxed",
        action="store_true",
        help="the worker's workflows in Temporal's sandbox (default: outside, as in production)",
    )
    parser.add_argument(
        "--database-url",
        help="the read model on this PostgreSQL, in a fresh schema (default: a SQLite file)",
    )
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    result = asyncio.run(account(args.orders, args.warm, args.sandboxed, args.database_url))
    print(f"worker CPU per auto-approved order: {result['worker_cpu_ms_per_order']} ms")
    print(f"process CPU per order (ms): {result['process_cpu_ms_per_order']}")
    for cause, value in sorted(
        result["worker_by_cause"].items(), key=lambda kv: -kv[1]["ms_per_order"]
    ):
        print(f"  {value['ms_per_order']:7.2f} ms  x{value['calls_per_order']:<5}  {cause}")
    if args.out:
        args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
