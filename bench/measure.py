"""Run one builder command and measure it: wall time, CPU time, peak memory.

Why its own module: the three builders spend their CPU in different places (kiln and buildah
in the child process tree, Docker in its daemons), and kiln's memory must be the resident memory
of kiln's own processes, not of the commands its RUN steps start or of the page cache.
"""

from __future__ import annotations

import os
import subprocess
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

_TICK = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Sample:
    """One timed command: seconds of wall and CPU time, peak RSS in MiB (0 if not measured),
    and bytes downloaded from / uploaded to the registry (counted by ``relay.py``; 0 if not)."""

    wall: float
    cpu: float
    rss_mib: float = 0.0
    downloaded: int = 0
    uploaded: int = 0


class CommandFailed(RuntimeError):
    """A builder command exited non-zero; the message holds the end of its output."""


def run_measured(
    argv: Sequence[str],
    *,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    log: Path,
    daemons: Sequence[int] = (),
    track_rss: bool = False,
) -> Sample:
    """Run argv to completion; CPU = the child tree's rusage plus the daemons' CPU delta."""
    before = tree_cpu(daemons) if daemons else 0.0
    with log.open("ab") as out:
        out.write(f"$ {' '.join(argv)}\n".encode())
        out.flush()
        start = time.monotonic()
        proc = subprocess.Popen(argv, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT)
        poller = _RssPoller(proc.pid) if track_rss else None
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.monotonic() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
    peak = poller.stop() if poller else 0.0
    if proc.returncode != 0:
        tail = log.read_text(errors="replace")[-3000:]
        raise CommandFailed(f"{argv[0]} exited with {proc.returncode}:\n{tail}")
    after = tree_cpu(daemons) if daemons else 0.0
    cpu = usage.ru_utime + usage.ru_stime + (after - before)
    return Sample(wall, cpu, max(peak, usage.ru_maxrss / 1024 if track_rss else 0.0))


def tree_cpu(roots: Sequence[int]) -> float:
    """CPU seconds used by ``roots`` and their live descendants (and the children they reaped)."""
    wanted = set(roots)
    parents: dict[int, int] = {}
    times: dict[int, float] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        parents[int(entry.name)] = int(fields[1])
        times[int(entry.name)] = sum(int(f) for f in fields[11:15]) / _TICK
    total = 0.0
    for pid, cpu in times.items():
        ancestor = pid
        while ancestor > 1 and ancestor not in wanted:
            ancestor = parents.get(ancestor, 0)
        if ancestor in wanted:
            total += cpu
    return total


class _RssPoller:
    """Polls the resident memory of kiln's own processes (python ones) in the child's tree."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak_kib = 0
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()

    def _poll(self) -> None:
        while not self._done.wait(0.05):
            total = 0
            for pid in [self.pid, *_descendants(self.pid)]:
                total += _python_rss_kib(pid)
            self.peak_kib = max(self.peak_kib, total)

    def stop(self) -> float:
        self._done.set()
        self._thread.join()
        return self.peak_kib / 1024


def _descendants(root: int) -> list[int]:
    found: list[int] = []
    pending = [root]
    while pending:
        pid = pending.pop()
        try:
            children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        except OSError:
            continue
        found.extend(int(c) for c in children)
        pending.extend(int(c) for c in children)
    return found


def _python_rss_kib(pid: int) -> int:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    if not fields.get("Name", "").strip().startswith("python"):
        return 0  # a RUN step's command, not kiln
    return int(fields.get("VmRSS", "0 kB").split()[0])
