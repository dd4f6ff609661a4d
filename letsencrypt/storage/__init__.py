"""The client's storage: accounts, certificate lineages, renewal configurations and the lock.

Everything lives under the directories of a ``letsencrypt.paths.Paths`` value, in certbot's layout
(see ``letsencrypt.paths``). Writes are atomic and durable (temporary file, fsync, rename, folder
fsync); private keys are 0600 and private folders 0700. Callers hold a ``ConfigLock`` while they
change anything, and call ``recover`` once at start-up to finish or undo what a crashed run left.

Imports: the standard library, cryptography, ``letsencrypt.acme``, ``letsencrypt.errors`` and
``letsencrypt.paths``; never click, plugins or ca_stub.
"""

from letsencrypt.storage.accounts import AccountStore, StoredAccount
from letsencrypt.storage.lineage import (
    BrokenLineage,
    Lineage,
    LineageScan,
    find_all,
    lineage_name_for,
    recover,
    scan,
    unique_name,
)
from letsencrypt.storage.lock import ConfigLock
from letsencrypt.storage.renewal_config import Hooks, LineageFiles, RenewalConfig

__all__ = [
    "AccountStore",
    "BrokenLineage",
    "ConfigLock",
    "Hooks",
    "Lineage",
    "LineageFiles",
    "LineageScan",
    "RenewalConfig",
    "StoredAccount",
    "find_all",
    "lineage_name_for",
    "recover",
    "scan",
    "unique_name",
]
