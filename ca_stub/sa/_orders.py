"""Orders (RFC 8555 §7.1.3, §7.4) and their links to authorizations, which orders may share.

Imports: stdlib, ``ca_stub.contracts``, ``ca_stub.sa``, ``letsencrypt.acme.messages``.
"""

from __future__ import annotations

import datetime
import sqlite3
from collections.abc import Collection, Sequence

from ca_stub.contracts import AuthorizationRecord, NewAuthorization, OrderRecord, utcnow
from ca_stub.sa._codec import encode_identifiers, encode_opt_time, encode_problem, encode_time
from ca_stub.sa._database import Database
from ca_stub.sa._queries import load_authorizations, load_order, not_found
from letsencrypt.acme.messages import AuthorizationStatus, Identifier, OrderStatus, Problem

_Link = tuple[int, str, str, bool]  # authorization id, identifier type, value as the order names it, valid


def _insert_authorization(conn: sqlite3.Connection, account_id: int, new: NewAuthorization) -> _Link:
    cursor = conn.execute(
        "INSERT INTO authorizations (account_id, identifier_type, identifier_value, wildcard, status, expires)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        (
            account_id, new.identifier.type, new.identifier.value, int(new.wildcard),
            AuthorizationStatus.PENDING.value, encode_time(new.expires),
        ),
    )
    authorization_id = cursor.lastrowid
    assert authorization_id is not None
    conn.executemany(
        "INSERT INTO challenges (authorization_id, type, status, token, r, nonce) VALUES (?, ?, 'pending', ?, ?, ?)",
        [(authorization_id, c.type, c.token, c.r, c.nonce) for c in new.challenges],
    )
    value = "*." + new.identifier.value if new.wildcard else new.identifier.value
    return authorization_id, new.identifier.type, value, False


def _reused_authorization(conn: sqlite3.Connection, account_id: int, authorization_id: int) -> _Link:
    row = conn.execute(
        "SELECT account_id, identifier_type, identifier_value, wildcard, status FROM authorizations WHERE id = ?",
        (authorization_id,),
    ).fetchone()
    if row is None or row["account_id"] != account_id:
        raise ValueError(f"authorization {authorization_id} is not one of account {account_id}'s")
    value = "*." + row["identifier_value"] if row["wildcard"] else row["identifier_value"]
    return authorization_id, row["identifier_type"], value, row["status"] == AuthorizationStatus.VALID.value


class OrderTable:
    _db: Database

    def add_order(
        self, account_id: int, identifiers: Sequence[Identifier], *, profile: str, expires: datetime.datetime,
        not_before: datetime.datetime | None, not_after: datetime.datetime | None, replaces: str | None,
        reused_authorization_ids: Sequence[int], new_authorizations: Sequence[NewAuthorization],
    ) -> OrderRecord:
        """Create the order, its new authorizations with their challenges, and its links to reused
        authorizations (RFC 8555 §7.4: the server may reuse valid ones), in one transaction.

        The order's authorizations follow the order of ``identifiers`` (a wildcard identifier
        ``*.example.com`` matches the authorization for ``example.com`` with ``wildcard``). The order
        starts ``ready`` when every authorization is a reused valid one (§7.1.6), else ``pending``.
        ``ValueError`` (nothing stored) for a reused id that is not this account's authorization.
        """
        with self._db.write() as conn:
            cursor = conn.execute(
                "INSERT INTO orders (account_id, status, identifiers, profile, expires, created, not_before,"
                " not_after, replaces) VALUES (?, 'pending', ?, ?, ?, ?, ?, ?, ?)",
                (
                    account_id, encode_identifiers(identifiers), profile, encode_time(expires),
                    encode_time(utcnow()), encode_opt_time(not_before), encode_opt_time(not_after), replaces,
                ),
            )
            order_id = cursor.lastrowid
            assert order_id is not None
            reused = [_reused_authorization(conn, account_id, i) for i in dict.fromkeys(reused_authorization_ids)]
            links = reused + [_insert_authorization(conn, account_id, new) for new in new_authorizations]
            wanted = {(identifier.type, identifier.value): index for index, identifier in enumerate(identifiers)}
            conn.executemany(
                "INSERT INTO order_authorizations (order_id, authorization_id, position) VALUES (?, ?, ?)",
                [
                    (order_id, link[0], wanted.get((link[1], link[2]), len(identifiers) + index))
                    for index, link in enumerate(links)
                ],
            )
            if links and all(link[3] for link in links):
                conn.execute("UPDATE orders SET status = 'ready' WHERE id = ?", (order_id,))
            record = load_order(conn, order_id)
        assert record is not None
        return record

    def get_order(self, order_id: int) -> OrderRecord | None:
        with self._db.read() as conn:
            return load_order(conn, order_id)

    def orders_of(
        self, account_id: int, *, offset: int, limit: int, statuses: Collection[OrderStatus] | None = None
    ) -> tuple[list[int], bool]:
        """One page of the account's order ids, oldest first (RFC 8555 §7.1.2.1), and whether more
        follow; ``statuses`` keeps only orders in those (the RFC: pending ones SHOULD be listed)."""
        query = "SELECT id FROM orders WHERE account_id = ?"
        params: list[object] = [account_id]
        if statuses is not None:
            query += f" AND status IN ({','.join('?' * len(statuses))})"
            params += [status.value for status in statuses]
        rows = self._db.connection().execute(f"{query} ORDER BY id LIMIT ? OFFSET ?", [*params, limit + 1, offset])
        ids = [row[0] for row in rows]
        return ids[:limit], len(ids) > limit

    def set_order_status(
        self, order_id: int, status: OrderStatus, *, expect: OrderStatus | None = None,
        error: Problem | None = None, certificate_serial: str | None = None,
    ) -> OrderRecord | None:
        """Set the status (and the error or certificate when given). With ``expect``, compare-and-set:
        ``None`` when the order was not in that status, e.g. a second finalize (ready -> processing).
        ``CAError(malformed, 404)`` for an unknown order."""
        with self._db.write() as conn:
            cursor = conn.execute(
                "UPDATE orders SET status = ?, error = COALESCE(?, error),"
                " certificate_serial = COALESCE(?, certificate_serial) WHERE id = ? AND (? IS NULL OR status = ?)",
                (
                    status.value, encode_problem(error), certificate_serial, order_id,
                    None if expect is None else expect.value, None if expect is None else expect.value,
                ),
            )
            record = load_order(conn, order_id)
        if record is None:
            raise not_found("order", order_id)
        return record if cursor.rowcount == 1 else None

    def orders_in_status(self, status: OrderStatus) -> list[OrderRecord]:
        """Every order in ``status``, oldest first: at start-up the RA finds orders a crash left
        ``processing`` (RFC 8555 §7.1.6: none may stay half-finalized)."""
        with self._db.read() as conn:
            rows = conn.execute("SELECT id FROM orders WHERE status = ? ORDER BY id", (status.value,)).fetchall()
            ids = [row[0] for row in rows]
            return [order for order in (load_order(conn, order_id) for order_id in ids) if order is not None]

    def authorizations_of_order(self, order_id: int) -> list[AuthorizationRecord]:
        """The order's authorizations with their challenges, in the order's order (empty if no order)."""
        with self._db.read() as conn:
            order = load_order(conn, order_id)
            return [] if order is None else load_authorizations(conn, order.authorization_ids)
