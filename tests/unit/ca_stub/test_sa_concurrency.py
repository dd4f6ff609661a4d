"""SQLiteStorage under threads: compare-and-set races have exactly one winner, and concurrent
writers never see "database is locked"."""

from __future__ import annotations

import datetime
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import TypeVar

import pytest

from ca_stub.contracts import CertificateRecord, NewAuthorization, NewChallenge, OrderRecord
from ca_stub.sa import SQLiteStorage
from letsencrypt.acme.messages import Identifier, OrderStatus

T = TypeVar("T")
NOW = datetime.datetime(2030, 1, 2, 3, 4, 5, tzinfo=datetime.UTC)
ROUNDS = 10


@pytest.fixture
def storage(tmp_path: Path) -> Iterator[SQLiteStorage]:
    with SQLiteStorage(tmp_path / "ca.sqlite") as opened:
        yield opened


def _order(storage: SQLiteStorage, account_id: int, name: str) -> OrderRecord:
    identifier = Identifier.dns(name)
    return storage.add_order(
        account_id, [identifier], profile="classic", expires=NOW, not_before=None, not_after=None, replaces=None,
        reused_authorization_ids=[],
        new_authorizations=[NewAuthorization(identifier, False, NOW, (NewChallenge("http-01", f"t-{name}"),))],
    )


def _race(first: Callable[[], T], second: Callable[[], T]) -> list[T]:
    """Run both at once (released together by a barrier), each on its own thread and connection."""
    barrier = threading.Barrier(2)

    def run(action: Callable[[], T]) -> T:
        barrier.wait()
        return action()

    with ThreadPoolExecutor(2) as pool:
        futures = [pool.submit(run, first), pool.submit(run, second)]
        return [future.result() for future in futures]


def test_finalize_race_has_one_winner(storage: SQLiteStorage) -> None:
    account = storage.add_account({"kty": "EC"}, "thumb", [], None, None)
    for i in range(ROUNDS):
        order = _order(storage, account.id, f"{i}.example.com")
        storage.set_order_status(order.id, OrderStatus.READY)

        finalize = partial(storage.set_order_status, order.id, OrderStatus.PROCESSING, expect=OrderStatus.READY)
        results = _race(finalize, finalize)
        assert sum(result is not None for result in results) == 1


def test_challenge_start_race_has_one_winner(storage: SQLiteStorage) -> None:
    account = storage.add_account({"kty": "EC"}, "thumb", [], None, None)
    for i in range(ROUNDS):
        authz = storage.authorizations_of_order(_order(storage, account.id, f"{i}.example.com").id)[0]
        challenge_id = authz.challenges[0].id
        results = _race(partial(storage.start_challenge, challenge_id, path="/a", s=None),
                        partial(storage.start_challenge, challenge_id, path="/b", s=None))
        winners = [result for result in results if result is not None]
        assert len(winners) == 1
        assert storage.get_challenge(challenge_id) == winners[0]  # the winner's answer is the one stored


def test_replacement_and_revocation_races_have_one_winner(storage: SQLiteStorage) -> None:
    account = storage.add_account({"kty": "EC"}, "thumb", [], None, None)
    for i in range(ROUNDS):
        old = _order(storage, account.id, f"{i}.example.com")
        serial = f"{i:04x}"
        storage.add_certificate(CertificateRecord(
            serial=serial, account_id=account.id, order_id=old.id, der=b"\x30\x00", chains=(),
            identifiers=old.identifiers, not_before=NOW, not_after=NOW, issuer_id="r1", ari_id=f"aki.{serial}",
        ))
        first, second = (_order(storage, account.id, f"{i}.example.com").id for _ in range(2))
        replaced = _race(partial(storage.mark_replaced, f"aki.{serial}", first),
                         partial(storage.mark_replaced, f"aki.{serial}", second))
        assert sorted(replaced) == [False, True]
        revoked = _race(partial(storage.revoke_certificate, serial, 1, NOW),
                        partial(storage.revoke_certificate, serial, 4, NOW))
        assert sorted(revoked) == [False, True]


def test_eight_threads_add_orders_at_once(storage: SQLiteStorage) -> None:
    threads, per_thread = 8, 15
    accounts = [storage.add_account({"kty": "EC"}, f"thumb-{t}", [], None, None).id for t in range(threads)]
    barrier = threading.Barrier(threads)

    def work(thread: int) -> list[int]:
        barrier.wait()
        ids = []
        for i in range(per_thread):
            order = _order(storage, accounts[thread], f"{thread}-{i}.example.com")
            assert storage.get_order(order.id) == order
            ids.append(order.id)
        return ids

    with ThreadPoolExecutor(threads) as pool:
        results = list(pool.map(work, range(threads)))  # any "database is locked" would raise here
    all_ids = [order_id for ids in results for order_id in ids]
    assert len(set(all_ids)) == threads * per_thread
    counts = storage.counts()
    assert counts["orders"] == counts["authorizations"] == counts["challenges"] == threads * per_thread
    for thread, ids in enumerate(results):
        assert storage.orders_of(accounts[thread], offset=0, limit=100) == (sorted(ids), False)
