"""The benchmark suite: the six measurements of issue 6 in one run, side by side.

1. baseline     bare workflows with as many no-op steps as an auto-approved order, the same
                steps shaped like the order's updates, and the order's replica (`throughput`)
2. throughput   auto-approved orders end to end through the HTTP API, several clients
3. latency      p50/p95/p99 of submit, approve, order view and list at 50% of (2)
4. open orders  N orders parked in PENDING_APPROVAL: creation, memory, idle CPU, reads
                (`open_orders`)
5. cost         history events and bytes per order on each path, activities per order
6. scaling      (1) and (2) with one and two worker processes

This module holds what every phase shares (the stack, the API client, the fixtures, the CPU
meter, the check that no order was lost) and runs the phases in order; `report` turns their
results into the JSON.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shlex
import shutil
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from temporalio.client import Client

from bench import baseline, flows, open_orders, procstat, report, throughput
from bench.client import ApiClient, session
from bench.flows import Fixture
from bench.load import Measured, closed_loop
from bench.stack import Stack, attach, start_own

STOCK = 10**9


@dataclass
class Config:
    """What `python -m bench` was asked to do (its options; `--quick` presets the sizes)."""

    quick: bool
    runs: int
    orders: int
    open_orders: int
    clients: int
    latency_seconds: float
    idle_seconds: float
    probes: int
    target: str | None
    temporal: str
    namespace: str
    out: Path
    log_level: str
    keep: bool
    command: str
    scaling: bool = True
    database_url: str | None = None
    workflow_sandbox: bool = True


def reproduce_command(argv: list[str]) -> str:
    """The command line that reproduces this run, printed with every figure."""
    python = Path(sys.executable)
    with contextlib.suppress(ValueError):
        python = python.relative_to(Path.cwd())
    return shlex.join([str(python), "-m", "bench", *argv])


class Suite:
    """One run's context: its stack, API client and fixtures, and what went wrong."""

    def __init__(self, cfg: Config, stack: Stack, api: ApiClient) -> None:
        self.cfg = cfg
        self.stack = stack
        self.api = api
        assert stack.client is not None
        self.client: Client = stack.client
        assert stack.baseline_client is not None
        self.baseline_client: Client = stack.baseline_client
        self.run_id = uuid.uuid4().hex[:6].upper()
        self.machine = procstat.machine()
        self.where = {"machine": procstat.machine_line(self.machine), "command": cfg.command}
        self.lost: dict[str, int] = {}
        self.problems: list[str] = []
        self.order_customers: list[str] = []
        self.auto: list[Fixture] = []
        self.approval: list[Fixture] = []
        self.open_fixtures: list[Fixture] = []

    def log(self, message: str) -> None:
        print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)

    # --- master data ----------------------------------------------------------------------

    async def fixtures(self) -> None:
        """A customer and products per client (no single hot row), and the open-order ones."""
        rid = self.run_id
        for i in range(self.cfg.clients):
            customer = f"BENCH-{rid}-C{i}"
            await self.api.create_customer(customer)
            self.order_customers.append(customer)
            auto_sku, l1_sku = f"BENCH-{rid}-A{i}", f"BENCH-{rid}-L{i}"
            await self.api.create_product(auto_sku, flows.AUTO_PRICE, STOCK)
            await self.api.create_product(l1_sku, flows.L1_PRICE, STOCK)
            self.auto.append(Fixture(customer, auto_sku))
            self.approval.append(Fixture(customer, l1_sku))
        for i in range(10):
            customer = f"BENCH-{rid}-OPEN{i}"
            await self.api.create_customer(customer)
            self.order_customers.append(customer)
            self.open_fixtures.append(Fixture(customer, self.approval[0].sku))

    # --- 1, 2, 6: throughput --------------------------------------------------------------

    async def measure(self, label: str, run: Any, count: int) -> dict[str, Any]:
        """Run `run(count)` under a CPU meter; throughput, CPU per item and failures."""
        meter = procstat.CpuMeter(self.stack.pids()).start()
        measured: Measured = await run(count)
        cpu = meter.stop()
        result = {
            "per_s": round(measured.per_second, 2),
            "completed": measured.completed,
            "failed": measured.failed,
            "seconds": round(measured.seconds, 2),
            "concurrency": measured.concurrency,
            "cpu_ms_per_item": cpu.ms_per(measured.completed),
            "cpu_percent": cpu.percent(),
        }
        if measured.errors:
            result["errors"] = measured.errors
            self.problems += [f"{label}: {error}" for error in measured.errors]
        self.log(
            f"{label}: {result['per_s']}/s ({measured.completed} done, {measured.failed} failed, "
            f"{result['seconds']} s); CPU % {result['cpu_percent']}"
        )
        return result

    async def verify_completed(self, order_nos: list[str], tag: str) -> int:
        """Orders the API answered COMPLETED for must be COMPLETED and closed in the read model."""
        semaphore = asyncio.Semaphore(16)
        wrong: list[str] = []

        async def check(order_no: str) -> None:
            async with semaphore:
                try:
                    view = await self.api.get_order(order_no)
                except Exception as exc:
                    wrong.append(f"{order_no}: {exc!r}")
                    return
                if view.get("status") != "COMPLETED" or not view.get("closed"):
                    wrong.append(f"{order_no}: {view.get('status')} closed={view.get('closed')}")

        await asyncio.gather(*(check(order_no) for order_no in order_nos))
        if wrong:
            self.problems += [f"{tag}: {w}" for w in wrong[:5]]
        return len(wrong)

    async def failed_workflows(self) -> int:
        """Order workflows of this run that failed, timed out or were terminated."""
        customers = ", ".join(f'"{c}"' for c in self.order_customers)
        query = (
            f'WorkflowType="OrderWorkflow" AND CustomerId IN ({customers}) AND '
            'ExecutionStatus IN ("Failed", "TimedOut", "Terminated")'
        )
        return (await self.client.count_workflows(query)).count


