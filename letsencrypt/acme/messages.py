"""ACME wire messages (RFC 8555 §7, RFC 8738, RFC 9773, the profiles draft).

Each class is exactly one RFC object: frozen, slotted, with ``from_json`` (tolerant: unknown
fields are ignored, unknown statuses and challenge types become ``UNKNOWN``) and ``to_json``
(strict: only what the RFC defines, optional members left out when unset). Client state such
as resource URLs lives in the wrapper types of ``letsencrypt.acme.client``.
"""

from __future__ import annotations

import dataclasses
import datetime
import ipaddress
from collections.abc import Mapping, Sequence
from typing import Any

from letsencrypt.acme._fields import (
    _bytes,
    _list,
    _obj,
    _opt_bool,
    _opt_str,
    _opt_time,
    _put,
    _str,
    _str_list,
    format_time,
    parse_time,
)
from letsencrypt.acme._status import (
    AccountStatus,
    AuthorizationStatus,
    ChallengeStatus,
    ChallengeType,
    OrderStatus,
)
from letsencrypt.acme.errors import MessageError
from letsencrypt.acme.jws import b64encode
from letsencrypt.acme.records import record

__all__ = [
    "Account",
    "AccountStatus",
    "AccountUpdate",
    "Authorization",
    "AuthorizationStatus",
    "Challenge",
    "ChallengeStatus",
    "ChallengeType",
    "Directory",
    "DirectoryMeta",
    "FinalizeRequest",
    "Identifier",
    "KeyChangeRequest",
    "NewAccountRequest",
    "NewOrderRequest",
    "Order",
    "OrderStatus",
    "OrdersList",
    "Problem",
    "RenewalInfo",
    "RevocationRequest",
    "format_time",
    "parse_time",
]

ERROR_PREFIX = "urn:ietf:params:acme:error:"
LEGACY_ERROR_PREFIX = "urn:acme:error:"

@record
class Identifier:
    """An identifier object (RFC 8555 §9.7.7; ``ip`` from RFC 8738 §3)."""

    type: str
    value: str

    @classmethod
    def dns(cls, name: str) -> Identifier:
        return cls("dns", name.strip().rstrip(".").lower())

    @classmethod
    def ip(cls, address: str) -> Identifier:
        """An IP identifier in canonical text (RFC 5952 for IPv6, as RFC 8738 §3 requires)."""
        return cls("ip", str(ipaddress.ip_address(address.strip().strip("[]"))))

    @classmethod
    def parse(cls, text: str) -> Identifier:
        """``dns`` or ``ip`` by the look of ``text``."""
        try:
            return cls.ip(text)
        except ValueError:
            return cls.dns(text)

    @classmethod
    def from_json(cls, value: Any) -> Identifier:
        obj = _obj(value, "identifier")
        return cls(_str(obj, "type", "identifier"), _str(obj, "value", "identifier"))

    def to_json(self) -> dict[str, Any]:
        return {"type": self.type, "value": self.value}

    def __str__(self) -> str:
        return self.value


