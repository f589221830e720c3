"""Figures 1, 2, 3, 5 and 6: the baselines, orders through the API, latency under load, and
what one order of each path costs in history.

Each phase is a function of the `Suite` it runs in (its stack, API client and fixtures).
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING, Any

from bench import baseline, flows, history, procstat
from bench.flows import Fixture, Timings
from bench.load import Measured, closed_loop, paced, summary

if TYPE_CHECKING:
    from bench.suite import Suite

LATENCY_LOAD = 0.5  # the share of the measured maximum the latency phase offers
APPROVAL_SHARE = 4  # every 4th order of the latency phase needs a supervisor's approval


# --- 5. cost per order ------------------------------------------------------------------------


async def cost_per_order(suite: Suite) -> dict[str, Any]:
    """One order per path, after warm-up: its history's events, bytes, steps and script."""
    rid = suite.run_id
    short_sku = f"BENCH-{rid}-SHORT"
    await suite.api.create_product(short_sku, flows.AUTO_PRICE, flows.SHORT_STOCK)
    paths = {
        "auto_approved": flows.auto_approved(suite.api, suite.auto[0], f"B{rid}-COST"),
        "two_level_approval": flows.approved(
            suite.api, suite.approval[0], f"B{rid}-COST", levels=2
        ),
        "production_shortage": flows.production_shortage(
            suite.api, Fixture(suite.auto[0].customer_id, short_sku), f"B{rid}-COST"
        ),
        "cancellation": flows.cancelled(suite.api, suite.auto[0], f"B{rid}-COST"),
    }
    result: dict[str, Any] = {}
    for path, flow in paths.items():
        order_no = await flow
        result[path] = await _history_cost(suite, order_no)
    return result


async def _history_cost(suite: Suite, order_no: str) -> dict[str, Any]:
    # The archive step is the run's last; the history may lag the API's answer by a task.
    handle = suite.client.get_workflow_handle(f"order-{order_no}")
    for _ in range(50):
        if (await handle.describe()).close_time is not None:
            break
        await asyncio.sleep(0.1)
    return await history.cost(suite.client, f"order-{order_no}")


# --- 1, 2, 6: throughput ---------------------------------------------------------------------


async def bare_baseline(
    suite: Suite, shape: dict[str, Any], count: int, tag: str
) -> dict[str, Any]:
    """Figure 1: bare workflows with the auto-approved order's step counts (`shape`)."""

    async def run(n: int) -> Measured:
        return await baseline.run_bare(
            suite.baseline_client,
            suite.stack.baseline_queue,
            n,
            suite.cfg.clients,
            shape["regular_activities"],
            shape["local_activities"],
            f"bench-bare-{suite.run_id}-{tag}",
        )

    return await suite.measure(f"baseline bare [{tag}]", run, count)


async def replica_baseline(
    suite: Suite, plan: dict[str, Any], count: int, tag: str, name: str
) -> dict[str, Any]:
    """Figure 1: `ReplicaWorkflow` runs of `plan` (the order's script, or its shaped form)."""

    async def run(n: int) -> Measured:
        return await baseline.run_replica(
            suite.baseline_client,
            suite.stack.baseline_queue,
            n,
            suite.cfg.clients,
            plan,
            f"bench-{name.replace(' ', '-')}-{suite.run_id}-{tag}",
        )

    return await suite.measure(f"baseline {name} [{tag}]", run, count)


async def orders(suite: Suite, count: int, tag: str) -> dict[str, Any]:
    """Figures 2 and 6: `count` auto-approved orders end to end, then checked in the read model."""
    timings = Timings()
    done: list[str] = []
    prefix = f"B{suite.run_id}-{tag}"

    async def one(i: int) -> None:
        fixture = suite.auto[i % len(suite.auto)]
        done.append(await flows.auto_approved(suite.api, fixture, prefix, timings))

    async def run(n: int) -> Measured:
        return await closed_loop(one, n, suite.cfg.clients)

    result = await suite.measure(f"orders [{tag}]", run, count)
    result["latency_at_saturation_ms"] = {
        name: summary(samples) for name, samples in timings.samples.items()
    }
    result["lost"] = result["failed"] + await suite.verify_completed(done, tag)
    return result


# --- 3. latency under load ------------------------------------------------------------


# --- 3. latency under load ---------------------------------------------------------------


async def latency(suite: Suite, rate: float, tag: str) -> dict[str, Any]:
    """Figure 3: an open loop of orders at `rate` per second, with an ops dashboard listing."""
    timings = Timings()
    done: list[str] = []
    prefix = f"B{suite.run_id}-{tag}"
    stop = asyncio.Event()

    async def one(i: int) -> None:
        k = i % len(suite.auto)
        if i % APPROVAL_SHARE == APPROVAL_SHARE - 1:
            order_no = await flows.approved(
                suite.api, suite.approval[k], prefix, 1, timings, view=True
            )
        else:
            order_no = await flows.auto_approved(
                suite.api, suite.auto[k], prefix, timings, view=True
            )
        done.append(order_no)

    async def lists() -> None:
        """An ops dashboard: the newest orders and one customer's ready ones, twice a second."""
        customer = suite.auto[0].customer_id
        while not stop.is_set():
            await timings.time("list", suite.api.list_orders(limit=50))
            await timings.time(
                "list_filtered",
                suite.api.list_orders(status="READY_TO_SHIP", customer_id=customer, limit=50),
            )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 0.5)

    poller = asyncio.create_task(lists())
    meter = procstat.CpuMeter(suite.stack.pids()).start()
    measured = await paced(one, rate, suite.cfg.latency_seconds)
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
        suite.problems += [f"latency {tag}: {e}" for e in measured.errors]
    result["lost"] = measured.failed + await suite.verify_completed(done, f"latency {tag}")
    lat = result["latency_ms"]
    suite.log(
        f"latency [{tag}] at {rate:.2f} orders/s: approve {lat.get('approve')}, "
        f"view {lat.get('order_view')}"
    )
    return result
