"""What every command needs: paths, logging, the reporter, plugins, the CA client.

The CLI alone talks to the user: results go to stdout with ``click.echo``; progress, warnings and
errors go to stderr through ``ConsoleReporter``; the full DEBUG log goes to
``--logs-dir/letsencrypt.log`` (rotated, keys and MACs never written by the protocol library).
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Iterator, Mapping
from typing import Any

import click

from letsencrypt.acme.client import AcmeClient
from letsencrypt.acme.jws import AccountKey
from letsencrypt.cli._options import Settings
from letsencrypt.errors import ConfigError, StorageError
from letsencrypt.paths import Paths
from letsencrypt.plugin_api import Authenticator, Installer, PluginContext, PluginError, Reporter
from letsencrypt.plugins.discovery import PluginEntry, PluginRegistry, resolve_options

__all__ = ["ConsoleReporter", "Runtime"]

logger = logging.getLogger(__name__)

LOG_BYTES = 5 * 2**20
LOG_BACKUPS = 20


class ConsoleReporter:
    """Progress and warnings on stderr; a progress line is overwritten in place on a terminal."""

    def __init__(self, *, quiet: bool = False, verbose: int = 0) -> None:
        self.quiet = quiet
        self.verbose = verbose
        self._tty = sys.stderr.isatty()
        self._progress_shown = False

    def _clear(self) -> None:
        if self._progress_shown:
            click.echo("\r\033[K", nl=False, err=True)
            self._progress_shown = False

    def info(self, message: str) -> None:
        if not self.quiet:
            self._clear()
            click.echo(message, err=True)

    def warn(self, message: str) -> None:
        self._clear()
        click.secho(f"Warning: {message}", err=True, fg="yellow")

    def progress(self, message: str) -> None:
        logger.info("%s", message)
        if self.quiet:
            return
        if self._tty:
            self._clear()
            click.echo(f"{message} ...", nl=False, err=True)
            self._progress_shown = True
        elif self.verbose:
            click.echo(f"{message} ...", err=True)

    def done(self) -> None:
        self._clear()


def setup_logging(settings: Settings) -> None:
    root = logging.getLogger()
    root.setLevel(logging.DEBUG)
    for handler in list(root.handlers):
        root.removeHandler(handler)
    console = logging.StreamHandler(sys.stderr)
    console.setLevel(logging.ERROR if settings.quiet else max(logging.DEBUG, logging.WARNING - 10 * settings.verbose))
    console.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root.addHandler(console)
    try:
        settings.logs_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        handler = _RotatingLog(settings.logs_dir / "letsencrypt.log", maxBytes=LOG_BYTES, backupCount=LOG_BACKUPS,
                               encoding="utf-8")
    except OSError as err:
        click.echo(f"Warning: cannot write logs to {settings.logs_dir}: {err}", err=True)
        return
    handler.setLevel(logging.DEBUG)
    handler.setFormatter(logging.Formatter("%(asctime)s %(process)d %(levelname)s %(name)s: %(message)s"))
    root.addHandler(handler)
    for noisy in ("urllib3", "charset_normalizer"):
        logging.getLogger(noisy).setLevel(logging.INFO)


class _RotatingLog(logging.FileHandler):
    """A log file rotated by size (``letsencrypt.log.1`` ... ``.N``), as ``RotatingFileHandler`` does.

    Written here because ``logging.handlers`` costs every run ~5 ms of imports (queue, socket,
    pickle) and its handler checks ``exists``/``isfile`` and seeks to the end before every record,
    a tenth of a 100-name run's CPU. The size is read once when the file is opened and counted
    after; each record is written and flushed at once, so a crash loses nothing that was logged.
    """

    def __init__(self, filename: os.PathLike[str] | str, *, maxBytes: int, backupCount: int,
                 encoding: str | None = None) -> None:
        self.maxBytes = maxBytes
        self.backupCount = backupCount
        self._size = 0
        super().__init__(filename, mode="a", encoding=encoding)

    def _open(self) -> Any:
        stream = super()._open()
        stream.seek(0, 2)  # 'a' mode: the position is the end; tell() says how much is there
        self._size = stream.tell()
        return stream

    def doRollover(self) -> None:
        if self.stream is not None:
            self.stream.close()
            self.stream = None
        if self.backupCount > 0:
            for index in range(self.backupCount - 1, 0, -1):
                source = f"{self.baseFilename}.{index}"
                if os.path.exists(source):
                    os.replace(source, f"{self.baseFilename}.{index + 1}")
            os.replace(self.baseFilename, f"{self.baseFilename}.1")
        else:
            open(self.baseFilename, "w").close()
        self.stream = self._open()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = self.format(record) + self.terminator
            if self.stream is None:
                self.stream = self._open()
            if self._size and self._size + len(message) > self.maxBytes > 0:
                self.doRollover()
            self.stream.write(message)
            self.stream.flush()
            self._size += len(message)
        except RecursionError:
            raise
        except Exception:  # noqa: BLE001  (logging must never break the command; handleError reports it)
            self.handleError(record)


class Runtime:
    """One command's world, built from ``Settings``; plugins get only their own options."""

    def __init__(self, settings: Settings, registry: PluginRegistry, reporter: Reporter | None = None) -> None:
        self.settings = settings
        self.registry = registry
        self.paths = Paths(settings.config_dir, settings.work_dir, settings.logs_dir)
        self.reporter: Reporter = reporter or ConsoleReporter(quiet=settings.quiet, verbose=settings.verbose)

    def ensure_dirs(self) -> None:
        for folder in (self.paths.config_dir, self.paths.work_dir):
            try:
                folder.mkdir(parents=True, exist_ok=True, mode=0o755)
            except OSError as err:
                raise StorageError(f"cannot create {folder}: {err}",
                                   hint="run as root or give --config-dir/--work-dir/--logs-dir you can write") from err

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        from letsencrypt.storage.lock import ConfigLock

        self.ensure_dirs()
        with ConfigLock(self.paths.lock_file):
            yield

    def client(self, server: str, key: AccountKey, account_url: str | None = None) -> AcmeClient:
        verify: bool | str = self.settings.ca_bundle or True
        return AcmeClient(server, key, account_url=account_url, verify=verify)

    # --- plugins --------------------------------------------------------------------------------

    def entry(self, name: str) -> PluginEntry:
        entry = self.registry.get(name)
        if entry is None:
            broken = next((b for b in self.registry.broken if b.name == name), None)
            if broken is not None:
                raise ConfigError(f"the {name} plugin failed to load: {broken.reason}",
                                  hint=f"reinstall {broken.distribution or 'the plugin'} or pick another plugin")
            known = ", ".join(sorted(e.name for e in self.registry))
            raise ConfigError(f"no plugin named {name!r}",
                              hint=f"installed plugins: {known}; see `letsencrypt plugins`")
        return entry

    def plugin_options(self, entry: PluginEntry, saved: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """The plugin's options: flags given now win over values saved for renewal."""
        given: dict[str, Any] = dict(saved or {})
        for option in entry.options:
            value = self.settings.plugin_values.get(option.key(entry.name))
            if value not in (None, (), False):
                given[option.name] = list(value) if isinstance(value, tuple) else value
        if entry.name == "webroot" and self.settings.webroot_map:
            given["map"] = dict(self.settings.webroot_map)
        try:
            return resolve_options(entry.name, entry.options, given)
        except PluginError as err:
            raise ConfigError(err.message, hint=err.hint) from err

    def context(
        self, options: Mapping[str, Any], *, server: str, ports: Mapping[str, Any] | None = None
    ) -> PluginContext:
        ports = ports or {}
        return PluginContext(
            options=options,
            config_dir=self.paths.config_dir,
            work_dir=self.paths.work_dir,
            logs_dir=self.paths.logs_dir,
            reporter=self.reporter,
            http01_port=int(ports.get("http01_port") or self.settings.http01_port),
            http01_address=str(ports.get("http01_address") or self.settings.http01_address),
            https_port=int(ports.get("https_port") or self.settings.https_port),
            interactive=self.settings.interactive,
            dry_run=self.settings.dry_run,
            server_url=server,
        )

    def make_plugin(self, entry: PluginEntry, context: PluginContext) -> Any:
        try:
            plugin = entry.plugin_class(context)
            plugin.prepare()
        except PluginError:
            raise
        except Exception as err:
            raise ConfigError(f"the {entry.name} plugin failed to start: {err}",
                              hint="see the log file for details; report this to the plugin's authors") from err
        return plugin

    def authenticator(self, name: str, context: PluginContext) -> Authenticator:
        entry = self.entry(name)
        if not entry.is_authenticator:
            raise ConfigError(f"{name} is not an authenticator", hint="choose one from `letsencrypt plugins`")
        plugin: Authenticator = self.make_plugin(entry, context)
        return plugin

    def installer(self, name: str, context: PluginContext) -> Installer:
        entry = self.entry(name)
        if not entry.is_installer:
            raise ConfigError(f"{name} is not an installer", hint="choose one from `letsencrypt plugins`")
        plugin: Installer = self.make_plugin(entry, context)
        return plugin

