"""Reads shared by the SA's tables, run inside a caller's transaction.

Imports: stdlib, ``ca_stub.contracts``, ``ca_stub.sa``.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from ca_stub.contracts import AccountRecord, AuthorizationRecord, CAError, ChallengeRecord, OrderRecord
from ca_stub.sa._codec import account_from_row, authorization_from_row, challenge_from_row, order_from_row


def not_found(what: str, key: object) -> CAError:
    """The refusal for a missing row: RFC 8555 has no "not found" type; Boulder answers 404 malformed."""
    return CAError("malformed", f"no {what} {key}", status=404)


def load_account(conn: sqlite3.Connection, account_id: int) -> AccountRecord | None:
    row = conn.execute("SELECT * FROM accounts WHERE id = ?", (account_id,)).fetchone()
    return None if row is None else account_from_row(row)


def load_order(conn: sqlite3.Connection, order_id: int) -> OrderRecord | None:
    row = conn.execute("SELECT * FROM orders WHERE id = ?", (order_id,)).fetchone()
    if row is None:
        return None
    links = conn.execute(
        "SELECT authorization_id FROM order_authorizations WHERE order_id = ? ORDER BY position", (order_id,)
    ).fetchall()
    return order_from_row(row, [link[0] for link in links])


def load_challenge(conn: sqlite3.Connection, challenge_id: int) -> ChallengeRecord | None:
    row = conn.execute("SELECT * FROM challenges WHERE id = ?", (challenge_id,)).fetchone()
    return None if row is None else challenge_from_row(row)


def load_authorizations(conn: sqlite3.Connection, ids: Sequence[int]) -> list[AuthorizationRecord]:
    """The authorizations with these ids, in this order (missing ids are left out)."""
    if not ids:
        return []
    marks = ",".join("?" * len(ids))
    rows = {row["id"]: row for row in conn.execute(f"SELECT * FROM authorizations WHERE id IN ({marks})", ids)}  # noqa: S608
    challenges: dict[int, list[ChallengeRecord]] = {key: [] for key in rows}
    query = f"SELECT * FROM challenges WHERE authorization_id IN ({marks}) ORDER BY id"  # noqa: S608
    for row in conn.execute(query, ids):
        challenges[row["authorization_id"]].append(challenge_from_row(row))
    return [authorization_from_row(rows[key], challenges[key]) for key in ids if key in rows]


def load_authorization(conn: sqlite3.Connection, authorization_id: int) -> AuthorizationRecord | None:
    found = load_authorizations(conn, [authorization_id])
    return found[0] if found else None
