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

import sys
from pathlib import Path

try:
    from integration import debian_corpus
    from integration.debian_corpus import CorpusUnavailable
except ImportError:  # run as a script, with tests/integration first on sys.path
    import debian_corpus  # type: ignore[no-redef]
    from debian_corpus import CorpusUnavailable  # type: ignore[no-redef]

__all__ = ["ESSENTIAL", "NOT_NGINX", "PACKAGES", "Corpus", "CorpusUnavailable", "assemble", "cache_dir"]

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
Corpus = debian_corpus.Corpus


def cache_dir() -> Path:
    return debian_corpus.cache_dir("LETSENCRYPT_NGINX_CORPUS", "nginx-corpus")


def assemble(cache: Path | None = None) -> Corpus:
    """Download, extract and list the corpus (downloads only what the cache lacks)."""
    return Corpus(*debian_corpus.assemble_packages(cache or cache_dir(), PACKAGES, ESSENTIAL, NOT_NGINX))


def main() -> int:
    return debian_corpus.main(__doc__, "nginx", cache_dir(), len(PACKAGES), assemble)


if __name__ == "__main__":
    sys.exit(main())
