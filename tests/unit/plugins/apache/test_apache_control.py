"""Driving Apache: commands per root, Debian's variables, module links, reload by checking, served checks.

The server here is a fake ``apache2`` (a small script): a parent that writes its pid file and starts
a new child on SIGUSR1, as Apache's parent does on a graceful restart. The real apache2 is driven by
``tests/integration/test_apache_plugin.py``.
"""

from __future__ import annotations

import contextlib
import http.server
import os
import signal
import ssl
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from integration._procs import LOOPBACK, make_tls_identity

from letsencrypt.plugin_api import MisconfigurationError
from plugins.apache.control import (
    DEBIAN_ROOT,
    Apache,
    ApacheNotRunning,
    http_get,
    module_links,
    served_leaf,
    wait_until,
)
from plugins.apache.transactions import Link

FAKE_APACHE = textwrap.dedent("""\
    #!{python}
    import os, signal, subprocess, sys, time
    args = sys.argv[1:]
    pid_file = os.environ["APACHE_PID_FILE"]
    if "-t" in args:
        if os.path.exists(os.path.join(args[args.index("-d") + 1], "broken")):
            print("AH00526: Syntax error on line 3 of site.conf:", file=sys.stderr)
            print("Invalid command 'Bogus'", file=sys.stderr)
            sys.exit(1)
        print("Syntax OK", file=sys.stderr)
    elif "-M" in args:
        print("Loaded Modules:\\n core_module (static)\\n mime_module (shared)")
    elif args[-2:] == ["-k", "graceful"]:
        os.kill(int(open(pid_file).read()), signal.SIGUSR1)
    elif args[-2:] == ["-k", "start"]:
        children = [subprocess.Popen(["sleep", "60"])]
        def graceful(*_):
            if os.path.exists(os.path.join(os.path.dirname(pid_file), "die-on-reload")):
                sys.exit(1)
            time.sleep(0.05)
            children.append(subprocess.Popen(["sleep", "60"]))
        signal.signal(signal.SIGUSR1, graceful)
        signal.signal(signal.SIGTERM, lambda *_: [c.kill() for c in children] and sys.exit(0))
        open(pid_file, "w").write(str(os.getpid()))
        while True:
            time.sleep(1)
    """)


@pytest.fixture
def fake_root(tmp_path: Path) -> Apache:
    binary = tmp_path / "bin" / "apache2"
    binary.parent.mkdir()
    binary.write_text(FAKE_APACHE.format(python=sys.executable))
    binary.chmod(0o755)
    root = tmp_path / "apache2"
    root.mkdir()
    (root / "apache2.conf").write_text("# test root\n")
    return Apache(str(binary), root)


@contextlib.contextmanager
def running(apache: Apache) -> Iterator[int]:
    apache.pid_file.parent.mkdir(parents=True, exist_ok=True)
    process = subprocess.Popen(apache.command("-k", "start"), env=apache.environment())
    try:
        wait_until(lambda: None if apache.pid_file.is_file() else "no pid file", 5, "the fake parent")
        yield process.pid
    finally:
        os.kill(process.pid, signal.SIGTERM)
        process.wait(5)


def test_debian_root_goes_through_apache2ctl_and_a_test_root_through_the_binary(fake_root: Apache) -> None:
    assert Apache("apache2ctl", DEBIAN_ROOT).command("configtest") == ["apache2ctl", "configtest"]
    root = fake_root.server_root
    assert fake_root.command("-t") == [fake_root.ctl, "-d", str(root), "-f", str(root / "apache2.conf"), "-t"]
    (root / "apache2.conf").unlink()
    (root / "httpd.conf").write_text("")
    assert fake_root.main_config == root / "httpd.conf"


