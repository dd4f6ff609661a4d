"""ACME accounts on disk, one folder per account and CA, in certbot's folder layout.

``accounts/<host[:port]>/<path>/<account id>/`` (see ``letsencrypt.paths.server_folder``) holds
``private_key.pem`` (the account key, PKCS#8, 0600) and ``account.json`` (the account URL, the CA,
contacts, creation time, the key's RFC 7638 thumbprint and the terms of service agreed to). Folders
are 0700. The key is written first and ``account.json`` last, each atomically, so a folder without
``account.json`` is an interrupted save: it is skipped when listing and overwritten by the next save.

The account id is certbot's: the MD5 hex digest of the public key in SubjectPublicKeyInfo PEM. It
is stable for a key, needs no server round trip, and is the same id certbot gives the same key, so
the ``account = <id>`` line of a certbot renewal configuration names the same folder here. (MD5
serves as a name, not as security.) Folders certbot wrote (``private_key.json``, ``regr.json``,
``meta.json``) are read as well, so an existing certbot configuration directory keeps its accounts.

Imports: the standard library, josepy (certbot's JWK files, imported when one is read), cryptography,
``letsencrypt.acme``, ``letsencrypt.errors``, ``letsencrypt.paths`` and the storage helpers.
"""

from __future__ import annotations

import builtins
import contextlib
import datetime
import hashlib
import json
import logging
import re
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from letsencrypt.acme import AccountKey, JWSError
from letsencrypt.acme._lazy import lazy_module
from letsencrypt.acme.records import record
from letsencrypt.errors import AccountError, StorageError
from letsencrypt.paths import Paths
from letsencrypt.storage._files import atomic_write, ensure_dir, remove_temporaries

if TYPE_CHECKING:
    from cryptography.hazmat.primitives import serialization
else:
    serialization = lazy_module("cryptography.hazmat.primitives.serialization")  # its package imports ssh

__all__ = ["AccountStore", "StoredAccount", "account_id_for"]

logger = logging.getLogger(__name__)

_KEY_FILE = "private_key.pem"
_META_FILE = "account.json"
_ACCOUNT_ID = re.compile(r"[0-9A-Za-z_-]{1,128}")
_SCHEMA_VERSION = 1


def account_id_for(key: AccountKey) -> str:
    """certbot's account id: MD5 hex of the public key's SubjectPublicKeyInfo PEM."""
    pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.md5(pem, usedforsecurity=False).hexdigest()


@record(eq=False)
class StoredAccount:
    """An account as stored: its id, its URL at the CA, its key and what we told the CA."""

    id: str
    url: str
    key: AccountKey
    contact: tuple[str, ...]
    created: datetime.datetime
    server: str
    terms_of_service: str | None = None

    @property
    def thumbprint(self) -> str:
        return self.key.thumbprint


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


class AccountStore:
    """The accounts under ``paths.accounts_dir``, per CA (``server_url`` is the directory URL)."""

    def __init__(self, paths: Paths) -> None:
        self.paths = paths

    def folder(self, server_url: str, account_id: str) -> Path:
        if not _ACCOUNT_ID.fullmatch(account_id):
            raise AccountError(f"not an account id: {account_id!r}", hint="see `letsencrypt show_account`")
        return self.paths.accounts_for(server_url) / account_id

    def save(
        self,
        server_url: str,
        account_url: str,
        key: AccountKey,
        contact: Sequence[str] = (),
        terms_agreed_url: str | None = None,
    ) -> StoredAccount:
        """Store (or update in place) the account with ``key``; its creation time is kept on update."""
        account_id = account_id_for(key)
        folder = self.folder(server_url, account_id)
        created = _now()
        with contextlib.suppress(AccountError, StorageError):
            created = self.load(server_url, account_id).created
        account = StoredAccount(
            account_id, account_url, key, tuple(contact), created, server_url, terms_agreed_url
        )
        try:
            ensure_dir(folder, 0o700)
            atomic_write(folder / _KEY_FILE, key.to_pem(), mode=0o600, label="account-key")
            atomic_write(folder / _META_FILE, _to_json(account), mode=0o600, label="account-meta")
        except OSError as err:
            raise StorageError(
                f"cannot write the account to {folder}: {err}", hint="check that --config-dir is writable"
            ) from err
        logger.info("saved account %s (%s) for %s", account_id, account_url, server_url)
        return account

    def update_contact(self, server_url: str, account_id: str, contact: Sequence[str]) -> StoredAccount:
        """Record new contacts (after ``update_account`` succeeded at the CA)."""
        account = self.load(server_url, account_id)
        return self.save(server_url, account.url, account.key, contact, account.terms_of_service)

    def load(self, server_url: str, account_id: str) -> StoredAccount:
        """The account ``account_id``; ``AccountError`` if there is none, ``StorageError`` if corrupt."""
        folder = self.folder(server_url, account_id)
        if (folder / _META_FILE).is_file():
            return _load_ours(folder, server_url)
        if (folder / "regr.json").is_file() and (folder / "private_key.json").is_file():
            return _load_certbot(folder, server_url)
        raise AccountError(
            f"there is no account {account_id} for {server_url} in {self.paths.accounts_dir}",
            hint="register one with `letsencrypt register`",
        )

    def list(self, server_url: str) -> builtins.list[StoredAccount]:
        """The usable accounts for ``server_url``, oldest first; broken folders are logged and skipped."""
        base = self.paths.accounts_for(server_url)
        if not base.is_dir():
            return []
        found: builtins.list[StoredAccount] = []
        for folder in sorted(base.iterdir()):
            if not folder.is_dir() or not _ACCOUNT_ID.fullmatch(folder.name):
                continue
            remove_temporaries(folder)
            try:
                found.append(self.load(server_url, folder.name))
            except AccountError:
                logger.debug("skipping %s: no account files (an interrupted save)", folder)
            except StorageError as err:
                logger.warning("skipping the account in %s: %s", folder, err.message)
        return sorted(found, key=lambda account: account.created)

    def delete(self, server_url: str, account_id: str) -> None:
        """Remove the account's folder (after ``unregister`` deactivated it at the CA)."""
        import shutil  # here: only removals need it (it imports bz2 and lzma)
        folder = self.folder(server_url, account_id)
        if not folder.is_dir():
            raise AccountError(f"there is no account {account_id} for {server_url}")
        try:
            shutil.rmtree(folder)
        except OSError as err:
            raise StorageError(f"cannot delete the account folder {folder}: {err}") from err
        logger.info("deleted account %s for %s", account_id, server_url)


