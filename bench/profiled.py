"""Run a module under cProfile in every Python thread, timing CPU (not wall) per thread.

`python -m bench.profiled OUT.prof MODULE [ARGS...]`, e.g. `bench.profiled w.prof worker`.
The worker runs workflow activations in a thread pool and activities on the event loop, the
API runs database calls in aiosqlite threads: a profiler on the main thread alone would miss
most of it. Each thread gets its own `cProfile.Profile(time.thread_time)`; on exit (SIGINT
stops the worker and the API cleanly) they are merged into OUT.prof and OUT.txt (the top
functions by own and by cumulative CPU time). Profiling slows the process down (~1.5-2x):
use it for where the time goes, not for how much there is.
"""

from __future__ import annotations

import cProfile
import io
import pstats
import runpy
import sys
import threading
import time
from pathlib import Path
from types import FrameType
from typing import Any

_profiles: list[tuple[str, cProfile.Profile]] = []
_lock = threading.Lock()

# Where CPU goes, by the file a function is in (first match wins; builtins count apart).
CATEGORIES = [
    ("workflow sandbox", ("temporalio/worker/workflow_sandbox",)),
    ("temporal SDK", ("temporalio/",)),
    (
        "database (SQLAlchemy, SQLModel, aiosqlite, psycopg)",
        (
            "sqlalchemy/",
            "sqlmodel/",
            "aiosqlite/",
            "psycopg",
            "greenlet",
            "sqlite3/",
        ),
    ),
    ("pydantic", ("pydantic",)),
    (
        "web (FastAPI, Starlette, uvicorn, h11, anyio)",
        (
            "fastapi/",
            "starlette/",
            "uvicorn/",
            "h11/",
            "anyio/",
            "httptools",
        ),
    ),
    ("logging (structlog, logging)", ("structlog/", "/logging/", "/work/main/logs.py")),
    ("asyncio and selectors", ("/asyncio/", "selectors.py")),
    (
        "our code",
        (
            "/work/main/workflows/",
            "/work/main/activities/",
            "/work/main/domain/",
            "/work/main/store/",
            "/work/main/api/",
            "/work/main/worker.py",
        ),
    ),
]


def category(filename: str) -> str:
    if filename == "~":
        return "builtins (isinstance, getattr, socket, ...)"
    for name, needles in CATEGORIES:
        if any(needle in filename for needle in needles):
            return name
    return "other Python (stdlib, imports, ...)"


def _start_in_thread(frame: FrameType, event: str, arg: Any) -> None:
    # Called once in each new thread (threading.setprofile); the profiler replaces this hook.
    profile = cProfile.Profile(time.thread_time)
    with _lock:
        _profiles.append((threading.current_thread().name, profile))
    profile.enable()


def _thread_group(name: str) -> str:
    """Thread names without their numbers: pools count as one."""
    return name.rstrip("0123456789_-").rstrip("(").strip() or name


def write(out: Path, profiles: list[tuple[str, cProfile.Profile]]) -> None:
    stats: pstats.Stats | None = None
    threads: dict[str, float] = {}
    by_category: dict[str, dict[str, float]] = {}
    for thread, profile in profiles:
        try:
            profile.create_stats()
            one = pstats.Stats(profile)
        except Exception:
            continue
        group = _thread_group(thread)
        per = by_category.setdefault(group, {})
        for (filename, _, _), (_, _, tottime, _, _) in one.stats.items():  # type: ignore[attr-defined]
            threads[group] = threads.get(group, 0.0) + tottime
            key = category(filename)
            per[key] = per.get(key, 0.0) + tottime
        if stats is None:
            stats = one
        else:
            stats.add(one)
    if stats is None:
        return
    stats.dump_stats(out)
    text = io.StringIO()
    total = sum(threads.values()) or 1.0
    text.write(f"CPU seconds under the profiler: {total:.1f}\n\nby thread:\n")
    for group, seconds in sorted(threads.items(), key=lambda kv: -kv[1]):
        text.write(f"  {seconds:8.2f} s {100 * seconds / total:5.1f}%  {group}\n")
        for key, value in sorted(by_category[group].items(), key=lambda kv: -kv[1]):
            if value >= 0.005 * total:
                text.write(f"      {value:8.2f} s {100 * value / total:5.1f}%  {key}\n")
    text.write("\n")
    report = pstats.Stats(str(out), stream=text)
    report.sort_stats("tottime").print_stats(60)
    out.with_suffix(".txt").write_text(text.getvalue())


def main() -> None:
    out, module, *args = sys.argv[1:]
    sys.argv = [module, *args]
    threading.setprofile(_start_in_thread)
    main_profile = cProfile.Profile(time.thread_time)
    _profiles.append(("main (event loop)", main_profile))
    main_profile.enable()
    try:
        runpy.run_module(module, run_name="__main__", alter_sys=True)
    finally:
        main_profile.disable()
        threading.setprofile(None)
        with _lock:
            profiles = list(_profiles)
        write(Path(out), profiles)


if __name__ == "__main__":
    main()
