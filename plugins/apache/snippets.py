"""The configuration text the plugin writes: TLS options, enhancement directives, challenge includes.

Role: pure functions from values to Apache directives, so that the installer and the authenticator
only decide *where* text goes. Directives are returned as ``(name, args)`` pairs where they are
inserted into an existing section through the tree, and as whole files where the plugin creates the
file itself (the shared TLS options, challenge includes, temporary virtual hosts).

Allowed imports: the standard library.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

__all__ = [
    "CHALLENGE_PREFIX",
    "OPTIONS_FILE_NAME",
    "STAPLING_CACHE",
    "Directive",
    "challenge_include",
    "hsts_directives",
    "quote",
    "redirect_directives",
    "redirects_all_to_https",
    "staple_directives",
    "temporary_vhost",
    "tls_options",
    "uir_directives",
]

Directive = tuple[str, tuple[str, ...]]
"""One directive as the tree holds it: its name and its arguments."""

OPTIONS_FILE_NAME = "options-ssl-apache.conf"
"""The shared TLS options file, in the server root, written once (certbot's name)."""
CHALLENGE_PREFIX = "/.well-known/acme-challenge/"
HSTS_MAX_AGE = 31536000
_MARK = "# Added by letsencrypt"

_TLS_OPTIONS = f"""\
{_MARK} --apache, once. It is not overwritten afterwards: edit it as you like.
# Mozilla's "intermediate" profile: TLS 1.2 and 1.3, forward-secret AEAD ciphers only.
SSLProtocol             all -SSLv3 -TLSv1 -TLSv1.1
SSLCipherSuite          ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:\
ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:DHE-RSA-AES128-GCM-SHA256:\
DHE-RSA-AES256-GCM-SHA384
SSLHonorCipherOrder     off
SSLSessionTickets       off
SSLOptions +StrictRequire
"""


def tls_options() -> bytes:
    """The shared TLS options file every TLS vhost we make includes."""
    return _TLS_OPTIONS.encode()


def quote(value: str) -> str:
    """An argument as Apache reads it back: bare unless it holds a blank or a quote, then double-quoted.

    Backslashes are left alone: mod_rewrite reads its arguments raw (``\\.`` stays two characters),
    so doubling them would change a regular expression.
    """
    if value and not re.search(r'[\s"\']', value):
        return value
    return '"' + value.replace('"', '\\"') + '"'


def _https_base(https_port: int) -> str:
    return "https://%{SERVER_NAME}" + ("" if https_port == 443 else f":{https_port}")


def redirect_directives(https_port: int) -> list[Directive]:
    """A permanent redirect of plain HTTP to HTTPS that cannot loop.

    ``RewriteCond %{HTTPS} !=on`` keeps it inert on a TLS connection (a vhost serving both ports, or
    a copy of it), ``[END]`` stops any later rule from rewriting again, and the challenge path stays
    reachable over plain HTTP so that later http-01 validations are answered where they arrive.
    The target keeps the requested name (``%{SERVER_NAME}``) and names the port when it is not 443.
    """
    return [
        ("RewriteEngine", ("on",)),
        ("RewriteCond", ("%{HTTPS}", "!=on")),
        ("RewriteCond", ("%{REQUEST_URI}", "!^/\\.well-known/acme-challenge/")),
        ("RewriteRule", ("^", _https_base(https_port) + "%{REQUEST_URI}", "[END,NE,R=permanent]")),
    ]


_REDIRECT_TARGET = re.compile(r"^https://", re.IGNORECASE)
_SAMPLE_PATHS = ("/", "/some/page.html?x=1")


def _matches_all(pattern: str) -> bool:
    try:
        return all(re.search(pattern, path) for path in _SAMPLE_PATHS)
    except re.error:
        return False


def redirects_all_to_https(name: str, args: Sequence[str], names: Sequence[str] | None = None) -> bool:
    """True for a directive that sends every request to https (to one of ``names``, when given).

    ``Redirect [status] / https://...`` (a prefix of every path), ``RedirectMatch [status] REGEX
    https://...`` and ``RewriteRule REGEX https://...`` whose regex matches any path. A redirect of
    some paths only (``Redirect /old https://example.com/new``) is not one. With ``names``, only a
    target on the same site counts (a host among ``names`` or taken from the request, such as
    ``%{HTTP_HOST}``): copied into the TLS vhost, that one would loop.
    """
    lowered = name.lower()
    if len(args) < 2:
        return False
    target = args[1] if lowered == "rewriterule" else args[-1]
    if not _REDIRECT_TARGET.match(target):
        return False
    if names is not None:
        host = re.split(r"[/:]", target[len("https://"):], maxsplit=1)[0].lower()
        if not (host.startswith("%{") or host in {n.lower() for n in names}):
            return False
    if lowered in ("redirect", "redirectpermanent", "redirecttemp"):
        return args[-2] == "/"
    if lowered == "redirectmatch":
        return _matches_all(args[-2])
    return lowered == "rewriterule" and _matches_all(args[0])


def hsts_directives(max_age: int = HSTS_MAX_AGE) -> list[Directive]:
    """Strict-Transport-Security on every response of the TLS vhost (mod_headers)."""
    return [("Header", ("always", "set", "Strict-Transport-Security", f"max-age={max_age}"))]


def uir_directives() -> list[Directive]:
    """Upgrade-Insecure-Requests: browsers fetch the page's http:// resources over https (mod_headers)."""
    return [("Header", ("always", "set", "Content-Security-Policy", "upgrade-insecure-requests"))]


def staple_directives() -> list[Directive]:
    """OCSP stapling in the TLS vhost; its cache (``SSLStaplingCache``) is server-wide, see below."""
    return [("SSLUseStapling", ("on",)), ("SSLStaplingReturnResponderErrors", ("off",))]


STAPLING_CACHE: Directive = ("SSLStaplingCache", ("shmcb:${APACHE_RUN_DIR}/letsencrypt_stapling(128000)",))
"""Server-wide stapling cache; ``APACHE_RUN_DIR`` is set by Debian's envvars (and by our control layer)."""


def challenge_include(directory: Path, *, rewrite: bool) -> str:
    """The temporary include that serves ``/.well-known/acme-challenge/`` from ``directory``.

    It goes first in the vhost that serves the name. The ``Alias`` maps the path to our files, the
    ``<Directory>``/``<Location>`` grant access even where the vhost denies it. A vhost that
    redirects or rewrites everything elsewhere (``rewrite``) gets a rewrite that runs before its own
    rules and before mod_alias's ``Redirect`` (mod_rewrite maps URLs first) and ends processing, so
    the challenge is answered here rather than sent elsewhere.
    """
    folder = str(directory).rstrip("/") + "/"
    lines = [
        f"{_MARK} for an ACME challenge; removed as soon as the challenge is validated",
        f"Alias {CHALLENGE_PREFIX} {quote(folder)}",
    ]
    if rewrite:
        lines += [
            "<IfModule mod_rewrite.c>",
            "    RewriteEngine on",
            f"    RewriteRule ^{re.escape(CHALLENGE_PREFIX)}([A-Za-z0-9_-]+)$ {quote(folder)}$1 [END]",
            "</IfModule>",
        ]
    lines += [
        f"<Directory {quote(folder)}>",
        "    Require all granted",
        "    Options None",
        "    AllowOverride None",
        "    ForceType text/plain",
        "    <IfModule mod_headers.c>",
        "        Header unset Content-Security-Policy",
        "    </IfModule>",
        "</Directory>",
        f"<Location {CHALLENGE_PREFIX}>",
        "    Require all granted",
        "</Location>",
        "",
    ]
    return "\n".join(lines)


def temporary_vhost(addresses: Sequence[str], server_name: str, *, include: Path | None = None,
                    certificate: tuple[Path, Path] | None = None, document_root: Path | None = None) -> str:
    """A virtual host made only for a challenge: the name, the challenge include, maybe a certificate."""
    lines = [f"{_MARK} for an ACME challenge; removed as soon as the challenge is validated",
             f"<VirtualHost {' '.join(addresses)}>", f"    ServerName {server_name}"]
    if document_root is not None:
        lines.append(f"    DocumentRoot {quote(str(document_root))}")
    if certificate is not None:
        lines += ["    SSLEngine on", f"    SSLCertificateFile {quote(str(certificate[0]))}",
                  f"    SSLCertificateKeyFile {quote(str(certificate[1]))}"]
    if include is not None:
        lines.append(f"    Include {quote(str(include))}")
    lines += ["</VirtualHost>", ""]
    return "\n".join(lines)