def test_a_test_root_gets_debians_variables_inside_it_unless_its_envvars_says_otherwise(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("APACHE_RUN_DIR", "APACHE_PID_FILE", "APACHE_LOG_DIR", "APACHE_LOCK_DIR"):
        monkeypatch.delenv(name, raising=False)
    root = tmp_path / "root"
    root.mkdir()
    env = Apache("apache2", root).environment()
    assert env["APACHE_PID_FILE"] == str(root / "run" / "apache2.pid")
    assert env["APACHE_LOG_DIR"] == str(root / "logs")
    (root / "envvars").write_text(textwrap.dedent("""\
        unset HOME
        export APACHE_PID_FILE=/srv/elsewhere/apache2$SUFFIX.pid
        export APACHE_LOG_DIR=${APACHE_CONFDIR}/var/log
        """))
    env = Apache("apache2", root).environment()
    assert env["APACHE_PID_FILE"] == "/srv/elsewhere/apache2.pid"
    assert env["APACHE_LOG_DIR"] == f"{root}/var/log"
    assert env["APACHE_RUN_DIR"] == str(root / "run")


def test_config_test_passes_and_fails_with_apaches_own_words(fake_root: Apache) -> None:
    fake_root.config_test()
    (fake_root.server_root / "broken").touch()
    with pytest.raises(MisconfigurationError, match="Invalid command 'Bogus'") as caught:
        fake_root.config_test()
    assert "-t" in (caught.value.hint or "")


def test_loaded_modules_come_from_dash_m(fake_root: Apache) -> None:
    assert fake_root.loaded_modules() == {"core_module", "mime_module"}


def test_graceful_returns_once_a_new_child_runs_and_the_check_passes(fake_root: Apache) -> None:
    checks: list[float] = []

    def check() -> str | None:
        checks.append(time.monotonic())
        return None if len(checks) >= 3 else "not yet"

    with running(fake_root):
        took = fake_root.graceful(check, deadline=5)
    assert len(checks) == 3, "the caller's check runs only after a new child exists, until it passes"
    assert 0.05 <= took < 2


def test_graceful_fails_fast_when_the_parent_exits_and_when_nothing_runs(fake_root: Apache) -> None:
    with pytest.raises(ApacheNotRunning, match="not running"):
        fake_root.graceful()
    with running(fake_root):
        (fake_root.pid_file.parent / "die-on-reload").touch()
        started = time.monotonic()
        with pytest.raises(ApacheNotRunning, match="exited during the reload"):
            fake_root.graceful(deadline=5)
        assert time.monotonic() - started < 2


def test_graceful_times_out_naming_what_the_check_saw(fake_root: Apache) -> None:
    with running(fake_root), pytest.raises(MisconfigurationError, match=r"timed out .* old certificate"):
        fake_root.graceful(lambda: "old certificate", deadline=0.3)


def _modules(root: Path) -> None:
    available = root / "mods-available"
    available.mkdir(parents=True)
    (root / "mods-enabled").mkdir()
    (available / "ssl.load").write_text("# Depends: setenvif mime socache_shmcb\nLoadModule ssl_module x\n")
    (available / "ssl.conf").write_text("<IfModule mod_ssl.c>\n</IfModule>\n")
    for name in ("setenvif", "mime", "socache_shmcb", "headers"):
        (available / f"{name}.load").write_text(f"LoadModule {name}_module x\n")
    (available / "setenvif.conf").write_text("\n")
    (root / "mods-enabled" / "mime.load").symlink_to("../mods-available/mime.load")


def test_module_links_enable_a_module_and_its_dependencies_as_a2enmod_does(tmp_path: Path) -> None:
    _modules(tmp_path)
    links = module_links(tmp_path, "ssl", loaded={"socache_shmcb_module"})
    enabled = tmp_path / "mods-enabled"
    assert links == {
        enabled / "setenvif.load": Link("../mods-available/setenvif.load"),
        enabled / "setenvif.conf": Link("../mods-available/setenvif.conf"),
        enabled / "ssl.load": Link("../mods-available/ssl.load"),
        enabled / "ssl.conf": Link("../mods-available/ssl.conf"),
    }
    assert module_links(tmp_path, "ssl", loaded={"ssl_module"}) == {}


def test_module_links_refuse_a_missing_module_or_a_root_without_the_debian_layout(tmp_path: Path) -> None:
    _modules(tmp_path / "debian")
    with pytest.raises(MisconfigurationError, match=r"rewrite\.load does not exist"):
        module_links(tmp_path / "debian", "rewrite", loaded=set())
    (tmp_path / "plain").mkdir()
    with pytest.raises(MisconfigurationError, match="no mods-available"):
        module_links(tmp_path / "plain", "ssl", loaded=set())


def test_wait_until_polls_until_done_and_times_out_with_the_last_observation() -> None:
    seen = iter(["a", "b", None])
    wait_until(lambda: next(seen), 1, "letters")
    with pytest.raises(MisconfigurationError, match=r"waiting for the sun: still dark"):
        wait_until(lambda: "still dark", 0.05, "the sun")


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = f"{self.headers['Host']} {self.path}".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


def test_served_leaf_and_http_get_use_the_name_for_sni_and_host(tmp_path: Path) -> None:
    identity = make_tls_identity(tmp_path, ["a.example"])
    server = http.server.ThreadingHTTPServer((LOOPBACK, 0), _Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(identity.cert, identity.key)
    names: list[str] = []

    def remember(_sock: ssl.SSLObject, name: str, _ctx: ssl.SSLContext) -> None:
        names.append(name)

    context.sni_callback = remember
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        port = server.server_address[1]
        der = served_leaf(LOOPBACK, port, "a.example")
        assert x509.load_der_x509_certificate(der) == x509.load_pem_x509_certificate(identity.cert.read_bytes())
        answer = http_get(LOOPBACK, port, "a.example", "/x", tls=True)
        assert (answer.status, answer.body) == (200, b"a.example /x")
        assert names == ["a.example", "a.example"]
    finally:
        server.shutdown()
        server.server_close()
