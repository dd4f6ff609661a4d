"""Our client against certbot: ``certonly --standalone`` for 1 and for 100 names, same Pebble, one run.

    .venv/bin/python benchmarks/client_vs_certbot.py [--repeat 3] [--names 1 100] [--bad-nonces] [--check]

- One Pebble (Debian's ``pebble`` with ``pebble-challtestsrv`` as its DNS, every name resolving
  to 127.0.0.1, through tests/integration/pebble_harness.py) serves both clients, with
  PEBBLE_VA_NOSLEEP=1 (no random sleep before validating) and PEBBLE_WFE_NONCEREJECT=0 (no good
  nonce rejected). ``--bad-nonces`` keeps Pebble's default of 5 % instead, for both; certbot then
  often fails the 100-name run: it retries a request only once on badNonce, and among ~300 requests
  two rejections in a row are likely.
- Ours is ``.venv-bench/bin/letsencrypt``: this tree installed the way a user installs it
  (``pip install .``, not the editable install of ``.venv``, whose import hook costs every start
  ~15 ms), reinstalled from the tree at the start of each benchmark. Certbot is
  ``.venv-certbot/bin/certbot`` (certbot from PyPI; made here with ``python -m venv .venv-certbot
  && .venv-certbot/bin/pip install 'certbot>=4,<6'`` when missing). Both have their bytecode
  compiled by pip. Each is called by its path, no shim in between.
- Every run has a fresh account (a fresh config, work and logs directory) and fresh names, and
  answers http-01 with the standalone authenticator on 127.0.0.1 at Pebble's validation port.
  Ours gets Pebble's trust anchor with ``--server-ca-bundle``, certbot with REQUESTS_CA_BUNDLE.
  Default key type for both: ECDSA P-256.
- Measured per run, on the client process alone: wall time from spawn to exit, CPU time
  (user + system, from ``os.wait4``) and peak resident memory (``ru_maxrss`` from ``os.wait4``),
  the client being spawned (``posix_spawn``) by a tiny launcher process (see ``_measure.LAUNCHER``).
  The runs of the two clients alternate; each figure is the median of ``--repeat`` runs. Before
  each run the benchmark waits (up to ``--idle-patience`` s) until the machine's CPUs are nearly
  idle, and prints how busy they were: on a shared 2-core machine others' work is wall time.

Prints a table per name count with both clients and the ratios certbot/ours. The issue's targets:
ours at least 10x faster (wall) for one name, 8x for 100 names, and less peak memory.
``--check`` exits 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import _measure

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "tests")]  # tests/integration/pebble_harness.py

if TYPE_CHECKING:
    from integration.pebble_harness import Pebble

BENCH_VENV = ROOT / ".venv-bench"
OURS = BENCH_VENV / "bin" / "letsencrypt"
CERTBOT_VENV = ROOT / ".venv-certbot"
CERTBOT = CERTBOT_VENV / "bin" / "certbot"
CERTBOT_REQUIREMENT = "certbot>=4,<6"
RUN_TIMEOUT = 300.0
TARGETS = {1: 10.0, 100: 8.0}  # wall-time ratio certbot/ours the issue asks for, by name count
EMAIL = "bench@example.com"


@dataclasses.dataclass(frozen=True)
class Run:
    wall: float  # seconds
    cpu: float  # user + system seconds of the client process
    rss_mb: float  # peak resident set size, MiB


def ensure_certbot() -> None:
    if CERTBOT.exists():
        return
    print(f"bench: {CERTBOT} is missing; installing {CERTBOT_REQUIREMENT} into {CERTBOT_VENV}", flush=True)
    subprocess.run([sys.executable, "-m", "venv", str(CERTBOT_VENV)], check=True)
    subprocess.run([str(CERTBOT_VENV / "bin" / "pip"), "install", "-q", CERTBOT_REQUIREMENT], check=True)


def install_ours() -> None:
    """Install this tree into ``.venv-bench`` as ``pip install .`` does (dependencies the first time)."""
    python = BENCH_VENV / "bin" / "python"
    if not python.exists():
        print(f"bench: making {BENCH_VENV} (a regular install of this tree)", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(BENCH_VENV)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", "."], cwd=ROOT, check=True)
        return
    subprocess.run([str(python), "-m", "pip", "install", "-q", "--no-deps", "--force-reinstall", "."], cwd=ROOT,
                   check=True, stdout=subprocess.DEVNULL)


def version(argv: Sequence[str]) -> str:
    result = subprocess.run([*argv, "--version"], capture_output=True, text=True, check=False, timeout=60)
    return (result.stdout or result.stderr).strip().splitlines()[-1] if result.returncode == 0 else "?"


def measure(argv: Sequence[str], env: dict[str, str], log: Path) -> Run:
    """Run ``argv`` through the launcher (see ``_measure.LAUNCHER``); fail with the end of its output
    if it exits non-zero."""
    usage = _measure.spawn(argv, log, timeout=RUN_TIMEOUT, env=env)
    return Run(wall=usage.wall, cpu=usage.cpu, rss_mb=usage.rss_mb)


def busy_fraction(interval: float = 0.5) -> float:
    """How busy the machine's CPUs were (0..1) over ``interval`` seconds, from /proc/stat."""

    def sample() -> tuple[int, int]:
        fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
        idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
        return sum(fields), idle

    total0, idle0 = sample()
    time.sleep(interval)
    total1, idle1 = sample()
    return 1.0 - (idle1 - idle0) / max(total1 - total0, 1)