# --- the run --------------------------------------------------------------------------------


async def run(cfg: Config) -> dict[str, Any]:
    """Start (or attach to) the stack, run every phase, stop what was started; the result."""
    started = time.perf_counter()
    workdir = Path(tempfile.mkdtemp(prefix="bench-"))
    stack: Stack | None = None
    try:
        if cfg.target:
            stack = await attach(cfg.target, cfg.temporal, cfg.namespace, cfg.workflow_sandbox)
        else:
            print(f"[bench] starting Temporal dev server, API and worker in {workdir}", flush=True)
            stack = await start_own(
                workdir,
                cfg.log_level,
                cfg.database_url,
                workflow_sandbox=cfg.workflow_sandbox,
            )
        await stack.start_baseline_worker()
        async with session(stack.api_url) as http:
            api = ApiClient(http)
            auth = await api.detect_auth()
            suite = Suite(cfg, stack, api)
            suite.log(f"API {stack.api_url} (auth: {'bearer tokens' if auth else 'none'})")
            await suite.fixtures()
            result = await _measure(suite, api)
            result["auth"] = auth
            result["retries"] = api.retries
    finally:
        if stack is not None:
            stack.stop()
            if cfg.keep:
                print(f"[bench] logs kept in {stack.workdir}", flush=True)
            elif stack.workdir is not None:
                shutil.rmtree(stack.workdir, ignore_errors=True)
        if not cfg.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    result["duration_s"] = round(time.perf_counter() - started, 1)
    return result


async def _measure(suite: Suite, api: ApiClient) -> dict[str, Any]:
    cfg = suite.cfg
    stack = suite.stack
    suite.log("warm-up ...")
    warm = await closed_loop(
        lambda i: flows.auto_approved(api, suite.auto[i % len(suite.auto)], "WARM"),
        cfg.clients,
        cfg.clients,
    )
    if warm.failed:
        raise RuntimeError(f"warm-up orders failed: {warm.errors}")

    suite.log("cost per order (one order per path) ...")
    cost = await throughput.cost_per_order(suite)
    shape = cost["auto_approved"]
    suite.log(
        "auto-approved order: "
        f"{shape['events']} events, {shape['regular_activities']} activities + "
        f"{shape['local_activities']} local activities, segments {shape['segments']}"
    )
    bare_count = cfg.orders * 2
    # Warm the baseline worker too.
    await baseline.run_bare(
        suite.baseline_client,
        stack.baseline_queue,
        cfg.clients,
        cfg.clients,
        shape["regular_activities"],
        shape["local_activities"],
        f"bench-warm-{suite.run_id}",
    )

    runs: list[dict[str, Any]] = []
    for r in range(1, cfg.runs + 1):
        suite.log(f"run {r}/{cfg.runs}: one worker process")
        one: dict[str, Any] = {
            "baseline_bare": await throughput.bare_baseline(suite, shape, bare_count, f"r{r}w1"),
            "baseline_order_shaped": await throughput.replica_baseline(
                suite, baseline.shaped(shape["script"]), cfg.orders, f"r{r}w1", "order-shaped"
            ),
            "baseline_order_replica": await throughput.replica_baseline(
                suite, shape["script"], cfg.orders, f"r{r}w1", "order replica"
            ),
            "orders": await throughput.orders(suite, cfg.orders, f"R{r}W1"),
        }
        one["latency"] = await throughput.latency(
            suite, one["orders"]["per_s"] * throughput.LATENCY_LOAD, f"R{r}L"
        )
        runs.append(one)

    scaling_runs: list[dict[str, Any]] = []
    if cfg.scaling and stack.own:
        suite.log("scaling: a second worker process and a second baseline worker")
        await stack.start_worker()
        await stack.start_baseline_worker()
        try:
            for r in range(1, cfg.runs + 1):
                scaling_runs.append(
                    {
                        "baseline_bare": await throughput.bare_baseline(
                            suite, shape, bare_count, f"r{r}w2"
                        ),
                        "orders": await throughput.orders(suite, cfg.orders, f"R{r}W2"),
                    }
                )
        finally:
            stack.stop_worker()
            stack.stop_baseline_worker()

    parked = await open_orders.open_orders(suite)
    failed_workflows = await suite.failed_workflows()
    return report.build(suite, cost, runs, scaling_runs, parked, failed_workflows)


def write(result: dict[str, Any], out: Path) -> None:
    """Write the report atomically (a reader never sees half a file)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    tmp.replace(out)