@record
class Problem:
    """An RFC 7807 problem document, with RFC 8555 §6.7.1 subproblems."""

    type: str = "about:blank"
    detail: str = ""
    status: int | None = None
    title: str | None = None
    instance: str | None = None
    identifier: Identifier | None = None
    subproblems: tuple[Problem, ...] = ()
    algorithms: tuple[str, ...] = ()  # badSignatureAlgorithm (RFC 8555 §6.2)

    @property
    def short_type(self) -> str:
        """``badNonce`` for ``urn:ietf:params:acme:error:badNonce`` (and the 2015 namespace)."""
        for prefix in (ERROR_PREFIX, LEGACY_ERROR_PREFIX):
            if self.type.startswith(prefix):
                return self.type[len(prefix) :]
        return self.type

    @classmethod
    def acme(cls, short_type: str, detail: str, status: int | None = None, **kwargs: Any) -> Problem:
        return cls(type=ERROR_PREFIX + short_type, detail=detail, status=status, **kwargs)

    @classmethod
    def from_json(cls, value: Any) -> Problem:
        obj = _obj(value, "problem document")
        status = obj.get("status")
        identifier = obj.get("identifier")
        return cls(
            type=_opt_str(obj, "type", "problem") or "about:blank",
            detail=str(obj.get("detail") or ""),
            status=status if isinstance(status, int) and not isinstance(status, bool) else None,
            title=_opt_str(obj, "title", "problem"),
            instance=_opt_str(obj, "instance", "problem"),
            identifier=None if identifier is None else Identifier.from_json(identifier),
            subproblems=tuple(cls.from_json(sub) for sub in _list(obj, "subproblems", "problem")),
            algorithms=_str_list(obj, "algorithms", "problem"),
        )

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": self.type, "detail": self.detail}
        _put(out, "status", self.status)
        _put(out, "title", self.title)
        _put(out, "instance", self.instance)
        _put(out, "identifier", None if self.identifier is None else self.identifier.to_json())
        _put(out, "subproblems", [sub.to_json() for sub in self.subproblems])
        _put(out, "algorithms", list(self.algorithms))
        return out


@record
class DirectoryMeta:
    """The directory's ``meta`` object (RFC 8555 §7.1.1, ``profiles`` from the profiles draft)."""

    terms_of_service: str | None = None
    website: str | None = None
    caa_identities: tuple[str, ...] = ()
    external_account_required: bool = False
    profiles: Mapping[str, str] = dataclasses.field(default_factory=dict)

    @classmethod
    def from_json(cls, value: Any) -> DirectoryMeta:
        obj = _obj(value, "directory meta")
        profiles = obj.get("profiles") or {}
        if not isinstance(profiles, Mapping):
            raise MessageError("directory meta: 'profiles' is not an object")
        return cls(
            terms_of_service=_opt_str(obj, "termsOfService", "directory meta"),
            website=_opt_str(obj, "website", "directory meta"),
            caa_identities=_str_list(obj, "caaIdentities", "directory meta"),
            external_account_required=bool(_opt_bool(obj, "externalAccountRequired", "directory meta")),
            profiles={str(name): str(description) for name, description in profiles.items()},
        )

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        _put(out, "termsOfService", self.terms_of_service)
        _put(out, "website", self.website)
        _put(out, "caaIdentities", list(self.caa_identities))
        if self.external_account_required:
            out["externalAccountRequired"] = True
        if self.profiles:
            out["profiles"] = dict(self.profiles)
        return out


@record
class Directory:
    """The directory object (RFC 8555 §7.1.1; ``renewalInfo`` from RFC 9773 §4)."""

    new_nonce: str
    new_account: str
    new_order: str
    revoke_cert: str
    key_change: str
    new_authz: str | None = None
    renewal_info: str | None = None
    meta: DirectoryMeta = DirectoryMeta()

    _KEYS = (
        ("new_nonce", "newNonce"),
        ("new_account", "newAccount"),
        ("new_order", "newOrder"),
        ("revoke_cert", "revokeCert"),
        ("key_change", "keyChange"),
        ("new_authz", "newAuthz"),
        ("renewal_info", "renewalInfo"),
    )

    @classmethod
    def from_json(cls, value: Any) -> Directory:
        obj = _obj(value, "directory")
        required = {"new_nonce", "new_account", "new_order", "revoke_cert", "key_change"}
        urls: dict[str, str | None] = {}
        for attribute, key in cls._KEYS:
            urls[attribute] = (
                _str(obj, key, "directory") if attribute in required else _opt_str(obj, key, "directory")
            )
        meta = DirectoryMeta.from_json(obj["meta"]) if obj.get("meta") is not None else DirectoryMeta()
        return cls(meta=meta, **urls)  # type: ignore[arg-type]  # required keys checked by _str above

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for attribute, key in self._KEYS:
            _put(out, key, getattr(self, attribute))
        meta = self.meta.to_json()
        if meta:
            out["meta"] = meta
        return out


