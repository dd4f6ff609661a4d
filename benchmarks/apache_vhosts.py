"""Our Apache plugin against certbot's: read a Debian-style configuration and pick the vhost for one name.

    .venv/bin/python benchmarks/apache_vhosts.py [--sizes 10 100 1000] [--repeat N] [--quick] [--check]

- Generates, for each size N, a server root in a temporary directory laid out as Debian's
  ``/etc/apache2``: ``apache2.conf`` (Debian's directives and includes), ``envvars`` (run, lock
  and log directories inside the root), ``ports.conf``, ``mods-enabled`` linking the modules of a
  default Debian install plus ssl from ``/etc/apache2/mods-available``, and N sites, one file each
  in ``sites-available`` enabled by a link in ``sites-enabled`` (as ``a2ensite`` does).
- ``--shape tls`` (default): each site is what certbot leaves after installing a certificate, a
  ``<VirtualHost *:443>`` in ``<IfModule mod_ssl.c>`` with ServerName, ServerAlias, DocumentRoot,
  logs, a ``<Directory>``, the certificate and key (one self-signed pair made with openssl) and
  ``Include`` of the shared ``options-ssl-apache.conf``. ``--shape plain``: a ``<VirtualHost *:80>``
  with the same directives but no TLS and no Include (certbot does not slow down there).
- The name looked up is the alias of the last site (``www.siteN-1.example.com``) on its port.
  Both must pick the same file.
- Ours: ``.venv/bin/python`` asks the server binary what it is (``apache2 -v``/``-l``), then
  ``ApacheConfig.read`` (every file Apache reads, through Augeas and our lens) and ``vhost_for``.
  Certbot: ``.venv-certbot/bin/python`` runs certbot's Debian Apache configurator: ``prepare()``
  (configtest, version, Augeas parse of the tree, vhost discovery) and ``_find_best_vhost``, the
  choice ``choose_vhost`` makes for an installation.
  certbot-apache comes from PyPI into ``.venv-certbot`` (made here when missing:
  ``python3 -m venv .venv-certbot && .venv-certbot/bin/pip install 'certbot-apache>=4,<6'``).
- Each run is a separate process, spawned by a tiny launcher that reports what ``os.wait4`` says
  of it: wall time from spawn to exit (interpreter start and imports included), CPU time, and
  peak resident memory (``ru_maxrss``). The child also reports the time of the read and choice
  alone ("load s"), without interpreter start and imports.

Prints a table per size, the ratios certbot/ours and the linearity of ours (load time per vhost
at the largest size against 100). The issue's target: at least 10x faster than certbot at 1000
vhosts, time growing linearly. ``--quick`` skips certbot at 1000 (about two minutes there);
``--check`` exits 1 when a target is missed. Needs apache2 (Debian's package).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import subprocess
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
CERTBOT_REQUIREMENT = "certbot-apache>=4,<6"
DEBIAN_MODULES = Path("/etc/apache2/mods-available")
MODULES = ("access_compat", "alias", "auth_basic", "authn_core", "authn_file", "authz_core", "authz_host",
           "authz_user", "autoindex", "deflate", "dir", "env", "filter", "mime", "mpm_event", "negotiation",
           "reqtimeout", "setenvif", "status")
TARGET_RATIO, TARGET_SIZE, LINEARITY = 10.0, 1000, 2.0
RUN_TIMEOUT = 1800.0

OURS = """
import json, sys, time
from pathlib import Path
from plugins.apache import ApacheConfig, LoadOptions, server_build
start = time.perf_counter()
config = ApacheConfig.read(LoadOptions(Path(sys.argv[1]), build=server_build()))
vhost = config.vhost_for(sys.argv[2], int(sys.argv[3]))
print(json.dumps({"vhosts": len(config), "chosen": vhost and vhost.file, "seconds": time.perf_counter() - start}))
"""

CERTBOT = """
import json, os, sys, time
from certbot._internal import cli
from certbot._internal.plugins import disco
from certbot._internal.plugins.apache.override_debian import DebianConfigurator
from certbot.configuration import NamespaceConfig
root, target, work, port = sys.argv[1:5]
for name in ("config", "work", "logs"):
    os.makedirs(os.path.join(work, name), exist_ok=True)
args = ["certonly", "--apache", "-n", "--apache-server-root", root, "--apache-ctl", "apache2ctl",
        "--apache-handle-modules", "False", "--apache-handle-sites", "False", "--config-dir", work + "/config",
        "--work-dir", work + "/work", "--logs-dir", work + "/logs"]
config = NamespaceConfig(cli.prepare_and_parse_args(disco.PluginsRegistry.find_all(), args))
start = time.perf_counter()
configurator = DebianConfigurator(config, name="apache")
configurator.prepare()
if port == "80":
    vhost = configurator.find_best_http_vhost(target, filter_defaults=False, port=port)
