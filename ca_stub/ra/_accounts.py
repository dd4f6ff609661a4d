"""Account checks of the RA: contacts (RFC 8555 §7.3), external account binding (§7.3.4), keys.

Pure functions over the request; the RA calls them before it touches storage, so a refusal
leaves the database as it was.

Imports: stdlib, ``ca_stub.contracts`` and ``letsencrypt.acme``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

from ca_stub.contracts import CAError
from letsencrypt.acme.errors import JWSError
from letsencrypt.acme.jws import FlattenedJWS, jwk_thumbprint

__all__ = ["EAB_ALGORITHMS", "MAX_CONTACTS", "check_contacts", "thumbprint_of", "verify_eab"]

MAX_CONTACTS = 10
EAB_ALGORITHMS = frozenset({"HS256", "HS384", "HS512"})
_MAX_ADDRESS = 254  # RFC 5321 §4.5.3.1.3 path limit, less the angle brackets
_LOCAL_PART = re.compile(r"[A-Za-z0-9!#$&'*+/=^_`{|}~-]+(?:\.[A-Za-z0-9!#$&'*+/=^_`{|}~-]+)*")
_LABEL = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?")
_TLD = re.compile(r"[A-Za-z](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?")


def thumbprint_of(jwk: Mapping[str, Any]) -> str:
    """The RFC 7638 thumbprint of a public JWK; ``badPublicKey`` when it has none."""
    try:
        return jwk_thumbprint(jwk)
    except JWSError as err:
        raise CAError("badPublicKey", f"account key: {err}") from err


def _check_address(contact: str, address: str) -> None:
    """A plain ``local@domain`` address; no hfields, no second address (RFC 8555 §7.3, RFC 6068)."""
    if "?" in address or "," in address or "%" in address:
        raise CAError(
            "invalidContact",
            f"contact {contact[:100]!r} must be exactly one plain address: no hfields, lists or %-escapes",
        )
    local, at, domain = address.rpartition("@")
    labels = domain.split(".")
    valid = (
        bool(at)
        and len(address) <= _MAX_ADDRESS
        and _LOCAL_PART.fullmatch(local) is not None
        and len(labels) >= 2
        and all(_LABEL.fullmatch(label) for label in labels)
        and _TLD.fullmatch(labels[-1]) is not None
        and not labels[-1].isdigit()
    )
    if not valid:
        raise CAError("invalidContact", f"contact {contact[:100]!r} is not a valid e-mail address")


def check_contacts(contacts: Sequence[str]) -> tuple[str, ...]:
    """The contacts to store: ``mailto:`` URLs only, each one valid-looking address (RFC 8555 §7.3).

    ``unsupportedContact`` for another scheme, ``invalidContact`` for a bad address, ``malformed``
    for more than ``MAX_CONTACTS``. The scheme is written back in lower case; duplicates are dropped.
    """
    if len(contacts) > MAX_CONTACTS:
        raise CAError("malformed", f"at most {MAX_CONTACTS} contacts are allowed, got {len(contacts)}")
    checked: list[str] = []
    for contact in contacts:
        if not isinstance(contact, str):
            raise CAError("invalidContact", "a contact must be a string")
        scheme, colon, address = contact.partition(":")
        if not colon or scheme.lower() != "mailto":
            raise CAError("unsupportedContact", f"contact {contact[:100]!r}: only mailto: contacts are supported")
        _check_address(contact, address)
        checked.append("mailto:" + address)
    return tuple(dict.fromkeys(checked))


def verify_eab(
    eab: Mapping[str, Any], *, account_thumbprint: str, keys: Mapping[str, bytes], new_account_url: str
) -> str:
    """Check an ``externalAccountBinding`` JWS (RFC 8555 §7.3.4) and return its ``kid``.

    The protected header must have an HMAC ``alg`` and a known ``kid``, name the newAccount URL and
    carry no nonce; the payload must be the account's own public key; the MAC must verify with the
    key registered for ``kid``. ``malformed`` for a badly formed binding, ``unauthorized`` for an
    unknown ``kid`` or a wrong MAC.
    """
    try:
        jws = FlattenedJWS.parse(eab)
    except JWSError as err:
        raise CAError("malformed", f"externalAccountBinding: {err}") from err
    header = jws.header
    if jws.alg not in EAB_ALGORITHMS:
        raise CAError("malformed", f"externalAccountBinding alg must be one of {sorted(EAB_ALGORITHMS)}, "
                                   f"not {jws.alg[:40]!r}")
    if header.get("url") != new_account_url:
        raise CAError("malformed", f"externalAccountBinding url must be the newAccount URL {new_account_url}")
    if "nonce" in header:
        raise CAError("malformed", "externalAccountBinding must not carry a nonce (RFC 8555 §7.3.4)")
    kid = header.get("kid")
    if not isinstance(kid, str) or kid not in keys:
        raise CAError("unauthorized", f"externalAccountBinding kid {str(kid)[:80]!r} is not known to this CA")
    try:
        payload = json.loads(jws.payload)
    except (ValueError, UnicodeDecodeError, RecursionError) as err:
        raise CAError("malformed", "externalAccountBinding payload is not a JWK") from err
    if not isinstance(payload, Mapping):
        raise CAError("malformed", "externalAccountBinding payload is not a JWK")
    try:
        bound = jwk_thumbprint(payload)
    except JWSError as err:
        raise CAError("malformed", f"externalAccountBinding payload is not a JWK: {err}") from err
    if bound != account_thumbprint:
        raise CAError("malformed", "externalAccountBinding payload is not the key that signed the request")
    try:
        jws.verify_mac(keys[kid])
    except JWSError as err:
        raise CAError("unauthorized", f"externalAccountBinding for kid {kid!r}: {err}") from err
    return kid
