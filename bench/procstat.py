"""What the machine is and what each process costs, read from /proc (no psutil).

`VmRSS` from /proc/<pid>/status for memory; utime + stime from /proc/<pid>/stat (in clock
ticks) for CPU. Linux only, like the rest of the suite's numbers.
"""

from __future__ import annotations

import os
import platform
import time
from dataclasses import dataclass
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def machine() -> dict[str, object]:
    """Cores, RAM, CPU model and kernel: printed with every figure."""
    mem_kib = 0
    model = platform.processor() or "unknown"
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_kib = int(line.split()[1])
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cores": os.cpu_count() or 0,
        "ram_mib": round(mem_kib / 1024),
        "cpu_model": model,
        "kernel": platform.release(),
        "python": platform.python_version(),
    }


def machine_line(info: dict[str, object]) -> str:
    return f"{info['cores']} cores ({info['cpu_model']}), {info['ram_mib']} MiB RAM, Linux {info['kernel']}"


def rss_bytes(pid: int) -> int | None:
    """Resident memory of a process, or None when it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        return None
    return None


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time a process has used so far, or None when it is gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may contain spaces; the fields after its ")" are fixed.
    fields = raw[raw.rindex(")") + 2 :].split()
    utime, stime = int(fields[11]), int(fields[12])
    return (utime + stime) / CLOCK_TICKS


def machine_busy_seconds() -> float:
    """CPU time all cores have spent busy since boot (not idle, not waiting for I/O)."""
    try:
        fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    except OSError:
        return 0.0
    # user nice system idle iowait irq softirq steal (guest time is already in user)
    ticks = [int(v) for v in fields[:8]]
    return (sum(ticks) - ticks[3] - ticks[4]) / CLOCK_TICKS


@dataclass
class CpuMeter:
    """CPU used by named processes between `start()` and `stop()`, and by everything else on
    the machine (`other`: the machine is shared, and this says how much it was)."""

    pids: dict[str, int]

    def start(self) -> CpuMeter:
        self._wall = time.perf_counter()
        self._cpu = {name: cpu_seconds(pid) or 0.0 for name, pid in self.pids.items()}
        self._busy = machine_busy_seconds()
        return self

    def stop(self) -> CpuUse:
        wall = time.perf_counter() - self._wall
        used = {
            name: max(0.0, (cpu_seconds(pid) or 0.0) - self._cpu[name])
            for name, pid in self.pids.items()
        }
        busy = machine_busy_seconds() - self._busy
        used["other"] = max(0.0, busy - sum(used.values()))
        return CpuUse(wall_s=wall, cpu_s=used)


@dataclass
class CpuUse:
    wall_s: float
    cpu_s: dict[str, float]

    def percent(self) -> dict[str, float]:
        """Share of one core each process used (100 = one core busy all the time)."""
        return {name: round(100 * s / self.wall_s, 1) for name, s in self.cpu_s.items()}

    def ms_per(self, count: int) -> dict[str, float]:
        return {name: round(1000 * s / max(count, 1), 1) for name, s in self.cpu_s.items()}


def listening_pid(port: int) -> int | None:
    """The process listening on this TCP port on this machine, if any (from /proc/net/tcp)."""
    inodes: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(f"socket:[{fields[9]}]")
    if not inodes:
        return None
    for entry in _processes():
        try:
            for fd in (entry / "fd").iterdir():
                if os.readlink(fd) in inodes:
                    return int(entry.name)
        except OSError:
            continue
    return None


def find_pids(patterns: dict[str, tuple[str, ...]]) -> dict[str, int]:
    """Processes whose command line and environment contain every given string."""
    found: dict[str, int] = {}
    for entry in _processes():
        try:
            text = (entry / "cmdline").read_bytes() + b"\0" + (entry / "environ").read_bytes()
        except OSError:
            continue
        decoded = text.replace(b"\0", b" ").decode(errors="replace")
        for name, needles in patterns.items():
            if name not in found and all(needle in decoded for needle in needles):
                found[name] = int(entry.name)
    return found


def _processes() -> list[Path]:
    me = os.getpid()
    return [p for p in Path("/proc").iterdir() if p.name.isdigit() and int(p.name) != me]
