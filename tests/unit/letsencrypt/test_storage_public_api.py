"""The storage package's public names and the client's error tree, pinned (STYLE.md sections 2 and 5)."""

from __future__ import annotations

import letsencrypt.errors as errors
import letsencrypt.storage as storage


def test_storage_exports() -> None:
    assert sorted(storage.__all__) == [
        "AccountStore", "BrokenLineage", "ConfigLock", "Hooks", "Lineage", "LineageFiles", "LineageScan",
        "RenewalConfig", "StoredAccount", "find_all", "lineage_name_for", "recover", "scan", "unique_name",
    ]
    for name in storage.__all__:
        assert getattr(storage, name) is not None


def test_error_tree() -> None:
    assert sorted(errors.__all__) == [
        "AccountError", "ChallengeFailed", "ConfigError", "LetsencryptError", "LockError", "StorageError",
    ]
    for name in ("ConfigError", "StorageError", "AccountError", "ChallengeFailed"):
        assert getattr(errors, name).__bases__ == (errors.LetsencryptError,)
    assert errors.LockError.__bases__ == (errors.StorageError,)
    for name in errors.__all__:
        assert name in (errors.__doc__ or ""), f"{name} is missing from the drawn tree"
    error = errors.ConfigError("missing --email", hint="give -m or --register-unsafely-without-email")
    assert (error.message, error.exit_code) == ("missing --email", 1)
    assert error.hint is not None and error.hint.startswith("give -m")
