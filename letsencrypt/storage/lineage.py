"""Certificate lineages in certbot's layout, switched to a new version in one crash-safe step.

A lineage ``NAME`` is::

    archive/NAME/{cert,chain,fullchain,privkey}N.pem    every version ever saved (privkey 0600)
    live/NAME/{cert,chain,fullchain,privkey}.pem        ../../archive/NAME/<kind>N.pem, one version
    renewal/NAME.conf                                   how to renew it (``renewal_config``)

**Crash safety.** Web servers read ``live/NAME/*.pem`` at any moment, including right after a crash
and before any recovery: those four paths must always name one version whose certificate matches
its key. Switching four symlinks one by one cannot give that (a kill between two renames leaves a
new certificate beside an old key until a later run repairs it), so ``live/NAME`` goes through one
indirection (``_live``): it is a symlink to a hidden generation folder ``live/.NAME.vN`` holding the
four certbot-style relative links. The paths web servers use stay the same; replacing that one
symlink with ``rename(2)`` is the commit point and switches all four files at once. A certbot
lineage (a real ``live/NAME`` folder) is converted on its first new version.

Saving a version follows a journal, ``archive/NAME/.pending`` (written atomically), so that the
next run's ``recover`` knows what an interrupted save left:

1. journal ``writing N``; 2. the four archive files of version N (each temp, fsync, rename);
3. journal ``ready N`` with the new renewal configuration; 4. generation folder ``.NAME.vN``;
5. switch ``live/NAME`` (commit); 6. renewal configuration; 7. old generation folders removed;
8. journal removed.

``recover`` rolls a ``writing`` save back (the partial archive files go, N is free again) and a
``ready`` one forward (its files are complete and durable, and the certificate was already paid
for with a CA order), so after a crash at any point the lineage is either the old or the new
version and a following save works. Callers hold the ``ConfigLock``; ``recover`` runs at start-up.

Imports: the standard library, cryptography, ``letsencrypt.acme.crypto``, ``letsencrypt.errors``,
``letsencrypt.paths`` and the storage modules.
"""

from __future__ import annotations

import datetime
import logging
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from letsencrypt.acme import MessageError, crypto
from letsencrypt.acme._lazy import lazy_module
from letsencrypt.acme.records import record
from letsencrypt.errors import ConfigError, StorageError
from letsencrypt.paths import Paths
from letsencrypt.storage import _journal, _live
from letsencrypt.storage import renewal_config as _renewal
from letsencrypt.storage._files import atomic_write, ensure_dir, fsync_dir, remove_temporaries
from letsencrypt.storage._live import KINDS
from letsencrypt.storage._material import material as checked_material
from letsencrypt.storage._naming import RESERVED_NAMES, check_name, lineage_name_for, taken, unique_name
from letsencrypt.storage.renewal_config import LineageFiles, RenewalConfig

if TYPE_CHECKING:
    from cryptography import x509
else:
    x509 = lazy_module("cryptography.x509")  # imported on first use: see letsencrypt.acme._lazy

__all__ = [
    "KINDS",
    "BrokenLineage",
    "Lineage",
    "LineageScan",
    "check_name",
    "find_all",
    "lineage_name_for",
    "recover",
    "scan",
    "unique_name",
]

logger = logging.getLogger(__name__)

Step = Callable[[str], None]


def _no_step(_: str) -> None:
    """The production value of the ``_fail_at`` test seam."""


