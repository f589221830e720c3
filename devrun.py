"""`make run`: the whole product on one machine, with nothing but Python.

Starts a persistent Temporal dev server (UI included, our search attributes registered), the
worker and the API, seeds the demo catalog and a few demo orders, prints where to click, and
on Ctrl-C stops everything in order: API, worker, then Temporal. State lives in `.data/`, so
the next run finds every order where it was.

Nothing outlives it: the shutdown goes on when stdout is gone (`make run | tee run.log` whose
`tee` ended first), and on Linux each part gets SIGTERM from the kernel if this program dies
without a shutdown (SIGKILL, OOM).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import functools
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

import temporal_client
from domain.auth import Role
from logs import configure_logging
from settings import DATA_DIR, Settings, get_settings
from store import migrate
from store.db import Database
from store.seed import DEMO_ORDERS, DEMO_PASSWORD, seed_demo_catalog
from workflows import search_attributes

BIN = Path(sys.executable).parent
STARTUP_TIMEOUT = 60.0


def temporal_command(db_file: Path, port: int, ui_port: int | None) -> list[str]:
    """The dev server on a persistent SQLite file, our search attributes registered; no UI
    when `ui_port` is None (benchmarks)."""
    ui = ["--ui-port", str(ui_port)] if ui_port is not None else ["--headless"]
    return [
        str(BIN / "temporal"),
        "server",
        "start-dev",
        *ui,
        "--db-filename",
        str(db_file),
        "--ip",
        "127.0.0.1",
        "--port",
        str(port),
        "--log-level",
        "warn",
        # Durable but fast: WAL journaling (see ENGINE-FIGURES: ~40% more throughput).
        "--sqlite-pragma",
        "journal_mode=wal",
        "--sqlite-pragma",
        "synchronous=normal",
        *search_attributes.cli_flags(),
    ]


PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def _die_with_parent(libc: ctypes.CDLL, parent: int) -> None:  # runs in the child, before exec
    """The kernel sends this child SIGTERM when its parent dies, however it dies (SIGKILL
    too): prctl(2)'s PR_SET_PDEATHSIG. It follows the thread that started the child: every
    part is started from the main thread, which lives as long as the program."""
    if libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
    if os.getppid() != parent:  # the parent died before the prctl took effect
        os._exit(1)


def spawn(command: list[str], **options: Any) -> subprocess.Popen[bytes]:
    """Start a part in its own session (Ctrl-C reaches only us, and we stop the parts in
    order), dying with us on Linux."""
    preexec = None
    if sys.platform == "linux":
        # Loaded here, in the parent: the child between fork and exec only calls it.
        preexec = functools.partial(
            _die_with_parent, ctypes.CDLL(None, use_errno=True), os.getpid()
        )
    return subprocess.Popen(command, start_new_session=True, preexec_fn=preexec, **options)


def start_temporal(settings: Settings) -> subprocess.Popen[bytes]:
    DATA_DIR.mkdir(exist_ok=True)
    command = temporal_command(
        DATA_DIR / "temporal.db", settings.temporal_port, settings.temporal_ui_port
    )
    log_file = (DATA_DIR / "temporal.log").open("ab")
    return spawn(command, stdout=log_file, stderr=subprocess.STDOUT)


def start_python(module: str, env: dict[str, str]) -> subprocess.Popen[bytes]:
    return spawn([sys.executable, "-m", module], env=env)


def say(text: str) -> None:
    """Print for the person running us. If stdout is gone (a closed pipe: `make run | tee`
    whose `tee` ended first), output stops and the work goes on: a shutdown that raised
    BrokenPipeError half-way left Temporal and the worker running as orphans."""
    try:
        print(text, flush=True)
    except (OSError, ValueError):
        _silence_stdout()


def _silence_stdout() -> None:
    """From now on stdout goes nowhere, also for the interpreter's flush at exit."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - lives as long as the process
    finally:
        os.close(devnull)


async def wait_for_temporal(settings: Settings, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while True:
        if process.poll() is not None:
            raise SystemExit(f"Temporal dev server exited; see {DATA_DIR / 'temporal.log'}")
        try:
            await temporal_client.connect(settings)
            return
        except Exception:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.5)


