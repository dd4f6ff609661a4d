"""Certificates: issuance records, revocation (RFC 8555 §7.6, RFC 5280 CRLs, RFC 6960 OCSP) and
renewal information (RFC 9773 ``replaces``).

Imports: stdlib, ``ca_stub.contracts``, ``ca_stub.sa``.
"""

from __future__ import annotations

import datetime

from ca_stub.contracts import CertificateRecord, OrderRecord
from ca_stub.sa._codec import certificate_from_row, certificate_params, encode_time
from ca_stub.sa._database import Database
from ca_stub.sa._queries import load_order, not_found

_INSERT = (
    "INSERT INTO certificates (serial, account_id, order_id, der, chains, identifiers, not_before, not_after,"
    " issuer_id, ari_id, revoked_at, revocation_reason, replaced_by_order) VALUES (:serial, :account_id,"
    " :order_id, :der, :chains, :identifiers, :not_before, :not_after, :issuer_id, :ari_id, :revoked_at,"
    " :revocation_reason, :replaced_by_order)"
)


class CertificateTable:
    _db: Database

    def add_certificate(self, record: CertificateRecord) -> None:
        with self._db.write() as conn:
            conn.execute(_INSERT, certificate_params(record))

    def finish_order(self, order_id: int, certificate: CertificateRecord) -> OrderRecord | None:
        """Store the certificate and move the order ``processing`` -> ``valid`` with it, in one
        transaction (RFC 8555 §7.4), so that a crash leaves either both or neither. Compare-and-set:
        ``None`` (and nothing stored) when the order was not processing.
        ``CAError(malformed, 404)`` for an unknown order."""
        with self._db.write() as conn:
            cursor = conn.execute(
                "UPDATE orders SET status = 'valid' WHERE id = ? AND status = 'processing'", (order_id,)
            )
            if cursor.rowcount == 1:  # the certificate row first: orders.certificate_serial references it
                conn.execute(_INSERT, certificate_params(certificate))
                conn.execute(
                    "UPDATE orders SET certificate_serial = ? WHERE id = ?", (certificate.serial.lower(), order_id)
                )
            record = load_order(conn, order_id)
        if record is None:
            raise not_found("order", order_id)
        return record if cursor.rowcount == 1 else None

    def get_certificate(self, serial: str) -> CertificateRecord | None:
        row = self._db.connection().execute(
            "SELECT * FROM certificates WHERE serial = ?", (serial.lower(),)
        ).fetchone()
        return None if row is None else certificate_from_row(row)

    def certificate_of_order(self, order_id: int) -> CertificateRecord | None:
        """The certificate issued for the order (finalized, RFC 8555 §7.4), if any."""
        row = self._db.connection().execute("SELECT * FROM certificates WHERE order_id = ?", (order_id,)).fetchone()
        return None if row is None else certificate_from_row(row)

    def certificate_by_ari_id(self, ari_id: str) -> CertificateRecord | None:
        row = self._db.connection().execute("SELECT * FROM certificates WHERE ari_id = ?", (ari_id,)).fetchone()
        return None if row is None else certificate_from_row(row)

    def revoke_certificate(self, serial: str, reason: int, when: datetime.datetime) -> bool:
        """Mark revoked (RFC 8555 §7.6); ``False`` when it already was (the first reason stands),
        ``CAError(malformed, 404)`` for an unknown serial."""
        with self._db.write() as conn:
            cursor = conn.execute(
                "UPDATE certificates SET revoked_at = ?, revocation_reason = ? WHERE serial = ? AND revoked_at IS NULL",
                (encode_time(when), reason, serial.lower()),
            )
            known = cursor.rowcount == 1 or conn.execute(
                "SELECT 1 FROM certificates WHERE serial = ?", (serial.lower(),)
            ).fetchone() is not None
        if not known:
            raise not_found("certificate", serial)
        return cursor.rowcount == 1

    def revoked_certificates(self, issuer_id: str) -> list[CertificateRecord]:
        """Every revoked certificate that ``issuer_id`` signed, by serial, for its CRL (RFC 5280 §5)."""
        rows = self._db.connection().execute(
            "SELECT * FROM certificates WHERE issuer_id = ? AND revoked_at IS NOT NULL ORDER BY serial", (issuer_id,)
        )
        return [certificate_from_row(row) for row in rows]

    def mark_replaced(self, ari_id: str, order_id: int) -> bool:
        """Record that ``order_id`` replaces the certificate (RFC 9773 §5): ``True`` when no other
        order replaces it already; an earlier replacing order that became invalid does not count,
        so a client may try again after a failed renewal. ``CAError(malformed, 404)`` for an
        unknown certificate."""
        with self._db.write() as conn:
            cursor = conn.execute(
                "UPDATE certificates SET replaced_by_order = :order WHERE ari_id = :ari AND (replaced_by_order IS NULL"
                " OR replaced_by_order = :order"
                " OR replaced_by_order IN (SELECT id FROM orders WHERE status = 'invalid'))",
                {"order": order_id, "ari": ari_id},
            )
            known = cursor.rowcount == 1 or conn.execute(
                "SELECT 1 FROM certificates WHERE ari_id = ?", (ari_id,)
            ).fetchone() is not None
        if not known:
            raise not_found("certificate", ari_id)
        return cursor.rowcount == 1
