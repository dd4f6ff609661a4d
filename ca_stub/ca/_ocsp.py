"""The OCSP responder's signing half (RFC 6960): request in, signed response out.

Each issuer answers for its own certificates and signs the response with its own key (RFC 6960
§4.2.2.2: the CA that issued the certificate may sign directly, no delegated responder), naming
itself by key hash. The HTTP transport (GET with the base64 request in the path, POST with the
DER body, RFC 6960 Appendix A.1) belongs to the WFE.

Outcomes: a request that does not parse -> ``malformedRequest``; more than one CertID (which this
responder does not answer: clients send one) or an issuer that is not one of ours ->
``unauthorized`` (§2.3: the server "is not capable of responding authoritatively"); else a
signed ``successful`` response whose single status is ``good``, ``revoked`` (time, reason) or
``unknown`` (a serial we never issued under that issuer). A nonce in the request (RFC 8954) is
echoed.

Imports: stdlib, cryptography, ``ca_stub.contracts``, this package.
"""

from __future__ import annotations

import datetime
import logging
from collections.abc import Callable, Sequence

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp

from ca_stub.ca._issuers import Issuer
from ca_stub.ca._reasons import reason_flag
from ca_stub.contracts import CertificateRecord

__all__ = ["OCSP_VALIDITY", "ocsp_response"]

logger = logging.getLogger(__name__)

OCSP_VALIDITY = datetime.timedelta(hours=4)  # nextUpdate - thisUpdate


def _unsuccessful(status: ocsp.OCSPResponseStatus) -> bytes:
    return ocsp.OCSPResponseBuilder.build_unsuccessful(status).public_bytes(serialization.Encoding.DER)


def ocsp_response(
    request_der: bytes,
    issuers: Sequence[Issuer],
    status_of: Callable[[str], CertificateRecord | None],
    now: datetime.datetime,
) -> bytes:
    """The DER OCSPResponse answering ``request_der`` (see the module docstring)."""
    try:
        request = ocsp.load_der_ocsp_request(request_der)
        algorithm = request.hash_algorithm
        name_hash, key_hash, serial = request.issuer_name_hash, request.issuer_key_hash, request.serial_number
    except NotImplementedError as err:  # cryptography parses one CertID per request only
        logger.info("OCSP request with several CertIDs refused: %s", err)
        return _unsuccessful(ocsp.OCSPResponseStatus.UNAUTHORIZED)
    except (ValueError, UnsupportedAlgorithm) as err:
        logger.info("malformed OCSP request (%d bytes): %s", len(request_der), err)
        return _unsuccessful(ocsp.OCSPResponseStatus.MALFORMED_REQUEST)
    issuer = next((item for item in issuers if item.matches_hashes(algorithm, name_hash, key_hash)), None)
    if issuer is None:
        logger.info("OCSP request for serial %x of an issuer that is not ours", serial)
        return _unsuccessful(ocsp.OCSPResponseStatus.UNAUTHORIZED)
    record = status_of(format(serial, "x")) if serial > 0 else None
    if record is not None and record.issuer_id != issuer.id:
        record = None
    this_update = now.replace(microsecond=0)
    revoked = record is not None and record.revoked_at is not None
    status = ocsp.OCSPCertStatus.UNKNOWN if record is None else (
        ocsp.OCSPCertStatus.REVOKED if revoked else ocsp.OCSPCertStatus.GOOD
    )
    builder = ocsp.OCSPResponseBuilder().add_response_by_hash(
        issuer_name_hash=name_hash,
        issuer_key_hash=key_hash,
        serial_number=serial,
        algorithm=algorithm,
        cert_status=status,
        this_update=this_update,
        next_update=this_update + OCSP_VALIDITY,
        revocation_time=record.revoked_at if record is not None and revoked else None,
        revocation_reason=reason_flag(record.revocation_reason) if record is not None and revoked else None,
    )
    builder = builder.responder_id(ocsp.OCSPResponderEncoding.HASH, issuer.certificate)
    try:
        nonce = request.extensions.get_extension_for_class(x509.OCSPNonce).value
        builder = builder.add_extension(nonce, critical=False)
    except (x509.ExtensionNotFound, ValueError):
        pass  # no nonce asked for (or an unparsable one, not echoed)
    logger.debug("OCSP %s for serial %x from issuer %s", status.name, serial, issuer.id)
    return builder.sign(issuer.key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)
