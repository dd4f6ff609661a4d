"""Apache configuration text for the parser tests: syntax cases, and a corpus from Debian's archive.

    .venv/bin/python tests/integration/apache_corpus.py [--cache DIR]    # lists the corpus

- :data:`SYNTAX_CASES`: constructs apache2 accepts (``apache2 -t``, checked by
  test_apache_discovery.py), each of which the corrected lens must read and write back byte for
  byte; ``stock_rejects`` marks those that Augeas's own Httpd lens refuses (the reason for
  ``plugins/apache/lenses/httpd.aug``). :data:`KNOWN_GAPS`: what Apache accepts and the lens still
  rejects (rare; the run stops with the file and line). :data:`REJECTED`: what both reject.
- The corpus: the Apache configuration files Debian's packages ship, downloaded with
  ``apt-get download`` into a cache kept between runs and extracted with ``dpkg-deb -x``: apache2's
  own ``/etc/apache2`` (apache2.conf, ports.conf, every mods/conf/sites-available file), module
  packages' ``mods-available`` files, and the conf snippets and sites of web applications.

Cache: ``$LETSENCRYPT_APACHE_CORPUS`` or ``~/.cache/letsencrypt/apache-corpus``. When the archive
cannot be reached (no network, no package lists and not root), :class:`CorpusUnavailable` says so;
a package the archive no longer has is left out and named in :attr:`Corpus.missing`.
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

try:
    from integration import debian_corpus
    from integration.debian_corpus import CorpusUnavailable
except ImportError:  # run as a script, with tests/integration first on sys.path
    import debian_corpus  # type: ignore[no-redef]
    from debian_corpus import CorpusUnavailable  # type: ignore[no-redef]

__all__ = ["CASE_MODULES", "ESSENTIAL", "KNOWN_GAPS", "PACKAGES", "REJECTED", "SYNTAX_CASES", "Corpus",
           "CorpusUnavailable", "SyntaxCase", "assemble", "cache_dir"]


@dataclasses.dataclass(frozen=True)
class SyntaxCase:
    text: bytes
    stock_rejects: bool = False  # Augeas 1.14's Httpd lens fails on it
    note: str = ""


SYNTAX_CASES: dict[str, SyntaxCase] = {
    # What the corrected lens adds (each a fix in plugins/apache/lenses/httpd.aug)
    "ifversion_greater": SyntaxCase(b"<IfVersion > 2.3>\n    ServerAdmin a@example.com\n</IfVersion>\n", True,
                                    "(1) '>' as an <IfVersion> operator"),
    "ifversion_not_greater_equal": SyntaxCase(b"<IfVersion !>= 3>\n    ServerAdmin a@example.com\n</IfVersion>\n", True,
                                              "(1) '!>=' as an <IfVersion> operator"),
    "ifmodule_quotes_inside": SyntaxCase(b'<IfModule mod_rewrite.c="">\n    ServerAdmin a@example.com\n</IfModule>\n',
                                         True, "(2) certbot issues #3281, #4025"),
    "section_unclosed_quote": SyntaxCase(b'<Location ~ "/(.+)/adm>\n    # things\n    Require all granted\n'
                                         b"</Location>\n", True, "(3) augeas #428, certbot #3325"),
    "json_header_value": SyntaxCase(b'Header set NEL {"report_to":"default","max_age":31536000,'
                                    b'"include_subdomains":true}\n', True, "(4) a JSON value after '{'"),
    "empty_braces": SyntaxCase(b"Header set X-Empty {}\n", True, "(4)"),
    "continuation_as_indentation": SyntaxCase(b"ServerAdmin a@example.com\n  \\\nServerSignature Off\n", True,
                                              "(5) a line of blanks and a backslash joins the next"),
    # What the stock lens reads too, pinned here
    "latin1_comment": SyntaxCase(b"# Caf\xe9 cr\xe8me \xbd\nServerAdmin a@example.com\n", False,
                                 "bytes that are not UTF-8 (python-augeas itself would raise)"),
    "comment_after_section_line": SyntaxCase(b"<IfModule mod_headers.c> # why\n    Header set X y\n</IfModule>\n"),
    "if_expression_with_gt": SyntaxCase(b"<If \"%{HTTP_HOST} == 'a>b'\">\n    Require all granted\n</If>\n"
                                        b"<Else>\n    Require all denied\n</Else>\n"),
    "escaped_quotes": SyntaxCase(b'Header set X-Quote "a \\"b\\" c"\n'),
    "continued_directive": SyntaxCase(b"Header set X-Long \\\n    \"one two\" \\\n    early\n"),
    "continued_comment": SyntaxCase(b"# a comment that goes on \\\nServerAdmin is-commented-out\n"),
    "empty_file": SyntaxCase(b""),
    "comments_only": SyntaxCase(b"# nothing\n#\n\n   # but comments\n"),
    "no_final_newline": SyntaxCase(b"ServerAdmin a@example.com"),
    "crlf": SyntaxCase(b"<IfModule mod_headers.c>\r\n    Header set X y\r\n</IfModule>\r\n"),
    "mixed_case_close": SyntaxCase(b"<ifmodule mod_headers.c>\n    header set X y\n</IfModule>\n"),
    "tabs": SyntaxCase(b"\tHeader\tset\tX-Tab\t\"a\tb\"\n"),
    "rewrite_regexps": SyntaxCase(b"RewriteEngine On\nRewriteCond %{THE_REQUEST} ^[A-Z]{3,9}\\ /.+/trackback/?\\ HTTP/"
                                  b" [NC]\nRewriteCond ${ENV:X}%{HTTP_HOST} !=\"\"\nRewriteRule ^/(.*) "
                                  b"https://%{HTTP_HOST}/$1 [R=301,L]\n"),
    "nested_sections": SyntaxCase(b"<IfModule mod_alias.c>\n  <IfModule mod_headers.c>\n    <Location /x>\n"
                                  b"      Header set X y\n    </Location>\n  </IfModule>\n</IfModule>\n"),
    "virtual_hosts": SyntaxCase(b"<VirtualHost *:80 [::1]:80>\n    ServerName A.example.com\n"
                                b"    ServerAlias *.a.example.com www.a.*\n</VirtualHost>\n"
                                b"<VirtualHost 127.0.0.2:80>\n    ServerName b.example.com\n</VirtualHost>\n"),
}

KNOWN_GAPS: dict[str, bytes] = {
    # Apache reads these; the lens does not (the run stops with the file and line)
    "comment_backslash_at_end_of_file": b"ServerAdmin a@example.com\n# ends with a backslash\\\n",
    "backslash_blank_at_end_of_line": b"ServerAdmin a@example.com\\ \n",
    "windows_path_in_section": b"<Directory C:\\>\n    Require all granted\n</Directory>\n",
    "nested_json_value": b'Header set Report-To {"group":"g","endpoints":[{"url":"https://r.example.com"}]}\n',
}

REJECTED: dict[str, bytes] = {
    # Both apache2 -t and the lens reject these
    "blank_in_closing_tag": b"<IfModule mod_headers.c>\n    Header set X y\n</IfModule >\n",
    "byte_order_mark": b"\xef\xbb\xbfServerAdmin a@example.com\n",
}

# Modules the syntax cases need (beyond those compiled in), for apache2 -t.
CASE_MODULES = ("mpm_event", "authz_core", "headers", "rewrite", "alias")

# package -> files (globs relative to the extracted package) that are Apache configuration
PACKAGES: dict[str, tuple[str, ...]] = {
    "apache2": ("etc/apache2/apache2.conf", "etc/apache2/ports.conf", "etc/apache2/*-available/*"),
    "adminer": ("etc/apache2/conf-available/*",),
    "backuppc": ("etc/backuppc/apache.conf",),
    "cgit": ("etc/apache2/conf-available/*",),
    "davical": ("etc/apache2/sites-available/*",),
    "dokuwiki": ("usr/share/doc/dokuwiki/examples/*.conf",),
    "ganglia-webfrontend": ("etc/ganglia-webfrontend/apache.conf",),
    "gitweb": ("etc/apache2/conf-available/*",),
    "gosa": ("etc/gosa/gosa-apache.conf",),
    "icingaweb2": ("etc/apache2/conf-available/*",),
    "javascript-common": ("etc/apache2/conf-available/*",),
    "lemonldap-ng-handler": ("etc/lemonldap-ng/*apache2*", "usr/share/doc/lemonldap-ng-handler/examples/*apache2*"),
    "libapache2-mod-auth-openidc": ("etc/apache2/mods-available/*",),
    "libapache2-mod-fcgid": ("etc/apache2/mods-available/*",),
    "libapache2-mod-passenger": ("etc/apache2/mods-available/*",),
    "libapache2-mod-perl2": ("etc/apache2/mods-available/*",),
    "libapache2-mod-php8.2": ("etc/apache2/mods-available/*",),
    "libapache2-mod-security2": ("etc/apache2/mods-available/*",),
    "libapache2-mod-wsgi-py3": ("etc/apache2/mods-available/*",),
    "mailman3-web": ("etc/mailman3/apache.conf",),
    "munin": ("etc/munin/apache24.conf",),
    "nagios4-cgi": ("usr/share/nagios4/apache2.conf",),
    "php8.2-fpm": ("etc/apache2/conf-available/*",),
    "phpmyadmin": ("etc/phpmyadmin/apache.conf",),
    "python3-certbot-apache": ("usr/lib/python3/dist-packages/certbot_apache/_internal/tls_configs/*.conf",),
    "redmine": ("usr/share/doc/redmine/examples/apache2-*.conf",),
    "roundcube-core": ("etc/roundcube/apache.conf",),
    "rt5-apache2": ("etc/request-tracker5/apache2-*.conf",),
    "smokeping": ("etc/apache2/conf-available/*",),
    "sympa": ("etc/apache2/conf-available/*",),
    "zoneminder": ("etc/apache2/conf-available/*", "usr/share/doc/zoneminder/examples/apache.conf"),
}
ESSENTIAL = "apache2"


@dataclasses.dataclass(frozen=True)
class Corpus(debian_corpus.Corpus):
    @property
    def apache2_root(self) -> Path:
        """apache2's own server root as the package ships it (``etc/apache2``)."""
        return self.root / ESSENTIAL / "etc" / "apache2"


def cache_dir() -> Path:
    return debian_corpus.cache_dir("LETSENCRYPT_APACHE_CORPUS", "apache-corpus")


def assemble(cache: Path | None = None) -> Corpus:
    """Download, extract and list the corpus (downloads only what the cache lacks)."""
    return Corpus(*debian_corpus.assemble_packages(cache or cache_dir(), PACKAGES, ESSENTIAL))


def main() -> int:
    return debian_corpus.main(__doc__, "apache", cache_dir(), len(PACKAGES), assemble)


if __name__ == "__main__":
    sys.exit(main())
