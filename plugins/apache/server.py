"""The Apache instance the plugin works on: its configuration as read, its checkpoints, and its control.

Role: what the installer and the authenticator share. :class:`ApacheSite` reads the configuration
as Apache does (``model.ApacheConfig``), applies a set of changes as one checkpoint
(:meth:`ApacheSite.apply`: files and links written through the transaction, tree edits saved by
Augeas after their files are recorded, added lines indented like their neighbours), tests and
reloads the server waiting for checks instead of sleeping (:meth:`ApacheSite.reload`), and undoes
what this process changed (:meth:`ApacheSite.revert_mine`).

Allowed imports: the standard library, ``letsencrypt.plugin_api``; this package.
"""

from __future__ import annotations

import contextlib
import functools
import ipaddress
import logging
import shutil
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from letsencrypt.plugin_api import MisconfigurationError, PluginContext, PluginError

from .conditions import ServerBuild, server_build
from .control import Apache, ApacheNotRunning, served_leaf
from .layout import reindent
from .loader import LoadOptions
from .model import Address, ApacheConfig, VirtualHost
from .transactions import Checkpoint, Checkpoints, Transaction
from .tree import ConfigTree

__all__ = ["ApacheSite", "Check", "certificate_check", "connect_host"]

logger = logging.getLogger(__name__)

Check = Callable[[], "str | None"]
"""A check after a reload: None when what it looks for is served, else what it saw."""

CHECKPOINTS = "apache-checkpoints"
DEFAULT_ROOT = "/etc/apache2"
DEFAULT_CTL = "apache2ctl"
_SITES: dict[tuple[str, str, str], ApacheSite] = {}


