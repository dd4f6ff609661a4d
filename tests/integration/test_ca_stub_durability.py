"""ca_stub survives ``kill -9`` in the middle of a burst of issuance (the issue's durability proof).

Eight client threads, each with its own account, issue certificates with real http-01 validation
(one in-test responder on the CA's validation port serves every token). The CA process is killed
with SIGKILL at three different moments of the burst, and each time restarted on the same data
directory and validation port. After each restart:

- every certificate the CA answered with (downloaded before the kill) is still known to the
  management API as ``Valid`` and still verifies with ``openssl verify`` against the ceremony root;
- no order is left ``processing``: every order a client knew of reads as pending, ready, valid or
  invalid, and the SA holds none in ``processing``; an order whose finalize got no answer is either
  valid already (the kill came between the commit and the answer) or ready, and then finalizing it
  again succeeds;
- every account is still found by its key (``onlyReturnExisting``), and the next burst goes on
  with the same accounts (their old nonces now answered ``badNonce`` and retried).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import signal
import subprocess
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from ca_stub.sa import SQLiteStorage
from letsencrypt.acme import challenges, crypto, errors
from letsencrypt.acme.client import AcmeClient, OrderHandle
from letsencrypt.acme.jws import AccountKey
from letsencrypt.acme.messages import AuthorizationStatus, ChallengeType, Identifier, OrderStatus
from letsencrypt.testing import CAStub, free_port, run_ca_stub

from .responders import http01_responder

pytestmark = pytest.mark.integration

WORKERS = 8
DEADLINE = 30.0  # per issuance step, and for each burst to reach its kill point
MAX_PER_WORKER = 40  # bound on each burst, whatever happens
SETTLED = frozenset({OrderStatus.PENDING, OrderStatus.READY, OrderStatus.VALID, OrderStatus.INVALID})


@dataclasses.dataclass
class Ledger:
    """What one client knows: its account, the orders it was answered, the certificates it got."""

    index: int
    key: AccountKey = dataclasses.field(default_factory=lambda: AccountKey.generate("ec256"))
    account_url: str | None = None
    orders: list[str] = dataclasses.field(default_factory=list)
    finalizing: set[str] = dataclasses.field(default_factory=set)  # finalize sent, certificate not yet held
    certificates: dict[str, str] = dataclasses.field(default_factory=dict)  # order URL -> PEM chain
    issued: int = 0  # names used so far, so that no authorization is ever reused

    def move_to(self, ca: CAStub) -> None:
        """The restarted CA listens on another port (``run_ca_stub`` picks a free one): same paths."""

        def moved(url: str) -> str:
            return urllib.parse.urlsplit(url)._replace(netloc=urllib.parse.urlsplit(ca.directory_url).netloc).geturl()

        self.account_url = None if self.account_url is None else moved(self.account_url)
        self.orders = [moved(url) for url in self.orders]
        self.finalizing = {moved(url) for url in self.finalizing}
        self.certificates = {moved(url): chain for url, chain in self.certificates.items()}


@dataclasses.dataclass
class Burst:
    """One burst of issuance against one CA process: the workers and what they report."""

    ca: CAStub
    ledgers: list[Ledger]
    responses: dict[str, bytes]
    killed: threading.Event = dataclasses.field(default_factory=threading.Event)
    downloaded: int = 0
    finalize_started: threading.Event = dataclasses.field(default_factory=threading.Event)
    failures: list[str] = dataclasses.field(default_factory=list)
    lock: threading.Lock = dataclasses.field(default_factory=threading.Lock)

    def run(self, ledger: Ledger) -> None:
        client = AcmeClient(self.ca.directory_url, ledger.key, account_url=ledger.account_url,
                            verify=self.ca.ca_bundle, timeout=10)
        try:
            if ledger.account_url is None:
                ledger.account_url = client.register(terms_of_service_agreed=True).url
            for _ in range(MAX_PER_WORKER):
                if self.killed.is_set():
                    return
                self.issue_one(client, ledger)
        except errors.AcmeError as err:
            if not self.killed.is_set():  # before the kill, the CA must answer everything
                with self.lock:
                    self.failures.append(f"worker {ledger.index}: {type(err).__name__}: {err}")
        except Exception as err:  # a bug in the test or the library: report it whenever it happens
            with self.lock:
                self.failures.append(f"worker {ledger.index}: {type(err).__name__}: {err}")
        finally:
            client.close()

    def issue_one(self, client: AcmeClient, ledger: Ledger) -> None:
        ledger.issued += 1
        identifiers = [Identifier.dns(f"w{ledger.index}-{ledger.issued}.durable.example")]
        order = client.new_order(identifiers)
        ledger.orders.append(order.url)
        deadline = time.monotonic() + DEADLINE
        for handle in client.authorizations(order):
            if handle.authorization.status != AuthorizationStatus.PENDING:
                continue
            challenge = next(c for c in handle.authorization.challenges if c.type == ChallengeType.HTTP_01)
            token = challenge.token or ""
            self.responses[challenges.http01_path(token)] = challenges.http01_body(
                challenges.key_authorization(token, client.key)
            )
            client.answer_challenge(challenge)
            client.wait_for_authorization(handle.url, deadline=deadline)
        order = client.wait_for_order(order.url, deadline=deadline)
        ledger.finalizing.add(order.url)
        self.finalize_started.set()
        order = client.finalize(order, _csr(identifiers), deadline=deadline)
        ledger.certificates[order.url] = client.download_certificate(order, alternates=False).default
        ledger.finalizing.discard(order.url)
        with self.lock:
            self.downloaded += 1


def _csr(identifiers: list[Identifier]) -> bytes:
    return crypto.make_csr(crypto.generate_private_key("ec256"), identifiers)


def _wait(condition: Callable[[], bool], what: str, timeout: float = DEADLINE) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.005)


@contextlib.contextmanager
def burst(ca: CAStub, ledgers: list[Ledger], responses: dict[str, bytes]) -> Iterator[Burst]:
    """Run every ledger's worker against ``ca`` for the duration of the block; join them at the end."""
    state = Burst(ca, ledgers, responses)
    threads = [threading.Thread(target=state.run, args=(ledger,), daemon=True) for ledger in ledgers]
    for thread in threads:
        thread.start()
    try:
        yield state
    finally:
        state.killed.set()  # also stops the workers when the block failed before its kill
        for thread in threads:
            thread.join(DEADLINE)
        assert not any(t.is_alive() for t in threads), "a worker did not stop after the kill"


