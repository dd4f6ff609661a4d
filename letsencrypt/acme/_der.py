"""The little DER (X.690) a run needs without ``cryptography.x509``: writing a CSR, reading a certificate's frame.

``cryptography.x509`` takes 25 to 45 ms of CPU to import (a tenth of a one-name ``certonly``) and a
run that gets a new certificate needs three things of it: a CSR to send, the subjectPublicKeyInfo
of the certificate it got (to check it matches the key) and its validity. Those are a few fixed
ASN.1 shapes, written and read here; everything else (renewal decisions, ``certificates``,
revocation, chains by issuer) still goes through ``cryptography.x509``.

Only definite lengths and single-byte tags (all DER has in these structures). The reader checks
every length against what is left and raises ``DERError`` (a ``ValueError``) on anything else.
"""

from __future__ import annotations

import datetime

__all__ = [
    "DERError",
    "bit_string",
    "children",
    "context",
    "encode",
    "integer",
    "octet_string",
    "oid",
    "read",
    "sequence",
    "set_of",
    "time_value",
    "utf8_string",
]

SEQUENCE = 0x30
SET = 0x31
INTEGER = 0x02
BIT_STRING = 0x03
OCTET_STRING = 0x04
NULL = 0x05
OID = 0x06
UTF8_STRING = 0x0C
UTC_TIME = 0x17
GENERALIZED_TIME = 0x18


class DERError(ValueError):
    """Bytes that are not the DER expected."""


# --- writing -----------------------------------------------------------------------------------


def encode(tag: int, content: bytes) -> bytes:
    """One TLV: ``tag``, the definite length of ``content`` (short or long form), ``content``."""
    size = len(content)
    if size < 0x80:
        return bytes((tag, size)) + content
    length = size.to_bytes((size.bit_length() + 7) // 8, "big")
    return bytes((tag, 0x80 | len(length))) + length + content


def sequence(*items: bytes) -> bytes:
    return encode(SEQUENCE, b"".join(items))


def set_of(*items: bytes) -> bytes:
    """A SET OF: DER orders the encoded elements (X.690 §11.6)."""
    return encode(SET, b"".join(sorted(items)))


def integer(value: int) -> bytes:
    """A non-negative INTEGER, minimal two's complement (a leading zero byte when the top bit is set)."""
    if value < 0:
        raise ValueError("only non-negative integers are written")
    return encode(INTEGER, value.to_bytes(value.bit_length() // 8 + 1, "big"))


def oid(dotted: str) -> bytes:
    arcs = [int(arc) for arc in dotted.split(".")]
    if len(arcs) < 2 or arcs[0] > 2 or (arcs[0] < 2 and arcs[1] > 39):
        raise ValueError(f"not an object identifier: {dotted}")
    body = bytearray()
    for arc in [arcs[0] * 40 + arcs[1], *arcs[2:]]:
        chunk = [arc & 0x7F]
        arc >>= 7
        while arc:
            chunk.append(0x80 | (arc & 0x7F))
            arc >>= 7
        body.extend(reversed(chunk))
    return encode(OID, bytes(body))


def octet_string(value: bytes) -> bytes:
    return encode(OCTET_STRING, value)


def bit_string(value: bytes) -> bytes:
    """A BIT STRING of whole bytes (no unused bits)."""
    return encode(BIT_STRING, b"\x00" + value)


def utf8_string(value: str) -> bytes:
    return encode(UTF8_STRING, value.encode("utf-8"))


def context(number: int, content: bytes, *, constructed: bool) -> bytes:
    """A context-specific tag ``[number]`` (IMPLICIT: ``content`` is the inner value's content octets)."""
    return encode(0x80 | (0x20 if constructed else 0) | number, content)


# --- reading -----------------------------------------------------------------------------------


def read(data: bytes, offset: int = 0, end: int | None = None) -> tuple[int, int, int]:
    """The TLV at ``offset``: its tag, where its content starts and where it ends (within ``end``)."""
    limit = len(data) if end is None else end
    if offset + 2 > limit:
        raise DERError("truncated: no room for a tag and a length")
    tag = data[offset]
    if tag & 0x1F == 0x1F:
        raise DERError("multi-byte tags are not used in these structures")
    first = data[offset + 1]
    start = offset + 2
    if first < 0x80:
        size = first
    else:
        count = first & 0x7F
        if count == 0 or count > 4:
            raise DERError("indefinite or oversized length")
        if start + count > limit:
            raise DERError("truncated length")
        size = int.from_bytes(data[start:start + count], "big")
        if size < 0x80 or data[start] == 0:
            raise DERError("length not in its shortest form")
        start += count
    if start + size > limit:
        raise DERError(f"truncated: {size} bytes announced, {limit - start} left")
    return tag, start, start + size


def children(data: bytes, start: int, end: int) -> list[tuple[int, int, int]]:
    """The TLVs one after another between ``start`` and ``end`` (the content of a constructed value)."""
    found = []
    position = start
    while position < end:
        tag, content, position = read(data, position, end)
        found.append((tag, content, position))
    return found


def time_value(tag: int, text: bytes) -> datetime.datetime:
    """A UTCTime or GeneralizedTime of a certificate's validity (RFC 5280 §4.1.2.5: Z, seconds)."""
    try:
        if tag == UTC_TIME and len(text) == 13 and text.endswith(b"Z"):
            year = int(text[:2])
            year += 1900 if year >= 50 else 2000
            rest = text[2:12]
        elif tag == GENERALIZED_TIME and len(text) == 15 and text.endswith(b"Z"):
            year = int(text[:4])
            rest = text[4:14]
        else:
            raise DERError(f"not a certificate time: tag {tag:#x}, {text[:20]!r}")
        if not rest.isdigit():
            raise DERError(f"not a certificate time: {text[:20]!r}")
        month, day, hour, minute, second = (int(rest[i:i + 2]) for i in range(0, 10, 2))
        return datetime.datetime(year, month, day, hour, minute, second, tzinfo=datetime.UTC)
    except ValueError as err:
        if isinstance(err, DERError):
            raise
        raise DERError(f"not a certificate time: {text[:20]!r} ({err})") from err
