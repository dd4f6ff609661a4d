"""The interfaces between ca_stub's components, and the immutable records they exchange.

Split as Boulder was in 2015 (protocol-notes B.11)::

    WFE ──> RA ──> SA   (the only code that touches the database)
             ├───> PA   (policy: identifiers, challenges offered, profiles)
             ├───> VA ──(report)──> RA   (validation over the network, concurrent)
             └───> CA   (signing, chains, OCSP, CRL)

A component imports only this module, ``letsencrypt.acme`` and itself; ``ca_stub.server`` is the
one place that names concrete classes and wires them together. Everything crossing a boundary
is a frozen dataclass defined here (wire objects of ``letsencrypt.acme.messages`` are reused
where the RFC object is exactly what travels), so a component could move behind a process
boundary without touching the others.

Errors: components raise ``CAError`` carrying an RFC 8555 problem type; only the WFE turns it
into a problem document.
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
from collections.abc import Callable, Collection, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

from letsencrypt.acme.messages import (
    AccountStatus,
    AuthorizationStatus,
    ChallengeStatus,
    Identifier,
    OrderStatus,
    Problem,
)

__all__ = [
    "CA_MANIFEST_NAME",
    "CA_MANIFEST_VERSION",
    "AccountRecord",
    "AuthorizationRecord",
    "CAError",
    "CAManifest",
    "CertificateAuthority",
    "CertificateRecord",
    "ChallengeRecord",
    "IssuedCertificate",
    "ManifestIssuer",
    "ManifestRoot",
    "OrderRecord",
    "PolicyAuthority",
    "Profile",
    "RegistrationAuthority",
    "StorageAuthority",
    "TermsOfService",
    "ValidationAuthority",
    "ValidationReporter",
    "ValidationRequest",
    "ValidationResult",
]


class CAError(Exception):
    """A request the CA refuses; ``problem_type`` is the RFC 8555 error type (without the URN prefix)."""

    def __init__(
        self,
        problem_type: str,
        detail: str,
        *,
        status: int = 400,
        subproblems: Sequence[Problem] = (),
        headers: Mapping[str, str] | None = None,
        links: Sequence[tuple[str, str]] = (),
        account_id: int | None = None,
        instance: str | None = None,
    ) -> None:
        self.problem_type = problem_type
        self.detail = detail
        self.status = status
        self.subproblems = tuple(subproblems)
        self.headers = dict(headers or {})
        self.links = tuple(links)  # (url, rel), e.g. the terms for userActionRequired
        # The account a 409 conflict points at (keyChange to a key in use, RFC 8555 §7.3.5):
        # the WFE answers with its URL in ``Location``.
        self.account_id = account_id
        self.instance = instance  # userActionRequired: the page the user must visit (RFC 8555 §7.3.3)
        super().__init__(f"{problem_type}: {detail}")

    def problem(self) -> Problem:
        return Problem.acme(
            self.problem_type, self.detail, self.status, subproblems=self.subproblems, instance=self.instance
        )


def utcnow() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


@dataclasses.dataclass(frozen=True, slots=True)
class TermsOfService:
    """The terms document (directory ``meta.termsOfService``, RFC 8555 §7.1.1) and its version.

    ``version`` is a string or a callable giving the current one (e.g. a hash of the served file),
    so that a changed document is seen without a restart: accounts that agreed to another version
    get ``userActionRequired`` (RFC 8555 §7.3.3) until they agree again.
    """

    url: str
    version: str | Callable[[], str]

    def current_version(self) -> str:
        return self.version() if callable(self.version) else self.version

    @classmethod
    def from_file(cls, url: str, path: Path) -> TermsOfService:
        """Terms served from ``path``; the version is the SHA-256 of the file, so editing the
        document makes it a new version (an unreadable file reads as version "").

        Every signed request asks for the version: the file is only ``stat``-ed then, and read and
        hashed again when its inode, size, modification or change time differ from the last read.
        """
        last: list[tuple[tuple[int, int, int, int], str]] = []  # at most one (stat key, hash)

        def version() -> str:
            try:
                info = path.stat()
                key = (info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns)
                if last and last[0][0] == key:
                    return last[0][1]
                digest = hashlib.sha256(path.read_bytes()).hexdigest()
            except OSError:
                return ""
            last[:] = [(key, digest)]  # one slice assignment: other threads see the old or the new pair
            return digest

        return cls(url, version)


# --- records (what the SA stores) --------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class AccountRecord:
    id: int
    jwk: Mapping[str, Any]  # the public JWK, as sent
    thumbprint: str  # RFC 7638, unique: one account per key
    status: AccountStatus
    contact: tuple[str, ...]
    terms_agreed: str | None  # the terms version the account last agreed to (None: never)
    created: datetime.datetime
    eab_kid: str | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class ChallengeRecord:
    id: int
    authorization_id: int
    type: str  # "http-01", "dns-01", "tls-alpn-01", "simpleHttps", "dvsni"
    status: ChallengeStatus
    token: str
    validated: datetime.datetime | None = None
    error: Problem | None = None
    # dvsni (protocol-notes A.4): R and N from the CA; S from the client's answer.
    r: str | None = None
    nonce: str | None = None
    # the client's answer: simpleHttps path, dvsni s
    path: str | None = None
    s: str | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class AuthorizationRecord:
    id: int
    account_id: int
    identifier: Identifier
    status: AuthorizationStatus
    expires: datetime.datetime
    wildcard: bool
    challenges: tuple[ChallengeRecord, ...]


@dataclasses.dataclass(frozen=True, slots=True)
class OrderRecord:
    id: int
    account_id: int
    status: OrderStatus
    identifiers: tuple[Identifier, ...]
    authorization_ids: tuple[int, ...]
    expires: datetime.datetime
    created: datetime.datetime
    profile: str
    not_before: datetime.datetime | None = None
    not_after: datetime.datetime | None = None
    error: Problem | None = None
    certificate_serial: str | None = None  # hex, lower case
    replaces: str | None = None  # ARI certificate ID (RFC 9773)


@dataclasses.dataclass(frozen=True, slots=True)
class CertificateRecord:
    serial: str  # hex, lower case
    account_id: int
    order_id: int
    der: bytes
    chains: tuple[str, ...]  # PEM issuer chains (default first), the leaf not included
    identifiers: tuple[Identifier, ...]
    not_before: datetime.datetime
    not_after: datetime.datetime
    issuer_id: str  # which intermediate signed it
    ari_id: str  # RFC 9773 certificate ID
    revoked_at: datetime.datetime | None = None
    revocation_reason: int | None = None
    replaced_by_order: int | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class Profile:
    """A certificate profile (profiles draft): the name a client asks for and what it yields."""

    name: str
    description: str
    validity: datetime.timedelta
    authorization_reuse: datetime.timedelta
    identifier_types: frozenset[str] = frozenset({"dns", "ip"})
    common_name: bool = True


@dataclasses.dataclass(frozen=True, slots=True)
class IssuedCertificate:
    serial: str
    der: bytes
    chains: tuple[str, ...]  # PEM issuer chains, default first (alternate chains after)
    issuer_id: str
    not_before: datetime.datetime
    not_after: datetime.datetime


@dataclasses.dataclass(frozen=True, slots=True)
class ValidationRequest:
    """What the VA needs to check one challenge, and nothing of the RA's state."""

    challenge_id: int
    authorization_id: int
    identifier: Identifier
    type: str
    token: str
    key_authorization: str  # token "." thumbprint of the account key (RFC 8555 §8.1)
    account_jwk: Mapping[str, Any]  # dvsni checks the certificate key is the account key
    r: str | None = None
    nonce: str | None = None
    path: str | None = None
    s: str | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class ValidationResult:
    challenge_id: int
    authorization_id: int
    valid: bool
    error: Problem | None = None  # why not, naming what was fetched and what was found
    records: tuple[str, ...] = ()  # what was contacted (URL, address), for the logs