class Lineage:
    """One lineage ``name`` under ``paths``; reading methods look at the disk each time they are asked."""

    def __init__(self, paths: Paths, name: str) -> None:
        self.paths = paths
        self.name = check_name(name)
        self._config: RenewalConfig | None = None
        self._cert: tuple[int, x509.Certificate] | None = None

    def __repr__(self) -> str:
        return f"Lineage({self.name!r}, {self.paths.config_dir})"

    # --- layout ------------------------------------------------------------------------------------

    @property
    def live_dir(self) -> Path:
        return self.paths.live(self.name)

    @property
    def archive_dir(self) -> Path:
        return self.paths.archive(self.name)

    @property
    def renewal_conf_path(self) -> Path:
        return self.paths.renewal_conf(self.name)

    def live_file(self, kind: str) -> Path:
        """``live/NAME/<kind>.pem``: the stable path web server configurations point at."""
        if kind not in KINDS:
            raise ValueError(f"unknown lineage file kind {kind!r}")
        return self.live_dir / f"{kind}.pem"

    @property
    def cert_path(self) -> Path:
        return self.live_file("cert")

    @property
    def chain_path(self) -> Path:
        return self.live_file("chain")

    @property
    def fullchain_path(self) -> Path:
        return self.live_file("fullchain")

    @property
    def key_path(self) -> Path:
        return self.live_file("privkey")

    def archive_file(self, kind: str, version: int) -> Path:
        return self.archive_dir / f"{kind}{version}.pem"

    @property
    def files(self) -> LineageFiles:
        return LineageFiles(self.archive_dir, self.cert_path, self.key_path, self.chain_path, self.fullchain_path)

    # --- reading -----------------------------------------------------------------------------------

    def _archive_versions(self) -> dict[str, set[int]]:
        found: dict[str, set[int]] = {kind: set() for kind in KINDS}
        pattern = re.compile(r"(cert|chain|fullchain|privkey)([0-9]+)\.pem")
        if self.archive_dir.is_dir():
            for entry in self.archive_dir.iterdir():
                match = pattern.fullmatch(entry.name)
                if match:
                    found[match.group(1)].add(int(match.group(2)))
        return found

    @property
    def versions(self) -> tuple[int, ...]:
        """The versions with all four archive files, ascending."""
        kinds = self._archive_versions().values()
        return tuple(sorted(set.intersection(*kinds)))

    def _link_version(self, kind: str) -> int:
        link = self.live_file(kind)
        if not link.is_symlink():
            raise StorageError(f"{link} is missing or is not a link into {self.archive_dir}")
        resolved = Path(os.path.realpath(link))
        match = re.fullmatch(re.escape(kind) + r"([0-9]+)\.pem", resolved.name)
        if not match or resolved.parent != Path(os.path.realpath(self.archive_dir)) or not resolved.is_file():
            raise StorageError(f"{link} does not point at a {kind}N.pem file of {self.archive_dir}")
        return int(match.group(1))

    @property
    def current_version(self) -> int:
        """The version the live files show; ``StorageError`` when they are missing or disagree."""
        found = {kind: self._link_version(kind) for kind in KINDS}
        if len(set(found.values())) != 1:
            shown = ", ".join(f"{kind} {version}" for kind, version in found.items())
            raise StorageError(
                f"the live files of {self.name} point at different versions ({shown})",
                hint=f"check {self.live_dir}; `letsencrypt renew --cert-name {self.name} --force-renewal` "
                "writes a consistent new version",
            )
        return found["cert"]

    @property
    def renewal_config(self) -> RenewalConfig:
        if self._config is None:
            if not self.renewal_conf_path.is_file():
                raise StorageError(
                    f"{self.name} has no renewal configuration ({self.renewal_conf_path})",
                    hint=f"delete it with `letsencrypt delete --cert-name {self.name}` and obtain it again",
                )
            self._config = _renewal.load(self.renewal_conf_path)
        return self._config

    def read(self, kind: str) -> bytes:
        """The current content of ``live/NAME/<kind>.pem``."""
        try:
            return self.live_file(kind).read_bytes()
        except OSError as err:
            raise StorageError(f"cannot read {self.live_file(kind)}: {err}") from err

    @property
    def certificate(self) -> x509.Certificate:
        version = self.current_version
        if self._cert is None or self._cert[0] != version:
            try:
                certificate = crypto.split_pem_chain(self.read("cert").decode("ascii", "replace"))[0]
            except MessageError as err:
                raise StorageError(f"{self.cert_path} is not a certificate: {err}") from err
            self._cert = (version, certificate)
        return self._cert[1]

    @property
    def names(self) -> tuple[str, ...]:
        """The subjectAltNames of the current certificate, in certificate order."""
        return tuple(identifier.value for identifier in crypto.certificate_names(self.certificate))

    @property
    def not_before(self) -> datetime.datetime:
        return crypto.not_before(self.certificate)

    @property
    def not_after(self) -> datetime.datetime:
        return crypto.not_after(self.certificate)

    @property
    def key_type(self) -> str:
        """A display name of the current key, such as ``ECDSA P-256`` or ``RSA 2048``."""
        return crypto.key_type_of(self.certificate.public_key())

    def check(self) -> None:
        """``StorageError`` unless the renewal configuration, the live links and the certificate are usable."""
        _ = self.renewal_config
        _ = self.certificate

    @classmethod
    def open(cls, paths: Paths, name: str) -> Lineage:
        """The lineage ``name``, checked (``check``)."""
        lineage = cls(paths, name)
        lineage.check()
        return lineage

    # --- writing -----------------------------------------------------------------------------------

    @classmethod
    def create(
        cls,
        paths: Paths,
        name: str,
        cert_pem: str | bytes,
        chain_pem: str | bytes,
        key_pem: bytes,
        renewal_config: RenewalConfig,
        *,
        _fail_at: Step | None = None,
    ) -> Lineage:
        """A new lineage holding version 1; ``StorageError`` if ``name`` is taken (see ``unique_name``)."""
        lineage = cls(paths, name)
        lineage._recover()
        if taken(paths, name):
            raise StorageError(
                f"a certificate named {name} already exists in {paths.config_dir}",
                hint="renew or expand it with --cert-name, or choose another name",
            )
        material = checked_material(cert_pem, chain_pem, key_pem)
        try:
            for folder in (paths.archive_dir, paths.live_dir):
                ensure_dir(folder, 0o700)
            ensure_dir(paths.renewal_dir, 0o755)
            _live.write_live_readme(paths.live_dir)
            ensure_dir(lineage.archive_dir, 0o755)
        except OSError as err:
            raise StorageError(f"cannot create the folders of {name} in {paths.config_dir}: {err}",
                               hint="run as root, or give a --config-dir you can write") from err
        lineage._save(1, material, renewal_config, creating=True, step=_fail_at or _no_step)
        logger.info("created certificate %s in %s", name, paths.config_dir)
        return lineage

    def save_successor(
        self,
        cert_pem: str | bytes,
        chain_pem: str | bytes,
        key_pem: bytes | None,
        renewal_config: RenewalConfig | None = None,
        *,
        _fail_at: Step | None = None,
    ) -> int:
        """Store a new version and make it live; returns its number.

        ``key_pem`` None reuses the current key (``--reuse-key``); ``renewal_config`` replaces the
        lineage's renewal configuration together with the switch (None keeps it).
        """
        self._recover()
        current = self.current_version
        if key_pem is None:
            key_pem = self.archive_file("privkey", current).read_bytes()
        material = checked_material(cert_pem, chain_pem, key_pem)
        found = self._archive_versions().values()
        version = max(set.union(*found) | {current}) + 1
        self._save(version, material, renewal_config, creating=False, step=_fail_at or _no_step)
        logger.info("saved version %d of certificate %s", version, self.name)
        return version

    def _save(
        self, version: int, material: dict[str, bytes], config: RenewalConfig | None, *, creating: bool, step: Step
    ) -> None:
        conf_text = None if config is None else _renewal.render(config, self.files)
        try:
            step("journal:writing")
            _journal.write(self.archive_dir, {"version": version, "phase": "writing", "create": creating})
            for kind in KINDS:
                step(f"archive:{kind}")
                mode = 0o600 if kind == "privkey" else 0o644
                atomic_write(self.archive_file(kind, version), material[kind], mode=mode,
                             before_rename=step, label=f"archive:{kind}")
            step("journal:ready")
            entry = {"version": version, "phase": "ready", "create": creating, "renewal_conf": conf_text}
            _journal.write(self.archive_dir, entry)
        except OSError as err:
            self._recover()
            raise StorageError(f"cannot write version {version} of {self.name}: {err}",
                               hint="check free space and permissions of --config-dir") from err
        try:
            self._commit(version, conf_text, step)
        except OSError as err:  # the journal says "ready": the next run's recover() finishes the switch
            raise StorageError(f"cannot make version {version} of {self.name} live: {err}",
                               hint="fix the cause and run letsencrypt again; it finishes the switch") from err
        self._config = config if config is not None else self._config

    def _commit(self, version: int, conf_text: str | None, step: Step) -> None:
        """Make ``version`` live and finish the save; idempotent, so ``recover`` can run it again."""
        live_dir = self.paths.live_dir
        if _live.live_generation(live_dir, self.name) != version:
            step("live:generation")
            _live.build_generation(live_dir, self.name, version)
            step("live:switch")
            _live.switch(live_dir, self.name, version)
        if conf_text is not None:
            step("renewal-conf")
            atomic_write(self.renewal_conf_path, conf_text.encode("utf-8"), mode=0o600, keep_mode=True,
                         before_rename=step, label="renewal-conf")
        step("cleanup")
        _live.remove_generations(live_dir, self.name, keep=version)
        step("journal:remove")
        _journal.remove(self.archive_dir)
        fsync_dir(self.archive_dir)
        self._config = None

    def update_renewal_config(self, config: RenewalConfig) -> None:
        """Replace the renewal configuration (atomically, keeping the file's mode)."""
        _renewal.save(self.renewal_conf_path, config, self.files)
        self._config = config

    def delete(self) -> None:
        """Remove the lineage: renewal configuration first (it stops being renewed), then live, then archive."""
        import shutil  # here: only removals need it (it imports bz2 and lzma)
        live_dir = self.paths.live_dir
        self.renewal_conf_path.unlink(missing_ok=True)
        if self.live_dir.is_symlink():
            self.live_dir.unlink()
        elif self.live_dir.is_dir():
            shutil.rmtree(self.live_dir)
        _live.remove_generations(live_dir, self.name, keep=None)
        if self.archive_dir.is_dir():
            shutil.rmtree(self.archive_dir)
        for folder in (self.paths.renewal_dir, live_dir, self.paths.archive_dir):
            if folder.is_dir():
                fsync_dir(folder)
        logger.info("deleted certificate %s", self.name)

    # --- recovery ----------------------------------------------------------------------------------

    def _recover(self) -> str | None:
        """Finish or undo an interrupted save of this lineage; what was done, or None."""
        remove_temporaries(self.archive_dir)
        entry = _journal.read(self.archive_dir)
        if entry is None:
            current = _live.live_generation(self.paths.live_dir, self.name)
            if current is not None:
                _live.remove_generations(self.paths.live_dir, self.name, keep=current)
            elif self._is_empty_leftover():
                self.archive_dir.rmdir()  # a create interrupted before its journal
                return f"{self.name}: removed an empty archive folder"
            return None
        version, conf_text = entry["version"], entry.get("renewal_conf")
        already_live = _live.live_generation(self.paths.live_dir, self.name) == version
        if already_live or (entry.get("phase") == "ready" and self._complete(version)):
            self._commit(version, conf_text if isinstance(conf_text, str) else None, _no_step)
            logger.warning("recovered certificate %s: finished saving version %d", self.name, version)
            return f"{self.name}: finished saving version {version}"
        self._roll_back(version, creating=bool(entry.get("create")))
        logger.warning("recovered certificate %s: removed the unfinished version %d", self.name, version)
        return f"{self.name}: removed the unfinished version {version}"

    def _is_empty_leftover(self) -> bool:
        return (
            self.archive_dir.is_dir()
            and not any(self.archive_dir.iterdir())
            and not os.path.lexists(self.live_dir)
            and not self.renewal_conf_path.exists()
        )

    def _complete(self, version: int) -> bool:
        try:
            files = {kind: self.archive_file(kind, version).read_bytes() for kind in KINDS}
            checked_material(files["cert"], files["chain"], files["privkey"])
        except (OSError, StorageError, UnicodeDecodeError) as err:
            logger.warning("version %d of %s is incomplete: %s", version, self.name, err)
            return False
        return True

    def _roll_back(self, version: int, *, creating: bool) -> None:
        live_dir = self.paths.live_dir
        for kind in KINDS:
            self.archive_file(kind, version).unlink(missing_ok=True)
        _live.remove_generations(live_dir, self.name, keep=_live.live_generation(live_dir, self.name))
        _journal.remove(self.archive_dir)
        if creating and not any(self.archive_dir.iterdir()):
            self.archive_dir.rmdir()
        elif self.archive_dir.is_dir():
            fsync_dir(self.archive_dir)


