"""SQLiteStorage on disk: connection settings, schema migrations, persistence and crash safety."""

from __future__ import annotations

import datetime
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from ca_stub.contracts import CertificateRecord, NewAuthorization, NewChallenge
from ca_stub.sa import MIGRATIONS, SchemaVersionError, SQLiteStorage
from ca_stub.sa._database import Database
from ca_stub.sa._schema import migrate, schema_version, statements
from letsencrypt.acme.messages import Identifier, OrderStatus

NOW = datetime.datetime(2030, 1, 2, 3, 4, 5, tzinfo=datetime.UTC)
REPO = Path(__file__).resolve().parents[3]


def _version(path: Path) -> int:
    with sqlite3.connect(path) as conn:
        return int(conn.execute("PRAGMA user_version").fetchone()[0])


def _fill(storage: SQLiteStorage) -> tuple[int, int, str]:
    account = storage.add_account({"kty": "EC"}, "thumb", ["mailto:a@example.com"], "v1", None)
    order = storage.add_order(
        account.id, [Identifier.dns("a.example.com")], profile="classic", expires=NOW, not_before=None,
        not_after=None, replaces=None, reused_authorization_ids=[],
        new_authorizations=[NewAuthorization(Identifier.dns("a.example.com"), False, NOW,
                                             (NewChallenge("http-01", "tok"),))],
    )
    storage.set_order_status(order.id, OrderStatus.PROCESSING)
    storage.finish_order(order.id, CertificateRecord(
        serial="abcd", account_id=account.id, order_id=order.id, der=b"\x30\x00", chains=("chain",),
        identifiers=order.identifiers, not_before=NOW, not_after=NOW, issuer_id="r1", ari_id="aki.abcd",
    ))
    return account.id, order.id, "abcd"


def test_connection_settings(tmp_path: Path) -> None:
    database = Database(tmp_path / "ca.sqlite")
    conn = database.connection()
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    assert conn.execute("PRAGMA busy_timeout").fetchone()[0] == 10_000
    assert database.connection() is conn  # one per thread
    database.close()


def test_foreign_keys_are_enforced(tmp_path: Path) -> None:
    database = Database(tmp_path / "ca.sqlite")
    with pytest.raises(sqlite3.IntegrityError), database.write() as conn:
        conn.execute("INSERT INTO order_authorizations VALUES (1, 1, 0)")
    database.close()


def test_everything_survives_a_reopen(tmp_path: Path) -> None:
    path = tmp_path / "ca.sqlite"
    with SQLiteStorage(path) as storage:
        account_id, order_id, serial = _fill(storage)
        before = (storage.get_account(account_id), storage.get_order(order_id),
                  storage.authorizations_of_order(order_id), storage.get_certificate(serial), storage.counts())
    with SQLiteStorage(path) as storage:
        after = (storage.get_account(account_id), storage.get_order(order_id),
                 storage.authorizations_of_order(order_id), storage.get_certificate(serial), storage.counts())
    assert after == before
    assert before[1] is not None and before[1].status is OrderStatus.VALID


def test_empty_file_is_migrated_to_the_latest_version(tmp_path: Path) -> None:
    path = tmp_path / "ca.sqlite"
    path.touch()  # version 0: an empty SQLite database
    with SQLiteStorage(path) as storage:
        assert storage.counts()["accounts"] == 0
    assert _version(path) == len(MIGRATIONS) >= 1


def test_future_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "ca.sqlite"
    with sqlite3.connect(path) as conn:
        conn.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 1}")
    with pytest.raises(SchemaVersionError, match=rf"schema version {len(MIGRATIONS) + 1}.*newer ca_stub"):
        SQLiteStorage(path)


def test_older_database_is_migrated_in_order(tmp_path: Path) -> None:
    path = tmp_path / "ca.sqlite"
    with SQLiteStorage(path) as storage:
        account_id, _, _ = _fill(storage)
    later = (*MIGRATIONS, "ALTER TABLE accounts ADD COLUMN note TEXT; UPDATE accounts SET note = 'migrated';")
    conn = sqlite3.connect(path, isolation_level=None)
    assert migrate(conn, later) == len(MIGRATIONS)
    assert schema_version(conn) == len(later)
    assert conn.execute("SELECT note FROM accounts WHERE id = ?", (account_id,)).fetchone() == ("migrated",)
    assert migrate(conn, later) == len(later)  # nothing left to do
    conn.close()


def test_failed_migration_changes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "ca.sqlite"
    SQLiteStorage(path).close()
    broken = (*MIGRATIONS, "CREATE TABLE extra (x INTEGER); INSERT INTO nowhere VALUES (1);")
    conn = sqlite3.connect(path, isolation_level=None)
    with pytest.raises(sqlite3.OperationalError, match="nowhere"):
        migrate(conn, broken)
    assert schema_version(conn) == len(MIGRATIONS)
    assert conn.execute("SELECT name FROM sqlite_master WHERE name = 'extra'").fetchone() is None
    conn.close()


def test_statement_splitting() -> None:
    script = "CREATE TABLE t (x TEXT DEFAULT 'a;b'); -- c;\nINSERT INTO t VALUES ('1;2');\n;"
    assert list(statements(script)) == [
        "CREATE TABLE t (x TEXT DEFAULT 'a;b');",
        "-- c;\nINSERT INTO t VALUES ('1;2');",
    ]
    with pytest.raises(ValueError, match="incomplete"):
        list(statements("SELECT 'unterminated;"))


_WRITER = textwrap.dedent(
    """
    import datetime, sys
    from ca_stub.contracts import NewAuthorization, NewChallenge
    from ca_stub.sa import SQLiteStorage
    from letsencrypt.acme.messages import Identifier
    storage = SQLiteStorage(sys.argv[1])
    account = storage.add_account({"kty": "EC"}, "thumb", [], None, None)
    expires = datetime.datetime(2030, 1, 1, tzinfo=datetime.UTC)
    for i in range(100000):
        name = Identifier.dns(f"{i}.example.com")
        order = storage.add_order(
            account.id, [name], profile="classic", expires=expires, not_before=None, not_after=None,
            replaces=None, reused_authorization_ids=[],
            new_authorizations=[NewAuthorization(name, False, expires, (NewChallenge("http-01", str(i)),))],
        )
        print(order.id, flush=True)  # answered: from here on the order must survive
    """
)


def test_committed_orders_survive_sigkill(tmp_path: Path) -> None:
    """Every order the writer reported before SIGKILL is on disk, with its authorizations."""
    path = tmp_path / "ca.sqlite"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    writer = subprocess.Popen([sys.executable, "-c", _WRITER, str(path)], stdout=subprocess.PIPE, text=True, env=env)
    assert writer.stdout is not None
    answered = [int(writer.stdout.readline()) for _ in range(30)]
    writer.send_signal(signal.SIGKILL)
    answered += [int(line) for line in writer.stdout.read().split()]
    writer.wait()
    with SQLiteStorage(path) as storage:
        for order_id in answered:
            order = storage.get_order(order_id)
            assert order is not None and len(storage.authorizations_of_order(order_id)) == 1
        counts = storage.counts()
        assert counts["orders"] == counts["authorizations"] == counts["challenges"] >= len(answered)