@record
class NewAccountRequest:
    """The ``newAccount`` request payload (RFC 8555 §7.3)."""

    contact: tuple[str, ...] = ()
    terms_of_service_agreed: bool | None = None
    only_return_existing: bool = False
    external_account_binding: Mapping[str, Any] | None = None

    @classmethod
    def from_json(cls, value: Any) -> NewAccountRequest:
        obj = _obj(value, "newAccount request")
        eab = obj.get("externalAccountBinding")
        return cls(
            contact=_str_list(obj, "contact", "newAccount request"),
            terms_of_service_agreed=_opt_bool(obj, "termsOfServiceAgreed", "newAccount request"),
            only_return_existing=bool(_opt_bool(obj, "onlyReturnExisting", "newAccount request")),
            external_account_binding=None if eab is None else _obj(eab, "externalAccountBinding"),
        )

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        _put(out, "contact", list(self.contact))
        _put(out, "termsOfServiceAgreed", self.terms_of_service_agreed)
        if self.only_return_existing:
            out["onlyReturnExisting"] = True
        _put(out, "externalAccountBinding", None if self.external_account_binding is None
             else dict(self.external_account_binding))
        return out


@record
class Account:
    """An account object (RFC 8555 §7.1.2)."""

    status: AccountStatus
    contact: tuple[str, ...] = ()
    terms_of_service_agreed: bool | None = None
    orders: str | None = None
    external_account_binding: Mapping[str, Any] | None = None

    @classmethod
    def from_json(cls, value: Any) -> Account:
        obj = _obj(value, "account")
        eab = obj.get("externalAccountBinding")
        return cls(
            status=AccountStatus.parse(obj.get("status")),
            contact=_str_list(obj, "contact", "account"),
            terms_of_service_agreed=_opt_bool(obj, "termsOfServiceAgreed", "account"),
            orders=_opt_str(obj, "orders", "account"),
            external_account_binding=eab if isinstance(eab, Mapping) else None,
        )

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"status": str(self.status)}
        out["contact"] = list(self.contact)
        _put(out, "termsOfServiceAgreed", self.terms_of_service_agreed)
        _put(out, "orders", self.orders)
        _put(out, "externalAccountBinding", None if self.external_account_binding is None
             else dict(self.external_account_binding))
        return out


@record
class AccountUpdate:
    """A POST to the account URL (RFC 8555 §7.3.2, §7.3.6); also agreeing to new terms."""

    contact: tuple[str, ...] | None = None
    status: AccountStatus | None = None
    terms_of_service_agreed: bool | None = None

    @classmethod
    def from_json(cls, value: Any) -> AccountUpdate:
        obj = _obj(value, "account update")
        status = obj.get("status")
        return cls(
            contact=_str_list(obj, "contact", "account update") if "contact" in obj else None,
            status=None if status is None else AccountStatus.parse(status),
            terms_of_service_agreed=_opt_bool(obj, "termsOfServiceAgreed", "account update"),
        )

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.contact is not None:
            out["contact"] = list(self.contact)
        _put(out, "status", None if self.status is None else str(self.status))
        _put(out, "termsOfServiceAgreed", self.terms_of_service_agreed)
        return out


@record
class NewOrderRequest:
    """The ``newOrder`` payload (RFC 8555 §7.4; ``replaces`` RFC 9773 §5; ``profile`` profiles draft)."""

    identifiers: tuple[Identifier, ...]
    not_before: datetime.datetime | None = None
    not_after: datetime.datetime | None = None
    profile: str | None = None
    replaces: str | None = None

    @classmethod
    def from_json(cls, value: Any) -> NewOrderRequest:
        obj = _obj(value, "newOrder request")
        identifiers = tuple(Identifier.from_json(item) for item in _list(obj, "identifiers", "newOrder"))
        return cls(
            identifiers=identifiers,
            not_before=_opt_time(obj, "notBefore", "newOrder request"),
            not_after=_opt_time(obj, "notAfter", "newOrder request"),
            profile=_opt_str(obj, "profile", "newOrder request"),
            replaces=_opt_str(obj, "replaces", "newOrder request"),
        )

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"identifiers": [identifier.to_json() for identifier in self.identifiers]}
        _put(out, "notBefore", self.not_before)
        _put(out, "notAfter", self.not_after)
        _put(out, "profile", self.profile)
        _put(out, "replaces", self.replaces)
        return out


