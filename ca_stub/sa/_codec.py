"""Conversions between SQLite rows and the immutable records of ``ca_stub.contracts``.

Times: fixed-width UTC text with microseconds (``2025-01-02T03:04:05.000006Z``), so that ``<`` on
the text in SQL is ``<`` on the instants; records get aware UTC datetimes back. Naive datetimes
are refused rather than guessed at. Wire objects (identifiers, problem documents) are stored as
the JSON that ``letsencrypt.acme.messages`` writes and read back with its ``from_json``.

Imports: stdlib, ``ca_stub.contracts``, ``letsencrypt.acme.messages``.
"""

from __future__ import annotations

import datetime
import json
import sqlite3
from collections.abc import Iterable, Sequence
from typing import Any

from ca_stub.contracts import AccountRecord, AuthorizationRecord, CertificateRecord, ChallengeRecord, OrderRecord
from letsencrypt.acme.messages import (
    AccountStatus,
    AuthorizationStatus,
    ChallengeStatus,
    Identifier,
    OrderStatus,
    Problem,
)


def encode_time(value: datetime.datetime) -> str:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"naive datetime {value!r}: the SA stores only aware (UTC) times")
    return value.astimezone(datetime.UTC).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def encode_opt_time(value: datetime.datetime | None) -> str | None:
    return None if value is None else encode_time(value)


def decode_time(text: str) -> datetime.datetime:
    return datetime.datetime.fromisoformat(text.removesuffix("Z")).replace(tzinfo=datetime.UTC)


def decode_opt_time(text: str | None) -> datetime.datetime | None:
    return None if text is None else decode_time(text)


def dump_json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


def encode_identifiers(identifiers: Iterable[Identifier]) -> str:
    return dump_json([identifier.to_json() for identifier in identifiers])


def decode_identifiers(text: str) -> tuple[Identifier, ...]:
    return tuple(Identifier.from_json(item) for item in json.loads(text))


def encode_problem(problem: Problem | None) -> str | None:
    return None if problem is None else dump_json(problem.to_json())


def decode_problem(text: str | None) -> Problem | None:
    return None if text is None else Problem.from_json(json.loads(text))


def encode_strings(values: Sequence[str]) -> str:
    return dump_json(list(values))


def decode_strings(text: str) -> tuple[str, ...]:
    return tuple(str(value) for value in json.loads(text))


def account_from_row(row: sqlite3.Row) -> AccountRecord:
    return AccountRecord(
        id=row["id"],
        jwk=json.loads(row["jwk"]),
        thumbprint=row["thumbprint"],
        status=AccountStatus.parse(row["status"]),
        contact=decode_strings(row["contact"]),
        terms_agreed=row["terms_agreed"],
        created=decode_time(row["created"]),
        eab_kid=row["eab_kid"],
    )


def order_from_row(row: sqlite3.Row, authorization_ids: Sequence[int]) -> OrderRecord:
    return OrderRecord(
        id=row["id"],
        account_id=row["account_id"],
        status=OrderStatus.parse(row["status"]),
        identifiers=decode_identifiers(row["identifiers"]),
        authorization_ids=tuple(authorization_ids),
        expires=decode_time(row["expires"]),
        created=decode_time(row["created"]),
        profile=row["profile"],
        not_before=decode_opt_time(row["not_before"]),
        not_after=decode_opt_time(row["not_after"]),
        error=decode_problem(row["error"]),
        certificate_serial=row["certificate_serial"],
        replaces=row["replaces"],
    )


def challenge_from_row(row: sqlite3.Row) -> ChallengeRecord:
    return ChallengeRecord(
        id=row["id"],
        authorization_id=row["authorization_id"],
        type=row["type"],
        status=ChallengeStatus.parse(row["status"]),
        token=row["token"],
        validated=decode_opt_time(row["validated"]),
        error=decode_problem(row["error"]),
        r=row["r"],
        nonce=row["nonce"],
        path=row["path"],
        s=row["s"],
    )


def authorization_from_row(row: sqlite3.Row, challenges: Iterable[ChallengeRecord]) -> AuthorizationRecord:
    return AuthorizationRecord(
        id=row["id"],
        account_id=row["account_id"],
        identifier=Identifier(row["identifier_type"], row["identifier_value"]),
        status=AuthorizationStatus.parse(row["status"]),
        expires=decode_time(row["expires"]),
        wildcard=bool(row["wildcard"]),
        challenges=tuple(challenges),
    )


def certificate_from_row(row: sqlite3.Row) -> CertificateRecord:
    return CertificateRecord(
        serial=row["serial"],
        account_id=row["account_id"],
        order_id=row["order_id"],
        der=bytes(row["der"]),
        chains=decode_strings(row["chains"]),
        identifiers=decode_identifiers(row["identifiers"]),
        not_before=decode_time(row["not_before"]),
        not_after=decode_time(row["not_after"]),
        issuer_id=row["issuer_id"],
        ari_id=row["ari_id"],
        revoked_at=decode_opt_time(row["revoked_at"]),
        revocation_reason=row["revocation_reason"],
        replaced_by_order=row["replaced_by_order"],
    )


def certificate_params(record: CertificateRecord) -> dict[str, Any]:
    """Named parameters for inserting ``record`` (the column names of ``certificates``)."""
    return {
        "serial": record.serial.lower(),
        "account_id": record.account_id,
        "order_id": record.order_id,
        "der": record.der,
        "chains": encode_strings(record.chains),
        "identifiers": encode_identifiers(record.identifiers),
        "not_before": encode_time(record.not_before),
        "not_after": encode_time(record.not_after),
        "issuer_id": record.issuer_id,
        "ari_id": record.ari_id,
        "revoked_at": encode_opt_time(record.revoked_at),
        "revocation_reason": record.revocation_reason,
        "replaced_by_order": record.replaced_by_order,
    }
