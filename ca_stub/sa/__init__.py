"""ca_stub's Storage Authority: the only code that touches the database (SQLite, WAL, versioned
schema with migrations), so that a restart on the same data directory keeps every account, order
and certificate.

Imports: stdlib (``sqlite3`` is allowed here only), ``ca_stub.contracts``, ``ca_stub.sa``,
``letsencrypt.acme``.
"""

from ca_stub.sa._database import BUSY_TIMEOUT, StorageClosedError
from ca_stub.sa._schema import MIGRATIONS, SchemaVersionError
from ca_stub.sa.storage import SQLiteStorage

__all__ = ["BUSY_TIMEOUT", "MIGRATIONS", "SQLiteStorage", "SchemaVersionError", "StorageClosedError"]