# --- component interfaces -----------------------------------------------------------------------


class StorageAuthority(Protocol):
    """All persistent state. Each method is one short transaction; records come back immutable."""

    def add_account(
        self, jwk: Mapping[str, Any], thumbprint: str, contact: Sequence[str], terms_agreed: str | None,
        eab_kid: str | None,
    ) -> AccountRecord: ...
    def get_account(self, account_id: int) -> AccountRecord | None: ...
    def account_by_thumbprint(self, thumbprint: str) -> AccountRecord | None: ...
    def update_account(
        self, account_id: int, *, contact: Sequence[str] | None = None, status: AccountStatus | None = None,
        terms_agreed: str | None = None, jwk: Mapping[str, Any] | None = None, thumbprint: str | None = None,
    ) -> AccountRecord: ...

    def add_order(
        self, account_id: int, identifiers: Sequence[Identifier], *, profile: str, expires: datetime.datetime,
        not_before: datetime.datetime | None, not_after: datetime.datetime | None, replaces: str | None,
        reused_authorization_ids: Sequence[int], new_authorizations: Sequence[NewAuthorization],
    ) -> OrderRecord: ...
    def get_order(self, order_id: int) -> OrderRecord | None: ...
    def orders_of(
        self, account_id: int, *, offset: int, limit: int, statuses: Collection[OrderStatus] | None = None
    ) -> tuple[list[int], bool]:
        """A page of the account's order ids, oldest first, and whether more follow; ``statuses``
        keeps only orders in those."""
        ...
    def orders_in_status(self, status: OrderStatus) -> list[OrderRecord]:
        """Every order in ``status``; the RA's ``recover`` looks for orders left ``processing``."""
        ...
    def certificate_of_order(self, order_id: int) -> CertificateRecord | None: ...
    def authorizations_of_order(self, order_id: int) -> list[AuthorizationRecord]:
        """The order's authorizations with their challenges, in the order's order."""
        ...
    def finish_order(self, order_id: int, certificate: CertificateRecord) -> OrderRecord | None:
        """Store the certificate and set the order ``processing`` -> ``valid`` with it, in one
        transaction; ``None`` (nothing stored) when the order was not processing."""
        ...
    def expire_stale(self, now: datetime.datetime) -> tuple[int, int]:
        """Pending/valid authorizations past expiry -> expired, pending/ready orders -> invalid;
        returns how many of each changed."""
        ...
    def set_order_status(
        self, order_id: int, status: OrderStatus, *, expect: OrderStatus | None = None,
        error: Problem | None = None, certificate_serial: str | None = None,
    ) -> OrderRecord | None:
        """Compare-and-set: with ``expect``, change only from that status; ``None`` when it was not."""
        ...

    def get_authorization(self, authorization_id: int) -> AuthorizationRecord | None: ...
    def valid_authorization(
        self, account_id: int, identifier: Identifier, wildcard: bool, now: datetime.datetime,
        min_expiry: datetime.datetime,
    ) -> AuthorizationRecord | None: ...
    def set_authorization_status(self, authorization_id: int, status: AuthorizationStatus) -> AuthorizationRecord: ...
    def get_challenge(self, challenge_id: int) -> ChallengeRecord | None: ...
    def challenges_in_status(self, status: ChallengeStatus) -> list[ChallengeRecord]:
        """Every challenge in ``status``; ``recover`` resubmits the ``processing`` ones to the VA."""
        ...
    def start_challenge(self, challenge_id: int, *, path: str | None, s: str | None) -> ChallengeRecord | None:
        """``pending`` -> ``processing`` (compare-and-set); ``None`` if it was not pending."""
        ...
    def finish_challenge(
        self, result: ValidationResult, now: datetime.datetime, *, expires: datetime.datetime | None = None
    ) -> AuthorizationRecord:
        """Record the VA's result on the challenge and its authorization, in one transaction; a
        pending authorization follows the challenge (valid, with expiry ``expires`` if given, or invalid)."""
        ...

    def add_certificate(self, record: CertificateRecord) -> None: ...
    def get_certificate(self, serial: str) -> CertificateRecord | None: ...
    def certificate_by_ari_id(self, ari_id: str) -> CertificateRecord | None: ...
    def revoke_certificate(self, serial: str, reason: int, when: datetime.datetime) -> bool:
        """``False`` when it was already revoked."""
        ...
    def revoked_certificates(self, issuer_id: str) -> list[CertificateRecord]: ...
    def mark_replaced(self, ari_id: str, order_id: int) -> bool:
        """``False`` when another order that is not ``invalid`` already replaces that certificate
        (RFC 9773 §5: an invalid replacement frees the certificate to be replaced again)."""
        ...

    def counts(self) -> dict[str, int]:
        """Rows per table (tests: a refused request changes nothing)."""
        ...
    def close(self) -> None: ...


