"""Our nginx parser against certbot's: load a configuration and pick the server block for one name.

    .venv/bin/python benchmarks/nginx_parse.py [--sizes 10 100 1000 5000] [--quick] [--repeat N] [--check]

- Generates, for each size N, a configuration in a temporary directory: ``nginx.conf`` with one
  ``http`` block (an ``upstream``, a ``map``, ``include sites-enabled/*``) and
  ``sites-enabled/servers.conf`` with N server blocks, each with ``listen 80``, ``listen [::]:80``,
  two names, ``root``, two locations, an ``if`` and an ``include`` of a small snippet.
- Ours: ``.venv/bin/python`` runs ``plugins.nginx.load`` and walks the server blocks of ``http``
  for the one whose ``server_name`` has the name (an exact match; the model layer will apply
  nginx's full rules). Certbot: ``.venv-certbot/bin/python`` runs certbot's
  ``NginxParser(root).get_vhosts()`` and picks the vhost with the name. certbot-nginx comes from
  PyPI into ``.venv-certbot`` (made here when missing:
  ``python3 -m venv .venv-certbot && .venv-certbot/bin/pip install 'certbot-nginx>=4,<6'``).
- Each run is a separate process, spawned by a tiny launcher that reports what ``os.wait4`` says
  of it: wall time from spawn to exit (interpreter start and imports included), CPU time, and
  peak resident memory (``ru_maxrss``; see ``_measure.LAUNCHER`` for why a launcher). The child also
  reports the time of the load and choice alone, without interpreter start and imports ("load s").

Prints a table per size, the ratios certbot/ours, and the linearity check (ours, load time per
block at 1000 against 5000 blocks). The issue's targets for ours at 5000 blocks: at most 3 s and
100 MiB, time growing linearly. ``--quick`` skips certbot above 1000 blocks (it takes minutes at
5000); ``--check`` exits 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

import _measure
from _measure import median

ROOT = Path(__file__).resolve().parent.parent
OURS_PYTHON = ROOT / ".venv" / "bin" / "python"
CERTBOT_VENV = ROOT / ".venv-certbot"
CERTBOT_PYTHON = CERTBOT_VENV / "bin" / "python"
CERTBOT_REQUIREMENT = "certbot-nginx>=4,<6"
TARGET_SECONDS, TARGET_MIB, TARGET_SIZE = 3.0, 100.0, 5000
RUN_TIMEOUT = 1800.0

OURS = """
import json, sys, time
from plugins.nginx import Block, load
start = time.perf_counter()
config = load(sys.argv[1])
target, chosen, servers = sys.argv[2], None, 0
for found in config.find("server"):
    block = found.statement
    if isinstance(block, Block) and [p.name for p in found.parents] == ["http"]:
        servers += 1
        names = [name.lower() for d in block.find("server_name", recursive=False) for name in d.args]
        if chosen is None and target in names:
            chosen = f"{found.file.path}:{found.file.position(block.offset)[0]}"
print(json.dumps({"servers": servers, "chosen": chosen, "seconds": time.perf_counter() - start}))
"""

CERTBOT = """
import json, sys, time
try:
    from certbot._internal.plugins.nginx import parser
except ImportError:
    from certbot_nginx._internal import parser
start = time.perf_counter()
vhosts = parser.NginxParser(sys.argv[1]).get_vhosts()
target = sys.argv[2]
chosen = next((f"{v.filep}:{v.path}" for v in vhosts if target in {n.lower() for n in v.names}), None)
print(json.dumps({"servers": len(vhosts), "chosen": chosen, "seconds": time.perf_counter() - start}))
"""


@dataclasses.dataclass(frozen=True)
class Run:
    wall: float  # seconds, spawn to exit
    cpu: float  # user + system seconds
    rss_mb: float  # peak resident set size, MiB
    work: float  # seconds the child spent loading and choosing (imports excluded)
    servers: int
    chosen: str | None


def server_block(index: int) -> str:
    return f"""
