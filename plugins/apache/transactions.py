"""Checkpoints of the Apache configuration: the public plugin contract's, named for Apache.

Role: the transaction layer under the installer and the authenticator. Every change on disk (a file
rewritten by Augeas or by us, a ``sites-available`` file created, a ``sites-enabled`` or
``mods-enabled`` symlink, a temporary challenge file) happens inside a :class:`Transaction`; the
machinery (exact bytes, modes, owners and symlinks, crash recovery) is
:mod:`letsencrypt.plugin_api.checkpoints`, which any third-party installer can use the same way.
Checkpoints live in ``<work-dir>/apache-checkpoints``.

Allowed imports: the standard library and ``letsencrypt.plugin_api``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from letsencrypt.plugin_api import checkpoints
from letsencrypt.plugin_api.checkpoints import Checkpoint, Transaction, TransactionError
from letsencrypt.plugin_api.files import Content, Link, atomic_write

__all__ = ["Checkpoint", "Checkpoints", "Content", "Link", "Transaction", "TransactionError", "atomic_write"]


def _no_step(_: str) -> None:
    """The production value of the ``step`` test seam (tests raise from it to simulate a crash)."""


class Checkpoints(checkpoints.Checkpoints):
    """The Apache plugin's checkpoints in ``root`` (``<work-dir>/apache-checkpoints``)."""

    def __init__(self, root: Path, *, step: Callable[[str], None] = _no_step) -> None:
        super().__init__(root, server="Apache", step=step)
