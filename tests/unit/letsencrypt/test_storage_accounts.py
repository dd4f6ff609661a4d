"""Accounts on disk: certbot's folder naming and ids, modes, listing, updates, certbot's own files."""

from __future__ import annotations

import datetime
import hashlib
import json
import logging
import os
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from josepy.jwk import JWKRSA

from letsencrypt.acme import AccountKey
from letsencrypt.errors import AccountError, StorageError
from letsencrypt.paths import LETSENCRYPT_PRODUCTION, Paths
from letsencrypt.storage import AccountStore

SERVER = "https://localhost:14000/dir"


@pytest.fixture
def store(tmp_path: Path) -> AccountStore:
    return AccountStore(Paths.under(tmp_path))


def mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_save_uses_certbot_folders_ids_and_private_modes(store: AccountStore) -> None:
    key = AccountKey.generate("ec256")
    account = store.save(SERVER, "https://localhost:14000/acct/1", key, ["mailto:a@example.com"], "https://tos")
    spki = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    assert account.id == hashlib.md5(spki, usedforsecurity=False).hexdigest(), "certbot's account id"
    folder = store.paths.config_dir / "accounts" / "localhost:14000" / "dir" / account.id
    assert sorted(p.name for p in folder.iterdir()) == ["account.json", "private_key.pem"]
    assert mode(folder / "private_key.pem") == 0o600
    for directory in (folder, folder.parent, folder.parent.parent, store.paths.accounts_dir):
        assert mode(directory) == 0o700, directory
    document = json.loads((folder / "account.json").read_text())
    assert document["url"] == "https://localhost:14000/acct/1"
    assert document["key_thumbprint"] == key.thumbprint
    assert document["contact"] == ["mailto:a@example.com"]


def test_load_round_trip(store: AccountStore) -> None:
    key = AccountKey.generate("rsa2048")
    saved = store.save(SERVER, "https://ca/acct/7", key, ("mailto:x@example.com",), None)
    loaded = store.load(SERVER, saved.id)
    assert (loaded.id, loaded.url, loaded.contact, loaded.server) == (saved.id, "https://ca/acct/7",
                                                                        ("mailto:x@example.com",), SERVER)
    assert loaded.created == saved.created and loaded.created.tzinfo is not None
    assert loaded.thumbprint == key.thumbprint and loaded.terms_of_service is None
    assert loaded.key.to_pem() == key.to_pem()


def test_update_keeps_the_creation_time(store: AccountStore) -> None:
    saved = store.save(SERVER, "https://ca/acct/1", AccountKey.generate(), ["mailto:old@example.com"])
    updated = store.update_contact(SERVER, saved.id, ["mailto:new@example.com"])
    assert updated.contact == ("mailto:new@example.com",) and updated.created == saved.created
    assert store.load(SERVER, saved.id).contact == ("mailto:new@example.com",)


def test_list_per_server_oldest_first_skipping_broken(store: AccountStore, caplog: pytest.LogCaptureFixture) -> None:
    first = store.save(SERVER, "https://ca/acct/1", AccountKey.generate())
    second = store.save(SERVER, "https://ca/acct/2", AccountKey.generate("ed25519"))
    other = store.save(LETSENCRYPT_PRODUCTION, "https://le/acct/3", AccountKey.generate())
    interrupted = store.paths.accounts_for(SERVER) / "0123abcd"
    interrupted.mkdir()
    (interrupted / "private_key.pem").write_bytes(AccountKey.generate().to_pem())
    corrupt = store.paths.accounts_for(SERVER) / "ffff0000"
    corrupt.mkdir()
    (corrupt / "account.json").write_text("{not json")
    (store.paths.accounts_for(SERVER) / "README").write_text("not an account")
    with caplog.at_level(logging.WARNING):
        listed = store.list(SERVER)
    assert [account.id for account in listed] == [first.id, second.id]
    assert "ffff0000" in caplog.text and "0123abcd" not in caplog.text
    assert [account.id for account in store.list(LETSENCRYPT_PRODUCTION)] == [other.id]
    assert store.paths.accounts_for(LETSENCRYPT_PRODUCTION).relative_to(store.paths.accounts_dir) == Path(
        "acme-v02.api.letsencrypt.org/directory"
    )
    assert store.list("https://nowhere.example/directory") == []


def test_delete(store: AccountStore) -> None:
    saved = store.save(SERVER, "https://ca/acct/1", AccountKey.generate())
    store.delete(SERVER, saved.id)
    assert store.list(SERVER) == []
    with pytest.raises(AccountError):
        store.delete(SERVER, saved.id)


def test_missing_and_bad_ids(store: AccountStore) -> None:
    with pytest.raises(AccountError, match="no account") as info:
        store.load(SERVER, "0" * 32)
    assert info.value.hint and "register" in info.value.hint
    for bad in ("../../etc", "", "a/b"):
        with pytest.raises(AccountError, match="not an account id"):
            store.load(SERVER, bad)


def test_corrupt_or_newer_files_are_storage_errors(store: AccountStore) -> None:
    saved = store.save(SERVER, "https://ca/acct/1", AccountKey.generate())
    meta = store.folder(SERVER, saved.id) / "account.json"
    document = json.loads(meta.read_text())
    meta.write_text(json.dumps({**document, "key_thumbprint": "x" * 43}))
    with pytest.raises(StorageError, match="does not match the thumbprint"):
        store.load(SERVER, saved.id)
    meta.write_text(json.dumps({**document, "schema_version": 5}))
    with pytest.raises(StorageError, match="schema_version 5"):
        store.load(SERVER, saved.id)
    meta.write_text(json.dumps(document))
    (store.folder(SERVER, saved.id) / "private_key.pem").write_text("garbage")
    with pytest.raises(StorageError, match="unusable"):
        store.load(SERVER, saved.id)


def test_reads_an_account_certbot_wrote(store: AccountStore) -> None:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    key = AccountKey(private)
    spki = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    account_id = hashlib.md5(spki, usedforsecurity=False).hexdigest()
    folder = store.paths.accounts_for(LETSENCRYPT_PRODUCTION) / account_id
    folder.mkdir(parents=True)
    (folder / "private_key.json").write_text(JWKRSA(key=private).json_dumps())
    (folder / "regr.json").write_text(json.dumps(
        {"body": {"contact": ["mailto:admin@example.com"]}, "uri": "https://acme-v02.api.letsencrypt.org/acme/acct/42"}
    ))
    (folder / "meta.json").write_text(json.dumps(
        {"creation_dt": "2021-03-04T05:06:07Z", "creation_host": "web1", "register_to_eff": None}
    ))
    [account] = store.list(LETSENCRYPT_PRODUCTION)
    assert account.id == account_id
    assert account.url == "https://acme-v02.api.letsencrypt.org/acme/acct/42"
    assert account.contact == ("mailto:admin@example.com",)
    assert account.created == datetime.datetime(2021, 3, 4, 5, 6, 7, tzinfo=datetime.UTC)
    assert account.thumbprint == key.thumbprint
    updated = store.update_contact(LETSENCRYPT_PRODUCTION, account_id, ["mailto:new@example.com"])
    assert updated.id == account_id and updated.created == account.created
    assert (folder / "account.json").is_file()
