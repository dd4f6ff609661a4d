"""ca_stub.va.NetworkVA as a component: concurrent validation, one report per request, delay, close."""

from __future__ import annotations

import collections
import dataclasses
import threading
import time

import pytest
from test_va_servers import LOOPBACK, WebServer, request_for

from ca_stub.contracts import ValidationAuthority, ValidationRequest, ValidationResult
from ca_stub.va import NetworkVA
from letsencrypt.acme.challenges import http01_path
from letsencrypt.acme.messages import Identifier


class Reporter:
    """Collects reports; ``wait_for(n)`` blocks until n have arrived."""

    def __init__(self, fail_first: int = 0) -> None:
        self.results: list[ValidationResult] = []
        self._fail_first = fail_first
        self._changed = threading.Condition()

    def validation_done(self, result: ValidationResult) -> None:
        with self._changed:
            self.results.append(result)
            self._changed.notify_all()
            if len(self.results) <= self._fail_first:
                raise RuntimeError("the RA fell over")

    def wait_for(self, count: int, timeout: float = 20.0) -> list[ValidationResult]:
        with self._changed:
            assert self._changed.wait_for(lambda: len(self.results) >= count, timeout), self.results
            return list(self.results)


def serve(web: WebServer, request: ValidationRequest, *, valid: bool = True) -> ValidationRequest:
    body = request.key_authorization if valid else "wrong"
    web.routes[http01_path(request.token)] = (200, {}, body.encode())
    return request


def test_twenty_concurrent_validations_each_report_once() -> None:
    reporter = Reporter()
    with WebServer() as web:
        va: ValidationAuthority = NetworkVA(http_port=web.port, resolve_all=LOOPBACK, workers=8)
        requests = [
            serve(web, request_for(Identifier.dns(f"n{i}.example.com"), "http-01", challenge_id=i), valid=i % 4 != 0)
            for i in range(20)
        ]
        started = time.monotonic()
        for request in requests:
            va.submit(request, reporter)
        assert time.monotonic() - started < 1.0  # submit returns at once
        results = reporter.wait_for(20)
        va.close()
    counts = collections.Counter(result.challenge_id for result in results)
    assert counts == {i: 1 for i in range(20)}
    for result in results:
        assert result.authorization_id == result.challenge_id + 1000
        assert result.valid == (result.challenge_id % 4 != 0), result.error
    assert len(reporter.results) == 20  # nothing more after close


def test_validations_really_overlap() -> None:
    """With a delay of 0.3 s each, 8 validations on 8 workers take about 0.3 s, not 2.4 s."""
    reporter = Reporter()
    with WebServer() as web:
        va = NetworkVA(http_port=web.port, resolve_all=LOOPBACK, workers=8, delay=lambda: 0.3)
        started = time.monotonic()
        for i in range(8):
            va.submit(serve(web, request_for(Identifier.dns("example.com"), "http-01", challenge_id=i)), reporter)
        reporter.wait_for(8)
        elapsed = time.monotonic() - started
        va.close()
    assert elapsed < 1.5
    assert all(result.valid for result in reporter.results)


def test_unexpected_errors_are_reported_as_server_internal() -> None:
    reporter = Reporter()
    va = NetworkVA(resolve_all=LOOPBACK, workers=2)
    bad_token = dataclasses.replace(
        request_for(Identifier.dns("example.com"), "http-01", challenge_id=1), token="../../etc/passwd"
    )
    va.submit(bad_token, reporter)
    va.submit(request_for(Identifier.dns("example.com"), "carrier-pigeon-01", challenge_id=2), reporter)
    results = {result.challenge_id: result for result in reporter.wait_for(2)}
    va.close()
    for result in results.values():
        assert not result.valid and result.error is not None
        assert result.error.short_type == "serverInternal" and result.error.status == 500
        assert result.error.identifier == Identifier.dns("example.com")
    assert "carrier-pigeon-01" in results[2].error.detail  # type: ignore[union-attr]
    assert len(reporter.results) == 2


def test_a_failing_reporter_does_not_stop_the_others() -> None:
    reporter = Reporter(fail_first=1)
    with WebServer() as web:
        va = NetworkVA(http_port=web.port, resolve_all=LOOPBACK, workers=1)
        for i in range(3):
            va.submit(serve(web, request_for(Identifier.dns("example.com"), "http-01", challenge_id=i)), reporter)
        results = reporter.wait_for(3)
        va.close()
    assert sorted(result.challenge_id for result in results) == [0, 1, 2]
    assert len(reporter.results) == 3  # the failed report is not repeated


def test_close_cuts_the_delay_short_and_still_reports() -> None:
    reporter = Reporter()
    with WebServer() as web:
        va = NetworkVA(http_port=web.port, resolve_all=LOOPBACK, workers=2, delay=lambda: 60.0)
        va.submit(serve(web, request_for(Identifier.dns("example.com"), "http-01")), reporter)
        time.sleep(0.1)
        started = time.monotonic()
        va.close()
        assert time.monotonic() - started < 5.0
    (result,) = reporter.results
    assert result.valid, result.error


def test_submit_after_close_still_reports() -> None:
    reporter = Reporter()
    va = NetworkVA(workers=1)
    va.close()
    va.submit(request_for(Identifier.dns("example.com"), "http-01"), reporter)
    (result,) = reporter.results
    assert not result.valid and result.error is not None and result.error.short_type == "serverInternal"


@pytest.mark.parametrize("bad", ["not-an-ip", "example.com"])
def test_resolve_all_must_be_an_address(bad: str) -> None:
    with pytest.raises(ValueError, match="does not appear to be an IPv4 or IPv6 address"):
        NetworkVA(resolve_all=bad)
