"""`python -m bench --web`: the web app's speed with many open orders (issue 23's targets).

With N orders parked in PENDING_APPROVAL (as figure 4 parks them, `flows.park`), one request at
a time: the approver's inbox (`/app/inbox` as `approver_l1`), the orders list (`/app/orders`
as `ops`) and an order page, each `probes` times. Their **server time** is the API's own
`request_handled` duration (its JSON log), the client's time over loopback is shown beside it;
target p99 ≤ 150 ms each. Then the **live update**: a second client (`ops`) holds the
server-sent events stream `/app/live` while `approver_l1` approves one parked order after
another through the API; the latency is from the approval's answer (and from its request) to
the event naming the order on the second client; target ≤ 1 s.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from bench import flows, procstat
from bench.client import APPROVER, OPS, ApiClient, session
from bench.flows import Fixture
from bench.load import closed_loop, summary
from bench.stack import Stack, start_own

TARGET_PAGE_P99_MS = 150.0
TARGET_LIVE_MS = 1000.0
STOCK = 10**9
PAGES = {  # what is measured → (path, who asks)
    "inbox": ("/app/inbox", APPROVER[1]),
    "orders_list": ("/app/orders", OPS),
    "order_page": ("/app/orders/{order_no}", OPS),
}


@dataclass
class WebConfig:
    open_orders: int
    probes: int
    live_probes: int
    clients: int
    out: Path
    command: str
    log_level: str
    keep: bool
    database_url: str | None
    workflow_sandbox: bool


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)


async def run_web(cfg: WebConfig) -> dict[str, Any]:
    started = time.perf_counter()
    workdir = Path(tempfile.mkdtemp(prefix="bench-web-"))
    stack: Stack | None = None
    try:
        log(f"starting Temporal dev server, API and worker in {workdir}")
        stack = await start_own(
            workdir, cfg.log_level, cfg.database_url, workflow_sandbox=cfg.workflow_sandbox
        )
        async with session(stack.api_url) as http:
            api = ApiClient(http)
            await api.detect_auth()
            parked = await _park(api, cfg)
            await asyncio.sleep(3)  # the last saves land
            tokens = {who: await _token(http, who) for _, who in PAGES.values()}
            client_ms = await _pages(http, tokens, parked, cfg.probes)
            server_ms = _server_times(stack, cfg.probes)
            live = await _live(stack.api_url, api, tokens[OPS], parked, cfg.live_probes)
    finally:
        if stack is not None:
            stack.stop()
            if not cfg.keep and stack.workdir is not None:
                shutil.rmtree(stack.workdir, ignore_errors=True)
        if not cfg.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    pages = {
        name: {
            "server_ms": server_ms.get(name),
            "client_ms": summary(samples),
            "bytes": client_ms["bytes"][name],
        }
        for name, samples in client_ms["samples"].items()
    }
    missed = [
        name
        for name, page in pages.items()
        if page["server_ms"] is None or page["server_ms"]["p99"] > TARGET_PAGE_P99_MS
    ]
    live_p99 = (live["after_decision_ms"] or {}).get("p99")
    if live_p99 is None or live_p99 > TARGET_LIVE_MS:
        missed.append("live_update")
    return {
        "suite": "web",
        "command": cfg.command,
        "machine": procstat.machine_line(procstat.machine()),
        "open_orders": len(parked),
        "probes": cfg.probes,
        "targets": {"page_p99_ms": TARGET_PAGE_P99_MS, "live_ms": TARGET_LIVE_MS},
        "pages": pages,
        "live_update": live,
        "missed_targets": missed,
        "duration_s": round(time.perf_counter() - started, 1),
    }


async def _park(api: ApiClient, cfg: WebConfig) -> list[str]:
    rid = str(int(time.time()))[-6:]
    sku = f"WEB-{rid}-L"
    await api.create_product(sku, flows.L1_PRICE, STOCK)
    fixtures = []
    for i in range(10):
        customer = f"WEB-{rid}-C{i}"
        await api.create_customer(customer)
        fixtures.append(Fixture(customer, sku))
    parked: list[str] = []

    async def one(i: int) -> None:
        parked.append(await flows.park(api, fixtures[i % len(fixtures)], f"W{rid}"))

    log(f"parking {cfg.open_orders} orders in PENDING_APPROVAL ...")
    measured = await closed_loop(one, cfg.open_orders, cfg.clients)
    log(f"{measured.completed} parked in {measured.seconds:.0f} s, {measured.failed} failed")
    if measured.failed:
        raise RuntimeError(f"parking orders failed: {measured.errors[:3]}")
    return parked


async def _token(http: aiohttp.ClientSession, who: str) -> str:
    form = {"username": who, "password": "demo"}
    async with http.post("/auth/token", data=form) as response:
        assert response.status == 200, await response.text()
        return str((await response.json())["access_token"])


async def _pages(
    http: aiohttp.ClientSession, tokens: dict[str, str], parked: list[str], probes: int
) -> dict[str, Any]:
    """Each page `probes` times, one request at a time (after one warm-up each)."""
    samples: dict[str, list[float]] = {name: [] for name in PAGES}
    sizes: dict[str, int] = {}
    middle = parked[len(parked) // 2]
    for n in range(probes + 1):
        for name, (path, who) in PAGES.items():
            headers = {"Cookie": f"session={tokens[who]}"}
            started = time.perf_counter()
            async with http.get(path.format(order_no=middle), headers=headers) as response:
                body = await response.read()
                assert response.status == 200, f"{path}: {response.status}"
            if n:  # the first is the warm-up
                samples[name].append((time.perf_counter() - started) * 1000)
            sizes[name] = len(body)
    return {"samples": samples, "bytes": sizes}


def _server_times(stack: Stack, probes: int) -> dict[str, dict[str, float] | None]:
    """The API's own durations of the last `probes` requests of each page (its JSON log)."""
    assert stack.workdir is not None
    durations: dict[str, list[float]] = {name: [] for name in PAGES}
    for line in (stack.workdir / "api.log").read_text(errors="replace").splitlines():
        if '"request_handled"' not in line:
            continue
        entry = json.loads(line)
        path = entry.get("path", "")
        name = (
            "inbox"
            if path == "/app/inbox"
            else "orders_list"
            if path == "/app/orders"
            else "order_page"
            if path.startswith("/app/orders/")
            else None
        )
        if name is not None and entry.get("status") == 200:
            durations[name].append(float(entry["duration_ms"]))
    return {name: summary(found[-probes:]) for name, found in durations.items()}


