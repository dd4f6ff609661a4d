"""``AcmeClient``: every RFC 8555 operation a client uses, over one nonce pool and one HTTP session.

The client is synchronous and keeps no state beyond the account key, the account URL, the
directory and the nonce pool. Operations return the wire objects wrapped with their URLs
(``OrderHandle`` and friends); solving challenges is the caller's business.

Retries are narrow: a signed POST is retried only on ``badNonce`` (with the fresh nonce the error
carried), at most ``bad_nonce_retries`` times; ``newOrder`` with ``replaces`` is retried once
without it when the CA rejects it (RFC 9773 is new; lego hit CA bugs there). Waits take a deadline
on the monotonic clock and honour ``Retry-After``.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import logging
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from letsencrypt.acme import errors
from letsencrypt.acme._http import (
    HttpTransport,
    PreparedRequest,
    Response,
    check_response,
    json_body,
    links,
    redact,
)
from letsencrypt.acme._lazy import lazy_module
from letsencrypt.acme.ari import certificate_id, parse_retry_after, renewal_info_url
from letsencrypt.acme.crypto import select_chain
from letsencrypt.acme.jws import AccountKey, PrivateKey, b64decode, sign_eab, sign_jws
from letsencrypt.acme.messages import (
    Account,
    AccountStatus,
    AccountUpdate,
    Authorization,
    AuthorizationStatus,
    Challenge,
    Directory,
    FinalizeRequest,
    Identifier,
    KeyChangeRequest,
    NewAccountRequest,
    NewOrderRequest,
    Order,
    OrdersList,
    OrderStatus,
    RenewalInfo,
    RevocationRequest,
)
from letsencrypt.acme.nonces import NoncePool
from letsencrypt.acme.records import record

if TYPE_CHECKING:
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
else:
    serialization = lazy_module("cryptography.hazmat.primitives.serialization")  # its package imports ssh
    x509 = lazy_module("cryptography.x509")  # imported on first use: see letsencrypt.acme._lazy

__all__ = [
    "AccountHandle",
    "AcmeClient",
    "AuthorizationHandle",
    "CertificateDownload",
    "ExternalAccountBinding",
    "OrderHandle",
    "RenewalInfoResponse",
]

logger = logging.getLogger(__name__)

_T = TypeVar("_T")

PEM_CHAIN = "application/pem-certificate-chain"
JOSE_JSON = "application/jose+json"
# Polling: without Retry-After start fast and back off; with it, follow it within these bounds.
POLL_FIRST_INTERVAL = 0.01  # a CA answering in milliseconds (a test CA, a warm cache) is not kept waiting
POLL_MAX_BACKOFF = 2.0
# Each wait 1.5 times the last: a CA that validates in tens of milliseconds is seen soon after (doubling
# overshot by up to the whole time waited so far), and a slow one is still asked about a dozen times
# in its first five seconds.
POLL_GROWTH = 1.5
PIPELINE_WINDOW = 8  # requests awaiting their answers at once in _post_many (1: one by one)
RETRY_AFTER_MIN = 0.02
RETRY_AFTER_MAX = 30.0


@record
class AccountHandle:
    url: str
    account: Account
    created: bool = False


@record
class OrderHandle:
    url: str
    order: Order
    retry_after: float | None = None


@record
class AuthorizationHandle:
    url: str
    authorization: Authorization
    retry_after: float | None = None


@record
class CertificateDownload:
    """The default chain (leaf first, PEM) and every alternate chain the CA linked (§7.4.2)."""

    url: str
    default: str
    alternates: tuple[str, ...] = ()

    @property
    def chains(self) -> tuple[str, ...]:
        return (self.default, *self.alternates)

    def select(self, preferred_issuer: str | None) -> str:
        """The chain whose top certificate was issued by ``preferred_issuer`` (CN), else the default."""
        return select_chain(self.chains, preferred_issuer)


@record
class RenewalInfoResponse:
    url: str
    info: RenewalInfo
    retry_after: float | None


@record
class ExternalAccountBinding:
    """Credentials a CA hands out for External Account Binding (RFC 8555 §7.3.4)."""

    kid: str
    hmac_key: bytes
    alg: str = "HS256"

    @classmethod
    def from_base64url(cls, kid: str, hmac_key: str, alg: str = "HS256") -> ExternalAccountBinding:
        try:
            key = b64decode(hmac_key.strip().rstrip("="))
        except errors.JWSError as err:
            raise ValueError("the EAB HMAC key must be base64url, as the CA gave it") from err
        return cls(kid, key, alg)


class AcmeClient:
    """A client of one ACME server for one account key."""

    def __init__(
        self,
        directory_url: str,
        key: AccountKey,
        *,
        account_url: str | None = None,
        verify: bool | str = True,
        timeout: float = 30.0,
        bad_nonce_retries: int = 5,
        transport: HttpTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.directory_url = directory_url
        self.key = key
        self.account_url = account_url
        self.bad_nonce_retries = bad_nonce_retries
        self._http = transport or HttpTransport(verify=verify, timeout=timeout)
        self._nonces = NoncePool()
        self._directory: Directory | None = None
        self._sleep = sleep
        self._clock = clock

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> AcmeClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- transport ------------------------------------------------------------------------

    @property
    def directory(self) -> Directory:
        """The directory (§7.1.1), fetched once."""
        if self._directory is None:
            response = self._http.request("GET", self.directory_url, accept="application/json")
            check_response(response, self.directory_url)
            self._directory = self._parse(Directory.from_json, response, self.directory_url)
        return self._directory

    def _fresh_nonce(self) -> str:
        nonce = self._nonces.take()
        if nonce is not None:
            return nonce
        url = self.directory.new_nonce
        response = self._http.request("HEAD", url)
        check_response(response, url)
        self._nonces.add_from(response.headers)
        nonce = self._nonces.take()
        if nonce is None:
            raise errors.UnexpectedResponse(
                f"{url} answered HTTP {response.status_code} without a valid Replay-Nonce header",
                url=url,
                status=response.status_code,
            )
        return nonce

    def _post(
        self,
        url: str,
        payload: Mapping[str, Any] | None,
        *,
        key: AccountKey | None = None,
        use_jwk: bool = False,
        accept: str | None = None,
    ) -> Response:
        """A signed POST (``payload=None`` is POST-as-GET), retried on ``badNonce`` only."""
        signer = key or self.key
        kid = None if use_jwk else self._kid(url)
        body = _payload_bytes(payload)
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug("POST %s payload=%s", url, _payload_note(payload))
        attempt = 0
        while True:
            jws = _jws_bytes(signer, body, url, self._fresh_nonce(), kid)
            response = self._http.request("POST", url, body=jws, content_type=JOSE_JSON, accept=accept)
            self._nonces.add_from(response.headers)
            try:
                check_response(response, url)
            except errors.BadNonceError:
                if attempt >= self.bad_nonce_retries:
                    raise
                attempt += 1
                logger.debug("badNonce from %s; retry %d with the fresh nonce", url, attempt)
                continue
            return response

    def _post_many(self, items: Sequence[tuple[str, Mapping[str, Any] | None]]) -> list[Response]:
        """Signed POSTs (``None`` payload: POST-as-GET) to one server, answers in the same order.

        Up to ``PIPELINE_WINDOW`` are sent before their answers are read (HTTP/1.1 pipelining on
        the one kept-alive connection): each request is signed with the nonce an earlier answer
        brought just before it is sent, so only the first few need ``newNonce``. A 100-name order
        reads 100 authorizations and answers 100 challenges; sent one after the other, the server
        and this process take turns, pipelined they work at the same time. The client stays
        single-threaded. Whatever did not come back whole (``badNonce``, a closed connection, a
        server that does not pipeline) is sent again the plain way, which retries and raises as
        :meth:`_post` does; a problem document in an answer raises as it would have.
        """
        results: list[Response | None] = [None] * len(items)
        if len(items) > 1 and PIPELINE_WINDOW > 1:
            kid = self._kid(items[0][0])
            window = min(PIPELINE_WINDOW, len(items))
            self._stock_nonces(window)

            def prepare(index: int) -> PreparedRequest | None:
                nonce = self._nonces.take()
                if nonce is None:
                    return None  # an answer came without a nonce: the rest go one by one
                url, payload = items[index]
                note = f" payload={_payload_note(payload)}" if logger.isEnabledFor(logging.DEBUG) else ""
                jws = _jws_bytes(self.key, _payload_bytes(payload), url, nonce, kid)
                return PreparedRequest("POST", url, jws, JOSE_JSON, note=note)

            def received(index: int, response: Response) -> None:
                self._nonces.add_from(response.headers)
                results[index] = response

            self._http.pipeline(len(items), prepare, received, window=window)
        out: list[Response] = []
        for (url, payload), response in zip(items, results, strict=True):
            if response is not None:
                try:
                    check_response(response, url)
                except errors.BadNonceError:
                    logger.debug("badNonce from %s in a pipeline; once more on its own", url)
                    response = None
            out.append(response if response is not None else self._post(url, payload))
        return out

    def _kid(self, url: str) -> str:
        """The account URL that signed requests name (``kid``); an error before any is known."""
        if self.account_url is None:
            raise errors.AcmeError(f"POST {url} needs an account: register or find the account first")
        return self.account_url

    def _stock_nonces(self, count: int) -> None:
        """Have at least ``count`` nonces in the pool (§7.2), asking ``newNonce`` pipelined."""
        missing = count - len(self._nonces)
        if missing <= 0:
            return
        url = self.directory.new_nonce

        def prepare(_: int) -> PreparedRequest:
            return PreparedRequest("HEAD", url)

        def received(_: int, response: Response) -> None:
            self._nonces.add_from(response.headers)

        self._http.pipeline(missing, prepare, received, window=missing)

    def _parse(self, parse: Callable[[Any], _T], response: Response, url: str) -> _T:
        try:
            return parse(json_body(response, url))
        except errors.MessageError as err:
            raise errors.UnexpectedResponse(
                f"{url} answered a malformed object: {err}", url=url, status=response.status_code
            ) from err

    @staticmethod
    def _location(response: Response, url: str) -> str:
        location = response.headers.get("Location")
        if not location:
            raise errors.UnexpectedResponse(
                f"{url} answered HTTP {response.status_code} without a Location header",
                url=url,
                status=response.status_code,
            )
        return location

    # --- accounts (§7.3) --------------------------------------------------------------------

    def register(
        self,
        *,
        contact: Sequence[str] = (),
        terms_of_service_agreed: bool = False,
        external_account_binding: ExternalAccountBinding | None = None,
    ) -> AccountHandle:
        """Create the account for this key, or return the existing one (200 instead of 201)."""
        url = self.directory.new_account
        eab = None
        if external_account_binding is not None:
            binding = external_account_binding
            eab = sign_eab(self.key.jwk, kid=binding.kid, hmac_key=binding.hmac_key, url=url, alg=binding.alg)
        request = NewAccountRequest(
            contact=tuple(contact),
            terms_of_service_agreed=terms_of_service_agreed or None,
            external_account_binding=eab,
        )
        return self._account_request(url, request)

    def find_account(self) -> AccountHandle:
        """The existing account for this key (``onlyReturnExisting``, §7.3.1)."""
        return self._account_request(self.directory.new_account, NewAccountRequest(only_return_existing=True))

    def _account_request(self, url: str, request: NewAccountRequest) -> AccountHandle:
        response = self._post(url, request.to_json(), use_jwk=True)
        self.account_url = self._location(response, url)
        account = self._parse(Account.from_json, response, url)
        return AccountHandle(self.account_url, account, created=response.status_code == 201)

    def _account_post(self, payload: Mapping[str, Any] | None) -> AccountHandle:
        url = self._require_account()
        response = self._post(url, payload)
        return AccountHandle(url, self._parse(Account.from_json, response, url))

    def _require_account(self) -> str:
        if self.account_url is None:
            raise errors.AcmeError("no account URL: register or find the account first")
        return self.account_url

    def get_account(self) -> AccountHandle:
        return self._account_post(None)

    def update_account(
        self, *, contact: Sequence[str] | None = None, terms_of_service_agreed: bool | None = None
    ) -> AccountHandle:
        """Replace the contacts and/or agree to (new) terms of service (§7.3.2, §7.3.3)."""
        update = AccountUpdate(
            contact=None if contact is None else tuple(contact), terms_of_service_agreed=terms_of_service_agreed
        )
        return self._account_post(update.to_json())

    def deactivate_account(self) -> AccountHandle:
        """Deactivate the account for good (§7.3.6)."""
        return self._account_post(AccountUpdate(status=AccountStatus.DEACTIVATED).to_json())

    def change_key(self, new_key: AccountKey) -> AccountHandle:
        """Roll the account over to ``new_key`` (§7.3.5); on success this client signs with it."""
        account_url = self._require_account()
        url = self.directory.key_change
        inner_payload = KeyChangeRequest(account=account_url, old_key=self.key.jwk).to_json()
        inner = sign_jws(new_key, json.dumps(inner_payload).encode(), url=url, nonce=None, kid=None)
        self._post(url, inner)
        self.key = new_key
        return self.get_account()

    def list_orders(self, *, max_pages: int = 1000) -> Iterator[str]:
        """Every order URL of the account, following ``Link: rel="next"`` (§7.1.2.1)."""
        url: str | None = self.get_account().account.orders
        seen: set[str] = set()
        while url is not None and url not in seen and len(seen) < max_pages:
            seen.add(url)
            response = self._post(url, None)
            yield from self._parse(OrdersList.from_json, response, url).orders
            url = next(iter(links(response).get("next", [])), None)

    # --- orders and authorizations (§7.4, §7.5) ---------------------------------------------

    def new_order(
        self,
        identifiers: Iterable[Identifier],
        *,
        not_before: datetime.datetime | None = None,
        not_after: datetime.datetime | None = None,
        profile: str | None = None,
        replaces: str | None = None,
    ) -> OrderHandle:
        """Create an order; with ``replaces`` (RFC 9773 §5) retried once without it if refused."""
        request = NewOrderRequest(tuple(identifiers), not_before, not_after, profile, replaces)
        if replaces is not None and self.directory.renewal_info is None:
            request = dataclasses.replace(request, replaces=None)
        try:
            return self._new_order(request)
        except (errors.RateLimited, errors.UserActionRequired, errors.BadNonceError):
            raise
        except errors.ProblemError as err:
            if request.replaces is None:
                raise
            logger.warning("the CA refused replaces=%s (%s); asking again without it", request.replaces, err.detail)
            return self._new_order(dataclasses.replace(request, replaces=None))

    def _new_order(self, request: NewOrderRequest) -> OrderHandle:
        url = self.directory.new_order
        response = self._post(url, request.to_json())
        location = self._location(response, url)
        return OrderHandle(location, self._parse(Order.from_json, response, url), _retry_after(response))

    def get_order(self, url: str) -> OrderHandle:
        response = self._post(url, None)
        return OrderHandle(url, self._parse(Order.from_json, response, url), _retry_after(response))

    def get_authorization(self, url: str) -> AuthorizationHandle:
        response = self._post(url, None)
        return AuthorizationHandle(url, self._parse(Authorization.from_json, response, url), _retry_after(response))

    def authorizations(self, order: OrderHandle) -> list[AuthorizationHandle]:
        """Every authorization of ``order``, in its order (fetched pipelined, see ``_post_many``)."""
        urls = order.order.authorizations
        responses = self._post_many([(url, None) for url in urls])
        return [
            AuthorizationHandle(url, self._parse(Authorization.from_json, response, url), _retry_after(response))
            for url, response in zip(urls, responses, strict=True)
        ]

    def answer_challenge(self, challenge: Challenge, payload: Mapping[str, Any] | None = None) -> Challenge:
        """Tell the server the challenge is ready (§7.5.1); ``{}`` unless a legacy type needs fields."""
        return self.answer_challenges([(challenge, payload)])[0]

    def answer_challenges(self, answers: Sequence[tuple[Challenge, Mapping[str, Any] | None]]) -> list[Challenge]:
        """:meth:`answer_challenge` for several challenges at once (pipelined, see ``_post_many``)."""
        responses = self._post_many([(challenge.url, dict(payload or {})) for challenge, payload in answers])
        return [
            self._parse(Challenge.from_json, response, challenge.url)
            for (challenge, _), response in zip(answers, responses, strict=True)
        ]

    def deactivate_authorization(self, url: str) -> AuthorizationHandle:
        """Give up an authorization (§7.5.2)."""
        response = self._post(url, {"status": "deactivated"})
        return AuthorizationHandle(url, self._parse(Authorization.from_json, response, url))

    def wait_for_authorization(self, url: str, *, deadline: float) -> AuthorizationHandle:
        """Poll until the authorization leaves ``pending``; ``ResourceFailed`` unless it became valid."""
        handle = self._poll(
            self.get_authorization,
            url,
            lambda h: h.authorization.status != AuthorizationStatus.PENDING,
            lambda h: str(h.authorization.status),
            deadline,
        )
        if handle.authorization.status != AuthorizationStatus.VALID:
            problems = [c.error for c in handle.authorization.challenges if c.error is not None]
            detail = "; ".join(f"{c.type_name}: {c.error.detail}" for c in handle.authorization.challenges if c.error)
            raise errors.ResourceFailed(
                f"authorization for {handle.authorization.identifier.value} is {handle.authorization.status}"
                + (f": {detail}" if detail else ""),
                url=url,
                problem=problems[0] if problems else None,
            )
        return handle

    def wait_for_order(
        self,
        url: str,
        *,
        deadline: float,
        until: frozenset[OrderStatus] = frozenset({OrderStatus.READY}),
        seen: OrderHandle | None = None,
    ) -> OrderHandle:
        """Poll until the order reaches a status in ``until`` (``ResourceFailed`` on ``invalid``).

        ``seen`` is the order as the caller last saw it, still unfinished (just created, or just sent
        its CSR): the first look then waits as after a poll (its Retry-After, else the first backoff)
        instead of asking at once for what the CA cannot have done yet.
        """
        finished = until | {OrderStatus.INVALID, OrderStatus.VALID}
        handle = self._poll(
            self.get_order, url, lambda h: h.order.status in finished, lambda h: str(h.order.status), deadline,
            seen=seen,
        )
        if handle.order.status not in until:
            raise errors.ResourceFailed(
                f"order {url} is {handle.order.status}"
                + (f": {handle.order.error.detail}" if handle.order.error else ""),
                url=url,
                problem=handle.order.error,
            )
        return handle

    def _poll(
        self,
        fetch: Callable[[str], _T],
        url: str,
        done: Callable[[_T], bool],
        status: Callable[[_T], str],
        deadline: float,
        *,
        seen: _T | None = None,
    ) -> _T:
        backoff = POLL_FIRST_INTERVAL
        while True:
            handle = seen if seen is not None and not done(seen) else fetch(url)
            seen = None
            if done(handle):
                return handle
            remaining = deadline - self._clock()
            if remaining <= 0:
                raise errors.PollTimeout(
                    f"{url} is still {status(handle)} at the deadline", url=url, last_status=status(handle)
                )
            retry_after: float | None = getattr(handle, "retry_after", None)
            if retry_after is not None:
                wait = min(max(retry_after, RETRY_AFTER_MIN), RETRY_AFTER_MAX)
            else:
                wait, backoff = backoff, min(backoff * POLL_GROWTH, POLL_MAX_BACKOFF)
            self._sleep(min(wait, remaining))

    def finalize(self, order: OrderHandle, csr_der: bytes, *, deadline: float) -> OrderHandle:
        """Send the CSR (§7.4) and wait until the order is ``valid`` (certificate issued)."""
        url = order.order.finalize
        response = self._post(url, FinalizeRequest(csr_der).to_json())
        handle = OrderHandle(order.url, self._parse(Order.from_json, response, url), _retry_after(response))
        if handle.order.status == OrderStatus.VALID:
            return handle
        if handle.order.status == OrderStatus.INVALID:
            raise errors.ResourceFailed(
                f"order {order.url} became invalid at finalization"
                + (f": {handle.order.error.detail}" if handle.order.error else ""),
                url=order.url,
                problem=handle.order.error,
            )
        return self.wait_for_order(order.url, deadline=deadline, until=frozenset({OrderStatus.VALID}), seen=handle)

    def download_certificate(self, url_or_order: str | OrderHandle, *, alternates: bool = True) -> CertificateDownload:
        """The PEM chain (leaf first) and each ``Link: rel="alternate"`` chain (§7.4.2)."""
        if isinstance(url_or_order, OrderHandle):
            if url_or_order.order.certificate is None:
                raise errors.AcmeError(f"order {url_or_order.url} has no certificate yet")
            url = url_or_order.order.certificate
        else:
            url = url_or_order
        default, response = self._fetch_chain(url)
        others: list[str] = []
        if alternates:
            for alternate_url in links(response).get("alternate", []):
                others.append(self._fetch_chain(alternate_url)[0])
        return CertificateDownload(url, default, tuple(others))

    def _fetch_chain(self, url: str) -> tuple[str, Response]:
        response = self._post(url, None, accept=PEM_CHAIN)
        text = response.content.decode("ascii", "replace")
        if "-----BEGIN CERTIFICATE-----" not in text:
            raise errors.UnexpectedResponse(
                f"{url} did not answer a PEM certificate chain"
                f" (content type {response.headers.get('Content-Type') or 'none'})",
                url=url,
                status=response.status_code,
            )
        return text, response

    # --- revocation and renewal information -------------------------------------------------

    def revoke(
        self, certificate: x509.Certificate, *, reason: int | None = None, certificate_key: PrivateKey | None = None
    ) -> None:
        """Revoke (§7.6), signed by the account, or with ``certificate_key`` by the certificate's key."""
        url = self.directory.revoke_cert
        payload = RevocationRequest(certificate.public_bytes(serialization.Encoding.DER), reason).to_json()
        if certificate_key is None:
            self._post(url, payload)
        else:
            self._post(url, payload, key=AccountKey(certificate_key), use_jwk=True)

    def renewal_info(self, certificate: x509.Certificate) -> RenewalInfoResponse | None:
        """The CA's suggested renewal window (RFC 9773 §4.2), or ``None`` when it offers none."""
        base = self.directory.renewal_info
        if base is None:
            return None
        url = renewal_info_url(base, certificate_id(certificate))
        response = self._http.request("GET", url, accept="application/json")
        check_response(response, url)
        info = self._parse(RenewalInfo.from_json, response, url)
        return RenewalInfoResponse(url, info, _retry_after(response))


def _payload_bytes(payload: Mapping[str, Any] | None) -> bytes | None:
    """A POST's payload as sent (compact JSON); ``None`` for POST-as-GET."""
    return None if payload is None else json.dumps(dict(payload), separators=(",", ":")).encode()


def _payload_note(payload: Mapping[str, Any] | None) -> str:
    """A payload as the DEBUG log shows it: key material and MACs left out."""
    return "<empty>" if payload is None else str(redact(payload))


def _jws_bytes(key: AccountKey, body: bytes | None, url: str, nonce: str, kid: str | None) -> bytes:
    """The flattened JWS of a POST, serialized for the wire."""
    return json.dumps(sign_jws(key, body, url=url, nonce=nonce, kid=kid)).encode()


def _retry_after(response: Response) -> float | None:
    return parse_retry_after(response.headers.get("Retry-After"))
