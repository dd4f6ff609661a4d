"""Driving nginx: -V parsing, the -t fallback for an unwritable pid file, reload checks, polling and probes.

A shell script stands in for the nginx binary (the subprocess edge); the probes talk to real
loopback servers.
"""

from __future__ import annotations

import http.server
import os
import re
import socket
import ssl
import stat
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from letsencrypt.plugin_api import MisconfigurationError
from plugins.nginx import control
from plugins.nginx.control import Nginx, NginxNotRunning, build_info
from plugins.nginx.probes import http_get, served_leaf, wait_until

V_OUTPUT = (
    "nginx version: nginx/1.22.1\nbuilt with OpenSSL 3.0.11\nconfigure arguments: --with-cc-opt='-g -O2' "
    "--prefix=/usr/share/nginx --conf-path=/etc/nginx/nginx.conf --http-log-path=/var/log/nginx/access.log "
    "--error-log-path=stderr --pid-path=/run/nginx.pid --modules-path=/usr/lib/nginx/modules"
)


def _fake_nginx(tmp_path: Path, body: str) -> str:
    """An executable standing in for nginx: answers -V like Debian's, runs ``body`` otherwise."""
    script = tmp_path / "fake-nginx"
    script.write_text(
        "#!/bin/sh\n"
        f"echo \"$@\" >> {tmp_path}/calls\n"
        f"if [ \"$1\" = -V ]; then echo \"{V_OUTPUT}\" >&2; exit 0; fi\n"
        f"{body}\n"
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    build_info.cache_clear()
    return str(script)


def test_build_info_reads_the_compiled_paths(tmp_path: Path) -> None:
    info = build_info(_fake_nginx(tmp_path, "exit 0"))
    assert info.version == "1.22.1"
    assert info.prefix == Path("/usr/share/nginx")
    assert info.conf_path == Path("/etc/nginx/nginx.conf")
    assert info.pid_path == Path("/run/nginx.pid")


def test_a_missing_binary_is_a_misconfiguration_with_a_hint(tmp_path: Path) -> None:
    build_info.cache_clear()
    with pytest.raises(MisconfigurationError) as caught:
        build_info(str(tmp_path / "no-nginx"))
    assert caught.value.hint is not None and "--nginx-ctl" in caught.value.hint


def test_a_test_root_passes_prefix_and_config_and_the_default_root_passes_nothing(tmp_path: Path) -> None:
    ctl = _fake_nginx(tmp_path, "exit 0")
    root = Nginx(ctl, tmp_path / "root")
    assert root.base_args() == [ctl, "-p", f"{tmp_path}/root/", "-c", f"{tmp_path}/root/nginx.conf"]
    assert root.resolve("logs/nginx.pid") == tmp_path / "root" / "logs" / "nginx.pid"
    default = Nginx(ctl, Path("/etc/nginx"))
    assert default.uses_defaults and default.base_args() == [ctl]
    assert default.resolve("logs/x") == Path("/usr/share/nginx/logs/x")


def test_config_test_quotes_nginx_when_it_fails(tmp_path: Path) -> None:
    ctl = _fake_nginx(tmp_path, 'echo \'nginx: [emerg] unknown directive "sever" in /x/nginx.conf:3\' >&2; exit 1')
    with pytest.raises(MisconfigurationError, match=re.escape('unknown directive "sever" in /x/nginx.conf:3')):
        Nginx(ctl, tmp_path).config_test(pid_path=tmp_path / "nginx.pid")


def test_config_test_retries_with_a_scratch_pid_when_only_the_pid_file_is_unwritable(tmp_path: Path) -> None:
    body = (
        'case "$*" in *"-g pid"*) exit 0;; esac\n'
        'echo \'nginx: [emerg] open() "/run/nope/nginx.pid" failed (13: Permission denied)\' >&2; exit 1'
    )
    ctl = _fake_nginx(tmp_path, body)
    Nginx(ctl, tmp_path).config_test(pid_path=Path("/run/nope/nginx.pid"))
    calls = (tmp_path / "calls").read_text().splitlines()
    assert calls[-1].endswith(f"-g pid {tmp_path}/.letsencrypt-test-{os.getpid()}.pid;")


def test_config_test_with_a_pid_directive_tests_a_copy_without_it_beside_the_main_file(tmp_path: Path) -> None:
    seen = tmp_path / "seen"
    body = (
        f'case "$*" in *"-g pid"*) cat "$4" > {seen}; exit 0;; esac\n'
        'echo \'nginx: [emerg] open() "/run/nope/nginx.pid" failed (2: No such file or directory)\' >&2; exit 1'
    )
    ctl = _fake_nginx(tmp_path, body)
    Nginx(ctl, tmp_path).config_test(pid_path=Path("/run/nope/nginx.pid"), pid_free_copy=lambda: b"events {}\n")
    assert seen.read_bytes() == b"events {}\n"
    assert not list(tmp_path.glob(".letsencrypt-test-*")), "the scratch copy is removed"


def test_a_pid_failure_on_another_path_is_not_retried(tmp_path: Path) -> None:
    body = "echo 'nginx: [emerg] open() \"/other.pid\" failed (13: Permission denied)' >&2; exit 1"
    with pytest.raises(MisconfigurationError, match=r"other\.pid"):
        Nginx(_fake_nginx(tmp_path, body), tmp_path).config_test(pid_path=Path("/run/nginx.pid"))


def test_master_pid_says_nginx_is_not_running(tmp_path: Path) -> None:
    nginx = Nginx(_fake_nginx(tmp_path, "exit 0"), tmp_path)
    with pytest.raises(NginxNotRunning, match="does not exist"):
        nginx.master_pid(tmp_path / "nginx.pid")
    (tmp_path / "nginx.pid").write_text(f"{os.getpid()}\n")  # alive, but this is python, not nginx
    with pytest.raises(NginxNotRunning, match="no nginx master"):
        nginx.master_pid(tmp_path / "nginx.pid")
    (tmp_path / "nginx.pid").write_text("garbage")
    with pytest.raises(NginxNotRunning, match="not a process id"):
        nginx.master_pid(tmp_path / "nginx.pid")


def test_master_errors_picks_the_masters_lines_after_the_offset(tmp_path: Path) -> None:
    log = tmp_path / "error.log"
    log.write_bytes(b"2024/01/01 00:00:00 [emerg] 42#42: old failure\n")
    offset = log.stat().st_size
    with log.open("ab") as handle:
        handle.write(b"2024/01/01 00:00:01 [emerg] 7#7: a worker's line\n")
        handle.write(b'2024/01/01 00:00:01 [emerg] 42#42: bind() to 127.0.0.1:1 failed (13: Permission denied)\n')
    assert control._master_errors(log, offset, 42) == "[emerg] bind() to 127.0.0.1:1 failed (13: Permission denied)"
    assert control._master_errors(log, log.stat().st_size, 42) is None
    assert control._master_errors(None, 0, 42) is None


def test_children_lists_child_processes() -> None:
    import subprocess

    child = subprocess.Popen(["sleep", "5"])
    try:
        assert child.pid in control.children(os.getpid())
    finally:
        child.kill()
        child.wait()


def test_wait_until_polls_then_times_out_with_the_last_observation() -> None:
    calls = []

    def ready_on_third() -> str | None:
        calls.append(time.monotonic())
        return None if len(calls) == 3 else f"attempt {len(calls)}"

    wait_until(ready_on_third, 5.0, "the thing")
    assert len(calls) == 3 and calls[-1] - calls[0] < 0.1, "polls start fast"
    with pytest.raises(MisconfigurationError, match="waiting for the thing: never"):
        wait_until(lambda: "never", 0.05, "the thing")


@pytest.fixture
def http_server() -> Iterator[tuple[int, list[str]]]:
    hosts: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            hosts.append(self.headers["Host"])
            self.send_response(301)
            self.send_header("Location", "https://a.example/x")
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"hi")

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1], hosts
    server.shutdown()
    server.server_close()


def test_http_get_sends_the_virtual_host(http_server: tuple[int, list[str]]) -> None:
    port, hosts = http_server
    answer = http_get("127.0.0.1", port, "a.example", "/x")
    assert answer.status == 301 and answer.headers["location"] == "https://a.example/x" and answer.body == b"hi"
    assert hosts == ["a.example"]


def test_served_leaf_returns_the_certificate_for_the_sni(tmp_path: Path) -> None:
    from integration._procs import make_tls_identity

    identity = make_tls_identity(tmp_path, ["a.example"])
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(identity.cert, identity.key)
    names: list[str | None] = []
    context.sni_callback = lambda sock, name, ctx: names.append(name)
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def serve() -> None:
        conn, _ = listener.accept()
        try:
            with context.wrap_socket(conn, server_side=True) as tls:
                tls.recv(1)
        except (ssl.SSLError, OSError):
            pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    der = served_leaf("127.0.0.1", port, "a.example")
    thread.join(5)
    listener.close()
    assert der == ssl.PEM_cert_to_DER_cert(identity.cert.read_text())
    assert names == ["a.example"]
