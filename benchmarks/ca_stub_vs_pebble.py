"""The same issuance load against Pebble and against ca_stub, in one run; a table of both and ratios.

    .venv/bin/python benchmarks/ca_stub_vs_pebble.py [--clients 16] [--issuances 10]

For each CA in turn (Pebble, then ca_stub), on loopback with free ports:

- Pebble (Debian's ``pebble`` and ``pebble-challtestsrv``, through tests/integration/pebble_harness.py)
  runs with PEBBLE_VA_NOSLEEP=1 and PEBBLE_WFE_NONCEREJECT=0; ca_stub (``ca-stub serve`` through
  ``letsencrypt.testing.run_ca_stub``) persists everything to SQLite in a temporary data directory,
  bad-nonce rate 0. Neither sleeps before validating, neither rejects good nonces.
- ``--clients`` worker processes (not threads: the load generator must not share one GIL) each
  register an account with ``letsencrypt.acme.AcmeClient``, wait for the others, then issue
  ``--issuances`` certificates one after the other, each for a name of its own (no authorization
  reuse): new order, http-01 challenge answered and polled, finalize, certificate downloaded.
- One http-01 responder in this process serves every token on the CA's validation port; workers
  register their key authorizations in a ``multiprocessing.Manager`` dict before answering.

Reported per CA: issuances per second (successes over the wall time from the start signal to the
last worker's end), p50/p99 latency of one issuance (new order -> certificate downloaded), errors
(issuances that raised), and the CA process's CPU seconds per issuance; then ca_stub/pebble ratios.
The issue's target: ca_stub at least half of Pebble's rate, and no error. Exit status 0 unless
``--check`` is given and the target is missed.

The machine's cores are shared by the CA under test, the workers and the responder, alike for both.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import itertools
import multiprocessing
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, MutableMapping
from multiprocessing.synchronize import Barrier
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from integration.pebble_harness import start_pebble  # noqa: E402 - tests/ is on sys.path from here on
from integration.responders import http01_responder  # noqa: E402

from letsencrypt.acme import AccountKey, AcmeClient, AcmeError, challenges, crypto  # noqa: E402
from letsencrypt.acme.messages import AuthorizationStatus, ChallengeType, Identifier  # noqa: E402
from letsencrypt.testing import run_ca_stub  # noqa: E402

DEADLINE = 120.0  # one issuance; a worker; startup


# --- the load: one worker process per client ---------------------------------------------------


PHASES = ("new order", "authorization", "order ready", "finalize", "download")


@dataclasses.dataclass
class WorkerResult:
    client: int
    latencies: list[float]  # seconds, successful issuances only
    phases: list[float]  # seconds per phase (PHASES), summed over the successful issuances
    errors: list[str]
    started: float  # time.time() at the start signal
    finished: float
    cpu: float  # this worker's CPU seconds during the load


def issue_one(client: AcmeClient, name: str, tokens: MutableMapping[str, bytes]) -> list[float]:
    """One certificate for ``name`` with http-01; the seconds each of PHASES took."""
    marks = [time.perf_counter()]
    identifiers = [Identifier.dns(name)]
    deadline = time.monotonic() + DEADLINE
    order = client.new_order(identifiers)
    marks.append(time.perf_counter())
    for handle in client.authorizations(order):
        if handle.authorization.status != AuthorizationStatus.PENDING:
            continue
        challenge = next(c for c in handle.authorization.challenges if c.type == ChallengeType.HTTP_01)
        token = challenge.token or ""
        tokens[challenges.http01_path(token)] = challenges.http01_body(challenges.key_authorization(token, client.key))
        client.answer_challenge(challenge)
        client.wait_for_authorization(handle.url, deadline=deadline)
    marks.append(time.perf_counter())
    order = client.wait_for_order(order.url, deadline=deadline)
    marks.append(time.perf_counter())
    csr = crypto.make_csr(crypto.generate_private_key("ec256"), identifiers)
    order = client.finalize(order, csr, deadline=deadline)
    marks.append(time.perf_counter())
    client.download_certificate(order, alternates=False)
    marks.append(time.perf_counter())
    return [b - a for a, b in itertools.pairwise(marks)]


def worker(
    index: int, prefix: str, directory_url: str, ca_bundle: str, issuances: int, tokens: MutableMapping[str, bytes],
    barrier: Barrier, results: Any,
) -> None:
    latencies: list[float] = []
    phases = [0.0] * len(PHASES)
    failures: list[str] = []
    client = AcmeClient(directory_url, AccountKey.generate("ec256"), verify=ca_bundle, timeout=60)
    try:
        client.register(contact=[f"mailto:bench{index}@example.com"], terms_of_service_agreed=True)
    except AcmeError as err:
        failures.append(f"register: {type(err).__name__}: {err}")
    barrier.wait(DEADLINE)
    started, cpu = time.time(), time.process_time()
    for number in range(issuances if not failures else 0):
        begin = time.perf_counter()
        try:
            took = issue_one(client, f"{prefix}c{index}-{number}.bench.example", tokens)
        except AcmeError as err:
            failures.append(f"{type(err).__name__}: {err}")
            continue
        latencies.append(time.perf_counter() - begin)
        phases = [a + b for a, b in zip(phases, took, strict=True)]
    finished, cpu = time.time(), time.process_time() - cpu
    client.close()
    results.put(WorkerResult(index, latencies, phases, failures, started, finished, cpu))


# --- one measured run --------------------------------------------------------------------------


@dataclasses.dataclass
class Measure:
    name: str
    issued: int
    errors: list[str]
    wall: float
    latencies: list[float]
    phases: list[float]  # mean seconds per phase (PHASES)
    server_cpu: float | None  # CPU seconds of the CA process(es) during the load
    client_cpu: float  # CPU seconds of all workers during the load

    @property
    def rate(self) -> float:
        return self.issued / self.wall if self.wall > 0 else 0.0

    @classmethod
    def merge(cls, rounds: list[Measure]) -> Measure:
        """Rounds against one CA as one measure: their times added, their issuances pooled."""
        issued = sum(m.issued for m in rounds)
        cpus = [m.server_cpu for m in rounds]
        return cls(
            rounds[0].name, issued, [e for m in rounds for e in m.errors], sum(m.wall for m in rounds),
            [lat for m in rounds for lat in m.latencies],
            [sum(m.phases[i] * m.issued for m in rounds) / max(issued, 1) for i in range(len(PHASES))],
            None if None in cpus else sum(c for c in cpus if c is not None), sum(m.client_cpu for m in rounds),
        )

    def percentile(self, p: float) -> float:
        if not self.latencies:
            return float("nan")
        if len(self.latencies) == 1:
            return self.latencies[0]
        return statistics.quantiles(self.latencies, n=100, method="inclusive")[round(p) - 1]


def cpu_seconds(pids: list[int]) -> float | None:
    """utime + stime of the processes, from /proc (Linux); None when one is unreadable."""
    total = 0.0
    ticks = os.sysconf("SC_CLK_TCK")
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return None
        total += (int(fields[11]) + int(fields[12])) / ticks
    return total


@dataclasses.dataclass(frozen=True)
class Target:
    """A running CA under test."""

    name: str
    directory_url: str
    ca_bundle: str
    http_port: int  # where its VA connects for http-01
    pids: list[int]  # whose CPU time is the CA's
    profile: Path | None = None  # py-spy output, for ca_stub on request


def run_load(target: Target, args: argparse.Namespace, prefix: str, profile: Path | None) -> Measure:
    """One round: ``--clients`` workers register, then each issues ``--issuances`` certificates."""
    context = multiprocessing.get_context("spawn")
    with context.Manager() as manager:
        tokens = manager.dict()
        results = context.Queue()
        barrier = context.Barrier(args.clients + 1)
        processes = [
            context.Process(
                target=worker,
                args=(i, prefix, target.directory_url, target.ca_bundle, args.issuances, tokens, barrier, results),
                daemon=True,
            )
            for i in range(args.clients)
        ]
        with http01_responder(target.http_port, tokens):
            for process in processes:
                process.start()
            barrier.wait(DEADLINE)  # every worker registered its account
            with py_spy(target.pids[0] if profile else None, profile):
                cpu_before = cpu_seconds(target.pids)
                start = time.time()
                collected: list[WorkerResult] = [results.get(timeout=DEADLINE * args.issuances) for _ in processes]
                end = max(r.finished for r in collected)
                cpu_after = cpu_seconds(target.pids)
            for process in processes:
                process.join(DEADLINE)
    latencies = [lat for r in collected for lat in r.latencies]
    phases = [sum(r.phases[i] for r in collected) / max(len(latencies), 1) for i in range(len(PHASES))]
    server_cpu = None if cpu_before is None or cpu_after is None else cpu_after - cpu_before
    return Measure(target.name, len(latencies), [e for r in collected for e in r.errors], end - start, latencies,
                   phases, server_cpu, sum(r.cpu for r in collected))


@contextlib.contextmanager
def py_spy(pid: int | None, output: Path | None) -> Iterator[None]:
    """Sample ``pid`` with py-spy (``.venv/bin/pip install py-spy``) while the block runs: collapsed
    stacks (one line per stack, ``frame;frame;... count``) written to ``output``."""
    if pid is None or output is None:
        yield
        return
    program = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    spy = subprocess.Popen([program, "record", "--pid", str(pid), "--rate", "100", "--format", "raw",
                            "--output", str(output)], stdout=subprocess.DEVNULL)
    time.sleep(0.5)  # attached before the load starts
    try:
        yield
    finally:
        os.kill(spy.pid, signal.SIGINT)  # py-spy writes its output on SIGINT
        spy.wait(30)
        print(f"py-spy profile of {pid}: {output}", file=sys.stderr)


def pids_of(program: str, argument: str) -> list[int]:
    """Pids whose command line is ``program ... argument ...`` (to read Pebble's CPU time)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            argv = (entry / "cmdline").read_bytes().split(b"\0")
            if argv and Path(argv[0].decode()).name == program and argument.encode() in argv:
                found.append(int(entry.name))
    return found


def start_pebble_target(stack: contextlib.ExitStack, workdir: Path) -> Target:
    for program in ("pebble", "pebble-challtestsrv"):
        if shutil.which(program) is None:
            raise SystemExit(f"{program} is missing: apt-get install pebble (or run with --only ca_stub)")
    os.environ["PEBBLE_VA_NOSLEEP"] = "1"
    os.environ["PEBBLE_WFE_NONCEREJECT"] = "0"  # the harness passes our environment on
    pebble = stack.enter_context(start_pebble(workdir))
    pids = pids_of("pebble", str(workdir / "pebble-config.json"))
    return Target("pebble", pebble.directory_url, pebble.ca_bundle, pebble.http_port, pids)


def start_ca_stub_target(stack: contextlib.ExitStack, workdir: Path, args: argparse.Namespace) -> Target:
    extra = ["--bad-nonce-rate", "0", *args.ca_stub_arg]
    ca = stack.enter_context(run_ca_stub(workdir, extra_args=extra, python=args.ca_stub_python))
    return Target("ca_stub", ca.directory_url, ca.ca_bundle, ca.http_port, [ca.pid], args.py_spy)


# --- report ------------------------------------------------------------------------------------


def report(measures: list[Measure], args: argparse.Namespace) -> bool:
    print(f"\n{args.rounds} round(s) per CA, alternating; each {args.clients} client processes x "
          f"{args.issuances} issuances, http-01; {os.cpu_count()} CPUs\n")
    header = f"{'CA':<16}{'issued':>8}{'errors':>8}{'wall s':>9}{'issuances/s':>13}{'p50 ms':>9}{'p99 ms':>9}" \
             f"{'CA cpu ms/iss.':>16}{'clients cpu ms/iss.':>21}"
    print(header)
    print("-" * len(header))
    for m in measures:
        cpu = f"{1000 * m.server_cpu / m.issued:.1f}" if m.server_cpu is not None and m.issued else "?"
        clients = f"{1000 * m.client_cpu / m.issued:.1f}" if m.issued else "?"
        print(f"{m.name:<16}{m.issued:>8}{len(m.errors):>8}{m.wall:>9.2f}{m.rate:>13.2f}"
              f"{1000 * m.percentile(50):>9.0f}{1000 * m.percentile(99):>9.0f}{cpu:>16}{clients:>21}")
    by_name = {m.name: m for m in measures}
    ok = True
    if "pebble" in by_name and "ca_stub" in by_name:
        stub, peb = by_name["ca_stub"], by_name["pebble"]
        rate = stub.rate / peb.rate if peb.rate else float("nan")
        p50 = stub.percentile(50) / peb.percentile(50)
        p99 = stub.percentile(99) / peb.percentile(99)
        print(f"{'ca_stub/pebble':<16}{'':>8}{'':>8}{'':>9}{rate:>13.2f}{p50:>9.2f}{p99:>9.2f}")
        ok = rate >= 0.5 and not stub.errors
        print(f"\ntarget (ca_stub >= 0.5 x Pebble's rate, no error): {'met' if ok else 'MISSED'}"
              f" ({rate:.2f} x, {len(stub.errors)} errors)")
    print("\nmean ms per phase of one issuance (the client polls every 50, 100, 200, ... ms):")
    print(f"{'CA':<16}" + "".join(f"{phase:>15}" for phase in PHASES))
    for m in measures:
        print(f"{m.name:<16}" + "".join(f"{1000 * seconds:>15.0f}" for seconds in m.phases))
    for m in measures:
        for error in m.errors[:5]:
            print(f"  {m.name} error: {error}")
    return ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=16, help="worker processes, one account each (16)")
    parser.add_argument("--issuances", type=int, default=10, help="certificates per client (10)")
    parser.add_argument("--rounds", type=int, default=2,
                        help="rounds per CA, alternating between the CAs so that both see the same machine (2)")
    parser.add_argument("--only", choices=["pebble", "ca_stub"], help="measure one CA only")
    parser.add_argument("--ca-stub-arg", action="append", default=[], metavar="ARG",
                        help="extra argument for `ca-stub serve` (repeatable), e.g. --ca-stub-arg=--threads=8")
    parser.add_argument("--ca-stub-python", default=sys.executable, metavar="PROGRAM",
                        help="interpreter that runs `-m ca_stub serve ...` (e.g. a profiling wrapper)")
    parser.add_argument("--py-spy", type=Path, metavar="FILE",
                        help="sample ca_stub with py-spy during its load; collapsed stacks to FILE")
    parser.add_argument("--check", action="store_true", help="exit 1 when the target is missed")
    args = parser.parse_args(argv)
    if min(args.clients, args.issuances, args.rounds) < 1:
        parser.error("--clients, --issuances and --rounds must be at least 1")
    rounds: dict[str, list[Measure]] = {}
    with tempfile.TemporaryDirectory(prefix="ca-bench-") as tmp, contextlib.ExitStack() as stack:
        targets = []
        if args.only in (None, "pebble"):
            targets.append(start_pebble_target(stack, Path(tmp) / "pebble"))
        if args.only in (None, "ca_stub"):
            targets.append(start_ca_stub_target(stack, Path(tmp) / "ca_stub", args))
        for number in range(args.rounds):
            for target in targets if number % 2 == 0 else targets[::-1]:
                measure = run_load(target, args, f"r{number}", target.profile if number == 0 else None)
                print(f"round {number + 1}: {target.name}: {measure.issued} issued, {len(measure.errors)} errors, "
                      f"{measure.rate:.2f}/s", file=sys.stderr)
                rounds.setdefault(target.name, []).append(measure)
    ok = report([Measure.merge(r) for r in rounds.values()], args)
    return 1 if args.check and not ok else 0


if __name__ == "__main__":
    sys.exit(main())
