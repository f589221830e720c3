"""The suite's report as a plain-text table."""

from __future__ import annotations

from typing import Any

from bench import procstat


def _fmt(value: Any, unit: str = "") -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        text = f"{value:.3f}" if abs(value) < 1 else f"{value:.1f}"
    else:
        text = str(value)
    return f"{text}{unit}"


def _lat(entry: dict[str, Any] | None) -> str:
    if not entry:
        return "n/a"
    return f"{_fmt(entry.get('p50'))} / {_fmt(entry.get('p95'))} / {_fmt(entry.get('p99'))}" + (
        f"  (n={entry['n']})" if "n" in entry else ""
    )


def _cpu(values: dict[str, Any] | None) -> str:
    if not values:
        return "n/a"
    return ", ".join(f"{k} {_fmt(v)}" for k, v in values.items() if v is not None)


def render(report: dict[str, Any]) -> str:
    fig = report["figures"]
    base, thr, lat, open_, cost, scale = (
        fig["1_baseline"],
        fig["2_throughput"],
        fig["3_latency"],
        fig["4_open_orders"],
        fig["5_cost_per_order"],
        fig["6_scaling"],
    )
    m = report["machine"]
    rows: list[tuple[str, str, str]] = []

    def row(item: str, what: str, value: str) -> None:
        rows.append((item, what, value))

    ratio = report["ratio"]
    verdict = "" if ratio is None else (" ok" if ratio >= report["ratio_goal"] else " BELOW GOAL")
    row("1 baseline", "bare workflow, same step count (wf/s)", _fmt(report["baseline_wf_per_s"]))
    row("", "  order-shaped: + update-with-start, 3 updates", _fmt(base["order_shaped_wf_per_s"]))
    row(
        "",
        "  order replica: + upserts, timers, payload bytes",
        _fmt(base["order_replica_wf_per_s"]),
    )
    row("", "  CPU ms per workflow: bare", _cpu(base["cpu_ms_per_workflow"]))
    row("", "    order-shaped", _cpu(base["order_shaped_cpu_ms_per_workflow"]))
    row("", "    order replica", _cpu(base["order_replica_cpu_ms_per_workflow"]))
    row("2 throughput", "auto-approved orders via HTTP (orders/s)", _fmt(report["orders_per_s"]))
    row("", f"  ratio to baseline (goal >= {report['ratio_goal']:.2f})", f"{_fmt(ratio)}{verdict}")
    row(
        "",
        "  ratio to order-shaped / order replica baseline",
        f"{_fmt(report['ratio_to_order_shaped_baseline'])} / "
        f"{_fmt(report['ratio_to_order_replica_baseline'])}",
    )
    pairs = thr["paired_ratios"]
    row(
        "",
        "  each run over its own baselines: median",
        " / ".join(
            _fmt(pairs[name]["median"]) for name in ("bare", "order_shaped", "order_replica")
        ),
    )
    row(
        "",
        "    per run: to the order replica",
        ", ".join(_fmt(v) for v in pairs["order_replica"]["per_run"]),
    )
    row("", "  CPU ms per order", _cpu(thr["cpu_ms_per_order"]))
    row("", "  CPU % during the run (100 = one core)", _cpu(thr["cpu_percent"]))
    offered = ", ".join(_fmt(v) for v in lat["offered_orders_per_s"])
    row("3 latency", f"offered load (orders/s): {offered}", "p50 / p95 / p99 ms")
    labels = {
        "submit": "POST /orders",
        "approve": "approve (update round trip)",
        "order_view": "GET /orders/{order_no}",
        "list": "GET /orders",
        "list_filtered": "GET /orders?status=&customer_id=",
        "dispatch": "dispatch",
        "deliver": "deliver",
        "pay": "pay",
    }
    for key, label in labels.items():
        row("", f"  {label}", _lat(lat["latency_ms"].get(key)))
    n = open_["open_orders"]
    row("4 open orders", f"{n} parked in PENDING_APPROVAL: created/s", _fmt(open_["create_per_s"]))
    row(
        "",
        "  RSS before -> after (MiB)",
        ", ".join(
            f"{k} {_fmt(open_['rss_mib_before'].get(k))} -> {_fmt(v)}"
            for k, v in open_["rss_mib_after"].items()
        ),
    )
    row(
        "",
        "  RSS per open order (bytes)",
        ", ".join(f"{k} {v}" for k, v in open_["rss_bytes_per_open_order"].items()),
    )
    memory = open_.get("worker_memory")
    if memory:
        text = f"{memory['bytes_per_cached_order']} bytes per cached order"
        if memory.get("cache_full"):
            text += (
                f"; cache ({open_['worker_sticky_cache']}) full at {memory['mib_at_cache_full']} "
                f"MiB, then {memory['bytes_per_order_beyond_cache']} bytes per order"
            )
        row("", "  worker memory (sticky cache)", text)
    row("", "  idle CPU % before", _cpu(open_["idle_cpu_percent_before"]))
    row("", "  idle CPU % with them waiting", _cpu(open_["idle_cpu_percent_with_open_orders"]))
    for key, value in open_["latency_ms"].items():
        row("", f"  {key} (ms)", _lat(value))
    row("5 cost", "path: events / bytes / activities (regular+local) / updates", "")
    for path in ("auto_approved", "two_level_approval", "production_shortage", "cancellation"):
        c = cost[path]
        row(
            "",
            f"  {path}",
            f"{c['events']} / {c['bytes']} / {c['activities']} "
            f"({c['regular_activities']}+{c['local_activities']}) / {c['updates']}",
        )
    if scale.get("skipped"):
        row("6 scaling", "skipped", scale["skipped"])
    else:
        o, b = scale["orders_per_s"], scale["baseline_wf_per_s"]
        row(
            "6 scaling",
            "orders/s, 1 -> 2 workers",
            f"{_fmt(o['1_worker'])} -> {_fmt(o['2_workers'])}",
        )
        row(
            "",
            "bare baseline wf/s, 1 -> 2 workers",
            f"{_fmt(b['1_worker'])} -> {_fmt(b['2_workers'])}",
        )
        row("", "  CPU % with 2 workers", _cpu(scale["cpu_percent_2_workers"]))
    row("", "orders lost (final state not the expected one)", str(report["orders_lost"]))

    width = [max(len(r[i]) for r in rows) for i in range(2)]
    lines = [
        f"Sales-order benchmark ({report['suite']}: {report['runs_note']})",
        f"machine: {procstat.machine_line(m)}, Python {m['python']}",
        f"command: {report['command']}",
        "setup: " + "; ".join(f"{k}: {v}" for k, v in report["setup"].items() if v),
        f"API authentication: {'bearer tokens' if report.get('auth') else 'none'}; "
        f"{report['clients']} clients; {report.get('duration_s', '?')} s in all",
        "",
    ]
    for item, what, value in rows:
        lines.append(f"{item:<{width[0]}}  {what:<{width[1]}}  {value}")
    if report.get("noise"):
        lines += [
            "",
            "noisy: other processes on the machine used CPU (% of one core) during "
            + ", ".join(f"{k} ({v:.0f}%)" for k, v in report["noise"].items()),
        ]
    if report.get("problems"):
        lines += ["", "problems:", *(f"  {p}" for p in report["problems"][:10])]
    return "\n".join(lines)
