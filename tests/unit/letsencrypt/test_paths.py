"""Paths: the OS defaults in one place, certbot's layout, per-CA folder names that cannot escape."""

from __future__ import annotations

from pathlib import Path

import pytest

from letsencrypt import paths
from letsencrypt.paths import Paths, server_folder


def test_defaults_are_certbots() -> None:
    default = Paths.default()
    assert default == Paths(Path("/etc/letsencrypt"), Path("/var/lib/letsencrypt"), Path("/var/log/letsencrypt"))
    assert paths.DEFAULT_SERVER == paths.LETSENCRYPT_PRODUCTION == "https://acme-v02.api.letsencrypt.org/directory"
    assert paths.LETSENCRYPT_STAGING == "https://acme-staging-v02.api.letsencrypt.org/directory"


def test_layout(tmp_path: Path) -> None:
    p = Paths.under(tmp_path)
    assert p.live("example.com") == tmp_path / "config/live/example.com"
    assert p.archive("example.com") == tmp_path / "config/archive/example.com"
    assert p.renewal_conf("example.com") == tmp_path / "config/renewal/example.com.conf"
    assert p.hooks_dir("deploy") == tmp_path / "config/renewal-hooks/deploy"
    assert p.lock_file == tmp_path / "config/.letsencrypt.lock"
    assert p.backups_dir == tmp_path / "work/backups"
    assert p.log_file.parent == tmp_path / "logs"
    assert p.accounts_for(paths.LETSENCRYPT_STAGING) == (
        tmp_path / "config/accounts/acme-staging-v02.api.letsencrypt.org/directory"
    )
    assert Paths(str(tmp_path), "w", "l").config_dir == tmp_path  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("url", "folder"),
    [
        ("https://acme-v02.api.letsencrypt.org/directory", "acme-v02.api.letsencrypt.org/directory"),
        ("https://localhost:14000/dir", "localhost:14000/dir"),
        ("https://[::1]:8443/acme/directory", "[::1]:8443/acme/directory"),
        ("https://ca.example", "ca.example"),
        ("https://ca.example/../../../etc/x", "ca.example/etc/x"),
        ("https://user:secret@ca.example/dir", "ca.example/dir"),
    ],
)
def test_server_folder_is_certbots_and_stays_inside(url: str, folder: str) -> None:
    assert server_folder(url) == Path(folder)


@pytest.mark.parametrize("url", ["not a url", "https:///path", "https://../dir"])
def test_server_folder_needs_a_host(url: str) -> None:
    with pytest.raises(ValueError, match="no host"):
        server_folder(url)
