"""Challenge answers (RFC 8555 §7.5.1; the 2015 draft for ``simpleHttps`` and ``dvsni``) and the
request the VA gets for them.

Imports: stdlib, ``ca_stub.contracts`` and ``letsencrypt.acme``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ca_stub.contracts import AccountRecord, AuthorizationRecord, CAError, ChallengeRecord, ValidationRequest
from letsencrypt.acme.challenges import check_simple_https_path, key_authorization
from letsencrypt.acme.errors import JWSError, ValidationFailed
from letsencrypt.acme.jws import b64decode

__all__ = ["DVSNI_S_BYTES", "answer_fields", "validation_request"]

DVSNI_S_BYTES = 32


def answer_fields(challenge_type: str, payload: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """The ``(path, s)`` a client's answer carries, checked; ``malformed`` if unusable.

    RFC 8555 types answer ``{}``; other members (old clients sent ``keyAuthorization``) are
    ignored, as Boulder did. ``simpleHttps`` needs ``path`` (base64url, at most 25 characters) and
    ``dvsni`` needs ``s`` (32 bytes, base64url), per protocol-notes A.1 and A.4. A ``type`` member,
    when present, must name the challenge's type.
    """
    stated = payload.get("type")
    if stated is not None and stated != challenge_type:
        raise CAError("malformed", f"the answer is for a {str(stated)[:40]!r} challenge, this one is {challenge_type}")
    if challenge_type == "simpleHttps":
        path = payload.get("path")
        try:
            if not isinstance(path, str):
                raise ValidationFailed('simpleHttps answer needs "path"', problem_type="malformed")
            return check_simple_https_path(path), None
        except ValidationFailed as err:
            raise CAError("malformed", str(err)) from err
    if challenge_type == "dvsni":
        s = payload.get("s")
        try:
            raw = b64decode(s) if isinstance(s, str) else b""
        except JWSError:
            raw = b""
        if len(raw) != DVSNI_S_BYTES:
            raise CAError("malformed", f'dvsni answer needs "s": {DVSNI_S_BYTES} random bytes, unpadded base64url')
        return None, s
    return None, None


def validation_request(
    challenge: ChallengeRecord, authorization: AuthorizationRecord, account: AccountRecord
) -> ValidationRequest:
    """What the VA checks: the key authorization uses the account's *current* key (RFC 8555 §8.1)."""
    return ValidationRequest(
        challenge_id=challenge.id,
        authorization_id=authorization.id,
        identifier=authorization.identifier,
        type=challenge.type,
        token=challenge.token,
        key_authorization=key_authorization(challenge.token, account.thumbprint),
        account_jwk=account.jwk,
        r=challenge.r,
        nonce=challenge.nonce,
        path=challenge.path,
        s=challenge.s,
    )