async def wait_for_api(base_url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    async with httpx.AsyncClient(base_url=base_url, timeout=5) as http:
        while True:
            if process.poll() is not None:
                raise SystemExit("the API exited during start-up")
            try:
                if (await http.get("/health")).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit("the API did not become healthy in time")
            await asyncio.sleep(0.5)


async def submit_demo_orders(base_url: str) -> list[str]:
    """Idempotent: a demo order submitted before is simply returned (200)."""
    lines = []
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as http:
        signed_in = await http.post(
            "/auth/token", data={"username": Role.SALES.value, "password": DEMO_PASSWORD}
        )
        signed_in.raise_for_status()
        http.headers["Authorization"] = f"Bearer {signed_in.json()['access_token']}"
        for order in DEMO_ORDERS:
            response = await http.post("/orders", json=order)
            status = response.json().get("status", response.status_code)
            lines.append(f"    {order['order_no']}: {status}")
    return lines


def stop(processes: list[tuple[str, subprocess.Popen[bytes]]]) -> None:
    """Each part in order, given 20 s to stop; a second Ctrl-C kills what is left."""
    try:
        for name, process in processes:
            if process.poll() is None:
                say(f"  stopping {name} ...")
                process.send_signal(signal.SIGINT)
                try:
                    process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
    finally:
        for _, process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()


async def main() -> None:
    settings = get_settings()
    configure_logging(fmt="console", level="WARNING")
    env = os.environ | {
        "LOG_FORMAT": os.environ.get("LOG_FORMAT", "console"),
        "TEMPORAL_ADDRESS": f"127.0.0.1:{settings.temporal_port}",
        "DATABASE_URL": settings.database_url,
    }
    settings = settings.model_copy(update={"temporal_address": env["TEMPORAL_ADDRESS"]})
    base_url = f"http://{settings.api_host}:{settings.api_port}"
    processes: list[tuple[str, subprocess.Popen[bytes]]] = []
    # SIGTERM (a service manager, `timeout`) stops everything like Ctrl-C does.
    task = asyncio.current_task()
    assert task is not None
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
    try:
        say(f"Starting the Temporal dev server (state in {DATA_DIR}/temporal.db) ...")
        temporal = start_temporal(settings)
        processes.insert(0, ("Temporal", temporal))
        await wait_for_temporal(settings, temporal)

        await migrate.upgrade(settings.database_url)  # `alembic upgrade head`
        db = Database(settings.database_url, audit_seal=settings.audit_seal())
        customers, products = await seed_demo_catalog(db)
        await db.dispose()
        say(f"Demo catalog: {customers} customer(s) and {products} product(s) added.")

        processes.insert(0, ("worker", start_python("worker", env)))
        api = start_python("api", env)
        processes.insert(0, ("API", api))
        await wait_for_api(base_url, api)
        demo = await submit_demo_orders(base_url)
        say(
            "\n".join(
                [
                    "",
                    "Sales order orchestration is running.",
                    f"  Web app (people):    {base_url}/app/",
                    f"  API docs (try it):   {base_url}/docs",
                    f"  Health:              {base_url}/health",
                    f"  Temporal UI:         http://127.0.0.1:{settings.temporal_ui_port}"
                    '  (search: OrderStatus="PENDING_APPROVAL")',
                    f"  Temporal gRPC:       {settings.temporal_address}",
                    f"  Database:            {settings.database_url}",
                    "  Demo users (sign in on the web app, or Authorize on the docs page), password "
                    f"'{DEMO_PASSWORD}':",
                    f"    {', '.join(role.value for role in Role)}",
                    "  Demo orders (entered by 'sales'):",
                    *demo,
                    "Press Ctrl-C to stop everything; orders persist for the next run.",
                    "",
                ]
            )
        )
        # Child processes have no awaitable exit here; polling twice a second is cheap.
        while all(process.poll() is None for _, process in processes):  # noqa: ASYNC110
            await asyncio.sleep(0.5)
        dead = [name for name, process in processes if process.poll() is not None]
        say(f"{', '.join(dead)} stopped unexpectedly; shutting down.")
    finally:
        stop(processes)
        say("Stopped.")


if __name__ == "__main__":
    # Ctrl-C or SIGTERM: main() has already stopped every part in order.
    with contextlib.suppress(KeyboardInterrupt, asyncio.CancelledError):
        asyncio.run(main())
