"""The client's errors: what failed, for what, and what the user should try next.

Every error the client shows a person derives from ``LetsencryptError``; the CLI boundary turns it
into a click exception that prints ``message``, then ``hint`` when there is one, and exits with
``exit_code``. Protocol failures keep their own root (``letsencrypt.acme.AcmeError``) and are
chained (``raise ... from err``) when the client wraps them; the plugin errors (``PluginError``
and its children) live in ``letsencrypt.plugin_api`` because plugins may import only that module.

::

    LetsencryptError            root of the client's errors; message, hint, exit_code (1)
    ├── ConfigError             bad or missing flags/options (e.g. a flag -n needs and did not get)
    ├── StorageError            a file under --config-dir cannot be read or written, or is corrupt
    │   └── LockError           another run holds the config directory's lock (hint names its pid)
    ├── AccountError            no usable account for the CA, or the account was refused
    └── ChallengeFailed         the CA could not validate a domain (the server's detail inside)

Imports: the standard library only.
"""

from __future__ import annotations

__all__ = [
    "AccountError",
    "ChallengeFailed",
    "ConfigError",
    "LetsencryptError",
    "LockError",
    "StorageError",
]


class LetsencryptError(Exception):
    """Root of the client's errors: a message for a person, the next step, and an exit code."""

    exit_code: int = 1

    def __init__(self, message: str, *, hint: str | None = None, exit_code: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        if exit_code is not None:
            self.exit_code = exit_code

    def __str__(self) -> str:
        return self.message if self.hint is None else f"{self.message}\nHint: {self.hint}"


class ConfigError(LetsencryptError):
    """The options cannot be used as given: a missing flag, a conflicting pair, a bad value."""


class StorageError(LetsencryptError):
    """A file of the configuration directory cannot be read, written or understood."""


class LockError(StorageError):
    """Another run holds the lock of the configuration directory; the hint names its pid."""


class AccountError(LetsencryptError):
    """There is no usable ACME account for the CA, or the CA refused it."""


class ChallengeFailed(LetsencryptError):
    """The CA could not validate an identifier; the message carries the CA's detail."""
