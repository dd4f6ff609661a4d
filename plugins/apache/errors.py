"""Errors of the Apache plugin's reading layer (tree, loader, model).

Role: the exceptions raised while reading and editing the configuration, each naming the file and
line it is about, so that the client can tell the user where to look. Nothing is edited when one of
them is raised during loading: the loader reads every file Apache reads before anyone edits.

    letsencrypt.plugin_api.PluginError
    ├── MisconfigurationError
    │   └── ApacheConfigError        the configuration cannot be read as Apache reads it
    │       ├── UnreadableFileError  a file the lens cannot parse, or that cannot be read (file, line, column)
    │       └── IncludeError         an Include that Apache would refuse: no such file, no match, a loop
    └── TreeError                    an Augeas operation failed: a bad path, a save the lens rejects
        └── StaleNodeError           a node read before its file was edited was used to edit it again

Allowed imports: the standard library and ``letsencrypt.plugin_api``.
"""

from __future__ import annotations

from letsencrypt.plugin_api import MisconfigurationError, PluginError

__all__ = ["ApacheConfigError", "IncludeError", "StaleNodeError", "TreeError", "UnreadableFileError"]


class ApacheConfigError(MisconfigurationError):
    """The configuration cannot be read as Apache reads it; ``file`` and ``line`` say where (0: unknown)."""

    def __init__(self, message: str, *, file: str, line: int = 0, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.file = file
        self.line = line


class UnreadableFileError(ApacheConfigError):
    """A configuration file the Httpd lens cannot parse (or the system cannot read).

    ``line`` and ``column`` (1-based; 0 when unknown) are where parsing stopped, ``detail`` is
    Augeas's own message.
    """

    def __init__(self, file: str, line: int, column: int, detail: str) -> None:
        where = f"{file}:{line}:{column}" if line else file
        super().__init__(
            f"cannot read the Apache configuration file {where}: {detail}",
            file=file,
            line=line,
            hint="fix the syntax there (`apache2ctl -t` names Apache's own objection, if any); nothing was changed",
        )
        self.column = column
        self.detail = detail


class IncludeError(ApacheConfigError):
    """An ``Include`` Apache would refuse: a missing file, a wildcard without match, an include loop."""


class TreeError(PluginError):
    """An Augeas operation failed: a path that matches nothing, or a change the lens cannot write back."""


class StaleNodeError(TreeError):
    """A node was used after its file had been edited; read the file again (``ConfigTree.file``)."""
