"""The parser against the real nginx: what nginx accepts we parse, what it rejects we reject on
the same line, and ``nginx -T`` reads the same files as the loader (includes, globs, nesting)."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from integration._procs import require_binary, skip_or_fail
from plugins.nginx import NginxCrossCheckError, NginxParseError, cross_check, load, parse

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "nginx"
FRAGMENTS = {"empty.conf", "comment_only.conf"}  # valid as included files, not as a main file
# lua_blocks.conf needs lua-nginx-module, which Debian's nginx does not load: checked against the
# port of nginx's tokenizer (unit tests) instead.
CHECKED = sorted(path for path in FIXTURES.glob("*.conf") if path.name != "lua_blocks.conf")


@pytest.fixture(scope="module")
def nginx() -> str:
    return require_binary("nginx", "nginx")


def run_nginx(nginx: str, main: Path, tmp: Path, flag: str = "-t") -> subprocess.CompletedProcess[str]:
    return subprocess.run([nginx, flag, "-q", "-c", str(main), *nginx_args(tmp)], capture_output=True, text=True,
                          timeout=60, check=False)


def nginx_args(tmp: Path) -> list[str]:
    return ["-p", f"{tmp}/", "-g", f"pid {tmp}/nginx.pid; error_log {tmp}/error.log;"]


@pytest.mark.parametrize("fixture", CHECKED, ids=lambda path: path.name)
def test_nginx_accepts_each_fixture_and_reads_the_same_files(nginx: str, fixture: Path, tmp_path: Path) -> None:
    main = fixture
    if fixture.name in FRAGMENTS:
        main = tmp_path / "nginx.conf"
        main.write_text(f"events {{}}\nhttp {{\n    include {fixture};\n}}\n")
    result = run_nginx(nginx, main, tmp_path)
    assert result.returncode == 0, result.stderr
    config = load(main)
    cross_check(config, nginx=nginx, extra_args=nginx_args(tmp_path))


REJECTED = [
    "events {}\nhttp {\n    server {\n        listen 80;\n    }}\n}\n",
    'events {}\nhttp {\n    return "a"b;\n}\n',
    "events {}\n;\n",
    "events {}\nhttp {\n    location ~ ^/a{2,3}$ { }\n}\n",
    "events {}\nhttp { server { listen 80 } }\n",
    "events {}\nhttp {\n  add_header 'a'#b;\n}\n",
]


@pytest.mark.parametrize("text", REJECTED)
def test_nginx_rejects_what_the_parser_rejects(nginx: str, text: str, tmp_path: Path) -> None:
    main = tmp_path / "nginx.conf"
    main.write_text(text)
    result = run_nginx(nginx, main, tmp_path)
    assert result.returncode != 0
    found = re.search(rf"in {re.escape(str(main))}:(\d+)", result.stderr)
    assert found, result.stderr
    with pytest.raises(NginxParseError) as caught:
        parse(text, str(main))
    if "unexpected" in result.stderr:  # a syntax error for nginx too (not a misplaced directive)
        assert caught.value.line == int(found.group(1)), (str(caught.value), result.stderr)


def write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root / "nginx.conf"


def test_cross_check_with_includes_globs_and_nesting(nginx: str, tmp_path: Path) -> None:
    main = write(tmp_path, {
        "nginx.conf": "events {}\nhttp {\n    include mime.types;\n    include conf.d/*.conf;\n"
                      '    include "sites enabled/*";\n    include nothing-matches/*.conf;\n}\n',
        "mime.types": "types {\n    text/html html;\n}\n",
        "conf.d/a.conf": "map $host $a { default 1; }\n",
        "conf.d/b.conf": "include snippets/*.inc;\n",
        "snippets/headers.inc": "add_header X-A 1;\n",
        "sites enabled/one": "server {\n    listen 127.0.0.1:8091;\n    include snippets/headers.inc;\n}\n",
        "sites enabled/two": "server { listen 127.0.0.1:8092; server_name two.example; }",
    })
    assert run_nginx(nginx, main, tmp_path).returncode == 0
    config = load(main)
    assert len(config.files) == 7
    cross_check(config, nginx=nginx, extra_args=nginx_args(tmp_path))

    (tmp_path / "conf.d" / "c.conf").write_text("# added after loading\n")  # nginx reads it, we did not
    (tmp_path / "sites enabled" / "two").write_text("server { listen 127.0.0.1:8093; }\n")
    with pytest.raises(NginxCrossCheckError) as caught:
        cross_check(config, nginx=nginx, extra_args=nginx_args(tmp_path))
    assert caught.value.missing == [f"{tmp_path}/conf.d/c.conf"]
    assert caught.value.differing == [f"{tmp_path}/sites enabled/two"]
    assert caught.value.extra == []


def test_debian_configuration_as_installed(nginx: str) -> None:
    main = Path("/etc/nginx/nginx.conf")
    if not main.exists() or os.geteuid() != 0:
        skip_or_fail("needs Debian's /etc/nginx (apt-get install nginx) and root, as nginx -T reads its logs")
    config = load(main)
    assert config.find("include")
    cross_check(config, nginx=nginx)
