"""A corpus of real nginx configuration files, assembled from what Debian's archive ships.

    .venv/bin/python tests/integration/nginx_corpus.py [--cache DIR]    # lists the corpus

Downloads (``apt-get download``, into a cache directory kept between runs) the packages below and
extracts them with ``dpkg-deb -x``; the corpus is the nginx configuration files they ship: nginx's
own (``nginx.conf``, ``sites-available/default``, snippets, ``mime.types``, charset maps, the
``*_params`` files), module loaders, the examples of nginx-doc, and the sites and snippets that
other packages ship for nginx (lemonldap-ng with Lua, mailman3, munin, searx, zabbix, zoneminder,
fcgiwrap, certbot's TLS options).

Cache: ``$LETSENCRYPT_NGINX_CORPUS`` or ``~/.cache/letsencrypt/nginx-corpus``. When the archive
cannot be reached (no network, no package lists and not root), :class:`CorpusUnavailable` says so;
a package the archive no longer has is left out and named in :attr:`Corpus.missing`.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import re
import subprocess
import sys
from pathlib import Path

# package -> files (globs relative to the extracted package) that are nginx configuration
PACKAGES: dict[str, tuple[str, ...]] = {
    "nginx-common": ("etc/nginx/**/*",),
    "nginx-doc": ("usr/share/doc/nginx/examples/*",),
    "libnginx-mod-http-echo": ("usr/share/nginx/modules-available/*.conf",),
    "libnginx-mod-http-lua": ("usr/share/nginx/modules-available/*.conf",),
    "libnginx-mod-nchan": ("usr/share/nginx/modules-available/*.conf",),
    "libnginx-mod-rtmp": ("usr/share/nginx/modules-available/*.conf",),
    "fcgiwrap": ("usr/share/doc/fcgiwrap/examples/nginx.conf",),
    "lemonldap-ng-handler": (
        "etc/lemonldap-ng/*nginx*.conf",
        "etc/nginx/sites-available/*",
        "usr/share/doc/lemonldap-ng-handler/examples/*nginx*.conf",
    ),
    "mailman3-web": ("etc/mailman3/nginx.conf",),
    "munin": ("usr/share/doc/munin/examples/nginx/munin.nginx.conf",),
    "searx": ("usr/share/doc/searx/examples/nginx/sites-available/*",),
    "zabbix-frontend-php": ("usr/share/doc/zabbix-frontend-php/examples/nginx.conf",),
    "zoneminder": ("usr/share/doc/zoneminder/examples/nginx.conf",),
    "python3-certbot-nginx": ("usr/lib/python3/dist-packages/certbot_nginx/_internal/tls_configs/*.conf",),
}
# Files the globs above match that are not nginx configuration.
NOT_NGINX = frozenset({"nginx-doc/usr/share/doc/nginx/examples/nginx_modsite"})  # a bash script
ESSENTIAL = "nginx-common"
_UNREACHABLE = re.compile(
    r"Failed to fetch|Temporary failure|Could not resolve|Could not connect|Connection failed|"
    r"Network is unreachable|Unable to connect",
    re.IGNORECASE,
)


class CorpusUnavailable(Exception):
    """Debian's archive could not be reached (or apt has no package lists); the message says why."""


@dataclasses.dataclass(frozen=True)
class Corpus:
    root: Path  # extracted packages, one directory each
    files: list[Path]
    missing: list[str]  # packages the archive did not have

    def package_of(self, path: Path) -> str:
        return path.relative_to(self.root).parts[0]


def cache_dir() -> Path:
    configured = os.environ.get("LETSENCRYPT_NGINX_CORPUS")
    return Path(configured) if configured else Path.home() / ".cache" / "letsencrypt" / "nginx-corpus"


def _download(package: str, debs: Path) -> str | None:
    """Download one package into ``debs``; None on success, else apt's error output."""
    result = subprocess.run(["apt-get", "download", "-q", package], cwd=debs, capture_output=True, text=True,
                            timeout=600, check=False)
    return None if result.returncode == 0 else (result.stderr or result.stdout).strip()


def _fetch(package: str, debs: Path, updated: list[bool]) -> Path | None:
    """The package's .deb in ``debs``, downloaded if needed; None if the archive does not have it."""
    cached = sorted(debs.glob(f"{package}_*.deb"))
    if cached:
        return cached[-1]
    error = _download(package, debs)
    if error is not None and "Unable to locate package" in error and not updated[0] and os.geteuid() == 0:
        updated[0] = True  # perhaps no package lists yet: fetch them once
        subprocess.run(["apt-get", "update", "-qq"], capture_output=True, timeout=600, check=False)
        error = _download(package, debs)
    if error is None:
        return sorted(debs.glob(f"{package}_*.deb"))[-1]
    if _UNREACHABLE.search(error) or (package == ESSENTIAL):
        raise CorpusUnavailable(f"apt-get download {package} failed: {error.splitlines()[-1] if error else '?'}")
    return None


def _extract(deb: Path, target: Path) -> None:
    stamp = target / ".extracted-from"
    if stamp.exists() and stamp.read_text() == deb.name:
        return
    target.mkdir(parents=True, exist_ok=True)
    subprocess.run(["dpkg-deb", "-x", str(deb), str(target)], check=True, capture_output=True, timeout=300)
    stamp.write_text(deb.name)


def assemble(cache: Path | None = None) -> Corpus:
    """Download, extract and list the corpus (downloads only what the cache lacks)."""
    cache = cache or cache_dir()
    debs, root = cache / "debs", cache / "root"
    debs.mkdir(parents=True, exist_ok=True)
    files: list[Path] = []
    missing: list[str] = []
    updated = [False]
    for package, patterns in PACKAGES.items():
        deb = _fetch(package, debs, updated)
        if deb is None:
            missing.append(package)
            continue
        _extract(deb, root / package)
        for pattern in patterns:
            for path in sorted((root / package).glob(pattern)):
                relative = path.relative_to(root).as_posix()
                if path.is_file() and not path.is_symlink() and relative not in NOT_NGINX:
                    files.append(path)
    return Corpus(root, files, missing)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cache", type=Path, default=None, help=f"cache directory (default {cache_dir()})")
    args = parser.parse_args()
    try:
        corpus = assemble(args.cache)
    except CorpusUnavailable as err:
        print(f"nginx corpus: skipped, Debian's archive is unreachable: {err}", file=sys.stderr)
        return 2
    for path in corpus.files:
        print(path)
    print(f"nginx corpus: {len(corpus.files)} files from {len(PACKAGES) - len(corpus.missing)} packages"
          + (f" (not in the archive: {', '.join(corpus.missing)})" if corpus.missing else ""), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