@record
class Order:
    """An order object (RFC 8555 §7.1.3)."""

    status: OrderStatus
    identifiers: tuple[Identifier, ...]
    authorizations: tuple[str, ...]
    finalize: str
    expires: datetime.datetime | None = None
    not_before: datetime.datetime | None = None
    not_after: datetime.datetime | None = None
    error: Problem | None = None
    certificate: str | None = None
    profile: str | None = None
    replaces: str | None = None

    @classmethod
    def from_json(cls, value: Any) -> Order:
        obj = _obj(value, "order")
        error = obj.get("error")
        return cls(
            status=OrderStatus.parse(obj.get("status")),
            identifiers=tuple(Identifier.from_json(item) for item in _list(obj, "identifiers", "order")),
            authorizations=_str_list(obj, "authorizations", "order"),
            finalize=_str(obj, "finalize", "order"),
            expires=_opt_time(obj, "expires", "order"),
            not_before=_opt_time(obj, "notBefore", "order"),
            not_after=_opt_time(obj, "notAfter", "order"),
            error=None if error is None else Problem.from_json(error),
            certificate=_opt_str(obj, "certificate", "order"),
            profile=_opt_str(obj, "profile", "order"),
            replaces=_opt_str(obj, "replaces", "order"),
        )

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"status": str(self.status)}
        _put(out, "expires", self.expires)
        out["identifiers"] = [identifier.to_json() for identifier in self.identifiers]
        _put(out, "notBefore", self.not_before)
        _put(out, "notAfter", self.not_after)
        _put(out, "error", None if self.error is None else self.error.to_json())
        out["authorizations"] = list(self.authorizations)
        out["finalize"] = self.finalize
        _put(out, "certificate", self.certificate)
        _put(out, "profile", self.profile)
        _put(out, "replaces", self.replaces)
        return out


@record
class Challenge:
    """A challenge object (RFC 8555 §7.1.5, §8); ``r``/``nonce`` carry the 2015 ``dvsni`` fields."""

    type_name: str
    url: str
    status: ChallengeStatus
    token: str | None = None
    validated: datetime.datetime | None = None
    error: Problem | None = None
    r: str | None = None
    nonce: str | None = None

    @property
    def type(self) -> ChallengeType:
        return ChallengeType.parse(self.type_name)

    @classmethod
    def from_json(cls, value: Any) -> Challenge:
        obj = _obj(value, "challenge")
        error = obj.get("error")
        url = _opt_str(obj, "url", "challenge") or _str(obj, "uri", "challenge")  # 2015 drafts said uri
        return cls(
            type_name=_str(obj, "type", "challenge"),
            url=url,
            status=ChallengeStatus.parse(obj.get("status", "pending")),
            token=_opt_str(obj, "token", "challenge"),
            validated=_opt_time(obj, "validated", "challenge"),
            error=None if error is None else Problem.from_json(error),
            r=_opt_str(obj, "r", "challenge"),
            nonce=_opt_str(obj, "nonce", "challenge"),
        )

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": self.type_name, "url": self.url, "status": str(self.status)}
        _put(out, "token", self.token)
        _put(out, "validated", self.validated)
        _put(out, "error", None if self.error is None else self.error.to_json())
        _put(out, "r", self.r)
        _put(out, "nonce", self.nonce)
        return out


