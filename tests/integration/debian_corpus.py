"""Corpora of configuration files from Debian's archive: download, cache, extract, list.

Shared by apache_corpus.py and nginx_corpus.py, which name the packages and the files in each.
Packages are fetched with ``apt-get download`` into ``<cache>/debs`` (kept between runs) and
extracted with ``dpkg-deb -x`` into ``<cache>/root/<package>``. When the archive cannot be reached
(no network, no package lists and not root), :class:`CorpusUnavailable` says so; a package the
archive no longer has is left out and named in :attr:`Corpus.missing`.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import re
import subprocess
import sys
from collections.abc import Callable, Collection, Mapping
from pathlib import Path

_UNREACHABLE = re.compile(
    r"Failed to fetch|Temporary failure|Could not resolve|Could not connect|Connection failed|"
    r"Network is unreachable|Unable to connect",
    re.IGNORECASE,
)


class CorpusUnavailable(Exception):
    """Debian's archive could not be reached (or apt has no package lists); the message says why."""


@dataclasses.dataclass(frozen=True)
class Corpus:
    root: Path  # extracted packages, one directory each
    files: list[Path]
    missing: list[str]  # packages the archive did not have

    def package_of(self, path: Path) -> str:
        return path.relative_to(self.root).parts[0]


def cache_dir(variable: str, name: str) -> Path:
    """``$variable``, or ``~/.cache/letsencrypt/<name>``."""
    configured = os.environ.get(variable)
    return Path(configured) if configured else Path.home() / ".cache" / "letsencrypt" / name


def _download(package: str, debs: Path) -> str | None:
    """Download one package into ``debs``; None on success, else apt's error output."""
    result = subprocess.run(["apt-get", "download", "-q", package], cwd=debs, capture_output=True, text=True,
                            timeout=600, check=False)
    return None if result.returncode == 0 else (result.stderr or result.stdout).strip()


def _fetch(package: str, debs: Path, updated: list[bool], essential: str) -> Path | None:
    """The package's .deb in ``debs``, downloaded if needed; None if the archive does not have it."""
    cached = sorted(debs.glob(f"{package}_*.deb"))
    if cached:
        return cached[-1]
    error = _download(package, debs)
    if error is not None and "Unable to locate package" in error and not updated[0] and os.geteuid() == 0:
        updated[0] = True  # perhaps no package lists yet: fetch them once
        subprocess.run(["apt-get", "update", "-qq"], capture_output=True, timeout=600, check=False)
        error = _download(package, debs)
    if error is None:
        return sorted(debs.glob(f"{package}_*.deb"))[-1]
    if _UNREACHABLE.search(error) or package == essential:
        raise CorpusUnavailable(f"apt-get download {package} failed: {error.splitlines()[-1] if error else '?'}")
    return None


def _extract(deb: Path, target: Path) -> None:
    stamp = target / ".extracted-from"
    if stamp.exists() and stamp.read_text() == deb.name:
        return
    target.mkdir(parents=True, exist_ok=True)
    subprocess.run(["dpkg-deb", "-x", str(deb), str(target)], check=True, capture_output=True, timeout=300)
    stamp.write_text(deb.name)


def assemble_packages(cache: Path, packages: Mapping[str, tuple[str, ...]], essential: str,
                      excluded: Collection[str] = ()) -> tuple[Path, list[Path], list[str]]:
    """Download (only what the cache lacks) and extract ``packages``; the extraction root, the files
    their globs match (regular files, no symlinks, none of ``excluded``, paths relative to the
    root) and the packages the archive did not have. ``essential`` missing raises CorpusUnavailable."""
    debs, root = cache / "debs", cache / "root"
    debs.mkdir(parents=True, exist_ok=True)
    files: list[Path] = []
    missing: list[str] = []
    updated = [False]
    for package, patterns in packages.items():
        deb = _fetch(package, debs, updated, essential)
        if deb is None:
            missing.append(package)
            continue
        _extract(deb, root / package)
        for pattern in patterns:
            for path in sorted((root / package).glob(pattern)):
                if path.is_file() and not path.is_symlink() and path.relative_to(root).as_posix() not in excluded:
                    files.append(path)
    return root, files, missing


def corpus_or_skip(assemble: Callable[[], Corpus], name: str) -> Corpus:
    """``assemble()`` for a test fixture: skipped with the reason when the archive is unreachable,
    failed instead under CI, which must reach it."""
    from integration._procs import skip_or_fail

    try:
        return assemble()
    except CorpusUnavailable as err:
        skip_or_fail(f"the {name} corpus needs Debian's archive, which is unreachable: {err}")


def main(doc: str, name: str, default_cache: Path, packages: int,
         assemble: Callable[[Path | None], Corpus]) -> int:
    """The command line of a corpus module: list its files (``--cache DIR`` to choose the cache)."""
    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    parser.add_argument("--cache", type=Path, default=None, help=f"cache directory (default {default_cache})")
    args = parser.parse_args()
    try:
        corpus = assemble(args.cache)
    except CorpusUnavailable as err:
        print(f"{name} corpus: skipped, Debian's archive is unreachable: {err}", file=sys.stderr)
        return 2
    for path in corpus.files:
        print(path)
    print(f"{name} corpus: {len(corpus.files)} files from {packages - len(corpus.missing)} packages"
          + (f" (not in the archive: {', '.join(corpus.missing)})" if corpus.missing else ""), file=sys.stderr)
    return 0