@dataclasses.dataclass(frozen=True, slots=True)
class NewAuthorization:
    """An authorization the RA wants the SA to create together with an order."""

    identifier: Identifier
    wildcard: bool
    expires: datetime.datetime
    challenges: tuple[NewChallenge, ...]


@dataclasses.dataclass(frozen=True, slots=True)
class NewChallenge:
    type: str
    token: str
    r: str | None = None
    nonce: str | None = None


class PolicyAuthority(Protocol):
    def check_identifiers(self, identifiers: Sequence[Identifier], profile: Profile) -> None:
        """Raise ``CAError`` (``rejectedIdentifier``/``unsupportedIdentifier``/``malformed``, with
        one subproblem per bad identifier) unless every identifier may be issued for."""
        ...
    def challenge_types(self, identifier: Identifier, wildcard: bool) -> tuple[str, ...]: ...
    def profiles(self) -> Mapping[str, Profile]: ...
    def profile(self, name: str | None) -> Profile:
        """The named profile, or the default when ``name`` is None; ``CAError(invalidProfile)`` else."""
        ...
    def allowed_key(self, public_key: Any) -> None:
        """``CAError(badCSR)`` unless a CSR's key type and size may be certified."""
        ...
    def allowed_account_key(self, jwk: Mapping[str, Any]) -> None:
        """``CAError(badPublicKey)`` unless the public JWK is an acceptable account key."""
        ...


