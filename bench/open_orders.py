"""Figure 4: orders parked in PENDING_APPROVAL — how fast they are created, the memory they
take, the CPU they cost while waiting, and reads and approvals with them waiting."""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import TYPE_CHECKING, Any

from temporalio.api.workflowservice.v1 import ListWorkflowExecutionsRequest

from bench import flows, procstat
from bench.flows import Timings
from bench.load import closed_loop, summary

if TYPE_CHECKING:
    from bench.suite import Suite


async def open_orders(suite: Suite) -> dict[str, Any]:
    """Park `--open-orders` orders, then measure memory, idle CPU and reads; count them back."""
    n = suite.cfg.open_orders
    pids = suite.stack.pids()
    procs = [name for name in pids if name in ("temporal", "api") or name.startswith("worker")]
    await asyncio.sleep(2)
    idle_before = await _idle_cpu(suite, pids)
    rss_before = {name: procstat.rss_bytes(pids[name]) for name in procs}
    prefix = f"B{suite.run_id}-OPEN"
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
        fixture = suite.open_fixtures[i % len(suite.open_fixtures)]
        parked.append(await flows.park(suite.api, fixture, prefix))

    suite.log(f"open orders: parking {n} orders in PENDING_APPROVAL ...")
    sampler = asyncio.create_task(sample_memory())
    meter = procstat.CpuMeter(pids).start()
    measured = await closed_loop(one, n, suite.cfg.clients)
    cpu = meter.stop()
    stop.set()
    await sampler
    suite.log(
        f"open orders: {measured.completed} parked in {measured.seconds:.1f} s "
        f"({measured.completed / measured.seconds:.1f}/s), {measured.failed} failed"
    )
    await asyncio.sleep(3)  # let the last checkpoints and visibility updates land
    idle_after = await _idle_cpu(suite, pids)
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
    probes = await _open_probes(suite, parked)
    expected = len(parked) - probes.pop("approved")
    for _ in range(50):  # visibility is eventually consistent: give it a few seconds
        counted = await _count_pending(suite)
        if all(c == expected for c in counted.values()):
            break
        await asyncio.sleep(0.2)
    lost = measured.failed + max(abs(expected - c) for c in counted.values())
    if lost:
        suite.problems.append(f"open orders: expected {expected} pending, counted {counted}")
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
        "idle_window_s": suite.cfg.idle_seconds,
        **probes,
        "pending_counted": counted,
        "pending_expected": expected,
        "lost": lost,
        "errors": measured.errors,
    }


async def _idle_cpu(suite: Suite, pids: dict[str, int]) -> dict[str, float]:
    """CPU share of each process while nothing is sent."""
    meter = procstat.CpuMeter(pids).start()
    await asyncio.sleep(suite.cfg.idle_seconds)
    return meter.stop().percent()


async def _open_probes(suite: Suite, parked: list[str]) -> dict[str, Any]:
    """One at a time, with the orders waiting: approvals, lists through our API and
    through Temporal visibility."""
    k = suite.cfg.probes
    timings = Timings()
    half = max(1, k // 2)
    recent, oldest = parked[-half:], parked[:half]
    approved = 0
    for name, order_nos in (("approve_recent", recent), ("approve_oldest", oldest)):
        for order_no in order_nos:
            view = await timings.time(name, suite.api.approve(order_no, 1))
            flows.expect(view, "READY_TO_SHIP", "approval")
            approved += 1
    customer = suite.open_fixtures[3].customer_id
    status = 'OrderStatus="PENDING_APPROVAL"'
    for _ in range(k):
        await timings.time(
            "api_list_pending", suite.api.list_orders(status="PENDING_APPROVAL", limit=50)
        )
        await timings.time(
            "api_filter_pending_customer",
            suite.api.list_orders(status="PENDING_APPROVAL", customer_id=customer, limit=50),
        )
        await timings.time("api_get_order", suite.api.get_order(parked[len(parked) // 2]))
        await timings.time("visibility_list_100", _visibility_page(suite, status))
        await timings.time(
            "visibility_filter_customer_100",
            _visibility_page(suite, f'{status} AND CustomerId="{customer}"'),
        )
        await timings.time("visibility_count", suite.client.count_workflows(status))
    return {
        "latency_ms": {name: summary(s) for name, s in timings.samples.items()},
        "approved": approved,
    }


async def _visibility_page(suite: Suite, query: str) -> int:
    response = await suite.client.workflow_service.list_workflow_executions(
        ListWorkflowExecutionsRequest(namespace=suite.stack.namespace, query=query, page_size=100)
    )
    return len(response.executions)


async def _count_pending(suite: Suite) -> dict[str, int]:
    """Pending orders of the open-order customers: read model and Temporal visibility."""
    customers = [f.customer_id for f in suite.open_fixtures]
    api_total = 0
    for customer in customers:
        page = await suite.api.list_orders(status="PENDING_APPROVAL", customer_id=customer, limit=1)
        api_total += int(page["total"])
    listed = ", ".join(f'"{c}"' for c in customers)
    query = f'OrderStatus="PENDING_APPROVAL" AND CustomerId IN ({listed})'
    visibility = (await suite.client.count_workflows(query)).count
    return {"read_model": api_total, "visibility": visibility}


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
