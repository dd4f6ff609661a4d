"""The nginx plugin end to end: the real ``letsencrypt --nginx`` against a real nginx and a real CA.

Each test starts nginx in a temporary server root (``nginx_harness``) on the loopback ports where
the CA validates (ca_stub started for this module with the legacy challenges and no authorization
reuse, so renewals solve challenges again; Pebble for the timing test), runs the CLI as a
subprocess, and checks what nginx serves afterwards: the certificate chain for each SNI name, the
redirect, the headers, and the configuration files byte for byte (only added lines; everything
back as it was after a failure or after the challenges).
"""

from __future__ import annotations

import difflib
import re
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import pytest

from integration._procs import free_port, require_binary
from integration.client_harness import ClientRunner, describe
from integration.nginx_harness import NGINX, NginxServer
from integration.pebble_harness import Pebble
from letsencrypt.plugin_api import PluginContext
from letsencrypt.testing import CAStub, run_ca_stub
from plugins.nginx.plugin import NginxPlugin
from plugins.nginx.probes import pem_certificates
from plugins.nginx.ssl_files import FFDHE2048_PEM

A, WWW_A, B = "a.example", "www.a.example", "b.example"

SEVERAL_BLOCKS = {"conf.d/sites.conf": """\
server {
    listen 127.0.0.1:{http} default_server;
    server_name _;
    return 404;
}

server {
    listen 127.0.0.1:{http};
    listen [::1]:{http};
    server_name a.example www.a.example;
    location / {
        return 200 "site a\\n";
    }
}

server {
    listen 127.0.0.1:{http};
    server_name b.example;
    location / {
        return 200 "site b\\n";
    }
}
"""}

Serve = Callable[..., NginxServer]


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CAStub]:
    require_binary(NGINX, "nginx")
    with run_ca_stub(tmp_path_factory.mktemp("nginx-ca"), http_port=free_port(), tls_port=free_port(),
                     extra_args=["--legacy-challenges", "--authorization-reuse", "0"]) as instance:
        yield instance


@pytest.fixture
def client(tmp_path: Path, ca: CAStub) -> ClientRunner:
    return ClientRunner(tmp_path / "client", ca)


@pytest.fixture
def serve(tmp_path: Path, ca: CAStub) -> Iterator[Serve]:
    servers: list[NginxServer] = []

    def start(sites: Mapping[str, str], *, http_port: int = ca.http_port, tls_port: int = ca.tls_port) -> NginxServer:
        server = NginxServer(tmp_path / f"nginx{len(servers)}", http_port, tls_port, sites)
        servers.append(server)
        return server.start()

    yield start
    for server in servers:
        server.stop()


def nginx_flags(server: NginxServer) -> list[str]:
    return ["--nginx", "--nginx-server-root", str(server.root), "--http-01-port", str(server.http_port),
            "--https-port", str(server.tls_port), "--http-01-address", "127.0.0.1"]


