"""The files a TLS server block shares, and what the plugin reads from certificates.

Role: the shared TLS options snippet and DH parameters that every server block we configure
includes (written once under the server root, never overwritten: an administrator may tune them),
and small readers of certificate files: the DER certificates of a PEM bundle and the OCSP
responder a certificate names.

The DH parameters are RFC 7919's ``ffdhe2048`` group (Appendix A.1) as PEM, the group Mozilla's
TLS guidelines recommend: a fixed, published group needs no generation (``openssl dhparam`` takes
seconds to minutes) and is what ``openssl genpkey -genparam -pkeyopt group:ffdhe2048`` prints.

Allowed imports: the standard library and this package.
"""

from __future__ import annotations

from pathlib import Path

from .probes import pem_certificates

__all__ = [
    "DHPARAM_NAME",
    "FFDHE2048_PEM",
    "OPTIONS_DIRECTIVES",
    "OPTIONS_NAME",
    "OPTIONS_TEXT",
    "leaf_der",
    "missing_shared_files",
    "ocsp_responder",
]

OPTIONS_NAME = "options-ssl-nginx.conf"
DHPARAM_NAME = "ssl-dhparams.pem"

OPTIONS_TEXT = """\
# TLS settings shared by the server blocks that letsencrypt configured (written once; edit freely:
# letsencrypt never overwrites this file). Mozilla "intermediate" profile.
ssl_session_cache shared:le_nginx_SSL:10m;
ssl_session_timeout 1440m;
ssl_session_tickets off;

ssl_protocols TLSv1.2 TLSv1.3;
ssl_prefer_server_ciphers off;

ssl_ciphers "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:\
ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:DHE-RSA-AES128-GCM-SHA256:\
DHE-RSA-AES256-GCM-SHA384";
"""

OPTIONS_DIRECTIVES = frozenset({
    "ssl_session_cache", "ssl_session_timeout", "ssl_session_tickets", "ssl_protocols",
    "ssl_prefer_server_ciphers", "ssl_ciphers",
})
"""What the snippet sets: a block that sets any of these itself does not get the snippet (nginx
rejects a directive given twice in one block)."""

FFDHE2048_PEM = """\
-----BEGIN DH PARAMETERS-----
MIIBCAKCAQEA//////////+t+FRYortKmq/cViAnPTzx2LnFg84tNpWp4TZBFGQz
+8yTnc4kmz75fS/jY2MMddj2gbICrsRhetPfHtXV/WVhJDP1H18GbtCFY2VVPe0a
87VXE15/V8k1mE8McODmi3fipona8+/och3xWKE2rec1MKzKT0g6eXq8CrGCsyT7
YdEIqUuyyOP7uWrat2DX9GgdT0Kj3jlN9K5W7edjcrsZCwenyO4KbXCeAvzhzffi
7MA0BM0oNC9hkXL+nOmFg/+OTxIy7vKBg8P+OxtMb61zO7X8vC7CIAXFjvGDfRaD
ssbzSibBsu/6iGtCOGEoXJf//////////wIBAg==
-----END DH PARAMETERS-----
"""

# AccessDescription { accessMethod id-ad-ocsp (1.3.6.1.5.5.7.48.1), accessLocation [6] IA5String }
_OCSP_ACCESS = bytes.fromhex("06082b06010505073001") + b"\x86"


def missing_shared_files(server_root: Path) -> dict[Path, bytes]:
    """The snippet and DH parameters to create under ``server_root`` (only those not there yet)."""
    wanted = {server_root / OPTIONS_NAME: OPTIONS_TEXT.encode(), server_root / DHPARAM_NAME: FFDHE2048_PEM.encode()}
    return {path: data for path, data in wanted.items() if not path.exists()}


def leaf_der(pem_file: Path) -> bytes:
    """The first certificate of a PEM file (a certificate or a full chain), as DER; ``ValueError`` if none."""
    found = pem_certificates(pem_file.read_bytes())
    if not found:
        raise ValueError(f"{pem_file} holds no PEM certificate")
    return found[0]


def ocsp_responder(certificate_der: bytes) -> str | None:
    """The OCSP responder URL in the certificate's Authority Information Access, or None."""
    at = certificate_der.find(_OCSP_ACCESS)
    if at < 0:
        return None
    start = at + len(_OCSP_ACCESS)
    length = certificate_der[start]
    if length >= 0x80:  # a long-form length: a URL of 128 bytes or more
        size = length & 0x7F
        length = int.from_bytes(certificate_der[start + 1:start + 1 + size], "big")
        start += size
    return certificate_der[start + 1:start + 1 + length].decode("ascii", "replace")
