"""`python -m bench`: the benchmark suite (see bench/README.md)."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from pathlib import Path

from bench.suite import Config, reproduce_command, run, write
from bench.table import render
from bench.web import WebConfig, render_web, run_web

QUICK = {"runs": 1, "orders": 80, "open_orders": 150, "latency": 12.0, "idle": 4.0, "probes": 15}
# --web: the web app's pages and live updates with this many open orders.
WEB_QUICK = {"open_orders": 300, "probes": 30, "live": 10}
WEB_FULL = {"open_orders": 10_000, "probes": 100, "live": 30}
FULL = {
    "runs": 3,
    "orders": 240,
    "open_orders": 10_000,
    "latency": 30.0,
    "idle": 20.0,
    "probes": 100,
}


def parse(argv: list[str]) -> Config | WebConfig:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Throughput, latency, open orders, cost per order and scaling of the order "
        "service, against a bare-workflow baseline on the same Temporal server.",
    )
    parser.add_argument("--quick", action="store_true", help="one short run (under 3 minutes)")
    parser.add_argument(
        "--web",
        action="store_true",
        help="the web app instead: inbox, orders list and order page server time with "
        "--open-orders waiting, and the live update's latency to a second client",
    )
    parser.add_argument("--runs", type=int, help="runs of the throughput and latency phases")
    parser.add_argument("--orders", type=int, help="orders per throughput run")
    parser.add_argument("--open-orders", type=int, help="orders parked in PENDING_APPROVAL")
    parser.add_argument("--clients", type=int, default=16, help="concurrent clients")
    parser.add_argument("--latency-seconds", type=float, help="length of each latency phase")
    parser.add_argument("--idle-seconds", type=float, help="idle CPU measuring window")
    parser.add_argument("--probes", type=int, help="samples per read/approval with open orders")
    parser.add_argument(
        "--target", help="a running API (e.g. http://127.0.0.1:8000) instead of our own stack"
    )
    parser.add_argument(
        "--temporal", default="127.0.0.1:7233", help="with --target: its Temporal frontend"
    )
    parser.add_argument("--namespace", default="default", help="with --target: the namespace")
    parser.add_argument(
        "--database-url",
        help="the read model's database (default: a fresh SQLite file); a PostgreSQL URL gets "
        "a fresh schema, dropped at the end",
    )
    parser.add_argument(
        "--workflow-sandbox",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="run our worker's and the baseline's workflows in Temporal's sandbox, as "
        "production does by default (--no-workflow-sandbox: outside it, WORKFLOW_SANDBOX=false "
        "in the README)",
    )
    parser.add_argument("--no-scaling", action="store_true", help="skip the two-worker runs")
    parser.add_argument("--log-level", default="INFO", help="of the API and worker (JSON logs)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary dir and logs")
    parser.add_argument("--out", type=Path, help="the JSON report (default bench/results/)")
    args = parser.parse_args(argv)
    if args.web:
        web = WEB_QUICK if args.quick else WEB_FULL
        name = "web-quick.json" if args.quick else "web.json"
        return WebConfig(
            open_orders=args.open_orders or int(web["open_orders"]),
            probes=args.probes or int(web["probes"]),
            live_probes=int(web["live"]),
            clients=args.clients,
            out=args.out or Path("bench/results") / name,
            command=reproduce_command(argv),
            log_level=args.log_level,
            keep=args.keep,
            database_url=args.database_url,
            workflow_sandbox=args.workflow_sandbox,
        )
    preset = QUICK if args.quick else FULL
    out = args.out or Path("bench/results") / ("quick.json" if args.quick else "full.json")
    return Config(
        quick=args.quick,
        runs=args.runs or int(preset["runs"]),
        orders=args.orders or int(preset["orders"]),
        open_orders=args.open_orders or int(preset["open_orders"]),
        clients=args.clients,
        latency_seconds=args.latency_seconds or float(preset["latency"]),
        idle_seconds=args.idle_seconds if args.idle_seconds is not None else float(preset["idle"]),
        probes=args.probes or int(preset["probes"]),
        target=args.target,
        temporal=args.temporal,
        namespace=args.namespace,
        out=out,
        log_level=args.log_level,
        keep=args.keep,
        command=reproduce_command(argv),
        scaling=not args.no_scaling,
        database_url=args.database_url,
        workflow_sandbox=args.workflow_sandbox,
    )


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # asyncio.run cancels the suite: it stops what it started


def main(argv: list[str] | None = None) -> int:
    cfg = parse(sys.argv[1:] if argv is None else argv)
    signal.signal(signal.SIGTERM, _interrupt)
    if isinstance(cfg, WebConfig):
        found = asyncio.run(run_web(cfg))
        write(found, cfg.out)
        print()
        print(render_web(found))
        print(f"\nwritten to {cfg.out}")
        return 0
    report = asyncio.run(run(cfg))
    write(report, cfg.out)
    print()
    print(render(report))
    print(f"\nwritten to {cfg.out}")
    return 0 if report["orders_lost"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
