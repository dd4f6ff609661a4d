"""The ACME protocol library (RFC 8555 and successors) shared by the client, the plugins and ca_stub.

Allowed imports: the standard library, josepy, cryptography, and ``letsencrypt.acme``
itself. No click, no disk writes, no printing: callers own I/O and user output.

Modules: ``client`` (``AcmeClient`` over one HTTP session and nonce pool), ``messages`` (typed
wire objects), ``jws`` (account keys, JWS signing and strict verification), ``challenges``
(key authorizations, what to serve and how a validator checks it), ``crypto`` (CSRs, keys,
chains), ``ari`` (RFC 9773 renewal information), ``errors`` (the exception tree).
"""

from letsencrypt.acme.client import (
    AccountHandle,
    AcmeClient,
    AuthorizationHandle,
    CertificateDownload,
    ExternalAccountBinding,
    OrderHandle,
    RenewalInfoResponse,
)
from letsencrypt.acme.errors import (
    AccountDoesNotExist,
    AcmeError,
    BadNonceError,
    ChainNotFound,
    JWSError,
    MessageError,
    NetworkError,
    PollTimeout,
    ProblemError,
    RateLimited,
    ResourceFailed,
    UnexpectedResponse,
    UserActionRequired,
    ValidationFailed,
)
from letsencrypt.acme.jws import AccountKey

__all__ = [
    "AccountDoesNotExist",
    "AccountHandle",
    "AccountKey",
    "AcmeClient",
    "AcmeError",
    "AuthorizationHandle",
    "BadNonceError",
    "CertificateDownload",
    "ChainNotFound",
    "ExternalAccountBinding",
    "JWSError",
    "MessageError",
    "NetworkError",
    "OrderHandle",
    "PollTimeout",
    "ProblemError",
    "RateLimited",
    "RenewalInfoResponse",
    "ResourceFailed",
    "UnexpectedResponse",
    "UserActionRequired",
    "ValidationFailed",
]
