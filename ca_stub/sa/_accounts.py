"""Accounts (RFC 8555 §7.1.2, §7.3): one per key, found by the key's RFC 7638 thumbprint.

Imports: stdlib, ``ca_stub.contracts``, ``ca_stub.sa``, ``letsencrypt.acme.messages``.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping, Sequence
from typing import Any

from ca_stub.contracts import AccountRecord, CAError, utcnow
from ca_stub.sa._codec import account_from_row, dump_json, encode_strings, encode_time
from ca_stub.sa._database import Database
from ca_stub.sa._queries import load_account, not_found
from letsencrypt.acme.messages import AccountStatus


def _key_in_use(holder: AccountRecord | None) -> CAError:
    """RFC 8555 §7.3.5: a key already bound to an account gets 409 (Boulder: malformed, 409), and
    the WFE points ``Location`` at the account that holds it."""
    return CAError(
        "malformed", "this key is already in use by another account", status=409,
        account_id=None if holder is None else holder.id,
    )


class AccountTable:
    _db: Database

    def add_account(
        self, jwk: Mapping[str, Any], thumbprint: str, contact: Sequence[str], terms_agreed: str | None,
        eab_kid: str | None,
    ) -> AccountRecord:
        """A new valid account; ``CAError(malformed, 409)`` naming the holder's ``account_id`` when
        the key already has one (a lost race between two newAccount requests with one key: the
        caller answers with the existing account, RFC 8555 §7.3.1)."""
        try:
            with self._db.write() as conn:
                cursor = conn.execute(
                    "INSERT INTO accounts (jwk, thumbprint, status, contact, terms_agreed, created, eab_kid)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (
                        dump_json(dict(jwk)), thumbprint, AccountStatus.VALID.value, encode_strings(contact),
                        terms_agreed, encode_time(utcnow()), eab_kid,
                    ),
                )
                row = conn.execute("SELECT * FROM accounts WHERE id = ?", (cursor.lastrowid,)).fetchone()
        except sqlite3.IntegrityError as err:
            if "accounts.thumbprint" not in str(err):
                raise
            raise _key_in_use(self.account_by_thumbprint(thumbprint)) from err
        return account_from_row(row)

    def get_account(self, account_id: int) -> AccountRecord | None:
        return load_account(self._db.connection(), account_id)

    def account_by_thumbprint(self, thumbprint: str) -> AccountRecord | None:
        row = self._db.connection().execute("SELECT * FROM accounts WHERE thumbprint = ?", (thumbprint,)).fetchone()
        return None if row is None else account_from_row(row)

    def update_account(
        self, account_id: int, *, contact: Sequence[str] | None = None, status: AccountStatus | None = None,
        terms_agreed: str | None = None, jwk: Mapping[str, Any] | None = None, thumbprint: str | None = None,
    ) -> AccountRecord:
        """Change the given fields (``None``: keep). A key change (RFC 8555 §7.3.5) passes ``jwk`` and
        ``thumbprint`` together; ``CAError(malformed, 409)`` naming the holder's ``account_id`` when
        the new key has an account; ``CAError(malformed, 404)`` for an unknown account."""
        if (jwk is None) != (thumbprint is None):
            raise ValueError("a key change sets jwk and thumbprint together")
        changes: dict[str, Any] = {
            "contact": None if contact is None else encode_strings(contact),
            "status": None if status is None else status.value,
            "terms_agreed": terms_agreed,
            "jwk": None if jwk is None else dump_json(dict(jwk)),
            "thumbprint": thumbprint,
        }
        changes = {column: value for column, value in changes.items() if value is not None}
        try:
            with self._db.write() as conn:
                if changes:
                    assignments = ", ".join(f"{column} = :{column}" for column in changes)
                    conn.execute(f"UPDATE accounts SET {assignments} WHERE id = :id", {**changes, "id": account_id})  # noqa: S608
                record = load_account(conn, account_id)
        except sqlite3.IntegrityError as err:
            if "accounts.thumbprint" not in str(err):
                raise
            raise _key_in_use(self.account_by_thumbprint(thumbprint or "")) from err
        if record is None:
            raise not_found("account", account_id)
        return record
