"""One SQLite file shared by the threads of a multi-threaded server: a connection per thread.

Why these settings:

- WAL journal: readers never block the writer nor each other, so many request threads can read
  while one commits.
- ``synchronous=FULL``: in WAL mode, ``NORMAL`` may lose the last commits on power loss or a
  kernel crash; ``FULL`` fsyncs the WAL at every commit, so a transaction is on disk before the
  RA answers a client (the durability test kills the server with SIGKILL mid-issuance).
- ``busy_timeout``: a writer waits up to this long for another writer instead of failing with
  "database is locked". Every read-modify-write starts with ``BEGIN IMMEDIATE``: a deferred
  transaction that upgrades from read to write can fail with SQLITE_BUSY at once, without
  waiting, when another connection committed in between.
- One writer lock per process: SQLite admits one writer at a time anyway, and a writer that
  finds the database locked sleeps in SQLite's busy handler by steps of 1 to 100 ms whatever the
  other writer's progress. The server's threads queue on ``_writer`` instead and each starts the
  moment the previous commit is done: under a burst of issuance this more than doubled the
  commits per second and cut the p99 wait from hundreds of milliseconds to a few commits
  (benchmarks/README.md). The busy timeout still covers other processes (e.g. ``sqlite3`` run
  by hand) and checkpoints.
- Foreign keys on: an order cannot link an authorization that does not exist.

No Python object is shared between threads except this class's immutable settings, the writer
lock, and the registry of open connections, which ``close`` alone reads (at shutdown).

Imports: stdlib only.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import threading
import weakref
from collections.abc import Iterator
from pathlib import Path

from ca_stub.sa._schema import MIGRATIONS, migrate

log = logging.getLogger(__name__)

BUSY_TIMEOUT = 10.0  # seconds


class _Connection(sqlite3.Connection):
    """A connection that the registry can hold weakly (``sqlite3.Connection`` has no ``__weakref__``)."""


class StorageClosedError(RuntimeError):
    """The storage was used after ``close()``."""


class Database:
    """Per-thread connections to one SQLite file, with short-transaction helpers."""

    def __init__(self, path: Path | str, migrations: tuple[str, ...] = MIGRATIONS) -> None:
        self.path = Path(path)
        self._local = threading.local()
        self._open: weakref.WeakSet[_Connection] = weakref.WeakSet()
        self._closed = threading.Event()
        self._writer = threading.RLock()  # re-entrant: a nested write fails in SQLite, not here
        conn = self.connection()
        conn.execute("PRAGMA journal_mode = WAL").fetchone()
        migrate(conn, migrations, name=str(self.path))

    def _connect(self) -> _Connection:
        conn = sqlite3.connect(
            self.path, timeout=BUSY_TIMEOUT, isolation_level=None, check_same_thread=False, factory=_Connection
        )
        conn.row_factory = sqlite3.Row
        conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT * 1000):d}")
        conn.execute("PRAGMA synchronous = FULL")
        conn.execute("PRAGMA foreign_keys = ON")
        self._open.add(conn)
        return conn

    def connection(self) -> sqlite3.Connection:
        """This thread's connection (autocommit mode: transactions are explicit)."""
        if self._closed.is_set():
            raise StorageClosedError(f"the storage at {self.path} is closed")
        conn: _Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = self._connect()
        return conn

    @contextlib.contextmanager
    def _transaction(self, begin: str) -> Iterator[sqlite3.Connection]:
        conn = self.connection()
        conn.execute(begin)
        try:
            yield conn
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    def read(self) -> contextlib.AbstractContextManager[sqlite3.Connection]:
        """A read transaction: several SELECTs see one snapshot."""
        return self._transaction("BEGIN DEFERRED")

    @contextlib.contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """A write transaction, holding the write lock from its first statement (see module docstring)."""
        if not self._writer.acquire(timeout=BUSY_TIMEOUT):
            raise sqlite3.OperationalError(f"database is locked: no write turn within {BUSY_TIMEOUT:g} s")
        try:
            with self._transaction("BEGIN IMMEDIATE") as conn:
                yield conn
        finally:
            self._writer.release()

    def close(self) -> None:
        """Close every thread's connection; later use raises ``StorageClosedError``."""
        self._closed.set()
        for conn in list(self._open):
            try:
                conn.close()
            except sqlite3.Error as err:  # another thread is mid-statement at shutdown
                log.warning("closing %s: %s", self.path, err)
        self._open.clear()
