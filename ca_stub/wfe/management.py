"""The Pebble-compatible management API (plain HTTP, loopback): roots, intermediates, cert status.

``GET /roots/N`` and ``GET /intermediates/N`` answer PEM (chain N: 0 the default hierarchy,
1 the alternate one); ``GET /cert-status-by-serial/SERIAL`` answers Pebble's JSON
(``Status`` "Valid" or "Revoked", ``Serial``, ``Certificate`` PEM, ``RevokedAt``, ``Reason``).
Root private keys are not served: the ceremony keeps them offline.

Imports: ``ca_stub.contracts``, ``ca_stub.wfe``, ``letsencrypt.acme``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from ca_stub.contracts import CertificateAuthority, CertificateRecord, RegistrationAuthority
from ca_stub.wfe._http import Response, json_response
from letsencrypt.acme.messages import format_time

__all__ = ["ManagementAPI", "normalize_serial"]


def normalize_serial(text: str) -> str | None:
    """A serial as users type it (``0x`` prefix, upper case, colons) -> lower-case hex, no leading zeros."""
    cleaned = text.strip().lower().removeprefix("0x").replace(":", "")
    if not re.fullmatch(r"[0-9a-f]{1,64}", cleaned):
        return None
    return format(int(cleaned, 16), "x")


class ManagementAPI:
    def __init__(self, ra: RegistrationAuthority, ca: CertificateAuthority) -> None:
        self._ra = ra
        self._ca = ca

    def __call__(self, environ: Mapping[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        response = self.handle(str(environ.get("REQUEST_METHOD", "GET")), str(environ.get("PATH_INFO", "/")))
        start_response(response.wsgi_status(), response.wsgi_headers())
        return [response.body]

    def handle(self, method: str, path: str) -> Response:
        if method != "GET":
            return _text(405, "only GET\n")
        match = re.fullmatch(r"/(roots|intermediates)/([0-9]{1,9})", path)  # ASCII, and int() stays cheap
        if match:
            pems = self._ca.roots_pem() if match.group(1) == "roots" else self._ca.intermediates_pem()
            index = int(match.group(2))
            if index >= len(pems):
                return _text(404, f"no {match.group(1)[:-1]} {index}\n")
            return Response(200, pems[index].encode(), [("Content-Type", "application/pem-certificate-chain")])
        match = re.fullmatch(r"/cert-status-by-serial/([^/]+)", path)
        if match:
            return self._status(match.group(1))
        return _text(404, "not found\n")

    def _status(self, serial_text: str) -> Response:
        record = self._find(serial_text)
        if record is None:
            return _text(404, f"no certificate with serial {serial_text}\n")
        pem = x509.load_der_x509_certificate(record.der).public_bytes(Encoding.PEM).decode()
        status: dict[str, Any] = {
            "Status": "Revoked" if record.revoked_at else "Valid",
            "Serial": record.serial,
            "Certificate": pem,
        }
        if record.revoked_at is not None:
            status["RevokedAt"] = format_time(record.revoked_at)
            status["Reason"] = record.revocation_reason
        return json_response(status)

    def _find(self, serial_text: str) -> CertificateRecord | None:
        normalized = normalize_serial(serial_text)
        if normalized is None:
            return None
        for candidate in (serial_text.lower(), normalized, normalized.zfill(32), normalized.zfill(len(normalized) + 1)):
            record = self._ra.get_certificate(candidate)
            if record is not None:
                return record
        return None


def _text(status: int, text: str) -> Response:
    return Response(status, text.encode(), [("Content-Type", "text/plain; charset=utf-8")])