else:
    vhost = configurator._find_best_vhost(target)
chosen = vhost and os.path.join(root, "sites-enabled", os.path.basename(vhost.filep))
print(json.dumps({"vhosts": len(configurator.vhosts), "chosen": chosen, "seconds": time.perf_counter() - start}))
"""

APACHE2_CONF = """\
# Debian's apache2.conf, comments left out
DefaultRuntimeDir ${APACHE_RUN_DIR}
PidFile ${APACHE_PID_FILE}
Timeout 300
KeepAlive On
MaxKeepAliveRequests 100
KeepAliveTimeout 5
User ${APACHE_RUN_USER}
Group ${APACHE_RUN_GROUP}
HostnameLookups Off
ErrorLog ${APACHE_LOG_DIR}/error.log
LogLevel warn
IncludeOptional mods-enabled/*.load
IncludeOptional mods-enabled/*.conf
Include ports.conf
ServerName localhost

<Directory />
\tOptions FollowSymLinks
\tAllowOverride None
\tRequire all denied
</Directory>

<Directory ROOT/www/>
\tOptions Indexes FollowSymLinks
\tAllowOverride None
\tRequire all granted
</Directory>

AccessFileName .htaccess
<FilesMatch "^\\.ht">
\tRequire all denied
</FilesMatch>

LogFormat "%v:%p %h %l %u %t \\"%r\\" %>s %O \\"%{Referer}i\\" \\"%{User-Agent}i\\"" vhost_combined
LogFormat "%h %l %u %t \\"%r\\" %>s %O \\"%{Referer}i\\" \\"%{User-Agent}i\\"" combined

IncludeOptional conf-enabled/*.conf
IncludeOptional sites-enabled/*.conf
"""

SITE_BODY = """\
\tServerName site{i}.example.com
\tServerAlias www.site{i}.example.com
\tServerAdmin webmaster@site{i}.example.com
\tDocumentRoot {root}/www/site{i}
\tErrorLog ${{APACHE_LOG_DIR}}/site{i}-error.log
\tCustomLog ${{APACHE_LOG_DIR}}/site{i}-access.log combined
\t<Directory {root}/www/site{i}>
\t\tOptions -Indexes
\t\tRequire all granted
\t</Directory>
"""

TLS_SITE = (
    "<IfModule mod_ssl.c>\n<VirtualHost *:443>\n" + SITE_BODY
    + "SSLCertificateFile {root}/tls/fullchain.pem\nSSLCertificateKeyFile {root}/tls/privkey.pem\n"
    "Include {root}/options-ssl-apache.conf\n</VirtualHost>\n</IfModule>\n"
)

OPTIONS_SSL = """\
SSLEngine on
SSLProtocol             all -SSLv2 -SSLv3 -TLSv1 -TLSv1.1
SSLCipherSuite          ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256
SSLHonorCipherOrder     off
SSLSessionTickets       off
SSLOptions +StrictRequire
"""

PLAIN_SITE = "<VirtualHost *:80>\n" + SITE_BODY + "</VirtualHost>\n"


@dataclasses.dataclass(frozen=True)
class Run:
    wall: float  # seconds, spawn to exit
    cpu: float  # user + system seconds
    rss_mb: float  # peak resident set size, MiB
    work: float  # seconds the child spent reading and choosing (imports excluded)
    vhosts: int
    chosen: str | None


def generate(root: Path, size: int, shape: str = "tls") -> Path:
    """Write a Debian-style server root with ``size`` enabled sites; return it."""
    for name in ("mods-enabled", "conf-enabled", "sites-available", "sites-enabled", "run", "lock", "logs", "www",
                 "tls"):
        (root / name).mkdir(parents=True)
    (root / "options-ssl-apache.conf").write_text(OPTIONS_SSL)
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                    "-keyout", str(root / "tls" / "privkey.pem"), "-out", str(root / "tls" / "fullchain.pem"),
                    "-days", "2", "-subj", "/CN=bench.example.com"], check=True, capture_output=True)
    (root / "apache2.conf").write_text(APACHE2_CONF.replace("ROOT", str(root)))
    (root / "ports.conf").write_text("Listen 80\n\n<IfModule ssl_module>\n\tListen 443\n</IfModule>\n")
    (root / "envvars").write_text(
        "export APACHE_RUN_USER=www-data\nexport APACHE_RUN_GROUP=www-data\n"
        f"export APACHE_PID_FILE={root}/run/apache2.pid\nexport APACHE_RUN_DIR={root}/run\n"
        f"export APACHE_LOCK_DIR={root}/lock\nexport APACHE_LOG_DIR={root}/logs\nexport LANG=C\n"
    )
    for module in (*MODULES, "ssl", "socache_shmcb"):
        for suffix in (".load", ".conf"):
            available = DEBIAN_MODULES / (module + suffix)
            if available.exists():
                (root / "mods-enabled" / available.name).symlink_to(available)
    site = TLS_SITE if shape == "tls" else PLAIN_SITE
    for i in range(size):
        name = f"site{i:05d}.conf"
        (root / "www" / f"site{i}").mkdir()
        (root / "sites-available" / name).write_text(site.format(i=i, root=root))
        (root / "sites-enabled" / name).symlink_to(f"../sites-available/{name}")
    return root


def measure(argv: Sequence[str], log: Path, env: dict[str, str]) -> Run:
    """Run ``argv`` through the launcher; exit with its output if it fails."""
    usage = _measure.spawn(argv, log, timeout=RUN_TIMEOUT, env=env, cwd=log.parent)
    lines = log.read_text(errors="replace").strip().splitlines()
    if not lines:
        raise SystemExit(f"bench: {argv[0]} exited with 0 and printed nothing")
    report = json.loads(lines[-1])
    return Run(usage.wall, usage.cpu, usage.rss_mb, report["seconds"], report["vhosts"], report["chosen"])


def run(client: str, root: Path, target: str, port: int, scratch: Path) -> Run:
    # certbot's apache2ctl reads the root's envvars through APACHE_CONFDIR. No PYTHONPATH and a
    # scratch working directory: certbot would otherwise find our distribution's plugins.
    env = {name: value for name, value in os.environ.items() if name != "PYTHONPATH"}
    env["APACHE_CONFDIR"] = str(root)
    log = scratch / f"{client}.log"
    if client == "ours":
        return measure([str(OURS_PYTHON), "-c", OURS, str(root), target, str(port)], log, env)
    work = scratch / "certbot-dirs"
    shutil.rmtree(work, ignore_errors=True)
    return measure([str(CERTBOT_PYTHON), "-c", CERTBOT, str(root), target, str(work), str(port)], log, env)


def report(size: int, ours: Run, certbot: Run | None) -> None:
    picked = f"ours {ours.chosen}; certbot {certbot.chosen if certbot else '-'}"
    _measure.report(f"\n{size} vhosts (picked: {picked})", ours, certbot)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 100, 1000])
    parser.add_argument("--repeat", type=int, default=1, help="runs per client and size (median reported)")
    parser.add_argument("--shape", choices=("tls", "plain"), default="tls", help="what each site is (see above)")
    parser.add_argument("--quick", action="store_true", help=f"skip certbot at {TARGET_SIZE} vhosts and above")
    parser.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    args = parser.parse_args()
    if shutil.which("apache2") is None or not DEBIAN_MODULES.is_dir():
        print("bench: needs apache2 (apt-get install apache2)", file=sys.stderr)
        return 2
    _measure.ensure_certbot(CERTBOT_VENV, CERTBOT_REQUIREMENT, "certbot_apache")
    results: dict[int, tuple[Run, Run | None]] = {}
    with tempfile.TemporaryDirectory(prefix="apache-bench-") as scratch_name:
        scratch = Path(scratch_name)
        for size in args.sizes:
            root = generate(scratch / f"root-{size}", size, args.shape)
            target, port = f"www.site{size - 1}.example.com", 443 if args.shape == "tls" else 80
            with_certbot = not (args.quick and size >= TARGET_SIZE)
            ours_runs, certbot_runs = [], []
            for _ in range(args.repeat):
                ours_runs.append(run("ours", root, target, port, scratch))
                if with_certbot:
                    certbot_runs.append(run("certbot", root, target, port, scratch))
            ours, certbot = median(ours_runs), (median(certbot_runs) if certbot_runs else None)
            if ours.vhosts != size or (certbot is not None and certbot.chosen != ours.chosen):
                print(f"bench: the two disagree at {size}: ours {ours}, certbot {certbot}", file=sys.stderr)
                return 1
            results[size] = (ours, certbot)
            report(size, ours, certbot)
    return verdict(results) if args.check else 0


def verdict(results: dict[int, tuple[Run, Run | None]]) -> int:
    missed = []
    if TARGET_SIZE in results:
        ours, certbot = results[TARGET_SIZE]
        if certbot is not None and certbot.wall / ours.wall < TARGET_RATIO:
            missed.append(f"only {certbot.wall / ours.wall:.1f}x faster than certbot at {TARGET_SIZE} vhosts")
    sizes = sorted(size for size in results if size >= 100)
    if len(sizes) >= 2:
        small, large = results[sizes[0]][0], results[sizes[-1]][0]
        growth = (large.work / sizes[-1]) / (small.work / sizes[0])
        print(f"\nlinearity (ours): load time per vhost at {sizes[-1]} / at {sizes[0]} = {growth:.2f}")
        if growth > LINEARITY:
            missed.append(f"time per vhost grows {growth:.2f}x from {sizes[0]} to {sizes[-1]} vhosts")
    for line in missed:
        print(f"target missed: {line}", file=sys.stderr)
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
