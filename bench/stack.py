"""The stack the suite measures: a Temporal dev server, our worker(s), the API, the baseline worker.

Everything runs in a temporary directory on free ports, with `ENVIRONMENT=development` and a
fresh SQLite database, and is stopped (SIGINT, then SIGKILL) when the suite ends. With
`--target` only the baseline worker is started here; the rest is the running service.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO
from urllib.parse import urlsplit

import httpx
import psycopg
from sqlalchemy.engine import make_url
from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client

import temporal_client
from bench import procstat
from devrun import temporal_command
from settings import Settings
from store import migrate

ROOT = Path(__file__).resolve().parent.parent
STARTUP_TIMEOUT = 90.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Proc:
    name: str
    process: subprocess.Popen[bytes]
    log: IO[bytes]

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self, timeout: float = 20) -> None:
        if self.alive():
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()


@dataclass
class Stack:
    """Addresses and processes; `own` is False with `--target` (nothing of ours to stop)."""

    api_url: str
    temporal_address: str
    namespace: str = "default"
    task_queue: str = "sales-orders"
    baseline_queue: str = field(default_factory=lambda: f"bench-baseline-{uuid.uuid4().hex[:6]}")
    own: bool = True
    workdir: Path | None = None
    database_url: str | None = None
    log_level: str = "INFO"
    temporal: Proc | None = None
    api: Proc | None = None
    workers: list[Proc] = field(default_factory=list)
    baseline_workers: list[Proc] = field(default_factory=list)
    client: Client | None = None  # the production data converter (as the API and worker)
    baseline_client: Client | None = None  # the default converter (as the baseline worker)
    cleanup: list[Callable[[], None]] = field(default_factory=list)
    workflow_sandbox: bool = True  # production's default; the baseline worker follows it
    found_pids: dict[str, int] = field(default_factory=dict)  # --target: same-machine processes

    # --- processes ------------------------------------------------------------------------

    def _env(self) -> dict[str, str]:
        assert self.database_url is not None
        return os.environ | {
            "ENVIRONMENT": "development",
            "TEMPORAL_ADDRESS": self.temporal_address,
            "TEMPORAL_NAMESPACE": self.namespace,
            "TASK_QUEUE": self.task_queue,
            "DATABASE_URL": self.database_url,
            "LOG_FORMAT": "json",
            "LOG_LEVEL": self.log_level,
            "WORKFLOW_SANDBOX": "true" if self.workflow_sandbox else "false",
        }

    def _spawn(self, name: str, command: list[str], env: dict[str, str] | None = None) -> Proc:
        assert self.workdir is not None
        log = (self.workdir / f"{name}.log").open("ab")
        process = subprocess.Popen(
            command,
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # our Ctrl-C reaches us; we stop the parts in order
        )
        return Proc(name, process, log)

    async def start_worker(self) -> Proc:
        """One more `python -m worker` process on the orders' task queue."""
        name = f"worker{len(self.workers) + 1}"
        proc = self._spawn(name, [sys.executable, "-m", "worker"], self._env())
        self.workers.append(proc)
        await self._wait_for_poller(proc)
        return proc

    async def _wait_for_poller(self, proc: Proc) -> None:
        """Ready when Temporal sees the process poll the orders' task queue (whatever it logs)."""
        assert self.client is not None
        identity = f"{proc.pid}@"
        request = DescribeTaskQueueRequest(
            namespace=self.namespace,
            task_queue=TaskQueue(name=self.task_queue),
            task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
        )
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while True:
            if not proc.alive():
                raise RuntimeError(f"{proc.name} exited during start-up:\n{self.tail(proc)}")
            response = await self.client.workflow_service.describe_task_queue(request)
            if any(p.identity.startswith(identity) for p in response.pollers):
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"{proc.name} did not start in time:\n{self.tail(proc)}")
            await asyncio.sleep(0.2)

    def stop_worker(self) -> None:
        self.workers.pop().stop()

    async def start_baseline_worker(self) -> Proc:
        proc = self._spawn(
            f"baseline{len(self.baseline_workers) + 1}",
            [
                sys.executable,
                "-m",
                "bench.baseline",
                "--address",
                self.temporal_address,
                "--namespace",
                self.namespace,
                "--task-queue",
                self.baseline_queue,
                *(["--sandboxed"] if self.workflow_sandbox else []),
            ],
        )
        self.baseline_workers.append(proc)
        await self._wait_for_log(proc, b"baseline worker ready")
        return proc

    def stop_baseline_worker(self) -> None:
        self.baseline_workers.pop().stop()

    async def _wait_for_log(self, proc: Proc, marker: bytes) -> None:
        assert self.workdir is not None
        path = self.workdir / f"{proc.name}.log"
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while marker not in path.read_bytes():
            if not proc.alive():
                raise RuntimeError(f"{proc.name} exited during start-up:\n{self.tail(proc)}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"{proc.name} did not start in time:\n{self.tail(proc)}")
            await asyncio.sleep(0.2)

    def tail(self, proc: Proc, lines: int = 20) -> str:
        assert self.workdir is not None
        text = (self.workdir / f"{proc.name}.log").read_text(errors="replace")
        return "\n".join(text.splitlines()[-lines:])

    def pids(self) -> dict[str, int]:
        """The processes whose CPU and memory the suite reports."""
        pids: dict[str, int] = dict(self.found_pids)
        if self.temporal:
            pids["temporal"] = self.temporal.pid
        if self.api:
            pids["api"] = self.api.pid
        for proc in self.workers:
            pids[proc.name] = proc.pid
        for proc in self.baseline_workers:
            pids[proc.name] = proc.pid
        pids["bench"] = os.getpid()
        return pids

    def stop(self) -> None:
        """API, workers, then Temporal, like `make run` stops them."""
        for proc in [
            *([self.api] if self.api else []),
            *reversed(self.workers),
            *reversed(self.baseline_workers),
            *([self.temporal] if self.temporal else []),
        ]:
            with contextlib.suppress(Exception):
                proc.stop()
        self.workers.clear()
        self.baseline_workers.clear()
        for step in self.cleanup:
            with contextlib.suppress(Exception):
                step()
        self.cleanup.clear()


def fresh_postgres_schema(url: str, prefix: str = "bench") -> tuple[str, str]:
    """A new schema on this PostgreSQL: (the URL with it as search_path, its name)."""
    schema = f"{prefix}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    scoped = (
        make_url(url)
        .update_query_dict({"options": f"-csearch_path={schema}"})
        .render_as_string(hide_password=False)
    )
    return scoped, schema


