"""What the benchmarks that compare us with certbot share: running a program through a launcher that
reports what ``os.wait4`` says of it, certbot's virtual environment, the per-size table.

Imported by apache_vhosts.py, nginx_parse.py and client_vs_certbot.py (each run as a script, with
this directory first on ``sys.path``).
"""

from __future__ import annotations

import dataclasses
import statistics
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, TypeVar

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

    R = TypeVar("R", bound=DataclassInstance)

# Spawns the measured program and prints what os.wait4 says of it. Peak memory must be measured
# this way: Linux carries a process's ru_maxrss across fork and exec, so a child spawned straight
# from the benchmark (tens of MiB after its imports) would report at least the benchmark's size.
# Spawned from this launcher, the floor is the launcher's few MiB.
LAUNCHER = """
import os, sys, time
log = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
null = os.open(os.devnull, os.O_RDONLY)
actions = [(os.POSIX_SPAWN_DUP2, null, 0), (os.POSIX_SPAWN_DUP2, log, 1), (os.POSIX_SPAWN_DUP2, log, 2)]
start = time.perf_counter()
pid = os.posix_spawn(sys.argv[2], sys.argv[2:], os.environ, file_actions=actions)
_, status, usage = os.wait4(pid, 0)
wall = time.perf_counter() - start
print(os.waitstatus_to_exitcode(status), wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss)
"""


@dataclasses.dataclass(frozen=True)
class Usage:
    wall: float  # seconds, spawn to exit
    cpu: float  # user + system seconds
    rss_mb: float  # peak resident set size, MiB


def spawn(argv: Sequence[str], log: Path, *, timeout: float, env: Mapping[str, str] | None = None,
          cwd: Path | None = None) -> Usage:
    """Run ``argv`` through the launcher, its output to ``log``; exit with the end of that output if
    it exits non-zero."""
    launcher = [sys.executable, "-I", "-S", "-c", LAUNCHER, str(log), *argv]
    result = subprocess.run(launcher, capture_output=True, text=True, check=True, timeout=timeout, cwd=cwd,
                            env=None if env is None else dict(env))
    code, wall, cpu, maxrss_kib = result.stdout.split()
    if int(code) != 0:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-25:])
        raise SystemExit(f"bench: {argv[0]} exited with {code}:\n{tail}")
    return Usage(float(wall), float(cpu), int(maxrss_kib) / 1024)


def ensure_certbot(venv: Path, requirement: str, module: str) -> None:
    """Make ``venv`` with ``requirement`` installed unless its python already imports ``module``."""
    python = venv / "bin" / "python"
    check = [str(python), "-c", f"import {module}"]
    if python.exists() and subprocess.run(check, capture_output=True, check=False).returncode == 0:
        return
    print(f"bench: installing {requirement} into {venv}", flush=True)
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "-q", requirement], check=True)


class Timed(Protocol):
    @property
    def wall(self) -> float: ...
    @property
    def cpu(self) -> float: ...
    @property
    def work(self) -> float: ...
    @property
    def rss_mb(self) -> float: ...


def median(runs: Sequence[R]) -> R:
    """The first run with the median ``wall``, ``cpu``, ``rss_mb`` and ``work`` of all ``runs``."""
    fields = ("wall", "cpu", "rss_mb", "work")
    return dataclasses.replace(runs[0], **{name: statistics.median(getattr(r, name) for r in runs)
                                           for name in fields})


def report(heading: str, ours: Timed, certbot: Timed | None) -> None:
    """The table of one size: ours, certbot (or that it was skipped) and the ratios certbot/ours."""
    print(heading)
    print(f"  {'':10} {'wall s':>9} {'cpu s':>9} {'load s':>9} {'peak MiB':>9}")
    for label, value in (("ours", ours), ("certbot", certbot)):
        if value is not None:
            print(f"  {label:10} {value.wall:9.3f} {value.cpu:9.3f} {value.work:9.3f} {value.rss_mb:9.1f}")
    if certbot is not None:
        print(f"  {'certbot/us':10} {certbot.wall / ours.wall:8.1f}x {certbot.cpu / ours.cpu:8.1f}x "
              f"{certbot.work / ours.work:8.1f}x {certbot.rss_mb / ours.rss_mb:8.2f}x")
    else:
        print("  certbot    skipped (--quick)")