class ValidationReporter(Protocol):
    def validation_done(self, result: ValidationResult) -> None: ...


class ValidationAuthority(Protocol):
    def submit(self, request: ValidationRequest, reporter: ValidationReporter) -> None:
        """Validate in the background; call ``reporter.validation_done`` exactly once."""
        ...
    def close(self) -> None: ...


class CertificateAuthority(Protocol):
    def issue(
        self, csr_der: bytes, identifiers: Sequence[Identifier], profile: Profile,
        not_before: datetime.datetime | None, not_after: datetime.datetime | None,
    ) -> IssuedCertificate: ...
    def roots_pem(self) -> tuple[str, ...]:
        """Root certificates, the default hierarchy's first."""
        ...
    def intermediates_pem(self) -> tuple[str, ...]: ...
    def ocsp_response(self, request_der: bytes, status_of: Callable[[str], CertificateRecord | None]) -> bytes:
        """A signed OCSP response (RFC 6960) for the request, statuses from ``status_of(serial)``."""
        ...
    def crl(self, issuer_id: str, revoked: Sequence[CertificateRecord]) -> bytes:
        """A DER CRL of ``issuer_id`` listing ``revoked``."""
        ...
    def issuer_ids(self) -> tuple[str, ...]: ...


class RegistrationAuthority(Protocol):
    """What the WFE asks for. Every method raises ``CAError`` for a refusal."""

    def new_account(
        self, jwk: Mapping[str, Any], contact: Sequence[str], terms_agreed: bool, only_return_existing: bool,
        eab: Mapping[str, Any] | None, new_account_url: str,
    ) -> tuple[AccountRecord, bool]: ...
    def account_for_key(self, thumbprint: str) -> AccountRecord | None: ...
    def get_account(self, account_id: int) -> AccountRecord | None: ...
    def update_account(
        self, account: AccountRecord, contact: Sequence[str] | None, deactivate: bool, terms_agreed: bool | None,
    ) -> AccountRecord: ...
    def change_key(self, account: AccountRecord, new_jwk: Mapping[str, Any]) -> AccountRecord: ...
    def check_terms(self, account: AccountRecord) -> None:
        """``CAError(userActionRequired)`` when the terms changed since the account agreed."""
        ...

    def new_order(
        self, account: AccountRecord, identifiers: Sequence[Identifier], *, profile: str | None,
        not_before: datetime.datetime | None, not_after: datetime.datetime | None, replaces: str | None,
    ) -> OrderRecord: ...
    def get_order(self, order_id: int) -> OrderRecord | None:
        """The order with its status brought up to date (ready when all authorizations are valid, expiry)."""
        ...
    def orders_of(self, account: AccountRecord, page: int) -> tuple[list[int], bool]: ...
    def get_authorization(self, authorization_id: int) -> AuthorizationRecord | None: ...
    def deactivate_authorization(self, account: AccountRecord, authorization_id: int) -> AuthorizationRecord: ...
    def get_challenge(self, account: AccountRecord, challenge_id: int) -> ChallengeRecord:
        """POST-as-GET of a challenge of the account (``CAError`` 404/403 otherwise)."""
        ...
    def answer_challenge(
        self, account: AccountRecord, challenge_id: int, payload: Mapping[str, Any]
    ) -> ChallengeRecord: ...
    def finalize(self, account: AccountRecord, order_id: int, csr_der: bytes) -> OrderRecord: ...
    def get_certificate(self, serial: str) -> CertificateRecord | None: ...
    def revoke(
        self, certificate_der: bytes, reason: int | None, *, account: AccountRecord | None,
        certificate_key_jwk: Mapping[str, Any] | None,
    ) -> None: ...
    def renewal_info(self, ari_id: str) -> tuple[datetime.datetime, datetime.datetime]: ...
    def revoked_certificates(self, issuer_id: str) -> list[CertificateRecord]:
        """What the CRL of ``issuer_id`` lists."""
        ...