def _to_json(account: StoredAccount) -> bytes:
    document = {
        "schema_version": _SCHEMA_VERSION,
        "url": account.url,
        "server": account.server,
        "contact": list(account.contact),
        "created": account.created.isoformat(),
        "key_thumbprint": account.thumbprint,
        "terms_of_service_agreed": account.terms_of_service,
    }
    return (json.dumps(document, indent=2) + "\n").encode("utf-8")


def _read_json(path: Path) -> dict[str, Any]:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as err:
        raise StorageError(f"cannot read {path}: {err}") from err
    if not isinstance(document, dict):
        raise StorageError(f"{path} does not hold a JSON object")
    return document


def _load_ours(folder: Path, server_url: str) -> StoredAccount:
    document = _read_json(folder / _META_FILE)
    version = document.get("schema_version")
    if not isinstance(version, int) or version > _SCHEMA_VERSION:
        raise StorageError(
            f"{folder / _META_FILE} has schema_version {version!r}; this client reads up to {_SCHEMA_VERSION}",
            hint="it was written by a newer letsencrypt; upgrade letsencrypt",
        )
    try:
        key = AccountKey.from_pem((folder / _KEY_FILE).read_bytes())
        url, created = document["url"], datetime.datetime.fromisoformat(document["created"])
        contact = tuple(str(item) for item in document.get("contact") or ())
        terms = document.get("terms_of_service_agreed")
        if not isinstance(url, str) or not (terms is None or isinstance(terms, str)):
            raise TypeError("url and terms_of_service_agreed must be strings")
    except (OSError, JWSError, KeyError, TypeError, ValueError) as err:
        raise StorageError(f"the account in {folder} is unusable: {err}") from err
    if document.get("key_thumbprint") not in (None, key.thumbprint):
        raise StorageError(f"the account key in {folder} does not match the thumbprint recorded for it")
    return StoredAccount(folder.name, url, key, contact, created, server_url, terms)


def _load_certbot(folder: Path, server_url: str) -> StoredAccount:
    """An account certbot wrote: JWK ``private_key.json``, ``regr.json`` (uri, body), ``meta.json``."""
    from josepy.errors import DeserializationError  # only for certbot's folders: not at every start
    from josepy.jwk import JWK

    registration = _read_json(folder / "regr.json")
    try:
        jwk: Any = JWK.json_loads((folder / "private_key.json").read_text(encoding="utf-8"))
        private = getattr(jwk.key, "_wrapped", jwk.key)  # josepy wraps RSA/EC keys in ComparableKey
        key = AccountKey(private)
        url = registration["uri"]
        body = registration.get("body") or {}
        contact = tuple(str(item) for item in body.get("contact") or ())
        if not isinstance(url, str):
            raise TypeError("regr.json uri is not a string")
    except (OSError, DeserializationError, KeyError, TypeError, ValueError, AttributeError, JWSError) as err:
        raise StorageError(f"the certbot account in {folder} is unusable: {err}") from err
    created = _now()
    if (folder / "meta.json").is_file():
        meta = _read_json(folder / "meta.json")
        try:
            created = datetime.datetime.fromisoformat(str(meta["creation_dt"]))
        except (KeyError, ValueError):
            logger.debug("no usable creation_dt in %s", folder / "meta.json")
    if created.tzinfo is None:
        created = created.replace(tzinfo=datetime.UTC)
    terms = body.get("terms_of_service") if isinstance(body.get("terms_of_service"), str) else None
    return StoredAccount(folder.name, url, key, contact, created, server_url, terms)