# --- whole configuration directory ---------------------------------------------------------------


@record
class BrokenLineage:
    """A lineage that cannot be used, and why (shown by ``certificates``, skipped by ``renew``)."""

    name: str
    reason: str


@record
class LineageScan:
    lineages: tuple[Lineage, ...]
    broken: tuple[BrokenLineage, ...]


def _candidate_names(paths: Paths) -> set[str]:
    names: set[str] = set()
    if paths.renewal_dir.is_dir():
        names.update(entry.name[: -len(".conf")] for entry in paths.renewal_dir.iterdir()
                     if entry.name.endswith(".conf") and not entry.name.startswith("."))
    if paths.live_dir.is_dir():
        names.update(entry.name for entry in paths.live_dir.iterdir()
                     if not entry.name.startswith(".") and entry.name not in RESERVED_NAMES)
    return names


def scan(paths: Paths) -> LineageScan:
    """Every lineage under ``paths``: the usable ones and, each with its reason, the broken ones."""
    lineages: list[Lineage] = []
    broken: list[BrokenLineage] = []
    for name in sorted(_candidate_names(paths)):
        try:
            lineages.append(Lineage.open(paths, name))
        except (StorageError, ConfigError) as err:
            logger.warning("skipping the certificate %s: %s", name, err.message)
            broken.append(BrokenLineage(name, err.message))
    return LineageScan(tuple(lineages), tuple(broken))


def find_all(paths: Paths) -> list[Lineage]:
    """The usable lineages, by name; broken ones are logged as warnings and skipped."""
    return list(scan(paths).lineages)


def recover(paths: Paths) -> list[str]:
    """Finish or undo what interrupted runs left (hold the ``ConfigLock``); one line per repair."""
    done: list[str] = []
    remove_temporaries(paths.renewal_dir)
    remove_temporaries(paths.live_dir)
    if not paths.archive_dir.is_dir():
        return done
    for entry in sorted(paths.archive_dir.iterdir()):
        if not entry.is_dir() or entry.name.startswith("."):
            continue
        try:
            result = Lineage(paths, entry.name)._recover()
        except ConfigError:
            continue
        except OSError as err:
            logger.warning("cannot recover the certificate %s: %s", entry.name, err)
            done.append(f"{entry.name}: recovery failed: {err}")
            continue
        if result is not None:
            done.append(result)
    return done
