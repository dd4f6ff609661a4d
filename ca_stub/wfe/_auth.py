"""Checking a signed ACME request (RFC 8555 §6.2-§6.5) before the RA sees it.

Order of checks, each failure a ``CAError`` with the RFC's problem type: media type (415), JWS
shape and base64url (``malformed``), algorithm allow-list (``badSignatureAlgorithm``), nonce
(``badNonce``, single use), ``url`` equal to the request URL (``unauthorized``), exactly one of
``jwk``/``kid`` as the endpoint wants (``malformed``), the account behind ``kid``
(``accountDoesNotExist``, or ``unauthorized`` when deactivated), the key (``badPublicKey``), and
last the signature (``malformed``).
"""

from __future__ import annotations

import dataclasses
import functools
import json
import random
from collections.abc import Callable, Mapping
from typing import Any

from ca_stub.contracts import AccountRecord, CAError, RegistrationAuthority
from ca_stub.wfe._http import Request
from ca_stub.wfe.nonces import NonceService
from letsencrypt.acme.errors import JWSError
from letsencrypt.acme.jws import FlattenedJWS, PublicKey, public_key_from_jwk
from letsencrypt.acme.messages import AccountStatus

__all__ = ["SignedRequest", "Verifier"]

JOSE = "application/jose+json"


@functools.lru_cache(maxsize=4096)
def _account_key(jwk_json: str) -> PublicKey:
    """An account's public key, from its stored JWK as canonical JSON. Cached: decoding a JWK (josepy)
    costs as much as checking the signature, and an account signs every request it makes. A
    rolled-over key is another JWK, hence another entry; a JWK that does not decode raises, and
    nothing is cached."""
    return public_key_from_jwk(json.loads(jwk_json))


@dataclasses.dataclass(frozen=True, slots=True)
class SignedRequest:
    jws: FlattenedJWS
    account: AccountRecord | None  # set for kid requests
    jwk: Mapping[str, Any] | None  # set for jwk requests

    def payload(self) -> Any:
        """The JSON payload; ``None`` for POST-as-GET."""
        try:
            return self.jws.json_payload()
        except JWSError as err:
            raise CAError("malformed", str(err)) from err


class Verifier:
    def __init__(
        self,
        ra: RegistrationAuthority,
        nonces: NonceService,
        *,
        account_id_from_url: Callable[[str], int | None],
        bad_nonce_rate: float = 0.0,
        rng: random.Random | None = None,
    ) -> None:
        self._ra = ra
        self._nonces = nonces
        self._account_id = account_id_from_url
        self._bad_nonce_rate = bad_nonce_rate
        self._rng = rng or random.Random()  # noqa: S311 - fault injection, not security

    def verify(self, request: Request, url: str, *, key: str) -> SignedRequest:
        """``key``: "jwk", "kid" or "either" — which the endpoint accepts (RFC 8555 §6.2)."""
        media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if media_type != JOSE:
            raise CAError("malformed", f"Content-Type must be {JOSE}, not {media_type or 'none'}", status=415)
        try:
            jws = FlattenedJWS.parse(request.body)
            jws.check_alg()
        except JWSError as err:
            raise CAError(err.problem_type, str(err)) from err
        header = jws.header
        self._check_nonce(header.get("nonce"))
        if header.get("url") != url:
            raise CAError("unauthorized", f"JWS url {str(header.get('url'))[:200]!r} is not the request URL {url}",
                          status=403)  # 403 as every other unauthorized refusal of a signed request
        has_jwk, has_kid = "jwk" in header, "kid" in header
        if has_jwk == has_kid:
            raise CAError("malformed", "the JWS header must have exactly one of jwk and kid")
        if has_jwk and key == "kid":
            raise CAError("malformed", "this endpoint needs a kid (account URL), not a jwk")
        if has_kid and key == "jwk":
            raise CAError("malformed", "this endpoint needs a jwk, not a kid")
        if has_jwk:
            return self._verify_jwk(jws)
        return self._verify_kid(jws)

    def _check_nonce(self, nonce: Any) -> None:
        if not isinstance(nonce, str) or not nonce:
            raise CAError("badNonce", "the JWS header has no nonce")
        if not self._nonces.redeem(nonce):
            raise CAError("badNonce", f"nonce {nonce[:40]!r} is unknown, expired or used already")
        if self._bad_nonce_rate and self._rng.random() * 100 < self._bad_nonce_rate:
            raise CAError("badNonce", "nonce rejected at random (fault injection: bad-nonce rate)")

    def _verify_jwk(self, jws: FlattenedJWS) -> SignedRequest:
        jwk = jws.header["jwk"]
        try:
            public_key = public_key_from_jwk(jwk)
            jws.verify(public_key)
        except JWSError as err:
            raise CAError(err.problem_type, str(err)) from err
        return SignedRequest(jws, None, jwk)

    def _verify_kid(self, jws: FlattenedJWS) -> SignedRequest:
        kid = jws.header["kid"]
        account_id = self._account_id(kid) if isinstance(kid, str) else None
        account = self._ra.get_account(account_id) if account_id is not None else None
        if account is None:
            raise CAError("accountDoesNotExist", f"no account at {str(kid)[:200]!r}", status=400)
        if account.status != AccountStatus.VALID:
            raise CAError("unauthorized", f"account {kid} is {account.status}", status=401)
        try:
            jws.verify(_account_key(json.dumps(account.jwk, sort_keys=True)))
        except JWSError as err:
            raise CAError(err.problem_type, str(err)) from err
        return SignedRequest(jws, account, None)
