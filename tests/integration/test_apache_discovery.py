"""The reading layer against the real apache2: same files, same vhosts, same choice of vhost.

A server root in a temporary directory laid out as Debian's (``apache2.conf`` with Debian's
includes, ``envvars``-style variables pointing into the root, ``mods-enabled`` links to the
installed ``mods-available``, ``sites-enabled`` links), with vhosts in ``apache2.conf`` itself, two
in one site file, IP-based ones, one in a sub-directory included as a directory, ones behind true
and false ``<IfModule>``/``<IfDefine>``/``<IfVersion>``, ``Define`` variables in names, ports and
include paths, and wildcard aliases. Then:

- ``apache2 -t -D DUMP_INCLUDES`` lists the files the loader read, in the same order and nesting;
- ``apache2 -S`` lists the vhosts the model found, per address, with the same names, aliases and
  file:line, the default server first;
- the running server (free loopback ports) answers each request from the vhost ``vhost_for``
  picks (each vhost sends its name in a header);
- ``apache2 -t`` accepts every syntax case of apache_corpus.py and the known gaps, and rejects
  what the lens rejects.
"""

from __future__ import annotations

import dataclasses
import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from integration._procs import (
    LOOPBACK,
    ManagedProcess,
    free_port,
    make_tls_identity,
    require_binary,
    skip_or_fail,
    wait_for_http,
)
from integration.apache_corpus import CASE_MODULES, KNOWN_GAPS, REJECTED, SYNTAX_CASES
from plugins.apache import ApacheConfig, LoadOptions, server_build

MODS_AVAILABLE = Path("/etc/apache2/mods-available")
MODULES = ("mpm_event", "authz_core", "authz_host", "headers", "mime", "ssl", "socache_shmcb", "setenvif")
SECOND_IP = "127.0.0.2"  # the whole of 127/8 is loopback on Linux


@dataclasses.dataclass(frozen=True)
class Root:
    path: Path
    env: dict[str, str]
    ports: dict[str, int]

    def command(self, *args: str) -> list[str]:
        return ["apache2", "-d", str(self.path), "-f", str(self.path / "apache2.conf"), *args]

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(self.command(*args), capture_output=True, text=True, timeout=60, env=self.env,
                              check=False)


def site(name: str, address: str, *aliases: str, extra: str = "") -> str:
    lines = [f"<VirtualHost {address}>", f"    ServerName {name}"]
    lines += [f"    ServerAlias {' '.join(aliases)}"] if aliases else []
    lines += [f"    Header always set X-Vhost {name}"]
    lines += [extra] if extra else []
    return "\n".join([*lines, "</VirtualHost>", ""])


def build_root(path: Path) -> Root:
    ports = {"main": free_port(), "sub": free_port(), "tls": free_port()}
    for name in ("mods-enabled", "sites-available", "sites-enabled", "sub/dir", "run", "lock", "logs", "tls"):
        (path / name).mkdir(parents=True)
    for module in MODULES:
        for suffix in (".load", ".conf"):
            if (MODS_AVAILABLE / (module + suffix)).exists():
                (path / "mods-enabled" / (module + suffix)).symlink_to(MODS_AVAILABLE / (module + suffix))
    identity = make_tls_identity(path / "tls", ["tls.test"])
    main, sub, tls = ports["main"], ports["sub"], ports["tls"]
    tls_site = site("tls.test", f"*:{tls}", extra=f"    SSLEngine on\n    SSLCertificateFile {identity.cert}\n"
                                                   f"    SSLCertificateKeyFile {identity.key}")
    (path / "apache2.conf").write_text(f"""\
# Debian's apache2.conf, reduced
DefaultRuntimeDir ${{APACHE_RUN_DIR}}
PidFile ${{APACHE_PID_FILE}}
Mutex file:${{APACHE_LOCK_DIR}} default
User ${{APACHE_RUN_USER}}
Group ${{APACHE_RUN_GROUP}}
ErrorLog ${{APACHE_LOG_DIR}}/error.log
LogLevel warn
ServerName main.test
Define SUB_NAME sub.test
Define SUB_PORT {sub}
Define SUB_DIR sub
IncludeOptional mods-enabled/*.load
IncludeOptional mods-enabled/*.conf
Include ports.conf

{site("main-file.test", f"*:{main}", "www.main-file.test")}
IncludeOptional sites-enabled/*.conf
Include ${{SUB_DIR}}
<IfModule ssl_module>
{tls_site}
</IfModule>
<IfModule nonexistent_module>
{site("never.test", f"*:{main}")}
</IfModule>
<IfDefine EXTRA>
{site("extra.test", f"*:{main}")}
</IfDefine>
<IfVersion >= 2.4>
{site("new.test", f"*:{main}", "*.new.test")}
</IfVersion>
<IfVersion < 2.0>
{site("old.test", f"*:{main}")}
</IfVersion>
{site("anyport.test", "127.0.0.3")}
""")
    (path / "ports.conf").write_text(f"Listen {LOOPBACK}:{main}\nListen {SECOND_IP}:{main}\nListen {LOOPBACK}:{sub}\n"
                                     f"<IfModule ssl_module>\n    Listen {LOOPBACK}:{tls}\n</IfModule>\n")
    (path / "sites-available" / "two.conf").write_text(
        site("a.test", f"*:{main}", "www.a.test") + "\n" + site("b.test", f"*:{main}", "*.wild.test", "www.b.*"))
    (path / "sites-available" / "ip.conf").write_text(
        site("ip.test", f"{SECOND_IP}:{main}") + site("ip2.test", f"{SECOND_IP}:{main}", "www.ip2.test"))
    (path / "sites-available" / "disabled.conf").write_text(site("disabled.test", f"*:{main}"))
    for name in ("two.conf", "ip.conf"):
        (path / "sites-enabled" / name).symlink_to(f"../sites-available/{name}")
    (path / "sub" / "dir" / "deep.conf").write_text(site("${SUB_NAME}", "*:${SUB_PORT}"))
    user = "www-data" if os.geteuid() == 0 else os.environ.get("USER", "nobody")
    env = {**os.environ, "APACHE_RUN_DIR": str(path / "run"), "APACHE_PID_FILE": str(path / "run" / "apache2.pid"),
           "APACHE_LOCK_DIR": str(path / "lock"), "APACHE_LOG_DIR": str(path / "logs"),
           "APACHE_RUN_USER": user, "APACHE_RUN_GROUP": "www-data" if os.geteuid() == 0 else user}
    return Root(path, env, ports)


