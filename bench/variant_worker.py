"""Our worker with its CPU accounted for by cause.

`python -m bench.variant_worker accounting` runs `worker.main()` (the workflow and activity code
unchanged, in the sandbox or not as `WORKFLOW_SANDBOX` says), with the CPU time
(`time.thread_time`) of each cause added up: every activity by type, every workflow
activation, creating a workflow instance, decoding activations and encoding completions; and,
apart from them (it runs inside any of them), Python's garbage collection by generation.
Written as JSON to `$BENCH_ACCOUNTING_OUT` when the worker stops. Exact only when one order
runs at a time (activities share the event loop thread): `python -m bench.account` drives it
that way.
"""

from __future__ import annotations

import functools
import gc
import json
import os
import signal
import sys
import time
from collections.abc import Callable
from typing import Any

from temporalio import activity
from temporalio.worker import (
    ActivityInboundInterceptor,
    ExecuteActivityInput,
    Interceptor,
)

import worker
from settings import get_settings


class Ledger:
    """CPU seconds and counts by cause."""

    def __init__(self) -> None:
        self.cpu: dict[str, float] = {}
        self.count: dict[str, int] = {}

    def add(self, cause: str, seconds: float) -> None:
        self.cpu[cause] = self.cpu.get(cause, 0.0) + seconds
        self.count[cause] = self.count.get(cause, 0) + 1

    def write(self, path: str) -> None:
        causes = {
            cause: {"cpu_s": round(self.cpu[cause], 4), "count": self.count[cause]}
            for cause in sorted(self.cpu, key=lambda c: -self.cpu[c])
        }
        with open(path, "w", encoding="utf-8") as out:
            json.dump({"process_cpu_s": _process_cpu(), "causes": causes}, out, indent=2)


def _process_cpu() -> float:
    times = os.times()
    return times.user + times.system


LEDGER = Ledger()


class _AccountActivities(ActivityInboundInterceptor):
    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        name = activity.info().activity_type
        started = time.thread_time()
        try:
            return await self.next.execute_activity(input)
        finally:
            LEDGER.add(f"activity {name}", time.thread_time() - started)


class Accounting(Interceptor):
    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _AccountActivities(next)


def _timed_sync(cause: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        started = time.thread_time()
        try:
            return fn(*args, **kwargs)
        finally:
            LEDGER.add(cause, time.thread_time() - started)

    return wrapper


def _timed_async(cause: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(fn)
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        started = time.thread_time()
        try:
            return await fn(*args, **kwargs)
        finally:
            LEDGER.add(cause, time.thread_time() - started)

    return wrapper


def _patch(owner: Any, name: str, wrap: Callable[[Any], Any]) -> None:
    setattr(owner, name, wrap(getattr(owner, name)))


def install_accounting(sandboxed: bool) -> None:
    import temporalio.bridge.worker as bridge
    from temporalio.worker import _workflow, _workflow_instance
    from temporalio.worker.workflow_sandbox import _runner

    _patch(
        _workflow._WorkflowWorker,
        "_create_workflow_instance",
        lambda fn: _timed_sync(
            "workflow instance created"
            + (" (the sandbox imports the workflow modules)" if sandboxed else ""),
            fn,
        ),
    )
    if sandboxed:
        _patch(
            _runner._Instance,
            "activate",
            lambda fn: _timed_sync("workflow activation (our workflow code in the sandbox)", fn),
        )
    else:
        _patch(
            _workflow_instance._WorkflowInstanceImpl,
            "activate",
            lambda fn: _timed_sync("workflow activation (our workflow code, unsandboxed)", fn),
        )
    _patch(
        bridge,
        "decode_activation",
        lambda fn: _timed_async("decode activation (payloads to Python)", fn),
    )
    _patch(
        bridge,
        "encode_completion",
        lambda fn: _timed_async("encode completion (Python to payloads)", fn),
    )


GC_CAUSE = "of which: garbage collection"  # `bench.account` keeps it out of the sum


def _account_gc() -> None:
    started: dict[int, float] = {}

    def callback(phase: str, info: dict[str, int]) -> None:
        generation = info["generation"]
        if phase == "start":
            started[generation] = time.thread_time()
        elif generation in started:
            seconds = time.thread_time() - started.pop(generation)
            LEDGER.add(f"{GC_CAUSE}, generation {generation}", seconds)

    gc.callbacks.append(callback)


def main() -> None:
    if sys.argv[1:] != ["accounting"]:
        raise SystemExit("usage: python -m bench.variant_worker accounting")
    out = os.environ.get("BENCH_ACCOUNTING_OUT")
    install_accounting(get_settings().workflow_sandbox)
    _account_gc()
    if out:  # SIGUSR1: write the ledger so far (a snapshot to subtract from a later one)
        signal.signal(signal.SIGUSR1, lambda *_: LEDGER.write(out))
    try:
        worker.run(worker.main([Accounting()]))
    finally:
        if out:
            LEDGER.write(out)


if __name__ == "__main__":
    main()