@record
class Authorization:
    """An authorization object (RFC 8555 §7.1.4); ``combinations`` from the 2015 draft."""

    identifier: Identifier
    status: AuthorizationStatus
    challenges: tuple[Challenge, ...]
    expires: datetime.datetime | None = None
    wildcard: bool = False
    combinations: tuple[tuple[int, ...], ...] = ()

    @classmethod
    def from_json(cls, value: Any) -> Authorization:
        obj = _obj(value, "authorization")
        combinations: list[tuple[int, ...]] = []
        for combination in _list(obj, "combinations", "authorization"):
            if isinstance(combination, list) and all(isinstance(i, int) for i in combination):
                combinations.append(tuple(combination))
        return cls(
            identifier=Identifier.from_json(obj.get("identifier")),
            status=AuthorizationStatus.parse(obj.get("status")),
            challenges=tuple(Challenge.from_json(item) for item in _list(obj, "challenges", "authorization")),
            expires=_opt_time(obj, "expires", "authorization"),
            wildcard=bool(_opt_bool(obj, "wildcard", "authorization")),
            combinations=tuple(combinations),
        )

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"identifier": self.identifier.to_json(), "status": str(self.status)}
        _put(out, "expires", self.expires)
        out["challenges"] = [challenge.to_json() for challenge in self.challenges]
        if self.wildcard:
            out["wildcard"] = True
        _put(out, "combinations", [list(combination) for combination in self.combinations])
        return out


@record
class FinalizeRequest:
    """The finalize payload (RFC 8555 §7.4): a DER CSR."""

    csr: bytes

    @classmethod
    def from_json(cls, value: Any) -> FinalizeRequest:
        return cls(_bytes(_obj(value, "finalize request"), "csr", "finalize request"))

    def to_json(self) -> dict[str, Any]:
        return {"csr": b64encode(self.csr)}


@record
class RevocationRequest:
    """The ``revokeCert`` payload (RFC 8555 §7.6): a DER certificate and an RFC 5280 reason code."""

    certificate: bytes
    reason: int | None = None

    @classmethod
    def from_json(cls, value: Any) -> RevocationRequest:
        obj = _obj(value, "revocation request")
        reason = obj.get("reason")
        if reason is not None and (not isinstance(reason, int) or isinstance(reason, bool)):
            raise MessageError("revocation request: 'reason' is not an integer")
        return cls(_bytes(obj, "certificate", "revocation request"), reason)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"certificate": b64encode(self.certificate)}
        _put(out, "reason", self.reason)
        return out


@record
class KeyChangeRequest:
    """The inner payload of ``keyChange`` (RFC 8555 §7.3.5)."""

    account: str
    old_key: Mapping[str, Any]

    @classmethod
    def from_json(cls, value: Any) -> KeyChangeRequest:
        obj = _obj(value, "key change")
        return cls(_str(obj, "account", "key change"), _obj(obj.get("oldKey"), "key change oldKey"))

    def to_json(self) -> dict[str, Any]:
        return {"account": self.account, "oldKey": dict(self.old_key)}


@record
class OrdersList:
    """One page of an account's orders (RFC 8555 §7.1.2.1)."""

    orders: tuple[str, ...]

    @classmethod
    def from_json(cls, value: Any) -> OrdersList:
        return cls(_str_list(_obj(value, "orders list"), "orders", "orders list"))

    def to_json(self) -> dict[str, Any]:
        return {"orders": list(self.orders)}


@record
class RenewalInfo:
    """A renewal information object (RFC 9773 §4.2)."""

    start: datetime.datetime
    end: datetime.datetime
    explanation_url: str | None = None

    @classmethod
    def from_json(cls, value: Any) -> RenewalInfo:
        obj = _obj(value, "renewal info")
        window = _obj(obj.get("suggestedWindow"), "renewal info suggestedWindow")
        start = parse_time(_str(window, "start", "suggestedWindow"))
        end = parse_time(_str(window, "end", "suggestedWindow"))
        if end <= start:
            raise MessageError("renewal info: the suggested window ends before it starts")
        return cls(start, end, _opt_str(obj, "explanationURL", "renewal info"))

    def to_json(self) -> dict[str, Any]:
        window = {"start": format_time(self.start), "end": format_time(self.end)}
        out: dict[str, Any] = {"suggestedWindow": window}
        _put(out, "explanationURL", self.explanation_url)
        return out


def identifiers_of(values: Sequence[str]) -> tuple[Identifier, ...]:
    """Identifiers for names as a user types them: IP addresses become ``ip``, the rest ``dns``."""
    return tuple(Identifier.parse(value) for value in values)
