"""The web front end: ACME over HTTP (RFC 8555 §7) as a WSGI application.

It turns requests into RA calls and RA records into wire objects (``letsencrypt.acme.messages``),
and every failure into an RFC 7807 problem document: a ``CAError`` from any component, a JWS
or message shape error, a wrong method or an unknown path. An exception that is none of those
is a bug; it is logged with its traceback and answered ``serverInternal`` (500), which the
hostile-input tests treat as a failure.

Imports: ``ca_stub.contracts``, ``ca_stub.wfe``, ``letsencrypt.acme``.
"""

from __future__ import annotations

import base64
import dataclasses
import logging
import re
import urllib.parse
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from ca_stub.contracts import (
    AccountRecord,
    AuthorizationRecord,
    CAError,
    CertificateAuthority,
    ChallengeRecord,
    OrderRecord,
    RegistrationAuthority,
)
from ca_stub.wfe._auth import SignedRequest, Verifier
from ca_stub.wfe._http import Request, Response, json_response, read_request
from ca_stub.wfe.nonces import NonceService
from letsencrypt.acme.errors import JWSError, MessageError
from letsencrypt.acme.jws import FlattenedJWS, jwk_thumbprint, public_key_from_jwk
from letsencrypt.acme.messages import (
    Account,
    AccountUpdate,
    Authorization,
    Challenge,
    Directory,
    DirectoryMeta,
    FinalizeRequest,
    KeyChangeRequest,
    NewAccountRequest,
    NewOrderRequest,
    Order,
    OrderStatus,
    RenewalInfo,
    RevocationRequest,
)

__all__ = ["WFEConfig", "WebFrontEnd"]

logger = logging.getLogger(__name__)

PEM_CHAIN = "application/pem-certificate-chain"
LEGACY_TYPES = frozenset({"simpleHttps", "dvsni"})
ARI_RETRY_AFTER = 6 * 3600
# A resource number in a URL: ASCII digits (``\d`` also matches other scripts' digits, which
# ``int`` accepts) and at most 18 of them, so that it fits SQLite's 64-bit INTEGER; a longer
# one names no resource (404) instead of overflowing the SA.
_ID = r"([0-9]{1,18})"


@dataclasses.dataclass(frozen=True, slots=True)
class WFEConfig:
    base_url: str  # https://host:port, no trailing slash
    terms_path: Path | None = None  # the terms document served at /terms
    website: str | None = None
    caa_identities: tuple[str, ...] = ("ca-stub.invalid",)
    external_account_required: bool = False
    bad_nonce_rate: float = 0.0  # percent, Pebble's PEBBLE_WFE_NONCEREJECT
    poll_retry_after: int | None = None  # seconds sent as Retry-After on pending resources
    profiles: Mapping[str, str] = dataclasses.field(default_factory=dict)


_Handler = Callable[[Request, "re.Match[str]"], Response]


