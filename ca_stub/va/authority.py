"""The network validation authority: checks challenges concurrently and reports to the RA.

``submit`` hands a ``ValidationRequest`` to a thread pool and returns at once; a worker
optionally sleeps (Pebble's validation delay knob), validates, and calls
``reporter.validation_done`` exactly once, with an invalid ``serverInternal`` result if anything
unexpected happened, so that no challenge is left ``processing`` for want of a report. Each
failure is an RFC 8555 §6.7 problem naming the identifier (RFC 8555 §7.1.6: the challenge's
``error``) and saying what was fetched and what was found.

Imports: stdlib, ``letsencrypt.acme``, ``ca_stub.contracts`` and ``ca_stub.va``.
"""

from __future__ import annotations

import concurrent.futures
import logging
import threading
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from ca_stub.contracts import ValidationAuthority, ValidationReporter, ValidationRequest, ValidationResult
from ca_stub.va._attempt import Attempt, Failure
from ca_stub.va.resolver import Resolver
from ca_stub.va.validators import (
    Network,
    validate_dns01,
    validate_dvsni,
    validate_http01,
    validate_simple_https,
    validate_tls_alpn01,
)
from letsencrypt.acme.messages import Problem

__all__ = ["SIMPLE_HTTPS_TIMEOUT", "NetworkVA"]

log = logging.getLogger(__name__)

SIMPLE_HTTPS_TIMEOUT = 5.0  # seconds; Boulder's 2015 VA used 5 s for simpleHttps (protocol-notes A.1)

_Validator = Callable[[ValidationRequest, Network, Attempt], None]
_VALIDATORS: Mapping[str, _Validator] = {
    "http-01": validate_http01,
    "dns-01": validate_dns01,
    "tls-alpn-01": validate_tls_alpn01,
    "simpleHttps": validate_simple_https,
    "dvsni": validate_dvsni,
}
_STATUS = {"unauthorized": 403, "serverInternal": 500}


def _problem(request: ValidationRequest, problem_type: str, detail: str) -> Problem:
    return Problem.acme(problem_type, detail, _STATUS.get(problem_type, 400), identifier=request.identifier)


class NetworkVA:
    """Validates over the network with ``workers`` threads; conforms to ``ValidationAuthority``.

    ``resolve_all`` sends every name to one address, ``dns_server`` (host, port) answers A/AAAA
    and TXT lookups, else the system resolver does. ``http_port`` and ``tls_port`` stand in for
    80 and 443. ``delay`` returns seconds to wait before each validation. ``timeout`` bounds one
    validation as a whole (redirects included).
    """

    def __init__(
        self,
        *,
        http_port: int = 80,
        tls_port: int = 443,
        resolve_all: str | None = None,
        dns_server: tuple[str, int] | None = None,
        delay: Callable[[], float] | None = None,
        workers: int = 16,
        timeout: float = 10.0,
    ) -> None:
        self._network = Network(Resolver(resolve_all=resolve_all, dns_server=dns_server), http_port, tls_port)
        self._delay = delay
        self._timeout = timeout
        self._closing = threading.Event()
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="ca-stub-va")

    def submit(self, request: ValidationRequest, reporter: ValidationReporter) -> None:
        """Validate in the background; ``reporter.validation_done`` is called exactly once."""
        try:
            self._pool.submit(self._run, request, reporter)
        except RuntimeError:  # the pool is shut down: still answer, so the RA is never left waiting
            result = self._invalid(request, _problem(request, "serverInternal", "the validation authority is closed"))
            _report(reporter, result)

    def close(self) -> None:
        """Stop waiting out delays, finish (and report) the queued validations, stop the threads."""
        self._closing.set()
        self._pool.shutdown(wait=True)

    def validate(self, request: ValidationRequest) -> ValidationResult:
        """Check one challenge now, in the calling thread (``submit`` runs this in a worker)."""
        timeout = min(self._timeout, SIMPLE_HTTPS_TIMEOUT) if request.type == "simpleHttps" else self._timeout
        attempt = Attempt.starting_now(timeout)
        validator = _VALIDATORS.get(request.type)
        try:
            if validator is None:
                raise Failure("serverInternal", f"the validation authority cannot check {request.type!r} challenges")
            validator(request, self._network, attempt)
        except Failure as failure:
            result = self._invalid(request, _problem(request, failure.problem_type, failure.detail), attempt)
            log.info("%s for %s invalid: %s", request.type, request.identifier, failure)
            return result
        log.info("%s for %s valid", request.type, request.identifier)
        return ValidationResult(request.challenge_id, request.authorization_id, True, None, tuple(attempt.records))

    @staticmethod
    def _invalid(request: ValidationRequest, problem: Problem, attempt: Attempt | None = None) -> ValidationResult:
        records = () if attempt is None else tuple(attempt.records)
        return ValidationResult(request.challenge_id, request.authorization_id, False, problem, records)

    def _run(self, request: ValidationRequest, reporter: ValidationReporter) -> None:
        try:
            if self._delay is not None and not self._closing.is_set():
                self._closing.wait(max(0.0, self._delay()))
            result = self.validate(request)
        except Exception as err:  # whatever broke, the RA must hear of it
            log.exception("validating %s for %s failed unexpectedly", request.type, request.identifier)
            detail = f"the validation authority failed: {type(err).__name__}: {err}"
            result = self._invalid(request, _problem(request, "serverInternal", detail))
        _report(reporter, result)


def _report(reporter: ValidationReporter, result: ValidationResult) -> None:
    try:
        reporter.validation_done(result)
    except Exception:  # a failing report must not kill the worker; not retried
        log.exception("reporting the result of challenge %d failed", result.challenge_id)


if TYPE_CHECKING:
    _conforms: type[ValidationAuthority] = NetworkVA