class ApacheSite:
    """One server root, read once per process and changed only through :meth:`apply`."""

    def __init__(self, context: PluginContext) -> None:
        self.context = context
        self.server_root = Path(context.options.get("server-root") or DEFAULT_ROOT)
        self.control = Apache(str(context.options.get("ctl") or DEFAULT_CTL), self.server_root)
        self.checkpoints = Checkpoints(context.work_dir / CHECKPOINTS)
        self.mine: list[str] = []  # checkpoint ids this process saved (this unit of work: see settle)
        self._confirmed: set[str] = set()
        self._config: ApacheConfig | None = None
        self._stale = False  # the tree was saved since the model was built
        self._prepared = False

    # --- reading ---------------------------------------------------------------------------------

    @classmethod
    def shared(cls, context: PluginContext) -> ApacheSite:
        """The site for this server root and work dir, one per process.

        The client makes the authenticator and the installer as two plugin objects; sharing the
        site reads the configuration once and keeps one list of this run's checkpoints.
        """
        key = (str(Path(context.options.get("server-root") or DEFAULT_ROOT).resolve()),
               str(context.options.get("ctl") or DEFAULT_CTL), str(context.work_dir.resolve()))
        site = _SITES.get(key)
        if site is None:
            site = _SITES[key] = cls(context)
        return site

    def prepare(self) -> None:
        """Binary present, crashed changes rolled back, configuration readable: else a PluginError."""
        if self._prepared:
            return
        if shutil.which(self.control.ctl) is None and not Path(self.control.ctl).is_file():
            raise PluginError(f"the Apache control program {self.control.ctl!r} is not installed",
                              hint="install apache2, or give its path with --apache-ctl")
        if not self.server_root.is_dir():
            raise MisconfigurationError(f"the Apache server root {self.server_root} does not exist",
                                        hint="give it with --apache-server-root")
        rolled_back = self.checkpoints.recover()
        if rolled_back:
            self.context.reporter.warn(
                "rolled back Apache configuration changes an interrupted run left: " + "; ".join(rolled_back))
            with contextlib.suppress(ApacheNotRunning):
                self.control.config_test()
                self.control.graceful()
        self.read()
        self._prepared = True

    def read(self) -> ApacheConfig:
        """Read (again) the configuration; files parsed before and unchanged are not parsed again."""
        options = LoadOptions(self.server_root, config_file=self.control.main_config.name,
                              environment=self.control.environment(), build=_build(self.control.binary))
        tree = self._config.tree if self._config is not None else None
        self._config = ApacheConfig.read(options, tree)
        self._stale = False
        return self._config

    @property
    def config(self) -> ApacheConfig:
        """The configuration as last read; read again when a saved change made it stale."""
        return self._config if self._config is not None and not self._stale else self.read()

    def forget(self) -> None:
        """Drop the tree: the next read parses every file from disk again (after a failure)."""
        if self._config is not None:
            self._config.tree.close()
        self._config = None

    # --- changing --------------------------------------------------------------------------------

    def apply(self, title: str, change: Callable[[Transaction, ConfigTree], None], *, temporary: bool = False,
              scratch: bool = False) -> Checkpoint:
        """Run ``change`` in one transaction, then save its tree edits; one checkpoint for all of it.

        ``change`` writes files and links with ``transaction.write`` (and may :meth:`read` again to
        see them) and edits the tree it is given: the configuration's own tree, or with ``scratch``
        a tree of its own (only the files it loads), so that the configuration's tree is still true
        once a temporary change (a challenge) is rolled back byte for byte. Any error restores every
        file (and forgets the configuration's tree if it was edited).
        """
        tree = ConfigTree() if scratch else self.config.tree
        rewritten = False
        try:
            with self.checkpoints.transaction(title, temporary=temporary) as transaction:
                change(transaction, tree)
                rewritten = self._save_tree(transaction, tree)
        except BaseException:
            if not scratch:
                self.forget()
            raise
        finally:
            if scratch:
                tree.close()
        checkpoint = transaction.checkpoint
        assert checkpoint is not None
        if checkpoint.files:
            self.mine.append(checkpoint.id)
            self._stale = not scratch
        if rewritten and not scratch:
            self.forget()  # its spans and texts are those before the indentation: parse the files again
        return checkpoint

    def _save_tree(self, transaction: Transaction, tree: ConfigTree) -> bool:
        """Save the tree's edits, then indent the added lines like their neighbours; True if that rewrote a file.

        Augeas knows nothing of that last rewrite, so a tree that saw it must not be used again.
        """
        edited = [Path(file) for file in tree.edited]
        if not edited:
            return False
        transaction.record(edited)
        before = {file: _text(file) for file in edited}
        tree.save()
        fixed = {}
        for file, old in before.items():
            new = _text(file)
            better = reindent(old, new) if old is not None and new is not None else new
            if better is not None and better != new:
                fixed[file] = better.encode("utf-8", "surrogateescape")
        transaction.write(fixed)
        return bool(fixed)

    def revert_mine(self) -> list[str]:
        """Undo every checkpoint this process saved, newest first; their titles."""
        titles = [c.title for c in self.checkpoints.entries() if c.id in self.mine]
        self.checkpoints.revert(self.mine)
        self.mine.clear()
        self.forget()
        return titles

    def revert(self, checkpoint: Checkpoint, *, scratch: bool = False) -> None:
        """Undo one checkpoint; the configuration's tree stays valid if it was made on a scratch tree."""
        self.checkpoints.revert([checkpoint.id])
        with contextlib.suppress(ValueError):
            self.mine.remove(checkpoint.id)
        if not scratch:
            self.forget()

    def confirm_mine(self) -> None:
        """Apache runs with what this process saved: crash recovery must keep it."""
        self.checkpoints.confirm(self.mine)
        self._confirmed.update(self.mine)

    def settle(self) -> None:
        """A new unit of work begins (the next lineage of a ``renew``): what is confirmed is no longer ours
        to undo in :meth:`revert_mine`."""
        self.mine = [checkpoint_id for checkpoint_id in self.mine if checkpoint_id not in self._confirmed]

    # --- the running server ------------------------------------------------------------------------

    def reload(self, checks: Sequence[Check] = (), *, test: bool = True) -> float:
        """``configtest`` (unless ``test`` is false: a configuration known to work), then a graceful
        reload that returns once every check passes; the seconds taken."""
        if test:
            self.control.config_test()

        def all_pass() -> str | None:
            for check in checks:
                seen = check()
                if seen is not None:
                    return seen
            return None

        return self.control.graceful(all_pass)


@functools.cache
def _build(binary: str) -> ServerBuild:
    """The server's version and compiled-in modules, asked once per process (two runs of the binary)."""
    return server_build(binary)


def _text(file: Path) -> str | None:
    try:
        return file.read_bytes().decode("utf-8", "surrogateescape")
    except FileNotFoundError:
        return None


def connect_host(config: ApacheConfig, vhost: VirtualHost | None, port: int) -> str:
    """Where to connect to reach ``vhost`` on ``port``: its own IP, a Listen's IP, else loopback."""
    candidates: Iterable[Address] = vhost.addresses if vhost is not None else ()
    for address in [*candidates, *config.listens]:
        if address.serves_port(port) and not address.is_wildcard and _is_ip(address.host):
            return address.host
    return "127.0.0.1"


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def certificate_check(host: str, port: int, name: str, der: bytes) -> Check:
    """A check that ``host``:``port`` presents the certificate ``der`` for SNI ``name``."""
    def check() -> str | None:
        try:
            served = served_leaf(host, port, name, timeout=1.0)
        except OSError as err:
            return f"{host}:{port} (SNI {name}): {err}"
        return None if served == der else f"{host}:{port} still presents another certificate for {name}"
    return check
