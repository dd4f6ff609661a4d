"""The save journal of a lineage, ``archive/NAME/.pending``: what an interrupted save was doing.

An entry is a JSON object ``{"version": N, "phase": "writing" | "ready", "create": bool,
"renewal_conf": text | null}`` written atomically; ``lineage`` documents what each phase means and
what ``recover`` does with it. An unreadable entry is logged and dropped: a save interrupted before
its journal existed left nothing that the next save could trip over.

Imports: the standard library and the storage helpers.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from letsencrypt.storage._files import atomic_write

__all__ = ["read", "remove", "write"]

logger = logging.getLogger(__name__)

_NAME = ".pending"


def write(archive_dir: Path, entry: dict[str, Any]) -> None:
    atomic_write(archive_dir / _NAME, json.dumps(entry).encode("utf-8"), mode=0o600, label="journal")


def remove(archive_dir: Path) -> None:
    (archive_dir / _NAME).unlink(missing_ok=True)


def read(archive_dir: Path) -> dict[str, Any] | None:
    """The pending entry, or None when there is none (or it was unusable and has been dropped)."""
    path = archive_dir / _NAME
    try:
        entry = json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, NotADirectoryError):
        return None
    except (OSError, ValueError) as err:
        logger.warning("ignoring the unreadable journal %s: %s", path, err)
        path.unlink(missing_ok=True)
        return None
    if not isinstance(entry, dict) or not isinstance(entry.get("version"), int):
        logger.warning("ignoring the malformed journal %s", path)
        path.unlink(missing_ok=True)
        return None
    return entry
