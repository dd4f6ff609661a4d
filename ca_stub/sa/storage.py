"""``SQLiteStorage``: the Storage Authority over one SQLite file (WAL, versioned schema).

Each method is one short transaction on the calling thread's own connection (see ``_database``);
records come back as the frozen dataclasses of ``ca_stub.contracts``. Compare-and-set methods
(``set_order_status`` with ``expect``, ``start_challenge``, ``finish_order``, ``mark_replaced``,
``revoke_certificate``) are the RA's race guards: of two threads racing, exactly one wins.

Refusals the RA may pass on are ``CAError``: ``malformed`` with status 404 for an unknown row the
caller named, 409 for a key already bound to an account. Programming errors raise ``ValueError``.

Imports: stdlib, ``ca_stub.contracts``, ``ca_stub.sa``.
"""

from __future__ import annotations

import datetime
from pathlib import Path
from types import TracebackType

from ca_stub.contracts import StorageAuthority
from ca_stub.sa._accounts import AccountTable
from ca_stub.sa._authorizations import AuthorizationTable
from ca_stub.sa._certificates import CertificateTable
from ca_stub.sa._codec import encode_time
from ca_stub.sa._database import Database
from ca_stub.sa._orders import OrderTable
from ca_stub.sa._schema import MIGRATIONS

TABLES = ("accounts", "orders", "authorizations", "order_authorizations", "challenges", "certificates")


class SQLiteStorage(AccountTable, OrderTable, AuthorizationTable, CertificateTable):
    """All of ca_stub's state in the SQLite file at ``path`` (created and migrated when needed).

    Safe to share between the threads of a server; ``close`` it once at shutdown. Raises
    ``SchemaVersionError`` when the file was written by a newer ca_stub.
    """

    def __init__(self, path: Path | str) -> None:
        self._db = Database(path, MIGRATIONS)

    @property
    def path(self) -> Path:
        return self._db.path

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> SQLiteStorage:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def expire_stale(self, now: datetime.datetime) -> tuple[int, int]:
        """Apply expiry (RFC 8555 §7.1.6): pending and valid authorizations past ``expires`` become
        ``expired``, pending and ready orders past ``expires`` become ``invalid``; orders being
        finalized (``processing``) are left to finish. Returns (authorizations, orders) changed."""
        stamp = encode_time(now)
        with self._db.write() as conn:
            authorizations = conn.execute(
                "UPDATE authorizations SET status = 'expired' WHERE status IN ('pending', 'valid') AND expires <= ?",
                (stamp,),
            ).rowcount
            orders = conn.execute(
                "UPDATE orders SET status = 'invalid' WHERE status IN ('pending', 'ready') AND expires <= ?", (stamp,)
            ).rowcount
        return authorizations, orders

    def counts(self) -> dict[str, int]:
        """Rows per table, in one snapshot: tests check that a refused request changed nothing."""
        with self._db.read() as conn:
            return {table: conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0] for table in TABLES}  # noqa: S608


_: type[StorageAuthority] = SQLiteStorage
