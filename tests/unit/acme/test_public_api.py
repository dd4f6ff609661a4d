"""The public names of ``letsencrypt.acme`` are declared once and pinned here (like httpx's test)."""

import letsencrypt.acme as acme


def test_all_names_exist_and_are_sorted() -> None:
    assert acme.__all__ == sorted(acme.__all__)
    for name in acme.__all__:
        assert getattr(acme, name) is not None


def test_public_api_is_pinned() -> None:
    assert set(acme.__all__) == {
        "AccountDoesNotExist", "AccountHandle", "AccountKey", "AcmeClient", "AcmeError", "AuthorizationHandle",
        "BadNonceError", "CertificateDownload", "ChainNotFound", "ExternalAccountBinding", "JWSError",
        "MessageError", "NetworkError", "OrderHandle", "PollTimeout", "ProblemError", "RateLimited",
        "RenewalInfoResponse", "ResourceFailed", "UnexpectedResponse", "UserActionRequired", "ValidationFailed",
    }


def test_every_error_is_an_acme_error() -> None:
    for name in acme.__all__:
        value = getattr(acme, name)
        if isinstance(value, type) and issubclass(value, Exception):
            assert issubclass(value, acme.AcmeError)
