"""The benchmark suite runs end to end with tiny numbers and loses no order (issue 6).

A smoke test of `python -m bench` on its own stack (dev server, API, worker, baseline worker
on free ports, a temporary SQLite database): it checks the report's keys, not the figures.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
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


def test_bench_runs_with_tiny_numbers_and_loses_nothing(tmp_path: Path) -> None:
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
    result = subprocess.run(
        command, cwd=ROOT, capture_output=True, text=True, timeout=180, check=False
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    report = json.loads(out.read_text())
    for key in REQUIRED:
        assert key in report, key
    # Measured as production runs: workflows outside the sandbox, ours and the baseline's.
    assert report["setup"]["workflow_sandbox"].startswith("off as in production")
    assert report["orders_lost"] == 0, report["problems"]
    assert set(PATHS) <= set(report["events_per_order"])
    assert report["events_per_order"]["auto_approved"] <= 60
    assert report["events_per_order"]["two_level_approval"] <= 80
    assert report["baseline_wf_per_s"] > 0 and report["orders_per_s"] > 0
    assert report["approve_p99_ms"] is not None and report["order_view_p99_ms"] is not None
    assert report["figures"]["4_open_orders"]["open_orders"] == 50
    assert "orders lost" in result.stdout  # the table was printed