class WebFrontEnd:
    """The ACME WSGI application."""

    def __init__(
        self, ra: RegistrationAuthority, ca: CertificateAuthority, config: WFEConfig,
        nonces: NonceService | None = None,
    ) -> None:
        self._ra = ra
        self._ca = ca
        self.config = config
        self._nonces = nonces or NonceService()
        self._base = config.base_url.rstrip("/")
        self._verifier = Verifier(
            ra, self._nonces, account_id_from_url=self._account_id, bad_nonce_rate=config.bad_nonce_rate
        )
        self._routes: list[tuple[str, re.Pattern[str], _Handler]] = [
            ("GET", re.compile(r"/directory"), self._directory),
            ("HEAD|GET", re.compile(r"/acme/new-nonce"), self._new_nonce),
            ("POST", re.compile(r"/acme/new-account"), self._new_account),
            ("POST", re.compile(rf"/acme/acct/{_ID}"), self._account),
            ("POST", re.compile(rf"/acme/acct/{_ID}/orders"), self._orders),
            ("POST", re.compile(r"/acme/new-order"), self._new_order),
            ("POST", re.compile(rf"/acme/order/{_ID}"), self._order),
            ("POST", re.compile(rf"/acme/order/{_ID}/finalize"), self._finalize),
            ("POST", re.compile(rf"/acme/authz/{_ID}"), self._authorization),
            ("POST", re.compile(rf"/acme/chall/{_ID}"), self._challenge),
            ("POST", re.compile(rf"/acme/cert/([0-9a-f]+)(?:/{_ID})?"), self._certificate),
            ("POST", re.compile(r"/acme/revoke-cert"), self._revoke),
            ("POST", re.compile(r"/acme/key-change"), self._key_change),
            ("GET", re.compile(r"/acme/renewal-info/([A-Za-z0-9_-]+\.[A-Za-z0-9_-]+)"), self._renewal_info),
            ("GET", re.compile(r"/terms"), self._terms),
            ("GET", re.compile(r"/ocsp/([A-Za-z0-9+/=%]+)"), self._ocsp_get),
            ("POST", re.compile(r"/ocsp/?"), self._ocsp_post),
            ("GET", re.compile(r"/crl/([A-Za-z0-9_-]+)"), self._crl),
        ]

    # --- URLs -------------------------------------------------------------------------------

    def url(self, path: str) -> str:
        return self._base + path

    def _account_id(self, url: str) -> int | None:
        match = re.fullmatch(re.escape(self._base) + rf"/acme/acct/{_ID}", url)
        return int(match.group(1)) if match else None

    # --- WSGI -------------------------------------------------------------------------------

    def __call__(self, environ: Mapping[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        response = self.handle_environ(environ)
        start_response(response.wsgi_status(), response.wsgi_headers())
        return [b"" if environ.get("REQUEST_METHOD") == "HEAD" else response.body]

    def handle_environ(self, environ: Mapping[str, Any]) -> Response:
        try:
            request = read_request(environ)
            response = self.dispatch(request)
        except CAError as err:
            response = self._problem(err)
        except (JWSError, MessageError) as err:
            response = self._problem(CAError(getattr(err, "problem_type", "malformed"), str(err)))
        except Exception:
            logger.exception("bug: unexpected error on %s %s", environ.get("REQUEST_METHOD"), environ.get("PATH_INFO"))
            response = self._problem(CAError("serverInternal", "the CA hit an internal error", status=500))
        response.header("Replay-Nonce", self._nonces.issue())
        response.header("Cache-Control", "no-store")
        response.link(self.url("/directory"), "index")
        return response

    def dispatch(self, request: Request) -> Response:
        allowed: list[str] = []
        for methods, pattern, handler in self._routes:
            match = pattern.fullmatch(request.path)
            if match is None:
                continue
            if request.method in methods.split("|"):
                return handler(request, match)
            allowed.extend(methods.split("|"))
        if allowed:
            hint = " (use POST-as-GET, RFC 8555 §6.3)" if "POST" in allowed else ""
            raise CAError("malformed", f"{request.method} is not allowed on {request.path}{hint}", status=405)
        raise CAError("malformed", f"no resource at {request.path}", status=404)

    def _problem(self, err: CAError) -> Response:
        problem = err.problem()
        if err.problem_type == "badSignatureAlgorithm" and not problem.algorithms:  # a MUST of RFC 8555 §6.2
            problem = dataclasses.replace(problem, algorithms=tuple(sorted(FlattenedJWS.ALLOWED_ALGS)))
        response = json_response(problem.to_json(), err.status, "application/problem+json")
        for name, value in err.headers.items():
            response.header(name, value)
        if err.account_id is not None and "Location" not in err.headers:
            response.header("Location", self.url(f"/acme/acct/{err.account_id}"))  # keyChange 409, §7.3.5
        for url, rel in err.links:
            response.link(url, rel)
        return response

    def _signed(self, request: Request, key: str = "kid", check_terms: bool = True) -> SignedRequest:
        signed = self._verifier.verify(request, self.url(request.path_with_query), key=key)
        if signed.account is not None and check_terms:
            self._ra.check_terms(signed.account)
        return signed

    # --- directory and nonces -----------------------------------------------------------------

    def _directory(self, request: Request, match: re.Match[str]) -> Response:
        directory = Directory(
            new_nonce=self.url("/acme/new-nonce"),
            new_account=self.url("/acme/new-account"),
            new_order=self.url("/acme/new-order"),
            revoke_cert=self.url("/acme/revoke-cert"),
            key_change=self.url("/acme/key-change"),
            renewal_info=self.url("/acme/renewal-info"),
            meta=DirectoryMeta(
                terms_of_service=self.url("/terms") if self.config.terms_path else None,
                website=self.config.website,
                caa_identities=self.config.caa_identities,
                external_account_required=self.config.external_account_required,
                profiles=dict(self.config.profiles),
            ),
        )
        return json_response(directory.to_json())

    def _new_nonce(self, request: Request, match: re.Match[str]) -> Response:
        return Response(200 if request.method == "HEAD" else 204)

    # --- accounts -------------------------------------------------------------------------------

    def _account_json(self, account: AccountRecord) -> dict[str, Any]:
        return Account(
            status=account.status,
            contact=account.contact,
            terms_of_service_agreed=True if account.terms_agreed is not None else None,
            orders=self.url(f"/acme/acct/{account.id}/orders"),
        ).to_json()

    def _new_account(self, request: Request, match: re.Match[str]) -> Response:
        signed = self._signed(request, key="jwk")
        payload = NewAccountRequest.from_json(signed.payload())
        assert signed.jwk is not None
        account, created = self._ra.new_account(
            signed.jwk, payload.contact, bool(payload.terms_of_service_agreed), payload.only_return_existing,
            payload.external_account_binding, self.url("/acme/new-account"),
        )
        response = json_response(self._account_json(account), 201 if created else 200)
        return response.header("Location", self.url(f"/acme/acct/{account.id}"))

    def _account(self, request: Request, match: re.Match[str]) -> Response:
        signed = self._signed(request, check_terms=False)
        account = self._own_account(signed, int(match.group(1)))
        payload = signed.payload()
        if payload is not None:
            update = AccountUpdate.from_json(payload)
            if update.status is not None and str(update.status) != "deactivated":
                raise CAError("malformed", f"an account can only be deactivated, not set to {update.status}")
            account = self._ra.update_account(
                account, update.contact, update.status is not None, update.terms_of_service_agreed
            )
        else:
            self._ra.check_terms(account)
        return json_response(self._account_json(account))

    @staticmethod
    def _own_account(signed: SignedRequest, account_id: int) -> AccountRecord:
        assert signed.account is not None
        if signed.account.id != account_id:
            raise CAError("unauthorized", "the request is signed by another account", status=403)
        return signed.account

    def _orders(self, request: Request, match: re.Match[str]) -> Response:
        signed = self._signed(request)
        _post_as_get(signed)
        account = self._own_account(signed, int(match.group(1)))
        page_match = re.fullmatch(r"page=([0-9]{1,6})", request.query) if request.query else None
        if request.query and page_match is None:
            raise CAError("malformed", f"unknown query {request.query!r}")
        page = int(page_match.group(1)) if page_match else 1
        ids, more = self._ra.orders_of(account, page)
        response = json_response({"orders": [self.url(f"/acme/order/{order_id}") for order_id in ids]})
        if more:
            response.link(self.url(f"/acme/acct/{account.id}/orders?page={page + 1}"), "next")
        return response

    def _key_change(self, request: Request, match: re.Match[str]) -> Response:
        signed = self._signed(request)
        assert signed.account is not None
        url = self.url("/acme/key-change")
        try:
            inner = FlattenedJWS.parse(_object(signed.payload(), "keyChange payload"))
            inner.check_alg()
            if "jwk" not in inner.header or "kid" in inner.header:
                raise CAError("malformed", "the inner keyChange JWS must carry a jwk and no kid")
            if inner.header.get("url") != url:
                raise CAError("malformed", "the inner keyChange JWS url differs from the outer one")
            new_jwk = inner.header["jwk"]
            inner.verify(public_key_from_jwk(new_jwk))
            change = KeyChangeRequest.from_json(inner.json_payload())
        except JWSError as err:
            raise CAError(err.problem_type, f"inner keyChange JWS: {err}") from err
        if change.account != self.url(f"/acme/acct/{signed.account.id}"):
            raise CAError("malformed", "keyChange names another account")
        if _thumbprint(change.old_key) != signed.account.thumbprint:
            raise CAError("malformed", "keyChange oldKey is not the account's current key")
        account = self._ra.change_key(signed.account, new_jwk)
        return json_response(self._account_json(account))

    # --- orders, authorizations, challenges ----------------------------------------------------

    def _order_json(self, order: OrderRecord) -> dict[str, Any]:
        return Order(
            status=order.status,
            identifiers=order.identifiers,
            authorizations=tuple(self.url(f"/acme/authz/{i}") for i in order.authorization_ids),
            finalize=self.url(f"/acme/order/{order.id}/finalize"),
            expires=order.expires,
            not_before=order.not_before,
            not_after=order.not_after,
            error=order.error,
            certificate=self.url(f"/acme/cert/{order.certificate_serial}") if order.certificate_serial else None,
            profile=order.profile,
            replaces=order.replaces,
        ).to_json()

    def _order_response(self, order: OrderRecord, status: int = 200) -> Response:
        response = json_response(self._order_json(order), status)
        if order.status in (OrderStatus.PENDING, OrderStatus.PROCESSING) and self.config.poll_retry_after:
            response.header("Retry-After", str(self.config.poll_retry_after))
        return response

    def _new_order(self, request: Request, match: re.Match[str]) -> Response:
        signed = self._signed(request)
        assert signed.account is not None
        payload = NewOrderRequest.from_json(signed.payload())
        order = self._ra.new_order(
            signed.account, payload.identifiers, profile=payload.profile, not_before=payload.not_before,
            not_after=payload.not_after, replaces=payload.replaces,
        )
        return self._order_response(order, 201).header("Location", self.url(f"/acme/order/{order.id}"))

    def _owned_order(self, signed: SignedRequest, order_id: int) -> OrderRecord:
        order = self._ra.get_order(order_id)
        if order is None:
            raise CAError("malformed", f"no order {order_id}", status=404)
        assert signed.account is not None
        if order.account_id != signed.account.id:
            raise CAError("unauthorized", "the order belongs to another account", status=403)
        return order

    def _order(self, request: Request, match: re.Match[str]) -> Response:
        signed = self._signed(request)
        _post_as_get(signed)
        return self._order_response(self._owned_order(signed, int(match.group(1))))

    def _finalize(self, request: Request, match: re.Match[str]) -> Response:
        signed = self._signed(request)
        assert signed.account is not None
        self._owned_order(signed, int(match.group(1)))
        payload = FinalizeRequest.from_json(signed.payload())
        order = self._ra.finalize(signed.account, int(match.group(1)), payload.csr)
        return self._order_response(order).header("Location", self.url(f"/acme/order/{order.id}"))

    def _challenge_wire(self, challenge: ChallengeRecord) -> Challenge:
        return Challenge(
            type_name=challenge.type,
            url=self.url(f"/acme/chall/{challenge.id}"),
            status=challenge.status,
            token=challenge.token,
            validated=challenge.validated,
            error=challenge.error,
            r=challenge.r,
            nonce=challenge.nonce,
        )

    def _authorization_json(self, authorization: AuthorizationRecord) -> dict[str, Any]:
        legacy = any(c.type in LEGACY_TYPES for c in authorization.challenges)
        return Authorization(
            identifier=authorization.identifier,
            status=authorization.status,
            challenges=tuple(self._challenge_wire(c) for c in authorization.challenges),
            expires=authorization.expires,
            wildcard=authorization.wildcard,
            combinations=tuple((i,) for i in range(len(authorization.challenges))) if legacy else (),
        ).to_json()

    def _owned_authorization(self, signed: SignedRequest, authorization_id: int) -> AuthorizationRecord:
        authorization = self._ra.get_authorization(authorization_id)
        if authorization is None:
            raise CAError("malformed", f"no authorization {authorization_id}", status=404)
        assert signed.account is not None
        if authorization.account_id != signed.account.id:
            raise CAError("unauthorized", "the authorization belongs to another account", status=403)
        return authorization

    def _authorization(self, request: Request, match: re.Match[str]) -> Response:
        signed = self._signed(request)
        assert signed.account is not None
        authorization_id = int(match.group(1))
        authorization = self._owned_authorization(signed, authorization_id)
        payload = signed.payload()
        if payload is not None:
            if _object(payload, "authorization update").get("status") != "deactivated":
                raise CAError("malformed", 'an authorization can only be updated to {"status": "deactivated"}')
            authorization = self._ra.deactivate_authorization(signed.account, authorization_id)
        response = json_response(self._authorization_json(authorization))
        if str(authorization.status) == "pending" and self.config.poll_retry_after:
            response.header("Retry-After", str(self.config.poll_retry_after))
        return response

    def _challenge(self, request: Request, match: re.Match[str]) -> Response:
        signed = self._signed(request)
        assert signed.account is not None
        payload = signed.payload()
        if payload is None:
            challenge = self._ra.get_challenge(signed.account, int(match.group(1)))
        else:
            challenge = self._ra.answer_challenge(signed.account, int(match.group(1)), _object(payload, "challenge"))
        response = json_response(self._challenge_wire(challenge).to_json())
        return response.link(self.url(f"/acme/authz/{challenge.authorization_id}"), "up")

    # --- certificates, revocation, renewal information ----------------------------------------

    def _certificate(self, request: Request, match: re.Match[str]) -> Response:
        signed = self._signed(request)
        _post_as_get(signed)
        serial, alternate = match.group(1), int(match.group(2) or 0)
        record = self._ra.get_certificate(serial)
        if record is None or alternate >= len(record.chains):
            raise CAError("malformed", f"no certificate {serial}" + (f" chain {alternate}" if alternate else ""),
                          status=404)
        leaf = x509.load_der_x509_certificate(record.der).public_bytes(Encoding.PEM).decode()
        response = Response(200, (leaf + record.chains[alternate]).encode(), [("Content-Type", PEM_CHAIN)])
        for index in range(len(record.chains)):
            if index != alternate:
                response.link(self.url(f"/acme/cert/{serial}" + (f"/{index}" if index else "")), "alternate")
        return response

    def _revoke(self, request: Request, match: re.Match[str]) -> Response:
        signed = self._signed(request, key="either")
        payload = RevocationRequest.from_json(signed.payload())
        self._ra.revoke(payload.certificate, payload.reason, account=signed.account, certificate_key_jwk=signed.jwk)
        return Response(200)

    def _renewal_info(self, request: Request, match: re.Match[str]) -> Response:
        start, end = self._ra.renewal_info(match.group(1))
        response = json_response(RenewalInfo(start, end).to_json())
        return response.header("Retry-After", str(ARI_RETRY_AFTER))

    def _terms(self, request: Request, match: re.Match[str]) -> Response:
        if self.config.terms_path is None or not self.config.terms_path.is_file():
            raise CAError("malformed", "this CA has no terms of service", status=404)
        body = self.config.terms_path.read_bytes()
        return Response(200, body, [("Content-Type", "text/plain; charset=utf-8")])

    def _ocsp_get(self, request: Request, match: re.Match[str]) -> Response:
        """RFC 6960 A.1: the DER request, base64, URL-encoded, as the last path segment."""
        text = urllib.parse.unquote(match.group(1))
        try:
            der = base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
        except ValueError:
            der = b""  # the CA answers malformedRequest
        return self._ocsp(der)

    def _ocsp_post(self, request: Request, match: re.Match[str]) -> Response:
        return self._ocsp(request.body)

    def _ocsp(self, der: bytes) -> Response:
        body = self._ca.ocsp_response(der, self._ra.get_certificate)
        return Response(200, body, [("Content-Type", "application/ocsp-response")])

    def _crl(self, request: Request, match: re.Match[str]) -> Response:
        issuer_id = match.group(1)
        if issuer_id not in self._ca.issuer_ids():
            raise CAError("malformed", f"no issuer {issuer_id}", status=404)
        body = self._ca.crl(issuer_id, self._ra.revoked_certificates(issuer_id))
        return Response(200, body, [("Content-Type", "application/pkix-crl")])


def _post_as_get(signed: SignedRequest) -> None:
    if signed.jws.payload_b64 != "":
        raise CAError("malformed", 'this resource is read with POST-as-GET: the payload must be "" (RFC 8555 §6.3)')


def _object(value: Any, what: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise CAError("malformed", f"{what} must be a JSON object")
    return value


def _thumbprint(jwk: Mapping[str, Any]) -> str:
    try:
        return jwk_thumbprint(jwk)
    except JWSError as err:
        raise CAError("badPublicKey", str(err)) from err

