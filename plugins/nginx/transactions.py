"""Checkpoints of the nginx configuration: the public plugin contract's, named for nginx.

Role: the transaction layer under the installer and the authenticator. Every write of a
configuration file goes through :meth:`Checkpoints.commit`, which first records the exact bytes (and
mode and owner) of each file it is about to replace and notes each file it creates, then writes the
new files atomically (temporary file, fsync, rename); rolling back restores them byte for byte and
removes what it created. The machinery, including crash recovery, is
:mod:`letsencrypt.plugin_api.checkpoints`, which any third-party installer can use the same way.
Checkpoints live in ``<work-dir>/nginx-checkpoints``.

Allowed imports: the standard library and ``letsencrypt.plugin_api``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from letsencrypt.plugin_api import checkpoints
from letsencrypt.plugin_api.checkpoints import Checkpoint, TransactionError
from letsencrypt.plugin_api.files import atomic_write

__all__ = ["Checkpoint", "Checkpoints", "TransactionError", "atomic_write"]


def _no_step(_: str) -> None:
    """The production value of the ``step`` test seam (tests raise from it to simulate a crash)."""


class Checkpoints(checkpoints.Checkpoints):
    """The nginx plugin's checkpoints in ``root`` (``<work-dir>/nginx-checkpoints``)."""

    def __init__(self, root: Path, *, step: Callable[[str], None] = _no_step) -> None:
        super().__init__(root, server="nginx", step=step)