def drop_postgres_schema(url: str, schema: str) -> None:
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def libpq_url(url: str) -> str:
    """A SQLAlchemy URL as psycopg's own connect() takes it (driver name dropped)."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


async def start_own(
    workdir: Path,
    log_level: str,
    database_url: str | None = None,
    *,
    workflow_sandbox: bool = True,
) -> Stack:
    """A dev server (persisted to SQLite in `workdir`, WAL, like `make run`), the API, one
    worker; the read model in a fresh SQLite file, or a fresh schema of `database_url`."""
    temporal_port, api_port = free_port(), free_port()
    schema = None
    if database_url and make_url(database_url).get_backend_name() == "postgresql":
        url, schema = fresh_postgres_schema(database_url)
    else:
        url = database_url or f"sqlite+aiosqlite:///{workdir / 'orders.db'}"
    stack = Stack(
        api_url=f"http://127.0.0.1:{api_port}",
        temporal_address=f"127.0.0.1:{temporal_port}",
        task_queue=f"bench-orders-{uuid.uuid4().hex[:6]}",
        workdir=workdir,
        database_url=url,
        log_level=log_level,
        workflow_sandbox=workflow_sandbox,
    )
    if schema is not None and database_url is not None:
        stack.cleanup.append(lambda: drop_postgres_schema(database_url, schema))
    try:
        stack.temporal = stack._spawn(
            "temporal",
            temporal_command(workdir / "temporal.db", temporal_port, None),
        )
        stack.client = await _connect(stack)
        stack.baseline_client = await Client.connect(stack.temporal_address)
        await migrate.upgrade(stack.database_url or "")  # before the API and the worker start
        api_env = stack._env() | {"API_HOST": "127.0.0.1", "API_PORT": str(api_port)}
        stack.api = stack._spawn("api", [sys.executable, "-m", "api"], api_env)
        await stack.start_worker()
        await _wait_for_api(stack)
    except BaseException:
        stack.stop()
        raise
    return stack


async def attach(
    api_url: str, temporal_address: str, namespace: str, workflow_sandbox: bool
) -> Stack:
    """`--target`: the running API and Temporal; only the baseline worker is ours (in the
    sandbox or not, as the target's workers are said to run)."""
    workdir = Path(tempfile.mkdtemp(prefix="bench-target-"))
    stack = Stack(
        api_url=api_url.rstrip("/"),
        temporal_address=temporal_address,
        namespace=namespace,
        own=False,
        workdir=workdir,
        workflow_sandbox=workflow_sandbox,
    )
    stack.client = await _connect(stack)
    stack.baseline_client = await Client.connect(temporal_address, namespace=namespace)
    await _wait_for_api(stack)
    # CPU and memory of the target's processes when they run on this machine: the server and
    # the API by the ports they listen on, a worker by its command line and Temporal address.
    found = procstat.find_pids({"worker1": ("-m worker", f"TEMPORAL_ADDRESS={temporal_address}")})
    url = urlsplit(stack.api_url)
    for name, host, port in (
        ("temporal", temporal_address.rsplit(":", 1)[0], int(temporal_address.rsplit(":", 1)[1])),
        ("api", url.hostname or "", url.port or 80),
    ):
        if host in ("127.0.0.1", "localhost", "::1"):
            pid = procstat.listening_pid(port)
            if pid is not None:
                found[name] = pid
    stack.found_pids = found
    return stack


async def _connect(stack: Stack) -> Client:
    settings = Settings(temporal_address=stack.temporal_address, temporal_namespace=stack.namespace)
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while True:
        if stack.temporal is not None and not stack.temporal.alive():
            raise RuntimeError(f"the Temporal dev server exited:\n{stack.tail(stack.temporal)}")
        try:
            return await temporal_client.connect(settings)
        except Exception:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.3)


async def _wait_for_api(stack: Stack) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    async with httpx.AsyncClient(base_url=stack.api_url, timeout=5) as http:
        while True:
            if stack.api is not None and not stack.api.alive():
                raise RuntimeError(f"the API exited during start-up:\n{stack.tail(stack.api)}")
            with contextlib.suppress(httpx.HTTPError):
                if (await http.get("/health")).status_code == 200:
                    return
            if time.monotonic() > deadline:
                raise RuntimeError("the API did not become healthy in time")
            await asyncio.sleep(0.3)
