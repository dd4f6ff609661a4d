"""Authorizations and challenges (RFC 8555 §7.1.4, §7.1.5, §7.5.1, §8), and their reuse.

Imports: stdlib, ``ca_stub.contracts``, ``ca_stub.sa``, ``letsencrypt.acme.messages``.
"""

from __future__ import annotations

import datetime
import logging

from ca_stub.contracts import AuthorizationRecord, ChallengeRecord, ValidationResult
from ca_stub.sa._codec import challenge_from_row, encode_opt_time, encode_problem, encode_time
from ca_stub.sa._database import Database
from ca_stub.sa._queries import load_authorization, load_challenge, not_found
from letsencrypt.acme.messages import AuthorizationStatus, ChallengeStatus, Identifier

log = logging.getLogger(__name__)


class AuthorizationTable:
    _db: Database

    def get_authorization(self, authorization_id: int) -> AuthorizationRecord | None:
        with self._db.read() as conn:
            return load_authorization(conn, authorization_id)

    def valid_authorization(
        self, account_id: int, identifier: Identifier, wildcard: bool, now: datetime.datetime,
        min_expiry: datetime.datetime,
    ) -> AuthorizationRecord | None:
        """A valid authorization of this account for exactly this identifier and wildcard flag that
        expires after both ``now`` and ``min_expiry`` (the latest-expiring one), for reuse in a new
        order (RFC 8555 §7.4); ``None`` when there is none."""
        with self._db.read() as conn:
            row = conn.execute(
                "SELECT id FROM authorizations WHERE account_id = ? AND identifier_type = ? AND identifier_value = ?"
                " AND wildcard = ? AND status = 'valid' AND expires > ? ORDER BY expires DESC, id DESC LIMIT 1",
                (
                    account_id, identifier.type, identifier.value, int(wildcard),
                    encode_time(max(now, min_expiry)),
                ),
            ).fetchone()
            return None if row is None else load_authorization(conn, row[0])

    def set_authorization_status(self, authorization_id: int, status: AuthorizationStatus) -> AuthorizationRecord:
        """Set the status unconditionally (deactivation, RFC 8555 §7.5.2); ``CAError(malformed, 404)``
        for an unknown authorization."""
        with self._db.write() as conn:
            conn.execute("UPDATE authorizations SET status = ? WHERE id = ?", (status.value, authorization_id))
            record = load_authorization(conn, authorization_id)
        if record is None:
            raise not_found("authorization", authorization_id)
        return record

    def get_challenge(self, challenge_id: int) -> ChallengeRecord | None:
        return load_challenge(self._db.connection(), challenge_id)

    def challenges_in_status(self, status: ChallengeStatus) -> list[ChallengeRecord]:
        """Every challenge in ``status``, oldest first: at start-up the RA resubmits to the VA the
        ones a crash left ``processing``."""
        rows = self._db.connection().execute("SELECT * FROM challenges WHERE status = ? ORDER BY id", (status.value,))
        return [challenge_from_row(row) for row in rows]

    def start_challenge(self, challenge_id: int, *, path: str | None, s: str | None) -> ChallengeRecord | None:
        """``pending`` -> ``processing`` (RFC 8555 §7.5.1), storing the client's answer (the 2015
        draft's simpleHttps ``path`` or dvsni ``s``) when given. Compare-and-set: ``None`` if the
        challenge was not pending, so one validation runs however many times the client posts.
        ``CAError(malformed, 404)`` for an unknown challenge."""
        with self._db.write() as conn:
            cursor = conn.execute(
                "UPDATE challenges SET status = 'processing', path = COALESCE(?, path), s = COALESCE(?, s)"
                " WHERE id = ? AND status = 'pending'",
                (path, s, challenge_id),
            )
            record = load_challenge(conn, challenge_id)
        if record is None:
            raise not_found("challenge", challenge_id)
        return record if cursor.rowcount == 1 else None

    def finish_challenge(
        self, result: ValidationResult, now: datetime.datetime, *, expires: datetime.datetime | None = None
    ) -> AuthorizationRecord:
        """Record the VA's result and its consequence, in one transaction (RFC 8555 §7.1.6).

        The challenge (if still pending or processing) becomes valid, with ``validated = now``, or
        invalid, with the result's error. The authorization, if still pending, follows it: valid
        (its expiry moved to ``expires`` when given: a validated authorization lives longer) or
        invalid. A deactivated or expired authorization stays so. Returns the authorization as it
        is now; ``CAError(malformed, 404)`` for an unknown one.
        """
        status = ChallengeStatus.VALID if result.valid else ChallengeStatus.INVALID
        with self._db.write() as conn:
            cursor = conn.execute(
                "UPDATE challenges SET status = ?, validated = ?, error = ?"
                " WHERE id = ? AND authorization_id = ? AND status IN ('pending', 'processing')",
                (
                    status.value, encode_time(now) if result.valid else None,
                    None if result.valid else encode_problem(result.error),
                    result.challenge_id, result.authorization_id,
                ),
            )
            if cursor.rowcount == 1:
                conn.execute(
                    "UPDATE authorizations SET status = ?, expires = COALESCE(?, expires)"
                    " WHERE id = ? AND status = 'pending'",
                    (status.value, encode_opt_time(expires) if result.valid else None, result.authorization_id),
                )
            else:
                log.warning("challenge %d already finished: result ignored", result.challenge_id)
            record = load_authorization(conn, result.authorization_id)
        if record is None:
            raise not_found("authorization", result.authorization_id)
        return record
