"""The SA's database schema: numbered migrations, applied in order, each in one transaction.

The schema version lives in SQLite's ``PRAGMA user_version`` (0 for a new, empty file). Version
``n`` is reached by applying ``MIGRATIONS[n - 1]``; a release may append migrations but never edit
one that shipped, so that any older data directory can be brought up to date. A database whose
version is newer than this code knows is refused: an older ca_stub must not write a schema it does
not understand.

Times are stored as fixed-width UTC text (``2025-01-02T03:04:05.000006Z``, see ``_codec``), so
that SQL compares them correctly as strings; JSON columns hold wire objects (identifiers, problem
documents) exactly as ``letsencrypt.acme.messages`` writes them.

Imports: stdlib only.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterator, Sequence

__all__ = ["MIGRATIONS", "SchemaVersionError", "migrate", "schema_version", "statements"]

log = logging.getLogger(__name__)

_V1 = """
CREATE TABLE accounts (
    id INTEGER PRIMARY KEY,
    jwk TEXT NOT NULL,                       -- the public JWK as JSON
    thumbprint TEXT NOT NULL UNIQUE,         -- RFC 7638: one account per key (RFC 8555 §7.3.1)
    status TEXT NOT NULL,
    contact TEXT NOT NULL,                   -- JSON list of URLs
    terms_agreed TEXT,                       -- the terms version last agreed to
    created TEXT NOT NULL,
    eab_kid TEXT
);

CREATE TABLE orders (
    id INTEGER PRIMARY KEY,
    account_id INTEGER NOT NULL REFERENCES accounts (id),
    status TEXT NOT NULL,
    identifiers TEXT NOT NULL,               -- JSON list of identifier objects (RFC 8555 §7.1.3)
    profile TEXT NOT NULL,
    expires TEXT NOT NULL,
    created TEXT NOT NULL,
    not_before TEXT,
    not_after TEXT,
    error TEXT,                              -- problem document JSON (RFC 7807)
    certificate_serial TEXT REFERENCES certificates (serial),
    replaces TEXT                            -- RFC 9773 certificate ID
);
CREATE INDEX orders_by_account ON orders (account_id, id);
CREATE INDEX orders_by_status ON orders (status, expires);

CREATE TABLE authorizations (
    id INTEGER PRIMARY KEY,
    account_id INTEGER NOT NULL REFERENCES accounts (id),
    identifier_type TEXT NOT NULL,
    identifier_value TEXT NOT NULL,          -- without "*." (RFC 8555 §7.1.4)
    wildcard INTEGER NOT NULL,
    status TEXT NOT NULL,
    expires TEXT NOT NULL
);
CREATE INDEX authorizations_for_reuse
    ON authorizations (account_id, identifier_type, identifier_value, wildcard, status, expires);
CREATE INDEX authorizations_by_status ON authorizations (status, expires);

CREATE TABLE order_authorizations (
    order_id INTEGER NOT NULL REFERENCES orders (id),
    authorization_id INTEGER NOT NULL REFERENCES authorizations (id),
    position INTEGER NOT NULL,
    PRIMARY KEY (order_id, authorization_id)
) WITHOUT ROWID;
CREATE INDEX order_authorizations_by_authorization ON order_authorizations (authorization_id);

CREATE TABLE challenges (
    id INTEGER PRIMARY KEY,
    authorization_id INTEGER NOT NULL REFERENCES authorizations (id),
    type TEXT NOT NULL,
    status TEXT NOT NULL,
    token TEXT NOT NULL,
    validated TEXT,
    error TEXT,                              -- problem document JSON
    r TEXT,                                  -- dvsni (protocol-notes A.4)
    nonce TEXT,
    path TEXT,                               -- the client's answer: simpleHttps path, dvsni s
    s TEXT
);
CREATE INDEX challenges_by_authorization ON challenges (authorization_id, id);

CREATE TABLE certificates (
    serial TEXT PRIMARY KEY,                 -- hex, lower case
    account_id INTEGER NOT NULL REFERENCES accounts (id),
    order_id INTEGER NOT NULL REFERENCES orders (id),
    der BLOB NOT NULL,
    chains TEXT NOT NULL,                    -- JSON list of PEM issuer chains, default first
    identifiers TEXT NOT NULL,               -- JSON list of identifier objects
    not_before TEXT NOT NULL,
    not_after TEXT NOT NULL,
    issuer_id TEXT NOT NULL,
    ari_id TEXT NOT NULL UNIQUE,             -- RFC 9773 certificate ID
    revoked_at TEXT,
    revocation_reason INTEGER,               -- RFC 5280 §5.3.1 CRLReason
    replaced_by_order INTEGER REFERENCES orders (id)
);
CREATE INDEX certificates_by_order ON certificates (order_id);
CREATE INDEX certificates_revoked ON certificates (issuer_id, serial) WHERE revoked_at IS NOT NULL;
"""

MIGRATIONS: tuple[str, ...] = (_V1,)
"""``MIGRATIONS[n - 1]`` takes the schema from version ``n - 1`` to ``n``. Append only."""


class SchemaVersionError(RuntimeError):
    """The database was written by a newer ca_stub (its schema version is beyond ``MIGRATIONS``)."""


def schema_version(conn: sqlite3.Connection) -> int:
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    return int(version)


def statements(script: str) -> Iterator[str]:
    """Split a script into complete SQL statements (``sqlite3.complete_statement`` knows quoting,
    comments and trigger bodies), so that a migration runs inside our own transaction: the
    stdlib's ``executescript`` would commit first."""
    buffer = ""
    for piece in script.split(";"):
        buffer += piece + ";"
        if sqlite3.complete_statement(buffer):
            if buffer.strip(" \t\r\n;"):
                yield buffer.strip()
            buffer = ""
    if buffer.strip(" \t\r\n;"):
        raise ValueError(f"incomplete SQL statement at the end of a migration: {buffer.strip()[:80]!r}")


def migrate(conn: sqlite3.Connection, migrations: Sequence[str] = MIGRATIONS, *, name: str = "database") -> int:
    """Bring the database to ``len(migrations)``; return the version it had before.

    Each migration runs in its own ``BEGIN IMMEDIATE`` transaction and re-reads the version under
    that lock, so two processes opening one new data directory at once apply each migration once.
    ``conn`` must be in autocommit mode (``isolation_level=None``).
    """
    target = len(migrations)
    initial = schema_version(conn)
    if initial > target:
        raise SchemaVersionError(
            f"{name} has schema version {initial}, but this ca_stub knows only up to version {target}: "
            "run a newer ca_stub, or use another data directory"
        )
    for number in range(initial + 1, target + 1):
        conn.execute("BEGIN IMMEDIATE")
        try:
            if schema_version(conn) < number:  # another process may have migrated meanwhile
                for statement in statements(migrations[number - 1]):
                    conn.execute(statement)
                conn.execute(f"PRAGMA user_version = {number:d}")
                log.info("%s: migrated the schema to version %d", name, number)
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
    return initial