@pytest.fixture(scope="module")
def apache2() -> str:
    require_binary("apache2", "apache2")
    if not MODS_AVAILABLE.is_dir():
        skip_or_fail("needs Debian's apache2 package (its /etc/apache2/mods-available)")
    return "apache2"


@pytest.fixture(params=[(), ("EXTRA",)], ids=["plain", "with -D EXTRA"])
def root(request: pytest.FixtureRequest, apache2: str, tmp_path: Path) -> Iterator[tuple[Root, tuple[str, ...]]]:
    built = build_root(tmp_path / "root")
    result = built.run(*[arg for name in request.param for arg in ("-D", name)], "-t")
    assert result.returncode == 0, result.stderr
    yield built, request.param


def read(root: Root, defines: tuple[str, ...]) -> ApacheConfig:
    return ApacheConfig.read(LoadOptions(root.path, defines=defines, environment=root.env, build=server_build()))


def dump_includes(root: Root, defines: tuple[str, ...]) -> list[tuple[int, str, str]]:
    """(depth, line of the Include or '*', file) from ``apache2 -t -D DUMP_INCLUDES``."""
    result = root.run(*[arg for name in defines for arg in ("-D", name)], "-t", "-D", "DUMP_INCLUDES")
    assert result.returncode == 0, result.stderr
    found = []
    for line in result.stdout.splitlines():
        match = re.fullmatch(r"( +)\((\*|\d+)\) (.+)", line)
        if match:
            found.append(((len(match.group(1)) - 2) // 2, match.group(2), match.group(3)))
    return found


def dump_vhosts(root: Root, defines: tuple[str, ...]) -> dict[str, list[tuple[str, str, tuple[str, ...]]]]:
    """address -> [(name, file:line, aliases)] from ``apache2 -S``, the default server first."""
    result = root.run(*[arg for name in defines for arg in ("-D", name)], "-S")
    assert result.returncode == 0, result.stderr
    found: dict[str, list[tuple[str, str, tuple[str, ...]]]] = {}
    current: list[tuple[str, str, tuple[str, ...]]] = []
    for line in result.stdout.splitlines():
        single = re.fullmatch(r"(\S+:\S+)\s+(?!is a NameVirtualHost)(\S+) \((.+)\)", line)
        if single:
            found[single.group(1)] = [(single.group(2), single.group(3), ())]
            continue
        named = re.fullmatch(r"(\S+:\S+)\s+is a NameVirtualHost", line)
        if named:
            current = found.setdefault(named.group(1), [])
            continue
        member = re.fullmatch(r"\s+port \S+ namevhost (\S+) \((.+)\)", line)
        if member:
            current.append((member.group(1), member.group(2), ()))
            continue
        alias = re.fullmatch(r"\s+(?:wild )?alias (\S+)", line)
        if alias and current:
            name, where, aliases = current[-1]
            current[-1] = (name, where, (*aliases, alias.group(1)))
    return found


def test_the_loader_reads_the_files_apache_reads(root: tuple[Root, tuple[str, ...]]) -> None:
    built, defines = root
    loaded = read(built, defines).loaded
    ours = [(included.depth, "*" if included.via is None else str(included.via.line), included.file)
            for included in loaded.includes]
    assert ours == dump_includes(built, defines)
    assert str(built.path / "sub" / "dir" / "deep.conf") in loaded.files
    assert str(built.path / "sites-available" / "disabled.conf") not in loaded.files


def test_the_model_finds_the_vhosts_apache_reports(root: tuple[Root, tuple[str, ...]]) -> None:
    built, defines = root
    config = read(built, defines)
    ours: dict[str, list[tuple[str, str, tuple[str, ...]]]] = {}
    for vhost in config:
        for address in vhost.addresses:
            ours.setdefault(str(address), []).append((vhost.server_name or "", f"{vhost.file}:{vhost.line}",
                                                      vhost.aliases))
    for chain in ours.values():  # apache2 -S prints no alias for an address with a single vhost
        if len(chain) == 1:
            chain[0] = (*chain[0][:2], ())
    reported = dump_vhosts(built, defines)
    assert len(reported) >= 5
    assert ours == reported
    names = {vhost.server_name for vhost in config}
    assert ("extra.test" in names) is bool(defines)
    assert {"sub.test", "tls.test", "new.test", "ip2.test"} <= names
    assert not names & {"never.test", "old.test", "disabled.test"}
    assert [vhost.tls for vhost in config if vhost.server_name == "tls.test"] == [True]


REQUESTS = [
    ("main-file.test", LOOPBACK, "main"), ("WWW.Main-File.test", LOOPBACK, "main"), ("a.test", LOOPBACK, "main"),
    ("www.a.test", LOOPBACK, "main"), ("x.y.wild.test", LOOPBACK, "main"), ("www.b.org", LOOPBACK, "main"),
    ("unknown.test", LOOPBACK, "main"), ("ip2.test", LOOPBACK, "main"), ("foo.new.test", LOOPBACK, "main"),
    ("extra.test", LOOPBACK, "main"), ("ip2.test", SECOND_IP, "main"), ("www.ip2.test", SECOND_IP, "main"),
    ("a.test", SECOND_IP, "main"), ("sub.test", LOOPBACK, "sub"), ("a.test", LOOPBACK, "sub"),
]


def test_the_running_server_answers_from_the_vhost_the_model_picks(root: tuple[Root, tuple[str, ...]]) -> None:
    built, defines = root
    config = read(built, defines)
    argv = built.command(*[arg for name in defines for arg in ("-D", name)], "-D", "FOREGROUND")
    with ManagedProcess(argv, built.path / "logs" / "foreground.log", env=built.env) as server:
        wait_for_http(f"http://{LOOPBACK}:{built.ports['main']}/", process=server)
        for host, ip, port_name in REQUESTS:
            port = built.ports[port_name]
            answer = requests.get(f"http://{ip}:{port}/", headers={"Host": host}, timeout=5)
            chosen = config.vhost_for(host, port, ip)
            assert chosen is not None, (host, ip, port)
            assert answer.headers.get("X-Vhost") == chosen.server_name, (host, ip, port_name)


@pytest.fixture(scope="module")
def case_root(apache2: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("cases")
    for name in ("run", "lock", "logs", "mods"):
        (path / name).mkdir()
    loads = "".join(f"Include {MODS_AVAILABLE}/{module}.load\n" for module in CASE_MODULES)
    (path / "base.conf").write_text(f"PidFile {path}/run/pid\nMutex file:{path}/lock default\nErrorLog {path}/logs/e\n"
                                    f"ServerName cases.test\n{loads}Include case.conf\n")
    return path


def apache_accepts(case_root: Path, data: bytes) -> subprocess.CompletedProcess[str]:
    (case_root / "case.conf").write_bytes(data)
    return subprocess.run(["apache2", "-d", str(case_root), "-f", str(case_root / "base.conf"), "-t"],
                          capture_output=True, text=True, timeout=60, check=False)


@pytest.mark.parametrize("name", sorted(SYNTAX_CASES))
def test_apache_accepts_every_syntax_case(case_root: Path, name: str) -> None:
    result = apache_accepts(case_root, SYNTAX_CASES[name].text)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("name", sorted(KNOWN_GAPS))
def test_apache_accepts_the_known_gaps(case_root: Path, name: str) -> None:
    result = apache_accepts(case_root, KNOWN_GAPS[name])
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("name", sorted(REJECTED))
def test_apache_rejects_what_both_reject(case_root: Path, name: str) -> None:
    assert apache_accepts(case_root, REJECTED[name]).returncode != 0
