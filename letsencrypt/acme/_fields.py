"""Readers and writers for the members of ACME JSON objects (used by ``messages``).

Every shape error becomes ``MessageError``, never a ``KeyError`` or ``TypeError``; timestamps
are RFC 3339 (RFC 8555 §7.1 uses them for ``expires``, ``notBefore``, ...).
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Mapping
from typing import Any

from letsencrypt.acme.errors import JWSError, MessageError
from letsencrypt.acme.jws import b64decode


def _obj(value: Any, what: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise MessageError(f"{what} is not a JSON object")
    return value


def _str(obj: Mapping[str, Any], key: str, what: str) -> str:
    value = obj.get(key)
    if not isinstance(value, str):
        raise MessageError(f"{what}: {key!r} is missing or not a string")
    return value


def _opt_str(obj: Mapping[str, Any], key: str, what: str) -> str | None:
    value = obj.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise MessageError(f"{what}: {key!r} is not a string")
    return value


def _str_list(obj: Mapping[str, Any], key: str, what: str) -> tuple[str, ...]:
    value = obj.get(key)
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise MessageError(f"{what}: {key!r} is not a list of strings")
    return tuple(value)


def _opt_bool(obj: Mapping[str, Any], key: str, what: str) -> bool | None:
    value = obj.get(key)
    if value is None or isinstance(value, bool):
        return value
    raise MessageError(f"{what}: {key!r} is not a boolean")


def _list(obj: Mapping[str, Any], key: str, what: str) -> list[Any]:
    value = obj.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise MessageError(f"{what}: {key!r} is not a list")
    return value


_TIME = re.compile(r"(\d{4}-\d\d-\d\d[Tt ]\d\d:\d\d:\d\d)(\.\d+)?([Zz]|[+-]\d\d:\d\d)", re.ASCII)


def parse_time(value: str) -> datetime.datetime:
    """An RFC 3339 timestamp; fractions beyond microseconds (Go emits nanoseconds) are cut."""
    match = _TIME.fullmatch(value.strip()) if isinstance(value, str) else None
    if match is None:
        raise MessageError(f"not an RFC 3339 timestamp: {value!r}")
    base, fraction, zone = match.groups()
    fraction = (fraction or "")[:7]
    zone = "+00:00" if zone in ("Z", "z") else zone
    try:
        text = f"{base.replace(' ', 'T').replace('t', 'T')}{fraction}{zone}"
        parsed = datetime.datetime.fromisoformat(text)
        parsed.astimezone(datetime.UTC)  # format_time must be able to write it back
    except (ValueError, OverflowError) as err:  # month 13, hour 25, offset +99:00, year 0 in UTC
        raise MessageError(f"not an RFC 3339 timestamp: {value!r} ({err})") from err
    return parsed


def format_time(value: datetime.datetime) -> str:
    """RFC 3339 in UTC with a ``Z``; naive datetimes are taken as UTC."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=datetime.UTC)
    value = value.astimezone(datetime.UTC)
    text = value.replace(tzinfo=None, microsecond=0).isoformat()  # strftime drops year padding below 1000
    if value.microsecond:
        text += f".{value.microsecond:06d}".rstrip("0")
    return text + "Z"


def _opt_time(obj: Mapping[str, Any], key: str, what: str) -> datetime.datetime | None:
    value = _opt_str(obj, key, what)
    return None if value is None else parse_time(value)


def _bytes(obj: Mapping[str, Any], key: str, what: str) -> bytes:
    """A required base64url member, decoded; bad base64url is a shape error like any other."""
    try:
        return b64decode(_str(obj, key, what))
    except JWSError as err:
        raise MessageError(f"{what}: {key!r} is not unpadded base64url") from err


def _put(out: dict[str, Any], key: str, value: Any) -> None:
    """Set an optional member: ``None`` and empty sequences are left out."""
    if value is None or (isinstance(value, tuple | list) and not value):
        return
    if isinstance(value, datetime.datetime):
        value = format_time(value)
    out[key] = value
