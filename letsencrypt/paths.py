"""Where the client keeps its files: the OS defaults (the one module that names them) and the layout.

The layout is certbot's, so that a person who knows certbot finds everything where they expect it::

    <config_dir>/                     default /etc/letsencrypt
        accounts/<host[:port]>/<path>/<account id>/   one folder per account and CA (0700)
        live/<name>/{cert,chain,fullchain,privkey}.pem   what web server configurations point at
        archive/<name>/{cert,chain,fullchain,privkey}<N>.pem
        renewal/<name>.conf
        renewal-hooks/{pre,deploy,post}/
        .letsencrypt.lock
    <work_dir>/                       default /var/lib/letsencrypt (installer backups, temporary files)
    <logs_dir>/                       default /var/log/letsencrypt

The per-CA folder is named like certbot's: the directory URL's ``host[:port]`` followed by its path,
so ``https://acme-v02.api.letsencrypt.org/directory`` stores accounts under
``accounts/acme-v02.api.letsencrypt.org/directory/``. Everything else receives a ``Paths`` value;
no other module names an OS path. Imports: the standard library only.
"""

from __future__ import annotations

import urllib.parse
from pathlib import Path
from typing import Literal

from letsencrypt.acme.records import record

__all__ = [
    "DEFAULT_CONFIG_DIR",
    "DEFAULT_LOGS_DIR",
    "DEFAULT_SERVER",
    "DEFAULT_WORK_DIR",
    "LETSENCRYPT_PRODUCTION",
    "LETSENCRYPT_STAGING",
    "Paths",
    "server_folder",
]

DEFAULT_CONFIG_DIR = Path("/etc/letsencrypt")
DEFAULT_WORK_DIR = Path("/var/lib/letsencrypt")
DEFAULT_LOGS_DIR = Path("/var/log/letsencrypt")

LETSENCRYPT_PRODUCTION = "https://acme-v02.api.letsencrypt.org/directory"
LETSENCRYPT_STAGING = "https://acme-staging-v02.api.letsencrypt.org/directory"
DEFAULT_SERVER = LETSENCRYPT_PRODUCTION

HookKind = Literal["pre", "deploy", "post"]


def server_folder(server_url: str) -> Path:
    """The relative folder for a CA: ``host[:port]/path`` of its directory URL, as certbot names it.

    Empty, ``.`` and ``..`` path segments are dropped so that no URL can name a folder outside
    ``accounts/``; ``ValueError`` for a URL without a host.
    """
    parsed = urllib.parse.urlsplit(server_url)
    host = parsed.netloc.rpartition("@")[2]  # never put credentials in a folder name
    if not host or host in (".", "..") or "/" in host or "\\" in host:
        raise ValueError(f"not an ACME directory URL (no host): {server_url!r}")
    segments = [segment for segment in parsed.path.split("/") if segment not in ("", ".", "..")]
    return Path(host, *segments)


@record
class Paths:
    """The three roots (``--config-dir``, ``--work-dir``, ``--logs-dir``) and the layout under them."""

    config_dir: Path
    work_dir: Path
    logs_dir: Path

    def __post_init__(self) -> None:
        for field in ("config_dir", "work_dir", "logs_dir"):  # accept str from callers that have one
            object.__setattr__(self, field, Path(getattr(self, field)))

    @classmethod
    def default(cls) -> Paths:
        """The OS defaults, as certbot uses them."""
        return cls(DEFAULT_CONFIG_DIR, DEFAULT_WORK_DIR, DEFAULT_LOGS_DIR)

    @classmethod
    def under(cls, root: Path) -> Paths:
        """``root/config``, ``root/work`` and ``root/logs``: a self-contained tree (tests, --dry-run)."""
        return cls(root / "config", root / "work", root / "logs")

    @property
    def accounts_dir(self) -> Path:
        return self.config_dir / "accounts"

    @property
    def live_dir(self) -> Path:
        return self.config_dir / "live"

    @property
    def archive_dir(self) -> Path:
        return self.config_dir / "archive"

    @property
    def renewal_dir(self) -> Path:
        return self.config_dir / "renewal"

    @property
    def renewal_hooks_dir(self) -> Path:
        return self.config_dir / "renewal-hooks"

    @property
    def lock_file(self) -> Path:
        """The file ``ConfigLock`` holds so that two runs never share the configuration directory."""
        return self.config_dir / ".letsencrypt.lock"

    @property
    def backups_dir(self) -> Path:
        """Where installers keep their checkpoints (``rollback``)."""
        return self.work_dir / "backups"

    @property
    def log_file(self) -> Path:
        return self.logs_dir / "letsencrypt.log"

    def accounts_for(self, server_url: str) -> Path:
        """The folder holding the accounts registered with the CA at ``server_url``."""
        return self.accounts_dir / server_folder(server_url)

    def live(self, name: str) -> Path:
        return self.live_dir / name

    def archive(self, name: str) -> Path:
        return self.archive_dir / name

    def renewal_conf(self, name: str) -> Path:
        return self.renewal_dir / f"{name}.conf"

    def hooks_dir(self, kind: HookKind) -> Path:
        """``renewal-hooks/pre``, ``renewal-hooks/deploy`` or ``renewal-hooks/post``."""
        return self.renewal_hooks_dir / kind
