"""Errors of the nginx plugin's parser layer.

::

    letsencrypt.plugin_api.MisconfigurationError
    ├── NginxParseError        a file nginx would reject, or one that cannot be read or included:
    │                          path, line and column of the problem
    │   └── NginxIncludeCycleError  an include that would include itself again
    └── NginxCrossCheckError   ``nginx -T`` loaded other files (or other text) than the loader

Every one stops the run before anything is edited: a configuration we cannot read completely is
never half-understood and never skipped silently.

Allowed imports: the standard library and ``letsencrypt.plugin_api``.
"""

from __future__ import annotations

from letsencrypt.plugin_api import MisconfigurationError

__all__ = ["NginxCrossCheckError", "NginxIncludeCycleError", "NginxParseError"]


class NginxParseError(MisconfigurationError):
    """``path:line:column: message``; line and column count from 1 (column in characters)."""

    def __init__(self, path: str | None, line: int, column: int, message: str, *, hint: str | None = None) -> None:
        self.path = path
        self.line = line
        self.column = column
        self.reason = message
        where = f"{path or '<string>'}:{line}:{column}"
        super().__init__(
            f"{where}: {message}",
            hint=hint or "fix the nginx configuration (nginx -t shows what nginx makes of it), then run again",
        )


class NginxIncludeCycleError(NginxParseError):
    """An ``include`` whose files include, directly or not, the file that contains it."""


class NginxCrossCheckError(MisconfigurationError):
    """The files ``nginx -T`` reports differ from those the loader read (``missing``/``extra``)."""

    def __init__(self, message: str, *, missing: list[str], extra: list[str], differing: list[str]) -> None:
        self.missing = missing  # nginx loaded them, we did not
        self.extra = extra  # we loaded them, nginx did not
        self.differing = differing  # both loaded them, with different text
        super().__init__(message, hint="report this as a bug of the nginx plugin, with the configuration")
