"""Load generation and statistics: closed loops, paced (open) loops, percentiles, medians."""

from __future__ import annotations

import asyncio
import math
import statistics
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field


@dataclass
class Measured:
    """How many runs completed (and when), how many failed, in how long."""

    completed: int = 0
    failed: int = 0
    started: float = 0.0
    seconds: float = 0.0
    concurrency: int = 1
    completions: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def per_second(self) -> float:
        """Throughput in steady state: with enough runs, the first and last `concurrency`
        completions (ramp-up and drain, when fewer than `concurrency` are in flight) are left
        out; otherwise everything over the whole time."""
        times = sorted(self.completions)
        n, c = len(times), self.concurrency
        if c > 0 and n >= 4 * c:
            span = times[n - c - 1] - times[c - 1]
            if span > 0:
                return (n - 2 * c) / span
        return n / self.seconds if self.seconds > 0 else 0.0


async def closed_loop(
    one: Callable[[int], Awaitable[object]], count: int, concurrency: int
) -> Measured:
    """`count` runs of `one`, `concurrency` clients each starting the next as theirs completes."""
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(count):
        queue.put_nowait(i)
    measured = Measured(concurrency=min(concurrency, count), started=time.perf_counter())

    async def client_loop() -> None:
        while True:
            try:
                i = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            try:
                await one(i)
                measured.completed += 1
                measured.completions.append(time.perf_counter())
            except Exception as exc:  # counted and reported, never hidden
                measured.failed += 1
                if len(measured.errors) < 5:
                    measured.errors.append(repr(exc)[:400])

    await asyncio.gather(*(client_loop() for _ in range(measured.concurrency)))
    measured.seconds = time.perf_counter() - measured.started
    return measured


async def paced(one: Callable[[int], Awaitable[object]], rate: float, seconds: float) -> Measured:
    """Open loop: start `one` at `rate` per second for `seconds`, whatever the answers take
    (arrivals do not wait for earlier orders: the offered load is the stated one)."""
    count = max(1, round(rate * seconds))
    measured = Measured(concurrency=count, started=time.perf_counter())

    async def run(i: int) -> None:
        try:
            await one(i)
            measured.completed += 1
            measured.completions.append(time.perf_counter())
        except Exception as exc:
            measured.failed += 1
            if len(measured.errors) < 5:
                measured.errors.append(repr(exc)[:400])

    tasks = []
    for i in range(count):
        delay = measured.started + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(run(i)))
    await asyncio.gather(*tasks)
    measured.seconds = time.perf_counter() - measured.started
    return measured


def percentile(samples: Sequence[float], p: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(samples)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


def summary(samples: Sequence[float]) -> dict[str, float] | None:
    """n, p50, p95, p99 and max of latencies in ms (None without samples)."""
    if not samples:
        return None
    return {
        "n": len(samples),
        "p50": round(percentile(samples, 50), 1),
        "p95": round(percentile(samples, 95), 1),
        "p99": round(percentile(samples, 99), 1),
        "max": round(max(samples), 1),
    }


def median(values: Sequence[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None
