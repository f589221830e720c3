"""`make run`'s program end to end: it starts everything, says where to click, stops cleanly on
Ctrl-C, and the next run finds the orders where they were; nothing it started outlives it."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start(workdir: Path, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "devrun"],
        cwd=workdir,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def wait_until_running(process: subprocess.Popen[str]) -> str:
    """Read its output until it says it is running (or give up after a minute)."""
    assert process.stdout is not None
    seen = ""
    deadline = time.monotonic() + 60
    while "Press Ctrl-C" not in seen:
        line = process.stdout.readline()
        if not line and process.poll() is not None:
            pytest.fail(f"the run command exited early:\n{seen}")
        seen += line
        if time.monotonic() > deadline:
            pytest.fail(f"the run command did not come up:\n{seen}")
    return seen


def stop(process: subprocess.Popen[str]) -> str:
    process.send_signal(signal.SIGINT)
    out, _ = process.communicate(timeout=60)
    assert process.returncode == 0, out
    return out


def demo_user(base: str, role: str) -> dict[str, str]:
    """Development seeds one user per role, named after it, password `demo`."""
    answer = httpx.post(f"{base}/auth/token", data={"username": role, "password": "demo"})
    assert answer.status_code == 200, answer.text
    return {"Authorization": f"Bearer {answer.json()['access_token']}"}


async def test_run_command_starts_stops_and_keeps_orders(tmp_path: Path) -> None:
    # Off the event loop: the session's worker shares it, and this takes half a minute.
    await asyncio.to_thread(run_twice, tmp_path)


def run_twice(tmp_path: Path) -> None:
    api_port, temporal_port, ui_port = free_port(), free_port(), free_port()
    env = os.environ | {
        "API_PORT": str(api_port),
        "TEMPORAL_PORT": str(temporal_port),
        "TEMPORAL_UI_PORT": str(ui_port),
        "TASK_QUEUE": "sales-orders",
    }
    env.pop("DATABASE_URL", None)
    env.pop("TEMPORAL_ADDRESS", None)
    base = f"http://127.0.0.1:{api_port}"

    process = start(tmp_path, env)
    try:
        banner = wait_until_running(process)
        assert f"{base}/docs" in banner
        assert f"http://127.0.0.1:{ui_port}" in banner
        assert "DEMO-0002: PENDING_APPROVAL" in banner
        assert httpx.get(f"{base}/health").status_code == 200
        assert httpx.get(f"{base}/docs").status_code == 200
        assert httpx.get(f"http://127.0.0.1:{ui_port}/").status_code == 200
        assert "approver_l1" in banner and "password 'demo'" in banner
        assert httpx.get(f"{base}/orders").status_code == 401
        approved = httpx.post(
            f"{base}/orders/DEMO-0002/approve",
            json={"comment": "ok"},
            headers=demo_user(base, "approver_l1"),
            timeout=30,
        )
        assert approved.status_code == 200, approved.text
        assert approved.json()["approvals"][0]["approver"] == "approver_l1"
    finally:
        out = stop(process)
    assert "Stopped." in out
    assert (tmp_path / ".data" / "temporal.db").exists()
    assert (tmp_path / ".data" / "orders.db").exists()

    # The next run finds the order where it was: level 1 approved, awaiting the manager.
    process = start(tmp_path, env)
    try:
        banner = wait_until_running(process)
        assert "Demo catalog: 0 customer(s) and 0 product(s) added." in banner
        ops = demo_user(base, "ops")
        order = httpx.get(f"{base}/orders/DEMO-0002", headers=ops, timeout=30).json()
        assert order["status"] == "PENDING_APPROVAL"
        assert order["approval"]["awaiting_level"] == 2
        approved = httpx.post(
            f"{base}/orders/DEMO-0002/approve",
            json={},
            headers=demo_user(base, "approver_l2"),
            timeout=30,
        )
        assert approved.status_code == 200, approved.text
        assert approved.json()["status"] == "IN_PRODUCTION"  # 10 PLCs ordered, 3 in stock
    finally:
        stop(process)


def children(pid: int) -> dict[int, str]:
    """The processes whose parent is `pid`, with their command lines (Linux's /proc)."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue  # ended meanwhile
        # After the command name, which is in parentheses and may hold anything.
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found[int(entry.name)] = command
    return found


def alive(pid: int) -> bool:
    try:
        state = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"  # a zombie has ended; only its exit status is left


def wait_gone(pids: list[int], seconds: float = 45) -> list[int]:
    deadline = time.monotonic() + seconds
    while (left := [pid for pid in pids if alive(pid)]) and time.monotonic() < deadline:
        time.sleep(0.2)
    return left


@pytest.mark.skipif(sys.platform != "linux", reason="reads /proc; dies-with-parent is Linux's")
async def test_nothing_outlives_the_run_command(tmp_path: Path) -> None:
    await asyncio.to_thread(outlive, tmp_path)


def outlive(tmp_path: Path) -> None:
    env = os.environ | {
        "API_PORT": str(free_port()),
        "TEMPORAL_PORT": str(free_port()),
        "TEMPORAL_UI_PORT": str(free_port()),
        "TASK_QUEUE": "sales-orders",
    }
    env.pop("DATABASE_URL", None)
    env.pop("TEMPORAL_ADDRESS", None)
    # `make run | tee run.log`, Ctrl-C: tee ends first, so every line of the shutdown meets a
    # closed pipe. Then `kill -9` of the run command itself.
    for how in ("closed stdout, then Ctrl-C", "SIGKILL"):
        process = start(tmp_path, env)
        parts: dict[int, str] = {}
        try:
            wait_until_running(process)
            parts = children(process.pid)
            assert len(parts) == 3, parts  # Temporal, worker, API
            if how == "SIGKILL":
                process.kill()
            else:
                assert process.stdout is not None
                process.stdout.close()
                process.send_signal(signal.SIGINT)
            process.wait(timeout=60)
            left = wait_gone(list(parts))
            assert not left, (how, {pid: parts[pid] for pid in left})
        finally:
            for pid in parts:  # whatever this test started, it ends
                if alive(pid):
                    os.kill(pid, signal.SIGKILL)
            if process.poll() is None:
                process.kill()
                process.wait()
            if process.stdout is not None:
                process.stdout.close()
