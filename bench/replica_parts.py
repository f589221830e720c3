"""What each part of an order's use of the engine costs it: `python -m bench.replica_parts`.

Reads an auto-approved order's script from a suite result (`--script-from`, default
`bench/results/full.json`: `figures.5_cost_per_order.auto_approved.script`), starts a dev server
and a baseline worker like the suite, and runs the order replica (`bench.baseline`) whole, then
with one part taken away at a time (the search-attribute upserts, the deadline timers, the
payload bytes), and the order-shaped baseline (none of the three), alternated round by round so
that the machine's drift hits each alike. Prints wf/s and the CPU per workflow of the server and
of the baseline worker, medians of the rounds: what each part costs the engine, with no code of
ours behind it.
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import json
import shutil
import statistics
import tempfile
from pathlib import Path
from typing import Any

from bench import baseline, procstat
from bench.stack import start_own

PARTS = ("whole replica", "without upserts", "without timers", "without bytes", "order-shaped")
SIZED = ("local", "activity", "answer")  # ops whose argument is a payload size


def variant(plan: dict[str, Any], name: str) -> dict[str, Any]:
    """`plan` (a `bench.history.script`) without the part `name` says."""
    if name == "order-shaped":
        return baseline.shaped(plan)
    out = copy.deepcopy(plan)
    segments: list[list[list[Any]]] = out["segments"]
    if name == "without upserts":
        out["segments"] = [[op for op in ops if op[0] != "upsert"] for ops in segments]
    elif name == "without timers":
        out["segments"] = [
            [op for op in ops if op[0] not in ("timer", "cancel")] for ops in segments
        ]
    elif name == "without bytes":
        out |= {"input_bytes": 0, "summary_bytes": 0, "result_bytes": 0}
        out["update_arg_bytes"] = [0 for _ in out["update_arg_bytes"]]
        out["segments"] = [
            [[op, 0] if op in SIZED else [op, arg] for op, arg in ops] for ops in segments
        ]
    elif name != "whole replica":
        raise ValueError(name)
    return out


async def measure(
    plan: dict[str, Any], rounds: int, count: int, clients: int
) -> dict[str, list[dict[str, float]]]:
    workdir = Path(tempfile.mkdtemp(prefix="bench-parts-"))
    stack = await start_own(workdir, "INFO")
    samples: dict[str, list[dict[str, float]]] = {name: [] for name in PARTS}
    try:
        await stack.start_baseline_worker()
        client, queue = stack.baseline_client, stack.baseline_queue
        assert client is not None
        await baseline.run_replica(client, queue, clients * 4, clients, plan, "parts-warm")
        for r in range(rounds):
            for i, name in enumerate(PARTS):
                meter = procstat.CpuMeter(stack.pids()).start()
                run = await baseline.run_replica(
                    client, queue, count, clients, variant(plan, name), f"parts-{r}-{i}"
                )
                cpu = meter.stop().ms_per(run.completed)
                if run.failed:
                    raise RuntimeError(f"{name}: {run.failed} failed: {run.errors}")
                samples[name].append(
                    {
                        "wf_per_s": run.per_second,
                        "temporal_ms": cpu["temporal"],
                        "worker_ms": cpu["baseline1"],
                    }
                )
                print(f"round {r + 1}/{rounds} {name}: {samples[name][-1]}", flush=True)
    finally:
        stack.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.replica_parts", description=__doc__)
    parser.add_argument("--script-from", type=Path, default=Path("bench/results/full.json"))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workflows", type=int, default=400, help="per part and round")
    parser.add_argument("--clients", type=int, default=16)
    args = parser.parse_args()
    result = json.loads(args.script_from.read_text())
    plan = result["figures"]["5_cost_per_order"]["auto_approved"]["script"]
    samples = asyncio.run(measure(plan, args.rounds, args.workflows, args.clients))
    print(f"machine: {procstat.machine_line(procstat.machine())}")
    print(
        f"command: python -m bench.replica_parts --script-from {args.script_from} "
        f"--rounds {args.rounds} --workflows {args.workflows} --clients {args.clients}"
    )
    print(f"  {'':18} {'wf/s':>6} {'server CPU/wf':>14} {'worker CPU/wf':>14}  (medians)")
    for name, values in samples.items():
        med = {key: statistics.median(v[key] for v in values) for key in values[0]}
        print(
            f"  {name:18} {med['wf_per_s']:6.1f} {med['temporal_ms']:11.1f} ms "
            f"{med['worker_ms']:11.1f} ms"
        )


if __name__ == "__main__":
    main()