# --- the CA's key material on disk (written by ca_stub.ceremony, read by ca_stub.ca) -----------

CA_MANIFEST_NAME = "ca.json"  # in the data directory
CA_MANIFEST_VERSION = 1


@dataclasses.dataclass(frozen=True, slots=True)
class ManifestRoot:
    """A root certificate. Its private key is never named here: the ceremony keeps it offline."""

    id: str  # "x1"
    name: str  # subject CN
    key_type: str  # display form, "RSA 4096" / "ECDSA P-384"
    certificate: str  # PEM, path relative to the data directory


@dataclasses.dataclass(frozen=True, slots=True)
class ManifestIssuer:
    """An intermediate that signs leaves, OCSP responses and CRLs.

    ``chains[i]`` leads to ``roots[i]`` of the manifest: PEM paths, this issuer's own certificate
    first, the root excluded. All of them carry the same subject and key, so a leaf signed once
    verifies under every chain (alternate chains, RFC 8555 §7.4.2).
    """

    id: str  # "r1", also the CRL path segment: [A-Za-z0-9_-]+
    name: str
    key_type: str
    key: str  # PEM private key, path relative to the data directory
    chains: tuple[tuple[str, ...], ...]


@dataclasses.dataclass(frozen=True, slots=True)
class CAManifest:
    """``ca.json``: what the ceremony made; roots and every issuer's chains, default hierarchy first."""

    roots: tuple[ManifestRoot, ...]
    issuers: tuple[ManifestIssuer, ...]
    created: str  # RFC 3339
    version: int = CA_MANIFEST_VERSION

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: Any) -> CAManifest:
        """``ValueError`` naming the field when ``data`` is not a version-1 manifest."""
        try:
            if data["version"] != CA_MANIFEST_VERSION:
                raise ValueError(f"unsupported CA manifest version {data['version']!r}")
            roots = tuple(ManifestRoot(**{k: str(v) for k, v in root.items()}) for root in data["roots"])
            issuers = tuple(
                ManifestIssuer(
                    id=str(item["id"]), name=str(item["name"]), key_type=str(item["key_type"]),
                    key=str(item["key"]), chains=tuple(tuple(str(p) for p in chain) for chain in item["chains"]),
                )
                for item in data["issuers"]
            )
            manifest = cls(roots=roots, issuers=issuers, created=str(data["created"]))
        except (KeyError, TypeError, AttributeError) as err:
            raise ValueError(f"not a CA manifest: {err!r}") from err
        if not roots or any(len(issuer.chains) != len(roots) for issuer in issuers):
            raise ValueError("CA manifest: every issuer needs one chain per root")
        return manifest