def ok(result: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert result.returncode == 0, describe(result)
    return result


def added_lines(before: bytes, after: bytes) -> list[str]:
    """Lines ``after`` adds to ``before``; fails when a line of ``before`` changed or went."""
    diff = list(difflib.ndiff(before.decode().splitlines(), after.decode().splitlines()))
    removed = [line for line in diff if line.startswith("- ")]
    assert not removed, f"lines changed or removed: {removed}"
    return [line[2:].strip() for line in diff if line.startswith("+ ")]


def served(server: NginxServer, name: str, client: ClientRunner, lineage: str, *, host: str = "127.0.0.1") -> None:
    """nginx presents exactly the lineage's full chain for SNI ``name``."""
    chain = server.chain(name, host=host)
    expected = pem_certificates((client.live(lineage) / "fullchain.pem").read_bytes())
    assert chain.complete and chain.certificates == expected, f"{name} at {host} serves another chain"


# --- installing -----------------------------------------------------------------------------------


def test_run_installs_tls_redirect_and_hsts_into_one_of_several_blocks(serve: Serve, client: ClientRunner) -> None:
    server = serve(SEVERAL_BLOCKS)
    before = server.snapshot()
    ok(client.run("run", *nginx_flags(server), "-d", A, "-d", WWW_A, "--redirect", "--hsts"))

    client.check_lineage(A, [A, WWW_A])
    for name in (A, WWW_A):
        served(server, name, client, A)
    served(server, A, client, A, host="::1")  # [::1]:{http} got [::1]:{tls} ssl beside it
    redirect = server.get(A, "/page?x=1")
    assert redirect.status == 301 and redirect.headers["location"] == f"https://{A}:{server.tls_port}/page?x=1"
    page = server.get(A, tls=True)
    assert page.body == b"site a\n" and page.headers["strict-transport-security"] == "max-age=31536000"
    assert server.get(B).body == b"site b\n", "the other blocks are untouched"
    assert server.get("unknown.example").status == 404

    after = server.snapshot()
    added = added_lines(before["conf.d/sites.conf"], after["conf.d/sites.conf"])
    assert all("managed by letsencrypt" in line or line.startswith(("return 301", "if ($scheme")) for line in added)
    assert f"listen [::1]:{server.tls_port} ssl; # managed by letsencrypt" in added
    assert after["ssl-dhparams.pem"] == FFDHE2048_PEM.encode()
    assert b"ssl_protocols TLSv1.2 TLSv1.3;" in after["options-ssl-nginx.conf"]
    assert client.renewal_config(A).installer == "nginx"


def test_names_matched_by_a_wildcard_and_by_a_regex(serve: Serve, client: ClientRunner) -> None:
    server = serve({"conf.d/names.conf": """\
server {
    listen 127.0.0.1:{http};
    server_name *.wild.example;
    return 200 "wildcard\\n";
}
server {
    listen 127.0.0.1:{http};
    server_name ~^re(?<n>\\d+)\\.example$;
    return 200 "regex $n\\n";
}
server {
    listen 127.0.0.1:{http};
    server_name exact.wild.example;
    return 200 "exact\\n";
}
"""})
    before = server.snapshot()["conf.d/names.conf"].decode()
    ok(client.run("run", *nginx_flags(server), "-d", "x.wild.example", "--no-redirect"))
    ok(client.run("run", *nginx_flags(server), "-d", "re7.example", "--no-redirect"))
    served(server, "x.wild.example", client, "x.wild.example")
    served(server, "re7.example", client, "re7.example")
    assert server.get("re7.example", tls=True).body == b"regex 7\n"
    blocks = server.snapshot()["conf.d/names.conf"].decode().split("server {")
    assert "ssl_certificate" in blocks[1] and "ssl_certificate" in blocks[2]
    assert blocks[3] == before.split("server {")[3], "the exact-name block is untouched"


def test_an_include_glob_edits_only_the_file_serving_the_name(serve: Serve, client: ClientRunner) -> None:
    site = "server {{\n    listen 127.0.0.1:{{http}};\n    server_name {name};\n    return 200 \"{name}\\n\";\n}}\n"
    server = serve({"conf.d/10-a.conf": site.format(name=A), "conf.d/20-b.conf": site.format(name=B)})
    before = server.snapshot()
    ok(client.run("run", *nginx_flags(server), "-d", B))
    after = server.snapshot()
    assert after["conf.d/10-a.conf"] == before["conf.d/10-a.conf"]
    assert after["nginx.conf"] == before["nginx.conf"]
    assert after["conf.d/20-b.conf"] != before["conf.d/20-b.conf"]
    served(server, B, client, B)


# --- failures leave everything as it was ----------------------------------------------------------------


def test_an_unparseable_include_stops_the_run_before_anything_is_touched(serve: Serve, client: ClientRunner) -> None:
    server = serve(SEVERAL_BLOCKS)
    broken = server.root / "conf.d" / "zz-broken.conf"
    broken.write_text("server {\n    listen 127.0.0.1:1;\n    server_name broken.example\n}\n")  # no ";"
    before = server.snapshot()
    result = client.run("run", *nginx_flags(server), "-d", A)
    assert result.returncode != 0
    assert re.search(rf"{re.escape(str(broken))}:4:1\b", result.stderr), result.stderr
    assert server.snapshot() == before
    assert not client.live(A).exists(), "nothing obtained: the configuration is read before the order"
    assert server.get(A).body == b"site a\n"


def test_an_install_that_nginx_rejects_is_rolled_back_byte_for_byte(serve: Serve, client: ClientRunner) -> None:
    server = serve(SEVERAL_BLOCKS)
    (server.root / "ssl-dhparams.pem").write_text("not DH parameters\n")  # written once: ours would not replace it
    before = server.snapshot()
    result = client.run("run", *nginx_flags(server), "-d", A)
    assert result.returncode != 0, describe(result)
    assert "rolled back" in result.stderr and "ssl-dhparams.pem" in result.stderr, result.stderr
    assert server.snapshot() == before
    assert client.live(A).exists(), "the certificate itself was obtained and kept"
    assert server.get(A).body == b"site a\n", "nginx still serves the old configuration"


def test_challenges_are_removed_byte_for_byte(serve: Serve, client: ClientRunner) -> None:
    server = serve(SEVERAL_BLOCKS)
    before = server.snapshot()
    for challenge, name in (("http-01", A), ("dvsni", WWW_A), ("simpleHttps", B), ("http-01", "new.example")):
        ok(client.run("certonly", *nginx_flags(server), "--preferred-challenges", challenge, "-d", name))
        assert client.live(name).exists()
        assert server.snapshot() == before, f"{challenge} left changes behind"
    assert not list((client.work_dir / "nginx-challenges").iterdir()), "challenge keys are deleted"
    assert "[emerg]" not in server.error_log()


# --- the lineage afterwards --------------------------------------------------------------------------------


def test_renew_reinstalls_and_delete_refuses_a_lineage_nginx_serves(serve: Serve, client: ClientRunner) -> None:
    server = serve(SEVERAL_BLOCKS)
    ok(client.run("run", *nginx_flags(server), "-d", A, "--staple-ocsp"))
    first = server.chain(A).certificates[0]
    installed = server.snapshot()
    assert b"ssl_stapling on; # managed by letsencrypt" in installed["conf.d/sites.conf"]

    ok(client.run("renew", "--force-renewal"))
    second = server.chain(A).certificates[0]
    assert second != first
    served(server, A, client, A)
    assert server.snapshot() == installed, "renewal points at the same live files: nothing to edit"

    result = client.run("delete", "--cert-name", A, "--nginx-server-root", str(server.root))
    assert result.returncode != 0
    assert "still used" in result.stderr and f"{server.root}/conf.d/sites.conf:" in result.stderr, result.stderr
    assert client.live(A).exists()


def test_rollback_restores_the_configuration_before_the_install(serve: Serve, client: ClientRunner) -> None:
    server = serve(SEVERAL_BLOCKS)
    before = server.snapshot()
    ok(client.run("run", *nginx_flags(server), "-d", A))
    ok(client.run("rollback", "--installer", "nginx", "--nginx-server-root", str(server.root)))
    after = server.snapshot()
    assert after["conf.d/sites.conf"] == before["conf.d/sites.conf"]
    assert server.get(A).body == b"site a\n" and server.get(A).status == 200


def test_a_test_root_whose_pid_file_cannot_be_written_still_tests(tmp_path: Path) -> None:
    require_binary(NGINX, "nginx")
    root = tmp_path / "root"
    root.mkdir()
    (root / "nginx.conf").write_text(
        f"user www-data;\npid {tmp_path}/missing-dir/nginx.pid;\nerror_log {root}/error.log;\n"
        "events {}\nhttp {\n    server {\n        listen 127.0.0.1:1;\n    }\n}\n")
    plain = subprocess.run([NGINX, "-t", "-p", f"{root}/", "-c", str(root / "nginx.conf")], capture_output=True,
                           text=True, check=False)
    assert plain.returncode != 0 and "missing-dir/nginx.pid" in plain.stderr
    context = PluginContext(options={"server-root": root, "ctl": NGINX}, config_dir=tmp_path / "c",
                            work_dir=tmp_path / "w", logs_dir=tmp_path / "l", reporter=_Quiet())
    plugin = NginxPlugin(context)
    plugin.prepare()
    plugin.config_test()
    assert sorted(p.name for p in root.iterdir()) == ["error.log", "nginx.conf"], "no scratch file left"


class _Quiet:
    def info(self, message: str) -> None:
        pass

    def warn(self, message: str) -> None:
        pass

    def progress(self, message: str) -> None:
        pass


# --- Pebble, and the time it takes --------------------------------------------------------------------------


def test_pebble_run_with_redirect_and_its_time(tmp_path: Path, pebble: Pebble) -> None:
    require_binary(NGINX, "nginx")
    with NginxServer(tmp_path / "nginx", pebble.http_port, pebble.tls_port, SEVERAL_BLOCKS) as server:
        client = ClientRunner(tmp_path / "client", pebble)
        started = time.monotonic()
        ok(client.run("run", *nginx_flags(server), "-d", A, "--redirect"))
        elapsed = time.monotonic() - started
        served(server, A, client, A)
        assert server.get(A).status == 301
        log = (client.logs_dir / "letsencrypt.log").read_text()
        reloads = [float(x) for x in re.findall(r"nginx reloaded in ([0-9.]+) s", log)]
        print(f"\nletsencrypt run --nginx --redirect -d {A} against Pebble: {elapsed:.2f} s in all, "
              f"{len(reloads)} reloads taking {sum(reloads):.2f} s")
        assert len(reloads) == 3  # challenge in, challenge out, certificate in
        assert elapsed < 10