async def _live(
    base: str, api: ApiClient, token: str, parked: list[str], probes: int
) -> dict[str, Any]:
    """A second client's stream; approvals one after another; when each event arrives."""
    arrived: dict[str, float] = {}
    ready = asyncio.Event()

    async def listen(http: aiohttp.ClientSession) -> None:
        headers = {"Cookie": f"session={token}"}
        async with http.get("/app/live", headers=headers) as response:
            assert response.status == 200, response.status
            ready.set()
            async for raw in response.content:
                line = raw.decode().strip()
                if line.startswith("data: "):
                    order_no = json.loads(line[6:]).get("order_no")
                    if order_no is not None:
                        arrived.setdefault(order_no, time.perf_counter())

    after: list[float] = []
    since_request: list[float] = []
    missing = 0
    timeout = aiohttp.ClientTimeout(total=None, sock_read=None)
    async with aiohttp.ClientSession(base_url=base, timeout=timeout) as http:
        listener = asyncio.create_task(listen(http))
        await asyncio.wait_for(ready.wait(), 10)
        await asyncio.sleep(1)  # the process's change feed is primed
        for order_no in parked[:probes]:
            asked = time.perf_counter()
            flows.expect(await api.approve(order_no, 1), "READY_TO_SHIP", "approval")
            answered = time.perf_counter()
            for _ in range(100):
                if order_no in arrived:
                    break
                await asyncio.sleep(0.01)
            if order_no not in arrived:
                missing += 1
                continue
            after.append(max(0.0, arrived[order_no] - answered) * 1000)
            since_request.append((arrived[order_no] - asked) * 1000)
            await asyncio.sleep(0.2)
        listener.cancel()
    return {
        "after_decision_ms": summary(after),
        "since_request_ms": summary(since_request),
        "missing": missing,
        "what": "approval answered (and asked) → the event naming the order at a second client",
    }


def render_web(report: dict[str, Any]) -> str:
    lines = [
        f"web app with {report['open_orders']} open orders — {report['machine']}",
        f"command: {report['command']}",
        "",
        f"{'page':<14}{'server p50':>12}{'p99':>8}{'client p99':>12}{'bytes':>10}"
        f"{'target p99':>12}",
    ]
    for name, page in report["pages"].items():
        server = page["server_ms"] or {}
        client = page["client_ms"] or {}
        lines.append(
            f"{name:<14}{server.get('p50', '-'):>12}{server.get('p99', '-'):>8}"
            f"{client.get('p99', '-'):>12}{page['bytes']:>10}"
            f"{report['targets']['page_p99_ms']:>12}"
        )
    live = report["live_update"]
    after, asked = live["after_decision_ms"] or {}, live["since_request_ms"] or {}
    lines += [
        "",
        f"live update to a second client (ms): after the decision p50 {after.get('p50')} "
        f"p99 {after.get('p99')} max {after.get('max')}; since the request p99 "
        f"{asked.get('p99')}; missing {live['missing']}; target {report['targets']['live_ms']}",
        f"missed targets: {', '.join(report['missed_targets']) or 'none'}",
    ]
    return "\n".join(lines)
