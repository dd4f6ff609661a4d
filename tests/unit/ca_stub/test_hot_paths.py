"""Regression tests for what the benchmark (benchmarks/ca_stub_vs_pebble.py) made cheaper in ca_stub,
each keeping the behaviour: answers with ``Content-Length`` and compact JSON (WFE), the account key
decoded once per JWK (WFE), the terms version re-hashed only when the file changed (contracts),
and the SA's writers queued on one lock instead of SQLite's sleeping busy handler. The time they
saved is in benchmarks/README.md.
"""

from __future__ import annotations

import hashlib
import io
import json
import sqlite3
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from fakes import FakeCA, FakeClock
from test_ra_harness import Harness

from ca_stub.contracts import TermsOfService
from ca_stub.sa._database import Database
from ca_stub.wfe import WebFrontEnd, WFEConfig
from ca_stub.wfe._http import Response, json_response
from letsencrypt.acme.jws import AccountKey, sign_jws

BASE = "https://ca.test"


def _call(wfe: WebFrontEnd, method: str, path: str) -> tuple[str, dict[str, str], bytes]:
    environ: dict[str, Any] = {"REQUEST_METHOD": method, "PATH_INFO": path, "wsgi.input": io.BytesIO(b"")}
    seen: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]]) -> None:
        seen["status"], seen["headers"] = status, headers

    body = b"".join(wfe(environ, start_response))
    return seen["status"], {name.lower(): value for name, value in seen["headers"]}, body


def _post(wfe: WebFrontEnd, path: str, jws: Mapping[str, str]) -> tuple[str, bytes]:
    raw = json.dumps(jws).encode()
    environ: dict[str, Any] = {
        "REQUEST_METHOD": "POST", "PATH_INFO": path, "CONTENT_TYPE": "application/jose+json",
        "CONTENT_LENGTH": str(len(raw)), "wsgi.input": io.BytesIO(raw),
    }
    seen: dict[str, str] = {}
    body = b"".join(wfe(environ, lambda status, headers: seen.update(status=status)))
    return seen["status"], body


def test_answers_carry_content_length_so_connections_stay_open() -> None:
    """Without it cheroot answers chunked, and closes the connection after a HEAD (new TLS handshake)."""
    wfe = WebFrontEnd(Harness.build().ra, FakeCA(FakeClock()), WFEConfig(base_url=BASE))
    status, headers, body = _call(wfe, "GET", "/directory")
    assert status.startswith("200") and headers["content-length"] == str(len(body))
    assert json.loads(body)["newNonce"] == BASE + "/acme/new-nonce"
    status, headers, body = _call(wfe, "HEAD", "/acme/new-nonce")
    assert status.startswith("200") and headers["content-length"] == "0" and body == b""
    assert headers["replay-nonce"]
    status, headers, body = _call(wfe, "GET", "/acme/new-nonce")
    assert status.startswith("204") and "content-length" not in headers and body == b""  # RFC 9110 §8.6
    status, headers, body = _call(wfe, "GET", "/nowhere")
    assert status.startswith("404") and headers["content-length"] == str(len(body))
    assert json.loads(body)["type"] == "urn:ietf:params:acme:error:malformed"


def test_response_headers() -> None:
    assert Response(200, b"abc").wsgi_headers() == [("Content-Length", "3")]
    assert Response(204).wsgi_headers() == []
    given = Response(200, b"abc", [("content-length", "3")])
    assert given.wsgi_headers() == [("content-length", "3")]
    response = json_response({"a": [1, {"b": "c"}]}, 201, "application/problem+json")
    assert response.body == b'{"a":[1,{"b":"c"}]}\n' and response.status == 201
    assert response.headers == [("Content-Type", "application/problem+json")]


def _version(terms: TermsOfService) -> str:
    return terms.current_version()


def test_terms_version_follows_every_edit(tmp_path: Path) -> None:
    document = tmp_path / "terms.txt"
    document.write_text("version one\n")
    terms = TermsOfService.from_file("https://ca.test/terms", document)
    first = _version(terms)
    assert first == hashlib.sha256(b"version one\n").hexdigest()
    assert _version(terms) == first
    document.write_text("version two\n")  # same size, at once: the change time and content differ
    assert _version(terms) == hashlib.sha256(b"version two\n").hexdigest()
    replacement = tmp_path / "new.txt"
    replacement.write_text("version one\n")
    replacement.replace(document)  # another inode, as editors that save by renaming do
    assert _version(terms) == first
    document.unlink()
    assert _version(terms) == ""
    document.write_text("version three\n")
    assert _version(terms) == hashlib.sha256(b"version three\n").hexdigest()


def _counter(tmp_path: Path) -> Database:
    database = Database(tmp_path / "ca.sqlite")
    with database.write() as conn:
        conn.execute("CREATE TABLE hits (thread INTEGER, n INTEGER)")
    return database


def test_writers_of_many_threads_all_commit(tmp_path: Path) -> None:
    database = _counter(tmp_path)
    failures: list[BaseException] = []

    def write(thread: int) -> None:
        try:
            for n in range(25):
                with database.write() as conn:
                    conn.execute("INSERT INTO hits VALUES (?, ?)", (thread, n))
        except BaseException as err:
            failures.append(err)

    threads = [threading.Thread(target=write, args=(i,)) for i in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not failures
    with database.read() as conn:
        assert conn.execute("SELECT count(*) FROM hits").fetchone()[0] == 16 * 25
    database.close()


def test_nested_write_fails_in_sqlite_instead_of_waiting_for_itself(tmp_path: Path) -> None:
    database = _counter(tmp_path)
    with database.write() as conn:
        conn.execute("INSERT INTO hits VALUES (0, 0)")
        with pytest.raises(sqlite3.OperationalError, match="within a transaction"), database.write():
            pass
    with database.read() as conn:
        assert conn.execute("SELECT count(*) FROM hits").fetchone()[0] == 1
    with database.write() as conn:  # the lock was released: the next write goes through
        conn.execute("INSERT INTO hits VALUES (0, 1)")
    database.close()


def test_a_failed_write_releases_the_writer_turn(tmp_path: Path) -> None:
    database = _counter(tmp_path)
    with pytest.raises(sqlite3.OperationalError), database.write() as conn:
        conn.execute("INSERT INTO nowhere VALUES (1)")
    done = threading.Event()

    def other() -> None:
        with database.write() as conn:
            conn.execute("INSERT INTO hits VALUES (1, 1)")
        done.set()

    thread = threading.Thread(target=other)
    thread.start()
    thread.join(10)
    assert done.is_set()
    database.close()


def test_account_key_rollover_is_seen_at_once() -> None:
    """The decoded account key is cached by JWK: after a rollover only the new key signs."""
    harness = Harness.build()
    wfe = WebFrontEnd(harness.ra, harness.ca, WFEConfig(base_url=BASE))
    account, old_key = harness.account()
    path = f"/acme/acct/{account.id}"

    def read_account(key: AccountKey) -> str:
        nonce = _call(wfe, "HEAD", "/acme/new-nonce")[1]["replay-nonce"]
        status, _ = _post(wfe, path, sign_jws(key, None, url=BASE + path, nonce=nonce, kid=BASE + path))
        return status

    assert read_account(old_key).startswith("200")
    assert read_account(old_key).startswith("200")
    new_key = AccountKey.generate("ec256")
    harness.ra.change_key(account, new_key.jwk)
    assert read_account(new_key).startswith("200")
    assert read_account(old_key).startswith("400")  # malformed: the signature does not verify
