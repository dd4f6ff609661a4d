"""A small Debian-shaped Apache server root and a fake ``apache2``, for the actions layer's unit tests.

The fake answers ``-v``/``-l`` (what the loader asks) and ``-t`` (configtest, failing when the root
holds a file named ``broken``); nothing listens. Real apache2 runs in
``tests/integration/test_apache_plugin.py``.
"""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

from letsencrypt.plugin_api import PluginContext

FAKE_APACHE = textwrap.dedent("""\
    #!{python}
    import os, sys
    args = sys.argv[1:]
    if "-v" in args:
        print("Server version: Apache/2.4.71 (Debian)")
    elif "-l" in args:
        print("Compiled in modules:\\n  core.c\\n  mod_so.c\\n  http_core.c\\n  mod_version.c\\n  mod_unixd.c")
    elif "-t" in args:
        root = args[args.index("-d") + 1]
        if os.path.exists(os.path.join(root, "broken")):
            print("AH00526: Syntax error on line 1 of broken", file=sys.stderr)
            sys.exit(1)
        print("Syntax OK", file=sys.stderr)
    """)

MODULES = {
    "ssl": "# Depends: setenvif mime socache_shmcb\nLoadModule ssl_module /usr/lib/apache2/modules/mod_ssl.so\n",
    "setenvif": "LoadModule setenvif_module /usr/lib/apache2/modules/mod_setenvif.so\n",
    "mime": "LoadModule mime_module /usr/lib/apache2/modules/mod_mime.so\n",
    "socache_shmcb": "LoadModule socache_shmcb_module /usr/lib/apache2/modules/mod_socache_shmcb.so\n",
    "rewrite": "LoadModule rewrite_module /usr/lib/apache2/modules/mod_rewrite.so\n",
    "headers": "LoadModule headers_module /usr/lib/apache2/modules/mod_headers.so\n",
    "alias": "LoadModule alias_module /usr/lib/apache2/modules/mod_alias.so\n",
}
ENABLED = ("mime", "alias")


class Reporter:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def info(self, message: str) -> None:
        self.lines.append(message)

    def warn(self, message: str) -> None:
        self.lines.append(message)

    def progress(self, message: str) -> None:
        self.lines.append(message)


def make_root(tmp_path: Path, *, ports: str | None = None) -> Path:
    """``apache2.conf`` including mods-enabled, ports.conf and sites-enabled, Debian style."""
    root = tmp_path / "apache2"
    for folder in ("mods-available", "mods-enabled", "sites-available", "sites-enabled"):
        (root / folder).mkdir(parents=True)
    (root / "apache2.conf").write_text(textwrap.dedent("""\
        # main configuration
        ServerRoot ROOT
        IncludeOptional mods-enabled/*.load
        IncludeOptional mods-enabled/*.conf
        Include ports.conf
        IncludeOptional sites-enabled/*.conf
        """).replace("ROOT", str(root)))
    (root / "ports.conf").write_text(ports if ports is not None else textwrap.dedent("""\
        Listen 80

        <IfModule ssl_module>
        \tListen 443
        </IfModule>
        """))
    for name, text in MODULES.items():
        (root / "mods-available" / f"{name}.load").write_text(text)
    (root / "mods-available" / "ssl.conf").write_text(
        "<IfModule mod_ssl.c>\n\tSSLRandomSeed startup builtin\n</IfModule>\n")
    for name in ENABLED:
        (root / "mods-enabled" / f"{name}.load").symlink_to(f"../mods-available/{name}.load")
    binary = tmp_path / "bin" / "apache2"
    binary.parent.mkdir()
    binary.write_text(FAKE_APACHE.format(python=sys.executable))
    binary.chmod(0o755)
    return root


def add_site(root: Path, name: str, text: str) -> Path:
    path = root / "sites-available" / name
    path.write_text(textwrap.dedent(text))
    (root / "sites-enabled" / name).symlink_to(f"../sites-available/{name}")
    return path


def context(tmp_path: Path, root: Path, *, http_port: int = 80, https_port: int = 443) -> PluginContext:
    return PluginContext(
        options={"server-root": root, "ctl": str(tmp_path / "bin" / "apache2")}, config_dir=tmp_path / "config",
        work_dir=tmp_path / "work", logs_dir=tmp_path / "logs", reporter=Reporter(), http01_port=http_port,
        https_port=https_port)


def state(root: Path) -> dict[str, object]:
    """Every path under ``root``: bytes of files, targets of links."""
    found: dict[str, object] = {}
    for path in sorted(root.rglob("*")):
        key = str(path.relative_to(root))
        if path.is_symlink():
            found[key] = ("link", str(path.readlink()))
        elif path.is_file():
            found[key] = path.read_bytes()
    return found
