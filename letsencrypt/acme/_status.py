"""Status and challenge-type enums of ACME objects (RFC 8555 §7.1.6), read tolerantly."""

from __future__ import annotations

import enum
from typing import Any, TypeVar

_E = TypeVar("_E", bound="_TolerantEnum")


class _TolerantEnum(enum.StrEnum):
    """A string enum whose ``parse`` maps any unknown value to ``UNKNOWN``."""

    @classmethod
    def parse(cls: type[_E], value: Any) -> _E:
        try:
            return cls(value)
        except ValueError:
            return cls["UNKNOWN"]


class AccountStatus(_TolerantEnum):
    VALID = "valid"
    DEACTIVATED = "deactivated"
    REVOKED = "revoked"
    UNKNOWN = "unknown"


class OrderStatus(_TolerantEnum):
    PENDING = "pending"
    READY = "ready"
    PROCESSING = "processing"
    VALID = "valid"
    INVALID = "invalid"
    UNKNOWN = "unknown"


class AuthorizationStatus(_TolerantEnum):
    PENDING = "pending"
    VALID = "valid"
    INVALID = "invalid"
    DEACTIVATED = "deactivated"
    EXPIRED = "expired"
    REVOKED = "revoked"
    UNKNOWN = "unknown"


class ChallengeStatus(_TolerantEnum):
    PENDING = "pending"
    PROCESSING = "processing"
    VALID = "valid"
    INVALID = "invalid"
    UNKNOWN = "unknown"


class ChallengeType(_TolerantEnum):
    HTTP_01 = "http-01"
    DNS_01 = "dns-01"
    TLS_ALPN_01 = "tls-alpn-01"
    SIMPLE_HTTPS = "simpleHttps"  # 2015 draft, see protocol-notes.md A.1
    DVSNI = "dvsni"  # 2015 draft, see protocol-notes.md A.4
    UNKNOWN = "unknown"


# --- messages ------------------------------------------------------------------------------
