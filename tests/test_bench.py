"""The benchmark suite runs end to end with tiny numbers and loses no order (issue 6).

A smoke test of `python -m bench` on its own stack (dev server, API, worker, baseline worker
on free ports, a temporary SQLite database): it checks the report's keys, not the figures.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import Client, WorkflowHistory
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from bench import baseline, history
from tests.conftest import unique
from tests.helpers import run_program

ROOT = Path(__file__).resolve().parent.parent
HISTORIES = ROOT / "tests" / "histories"
REQUIRED = (
    "baseline_wf_per_s",
    "orders_per_s",
    "ratio",
    "approve_p99_ms",
    "order_view_p99_ms",
    "events_per_order",
    "orders_lost",
)
PATHS = ("auto_approved", "two_level_approval", "production_shortage", "cancellation")


async def test_bench_runs_with_tiny_numbers_and_loses_nothing(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    command = [
        sys.executable,
        "-m",
        "bench",
        "--quick",
        "--runs=1",
        "--orders=6",
        "--open-orders=50",
        "--clients=3",
        "--latency-seconds=4",
        "--idle-seconds=1",
        "--probes=2",
        "--no-scaling",
        f"--out={out}",
    ]
    result = await run_program(command, cwd=ROOT, seconds=180)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    report = json.loads(out.read_text())
    for key in REQUIRED:
        assert key in report, key
    # Measured as production runs: workflows in the sandbox, ours and the baseline's.
    assert report["setup"]["workflow_sandbox"].startswith("on as in production")
    assert report["orders_lost"] == 0, report["problems"]
    assert set(PATHS) <= set(report["events_per_order"])
    assert report["events_per_order"]["auto_approved"] <= 60
    assert report["events_per_order"]["two_level_approval"] <= 80
    assert report["baseline_wf_per_s"] > 0 and report["orders_per_s"] > 0
    assert report["ratio_to_order_replica_baseline"] > 0
    pairs = report["figures"]["2_throughput"]["paired_ratios"]["order_replica"]
    assert len(pairs["per_run"]) == 1 and pairs["median"] == pairs["per_run"][0] > 0
    assert report["approve_p99_ms"] is not None and report["order_view_p99_ms"] is not None
    assert report["figures"]["4_open_orders"]["open_orders"] == 50
    assert "orders lost" in result.stdout  # the table was printed
    # Results are compared by their keys: the report keeps every key a committed result has.
    committed = json.loads((ROOT / "bench" / "results" / "quick.json").read_text())
    assert set(committed) <= set(report), set(committed) - set(report)
    for name, figure in committed["figures"].items():
        missing = set(figure) - set(report["figures"][name])
        assert not missing, (name, missing)


def replica_worker(client: Client, queue: str) -> Worker:
    """The baseline worker's replica, on `queue` (outside the sandbox: what it asks of the
    engine is the same either way)."""
    return Worker(
        client,
        task_queue=queue,
        workflows=[baseline.ReplicaWorkflow],
        activities=[baseline.sized],
        workflow_runner=UnsandboxedWorkflowRunner(),
    )


@pytest.mark.parametrize("path", ["auto_approved", "two_level_approval", "production_shortage"])
async def test_the_replica_asks_the_engine_what_the_order_asked(
    temporal_client: Client, path: str
) -> None:
    """The replica baseline, run from the plan of a recorded order, writes the same history:
    the same events in the same order, with payloads of the same sizes."""
    recorded = WorkflowHistory.from_json(path, (HISTORIES / f"{path}.json").read_text())
    plan = history.script(recorded.events)
    plain = Client(temporal_client.service_client, namespace=temporal_client.namespace)
    queue, prefix = unique("replica-q"), unique("replica")
    async with replica_worker(plain, queue):
        measured = await baseline.run_replica(plain, queue, 1, 1, plan, prefix)
        assert measured.completed == 1, measured.errors
        measured = await baseline.run_replica(
            plain, queue, 1, 1, baseline.shaped(plan), f"{prefix}-shaped"
        )
        assert measured.completed == 1, measured.errors
    replica = await plain.get_workflow_handle(f"{prefix}-0").fetch_history()
    # The order-shaped baseline: the same steps and updates, nothing else asked of the engine.
    shaped = history.script(
        (await plain.get_workflow_handle(f"{prefix}-shaped-0").fetch_history()).events
    )
    assert [[op for op, _ in ops] for ops in shaped["segments"]] == [
        [op for op, _ in ops if op in ("local", "activity", "answer")] for ops in plan["segments"]
    ]
    assert shaped["search_attributes"] == [] and shaped["summary_bytes"] == 0

    def kinds(events: Any) -> list[tuple[int, str]]:
        return [(e.event_type, e.marker_recorded_event_attributes.marker_name) for e in events]

    assert kinds(replica.events) == kinds(recorded.events)
    replayed = history.script(replica.events)
    # Its input carries the plan: the order's size, or the plan's when that is larger.
    assert replayed.pop("input_bytes") >= plan.pop("input_bytes")
    assert replayed == plan


async def test_the_web_bench_runs_with_tiny_numbers(tmp_path: Path) -> None:
    """`python -m bench --web`: every page answered, every live update arrived (not the
    figures: this machine is shared)."""
    out = tmp_path / "web.json"
    command = [sys.executable, "-m", "bench", "--web", "--quick", "--open-orders=5"]
    command += ["--probes=2", "--clients=2", f"--out={out}"]
    result = await run_program(command, cwd=ROOT, seconds=180)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    report = json.loads(out.read_text())
    assert set(report["pages"]) == {"inbox", "orders_list", "order_page"}
    for page in report["pages"].values():
        assert page["server_ms"]["n"] == 2 and page["client_ms"]["n"] == 2
    assert report["live_update"]["missing"] == 0
    assert report["live_update"]["after_decision_ms"]["n"] == 5
    assert "python -m bench --web" in report["command"]
