"""The log file handler: records written and flushed at once, rotated by size, backups kept."""

from __future__ import annotations

import logging
from pathlib import Path

from letsencrypt.cli._runtime import _RotatingLog


def _handler(path: Path, max_bytes: int, backups: int = 2) -> _RotatingLog:
    handler = _RotatingLog(path, maxBytes=max_bytes, backupCount=backups, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(message)s"))
    return handler


def _record(message: str) -> logging.LogRecord:
    return logging.LogRecord("t", logging.DEBUG, __file__, 1, message, None, None)


def test_each_record_is_on_disk_at_once(tmp_path: Path) -> None:
    handler = _handler(tmp_path / "letsencrypt.log", 10_000)
    try:
        handler.emit(_record("first"))
        assert (tmp_path / "letsencrypt.log").read_text() == "first\n"
    finally:
        handler.close()


def test_rotates_when_the_next_record_would_pass_the_size(tmp_path: Path) -> None:
    path = tmp_path / "letsencrypt.log"
    handler = _handler(path, 25)
    try:
        for line in ("a" * 10, "b" * 10, "c" * 10, "d" * 10, "e" * 10):
            handler.emit(_record(line))
    finally:
        handler.close()
    assert path.read_text() == "e" * 10 + "\n"
    assert (tmp_path / "letsencrypt.log.1").read_text() == "c" * 10 + "\n" + "d" * 10 + "\n"
    assert (tmp_path / "letsencrypt.log.2").read_text() == "a" * 10 + "\n" + "b" * 10 + "\n"
    assert not (tmp_path / "letsencrypt.log.3").exists()  # backupCount 2


def test_counts_what_an_earlier_run_left(tmp_path: Path) -> None:
    path = tmp_path / "letsencrypt.log"
    path.write_text("x" * 20 + "\n")
    handler = _handler(path, 25)
    try:
        handler.emit(_record("y" * 10))
    finally:
        handler.close()
    assert path.read_text() == "y" * 10 + "\n"
    assert (tmp_path / "letsencrypt.log.1").read_text() == "x" * 20 + "\n"


def test_a_record_bigger_than_the_limit_still_goes_to_a_file(tmp_path: Path) -> None:
    path = tmp_path / "letsencrypt.log"
    handler = _handler(path, 5)
    try:
        handler.emit(_record("long line"))
        handler.emit(_record("another"))
    finally:
        handler.close()
    assert path.read_text() == "another\n"
    assert (tmp_path / "letsencrypt.log.1").read_text() == "long line\n"


def test_without_backups_the_file_starts_over(tmp_path: Path) -> None:
    path = tmp_path / "letsencrypt.log"
    handler = _handler(path, 15, backups=0)
    try:
        handler.emit(_record("a" * 10))
        handler.emit(_record("b" * 10))
    finally:
        handler.close()
    assert path.read_text() == "b" * 10 + "\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["letsencrypt.log"]


def test_the_setup_writes_debug_records_to_the_file(tmp_path: Path) -> None:
    import logging as std_logging

    from letsencrypt.cli._runtime import LOG_BACKUPS, LOG_BYTES

    handler = _RotatingLog(tmp_path / "x.log", maxBytes=LOG_BYTES, backupCount=LOG_BACKUPS)
    logger = std_logging.getLogger("letsencrypt.test-log-file")
    logger.addHandler(handler)
    logger.setLevel(std_logging.DEBUG)
    try:
        logger.debug("hello %s", "there")
    finally:
        logger.removeHandler(handler)
        handler.close()
    assert (tmp_path / "x.log").read_text() == "hello there\n"