def wait_until_idle(limit: float, patience: float) -> float:
    """Wait (up to ``patience`` s) until other processes use under ``limit`` of the CPUs; the last reading.

    Others' work on a shared machine shows up as wall time of both clients; the readings are printed
    so that a noisy run can be recognised.
    """
    deadline = time.monotonic() + patience
    busy = busy_fraction()
    while busy > limit and time.monotonic() < deadline:
        time.sleep(1.0)
        busy = busy_fraction()
    return busy


def launcher_floor(workdir: Path) -> float:
    """Peak memory (MiB) the launcher reports for ``/bin/true``: no client can report less."""
    return measure(["/bin/true"], dict(os.environ), workdir / "true.log").rss_mb


def command(client: str, names: Sequence[str], directory_url: str, bundle: str, http_port: int,
            run_dir: Path) -> tuple[list[str], dict[str, str]]:
    env = {key: value for key, value in os.environ.items()
           if key not in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE") and not key.startswith("LETSENCRYPT_")}
    argv = [
        str(OURS if client == "ours" else CERTBOT), "certonly", "--standalone",
        *(arg for name in names for arg in ("-d", name)),
        "--server", directory_url, "--http-01-port", str(http_port), "--http-01-address", "127.0.0.1",
        "--config-dir", str(run_dir / "config"), "--work-dir", str(run_dir / "work"),
        "--logs-dir", str(run_dir / "logs"), "-n", "--agree-tos", "-m", EMAIL,
    ]
    if client == "ours":
        argv += ["--server-ca-bundle", bundle]
    else:
        argv += ["--no-eff-email"]  # never ask the EFF's server anything
        env["REQUESTS_CA_BUNDLE"] = bundle
    return argv, env


@contextlib.contextmanager
def pebble(workdir: Path, bad_nonces: bool) -> Iterator[Pebble]:
    from integration._procs import require_binary
    from integration.pebble_harness import CHALLTESTSRV, PEBBLE, start_pebble

    require_binary(PEBBLE, "pebble")
    require_binary(CHALLTESTSRV, "pebble")
    if not bad_nonces:
        os.environ["PEBBLE_WFE_NONCEREJECT"] = "0"  # start_pebble passes our environment on
    with start_pebble(workdir) as instance:
        yield instance


def median_run(runs: Sequence[Run]) -> Run:
    return Run(wall=statistics.median(r.wall for r in runs), cpu=statistics.median(r.cpu for r in runs),
               rss_mb=statistics.median(r.rss_mb for r in runs))


def report(count: int, ours: Sequence[Run], certbot: Sequence[Run]) -> list[str]:
    """Print the table for one name count; return the targets missed."""
    mine, theirs = median_run(ours), median_run(certbot)
    print(f"\ncertonly --standalone, {count} name{'s' if count > 1 else ''} "
          f"(median of {len(ours)}; wall runs ours: {', '.join(f'{r.wall:.2f}' for r in ours)}; "
          f"certbot: {', '.join(f'{r.wall:.2f}' for r in certbot)})")
    print(f"  {'':10} {'wall s':>9} {'cpu s':>9} {'peak MiB':>9}")
    print(f"  {'ours':10} {mine.wall:9.3f} {mine.cpu:9.3f} {mine.rss_mb:9.1f}")
    print(f"  {'certbot':10} {theirs.wall:9.3f} {theirs.cpu:9.3f} {theirs.rss_mb:9.1f}")
    wall, cpu, rss = theirs.wall / mine.wall, theirs.cpu / mine.cpu, theirs.rss_mb / mine.rss_mb
    print(f"  {'certbot/us':10} {wall:8.1f}x {cpu:8.1f}x {rss:8.2f}x")
    missed = []
    target = TARGETS.get(count)
    if target is not None and wall < target:
        missed.append(f"{count} name(s): wall ratio {wall:.1f}x < {target:g}x")
    if rss <= 1.0:
        missed.append(f"{count} name(s): peak memory {mine.rss_mb:.1f} MiB, certbot {theirs.rss_mb:.1f} MiB")
    return missed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs per client and name count (median reported)")
    parser.add_argument("--names", type=int, nargs="+", default=[1, 100], help="name counts to run")
    parser.add_argument("--bad-nonces", action="store_true",
                        help="keep Pebble's default 5 %% of rejected nonces (default: PEBBLE_WFE_NONCEREJECT=0)")
    parser.add_argument("--idle-limit", type=float, default=0.15,
                        help="before each run, wait until the CPUs are at most this busy (default 0.15)")
    parser.add_argument("--idle-patience", type=float, default=120.0,
                        help="but wait at most this many seconds (default 120)")
    parser.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    parser.add_argument("--keep", action="store_true", help="keep the run directories (logs) and print where")
    args = parser.parse_args()

    ensure_certbot()
    install_ours()
    print(f"bench: ours = {OURS} ({version([str(OURS)])}); certbot = {CERTBOT} ({version([str(CERTBOT)])})")
    workdir = Path(tempfile.mkdtemp(prefix="client-vs-certbot."))
    print(f"bench: peak memory floor of the measurement (/bin/true): {launcher_floor(workdir):.1f} MiB")
    missed: list[str] = []
    try:
        with pebble(workdir / "pebble", bad_nonces=args.bad_nonces) as server:
            print(f"bench: Pebble at {server.directory_url} (PEBBLE_VA_NOSLEEP=1, bad nonces "
                  f"{'default 5' if args.bad_nonces else '0'} %); {os.cpu_count()} CPUs", flush=True)
            for count in args.names:
                runs: dict[str, list[Run]] = {"ours": [], "certbot": []}
                for repetition in range(args.repeat):
                    for client in ("ours", "certbot"):
                        busy = wait_until_idle(args.idle_limit, args.idle_patience)
                        run_dir = workdir / f"{client}-{count}-{repetition}"
                        names = [f"n{i}.r{repetition}.c{count}.{client}.example.com" for i in range(count)]
                        argv, env = command(client, names, server.directory_url, server.ca_bundle, server.http_port,
                                            run_dir)
                        run_dir.mkdir(parents=True)
                        runs[client].append(measure(argv, env, run_dir / "output.log"))
                        print(f"  {client:8} {count:3} name(s) run {repetition + 1}: {runs[client][-1].wall:.2f} s "
                              f"(CPUs {busy:.0%} busy just before)", flush=True)
                missed += report(count, runs["ours"], runs["certbot"])
    finally:
        if args.keep:
            print(f"\nbench: run directories kept in {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    for line in missed:
        print(f"target missed: {line}")
    if not missed:
        print("\nall targets met")
    return 1 if missed and args.check else 0


if __name__ == "__main__":
    sys.exit(main())
