"""Errors of the protocol library.

Every failure that leaves ``letsencrypt.acme`` is one of these, never a raw ``KeyError``,
``requests`` exception or traceback from a JSON decoder::

    AcmeError                     root: anything the protocol layer raises
    ├── ProblemError              the server answered with an RFC 7807 problem document
    │   ├── BadNonceError         type ``badNonce``; raised only once the bounded retries are used up
    │   ├── UserActionRequired    type ``userActionRequired`` (new terms of service: see ``terms_of_service``)
    │   ├── RateLimited           type ``rateLimited``; ``retry_after`` when the server said when
    │   └── AccountDoesNotExist   type ``accountDoesNotExist`` (``onlyReturnExisting`` found no account)
    ├── ResourceFailed            an order or authorization became ``invalid`` (carries its problem)
    ├── UnexpectedResponse        not a problem document and not what the endpoint must return:
    │                             HTML error page, truncated JSON, wrong content type, bare 5xx
    ├── NetworkError              no answer at all: connection refused, TLS failure, timeout
    ├── PollTimeout               the caller's deadline passed while waiting on an order/authorization
    ├── MessageError              a JSON document that does not have the shape RFC 8555 gives it
    │                             (the client re-raises it as UnexpectedResponse naming the URL)
    ├── JWSError                  a JWS that cannot be parsed or verified (used by the test CA)
    ├── ChainNotFound             no downloaded chain matches the preferred issuer (``select_chain``)
    └── ValidationFailed          the checking side of a challenge: what a validator fetched did not
                                  prove control (carries the problem type the CA should report)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from letsencrypt.acme.messages import Problem


class AcmeError(Exception):
    """Root of every error the protocol library raises."""


class ProblemError(AcmeError):
    """The server answered with an RFC 7807 problem document (RFC 8555 §6.7)."""

    def __init__(self, problem: Problem, *, url: str, status: int) -> None:
        self.problem = problem
        self.url = url
        self.status = status
        super().__init__(self._describe())

    @property
    def type(self) -> str:
        return self.problem.type

    @property
    def detail(self) -> str:
        return self.problem.detail

    @property
    def subproblems(self) -> tuple[Problem, ...]:
        return self.problem.subproblems

    def _describe(self) -> str:
        text = f"{self.problem.short_type} ({self.status}) from {self.url}: {self.problem.detail or 'no detail'}"
        for sub in self.problem.subproblems:
            who = f"{sub.identifier.value}: " if sub.identifier is not None else ""
            text += f"\n  - {who}{sub.short_type}: {sub.detail}"
        return text


class BadNonceError(ProblemError):
    """``badNonce`` answered more times in a row than the client retries."""


class UserActionRequired(ProblemError):
    """``userActionRequired``: usually new terms of service the account must agree to."""

    def __init__(
        self, problem: Problem, *, url: str, status: int, terms_of_service: str | None = None
    ) -> None:
        self.terms_of_service = terms_of_service
        super().__init__(problem, url=url, status=status)


class RateLimited(ProblemError):
    """``rateLimited``; ``retry_after``: seconds until the server says the request may succeed."""

    def __init__(
        self, problem: Problem, *, url: str, status: int, retry_after: float | None = None
    ) -> None:
        self.retry_after = retry_after
        super().__init__(problem, url=url, status=status)


class AccountDoesNotExist(ProblemError):
    """``accountDoesNotExist``: no account for this key (``onlyReturnExisting``)."""


class ResourceFailed(AcmeError):
    """An order or authorization reached ``invalid``; ``problem`` says why when the server did."""

    def __init__(self, message: str, *, url: str, problem: Problem | None = None) -> None:
        self.url = url
        self.problem = problem
        super().__init__(message)


class UnexpectedResponse(AcmeError):
    """The server answered, but not with what the protocol says it must."""

    def __init__(
        self, message: str, *, url: str, status: int | None = None, content_type: str | None = None
    ) -> None:
        self.url = url
        self.status = status
        self.content_type = content_type
        super().__init__(message)


class NetworkError(AcmeError):
    """No usable answer: connection refused, TLS handshake failure, or a timeout."""

    def __init__(self, message: str, *, url: str) -> None:
        self.url = url
        super().__init__(message)


class PollTimeout(AcmeError):
    """The deadline passed while a resource was still not in a final state."""

    def __init__(self, message: str, *, url: str, last_status: str) -> None:
        self.url = url
        self.last_status = last_status
        super().__init__(message)


class MessageError(AcmeError):
    """A JSON object does not have the shape RFC 8555 gives it (missing or mistyped field)."""


class JWSError(AcmeError):
    """A JWS that is malformed or whose signature does not verify.

    ``problem_type`` is the RFC 8555 error type a server should answer with
    (``malformed``, ``badSignatureAlgorithm``, ``badPublicKey``, ...).
    """

    def __init__(self, message: str, *, problem_type: str = "malformed") -> None:
        self.problem_type = problem_type
        super().__init__(message)


class ChainNotFound(AcmeError):
    """None of the offered chains has the requested issuer."""


class ValidationFailed(AcmeError):
    """A challenge response did not prove control; ``problem_type`` is what the CA reports."""

    def __init__(self, message: str, *, problem_type: str = "incorrectResponse") -> None:
        self.problem_type = problem_type
        super().__init__(message)