def kill(ca: CAStub, state: Burst) -> None:
    state.killed.set()
    os.kill(ca.pid, signal.SIGKILL)


def check_after_restart(ca: CAStub, ledgers: list[Ledger], tmp: Path) -> int:
    """The checks of the module docstring; returns how many certificates were checked."""
    stuck = SQLiteStorage(ca.data_dir / "ca.sqlite")
    try:
        assert stuck.orders_in_status(OrderStatus.PROCESSING) == []
    finally:
        stuck.close()
    for ledger in ledgers:
        ledger.move_to(ca)
        client = AcmeClient(ca.directory_url, ledger.key, verify=ca.ca_bundle, timeout=10)
        with client:
            if ledger.account_url is None:  # killed between the account's commit and the answer, or before
                with contextlib.suppress(errors.AccountDoesNotExist):
                    ledger.account_url = client.find_account().url
                continue
            assert client.find_account().url == ledger.account_url
            for url in ledger.orders:
                status = client.get_order(url).order.status
                assert status in SETTLED, f"{url} is {status} after the restart"
            for url in sorted(ledger.finalizing):
                ledger.certificates[url] = _finish(client, client.get_order(url))
            ledger.finalizing.clear()
    chains = [chain for ledger in ledgers for chain in ledger.certificates.values()]
    for chain in chains:
        serial = format(crypto.split_pem_chain(chain)[0].serial_number, "x")
        known = ca.certificate_status(serial)
        assert known["Status"] == "Valid", known
    _openssl_verify_all(chains, ca.roots_pem(0), tmp)
    return len(chains)


def _finish(client: AcmeClient, order: OrderHandle) -> str:
    """An order finalized without its certificate downloaded: valid already (maybe the kill came
    between the commit and the answer), or ready again (recovered) and finalized again now."""
    assert order.order.status in (OrderStatus.VALID, OrderStatus.READY), f"{order.url} is {order.order.status}"
    if order.order.status == OrderStatus.READY:
        order = client.finalize(order, _csr(list(order.order.identifiers)), deadline=time.monotonic() + DEADLINE)
        assert order.order.status == OrderStatus.VALID
    return client.download_certificate(order, alternates=False).default


def _openssl_verify_all(chains: list[str], root_pem: str, tmp: Path) -> None:
    """One ``openssl verify`` over every leaf, the intermediates of all chains as untrusted."""
    tmp.mkdir(parents=True, exist_ok=True)
    (tmp / "root.pem").write_text(root_pem)
    intermediates: dict[bytes, bytes] = {}
    leaves: list[Path] = []
    for index, chain in enumerate(chains):
        certs = crypto.split_pem_chain(chain)
        for cert in certs[1:]:
            pem = cert.public_bytes(serialization.Encoding.PEM)
            intermediates[pem] = pem
        leaf = tmp / f"leaf-{index}.pem"
        leaf.write_bytes(certs[0].public_bytes(serialization.Encoding.PEM))
        leaves.append(leaf)
    (tmp / "untrusted.pem").write_bytes(b"".join(intermediates))
    result = subprocess.run(
        ["openssl", "verify", "-CAfile", tmp / "root.pem", "-untrusted", tmp / "untrusted.pem", *leaves],
        capture_output=True, text=True, check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count(": OK") == len(leaves), result.stdout


def test_kill_9_during_issuance_loses_nothing_answered(tmp_path: Path) -> None:
    data_dir, http_port = tmp_path / "ca", free_port()
    ledgers = [Ledger(index) for index in range(WORKERS)]
    responses: dict[str, bytes] = {}

    def after_certificates(count: int) -> Callable[[Burst], None]:
        return lambda state: _wait(lambda: state.downloaded >= count, f"{count} certificates")

    def during_a_finalize(state: Burst) -> None:
        _wait(lambda: state.downloaded >= 2, "2 certificates")
        state.finalize_started.clear()
        _wait(state.finalize_started.is_set, "a finalize")
        time.sleep(0.002)  # the request is on its way or being served

    def early(state: Burst) -> None:
        _wait(lambda: state.downloaded >= 1, "the first certificate")

    moments = [after_certificates(8), during_a_finalize, early]
    checked = 0
    with http01_responder(http_port, responses):
        for round_number, moment in enumerate(moments):
            with run_ca_stub(tmp_path, data_dir=data_dir, http_port=http_port) as ca:
                if round_number:
                    checked = check_after_restart(ca, ledgers, tmp_path / f"verify-{round_number}")
                with burst(ca, ledgers, responses) as state:
                    moment(state)
                    kill(ca, state)
                assert not state.failures, state.failures
        with run_ca_stub(tmp_path, data_dir=data_dir, http_port=http_port) as ca:
            final = check_after_restart(ca, ledgers, tmp_path / "verify-final")
    assert final > checked >= 8