server {{
    listen 80;
    listen [::]:80;
    server_name s{index}.example.com www.s{index}.example.com;
    root /var/www/s{index};
    index index.html;
    include snippets/common.conf;

    location / {{
        try_files $uri $uri/ =404;
    }}

    location ~ \\.php$ {{
        include fastcgi_params;
        fastcgi_pass backend;
    }}

    if ($http_x_forwarded_proto = "http") {{
        return 301 https://$host$request_uri;
    }}
}}
"""


def generate(directory: Path, size: int) -> Path:
    """Write the configuration for ``size`` server blocks; return the directory (the server root)."""
    (directory / "sites-enabled").mkdir(parents=True)
    (directory / "snippets").mkdir()
    (directory / "nginx.conf").write_text(
        "user www-data;\nworker_processes auto;\npid /run/nginx.pid;\n\nevents {\n    worker_connections 768;\n}\n\n"
        "http {\n    sendfile on;\n    include fastcgi_params;\n\n"
        "    upstream backend {\n        server 127.0.0.1:9000;\n        server 127.0.0.1:9001 backup;\n    }\n\n"
        "    map $http_upgrade $connection_upgrade {\n        default upgrade;\n        ''      close;\n    }\n\n"
        "    include sites-enabled/*;\n}\n"
    )
    (directory / "fastcgi_params").write_text("fastcgi_param QUERY_STRING $query_string;\n")
    (directory / "snippets" / "common.conf").write_text('add_header X-Frame-Options "SAMEORIGIN";\n')
    (directory / "sites-enabled" / "servers.conf").write_text("".join(server_block(i) for i in range(size)))
    return directory


def spawn(argv: Sequence[str], log: Path) -> tuple[float, float, float]:
    """Run ``argv`` through the launcher: (wall s, cpu s, peak MiB); exit with its output if it fails."""
    usage = _measure.spawn(argv, log, timeout=RUN_TIMEOUT, cwd=ROOT)
    return usage.wall, usage.cpu, usage.rss_mb


def measure(argv: Sequence[str], log: Path) -> Run:
    wall, cpu, rss_mb = spawn(argv, log)
    report = json.loads(log.read_text(errors="replace").strip().splitlines()[-1])
    return Run(wall, cpu, rss_mb, report["seconds"], report["servers"], report["chosen"])


def run(client: str, root: Path, target: str, log: Path) -> Run:
    if client == "ours":
        return measure([str(OURS_PYTHON), "-c", OURS, str(root / "nginx.conf"), target], log)
    return measure([str(CERTBOT_PYTHON), "-c", CERTBOT, str(root), target], log)


def report(size: int, ours: Run, certbot: Run | None) -> None:
    picked = f"ours {ours.chosen}; certbot {certbot.chosen if certbot else '-'}"
    _measure.report(f"\n{size} server blocks (picked: {picked})", ours, certbot)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 100, 1000, 5000])
    parser.add_argument("--repeat", type=int, default=1, help="runs per parser and size (median reported)")
    parser.add_argument("--quick", action="store_true", help="skip certbot above 1000 blocks")
    parser.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    args = parser.parse_args()

    _measure.ensure_certbot(CERTBOT_VENV, CERTBOT_REQUIREMENT, "certbot_nginx")
    workdir = Path(tempfile.mkdtemp(prefix="nginx-parse."))
    floor = spawn(["/bin/true"], workdir / "true.log")[2]
    print(f"bench: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}; ours {OURS_PYTHON}, "
          f"certbot {CERTBOT_PYTHON}; peak memory floor of the measurement (/bin/true): {floor:.1f} MiB", flush=True)
    results: dict[int, Run] = {}
    missed: list[str] = []
    try:
        for size in args.sizes:
            root = generate(workdir / f"conf-{size}", size)
            target = f"www.s{size // 2}.example.com"
            ours = median([run("ours", root, target, workdir / f"ours-{size}.log") for _ in range(args.repeat)])
            certbot = None
            if not (args.quick and size > 1000):
                certbot = median([run("certbot", root, target, workdir / f"certbot-{size}.log")
                                  for _ in range(args.repeat)])
            for label, value in (("ours", ours), ("certbot", certbot)):
                if value is not None and (value.servers != size or value.chosen is None):
                    missed.append(f"{label} at {size}: found {value.servers} server blocks, chose {value.chosen}")
            results[size] = ours
            report(size, ours, certbot)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    if 1000 in results and 5000 in results:
        per_1000, per_5000 = results[1000].work / 1000, results[5000].work / 5000
        print(f"\nlinearity (ours, load and choice per block): {per_1000 * 1e3:.3f} ms at 1000, "
              f"{per_5000 * 1e3:.3f} ms at 5000 ({per_5000 / per_1000:.2f}x; 1.00 is linear)")
        if per_5000 / per_1000 > 1.5:
            missed.append(f"time per block grows {per_5000 / per_1000:.2f}x from 1000 to 5000 blocks")
    if TARGET_SIZE in results:
        mine = results[TARGET_SIZE]
        if mine.wall > TARGET_SECONDS:
            missed.append(f"{TARGET_SIZE} blocks: {mine.wall:.2f} s > {TARGET_SECONDS:g} s")
        if mine.rss_mb > TARGET_MIB:
            missed.append(f"{TARGET_SIZE} blocks: {mine.rss_mb:.1f} MiB > {TARGET_MIB:g} MiB")
    for line in missed:
        print(f"bench: target missed: {line}")
    return 1 if missed and args.check else 0


if __name__ == "__main__":
    sys.exit(main())
