"""The reading layer over the Apache configurations Debian's archive ships (see apache_corpus.py).

Every file must load through our lens, be written back byte for byte after an insert-then-remove
in each of its sections, and show the sections its text has. apache2's own ``/etc/apache2``, set up
as Debian's postinst enables it (default modules, ``000-default``, plus ``ssl`` and
``default-ssl``), and with every corpus site that apache2 accepts next to it, must give the same
included files and vhosts as ``apache2 -t -D DUMP_INCLUDES`` and ``apache2 -S``. Skipped with a
reason when the archive is unreachable, except under CI, which reaches it.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from integration._procs import make_tls_identity, require_binary
from integration.apache_corpus import ESSENTIAL, PACKAGES, Corpus, assemble
from integration.debian_corpus import corpus_or_skip
from plugins.apache import ApacheConfig, ConfigTree, FileTree, LoadOptions, Section, server_build

_SECTION_LINE = re.compile(rb"^[ \t]*<(?!/)([A-Za-z][A-Za-z0-9._-]*)", re.MULTILINE)


@pytest.fixture(scope="module")
def corpus() -> Corpus:
    return corpus_or_skip(assemble, "apache")


def test_corpus_covers_the_packages(corpus: Corpus) -> None:
    packages = {corpus.package_of(path) for path in corpus.files}
    assert ESSENTIAL in packages
    assert len(packages) >= len(PACKAGES) - 3, f"packages missing from the archive: {corpus.missing}"
    assert len(corpus.files) >= 150, [str(path) for path in corpus.files]


def _copy(corpus: Corpus, tmp_path: Path) -> list[Path]:
    copies = []
    for path in corpus.files:
        copy = tmp_path / path.relative_to(corpus.root)
        copy.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, copy)
        copies.append(copy)
    return copies


def _sections(tree: FileTree) -> list[Section]:
    return [node for node in tree.walk() if isinstance(node, Section)]


def test_every_corpus_file_loads_and_writes_back_unchanged(corpus: Corpus, tmp_path: Path) -> None:
    copies = _copy(corpus, tmp_path)
    nodes = 0
    with ConfigTree() as tree:
        loaded = tree.load(str(copy) for copy in copies)
        nodes = sum(1 for file in loaded for _ in file.walk())
        for file in loaded:  # an insert then a remove, at the top and in each section
            for path in [None, *(section.path for section in _sections(tree.file(file.file)))]:
                current = tree.file(file.file) if path is None else tree.file(file.file).nodes[path]
                assert isinstance(current, Section | FileTree)
                added = tree.add_directive(current, "LetsencryptProbe", ["1"])
                tree.remove(added)
        tree.save()
    changed = [str(copy) for copy, original in zip(copies, corpus.files, strict=True)
               if copy.read_bytes() != original.read_bytes()]
    assert changed == []
    assert nodes > 800


def test_the_trees_have_the_sections_of_the_text(corpus: Corpus) -> None:
    """Section openings found by a plain scan of the text (comments and continued comments left
    out) are the sections of the tree, in order."""
    with ConfigTree() as tree:
        for path in corpus.files:
            loaded = tree.load([str(path)])[0]
            text = b"\n".join(line for line in _logical_lines(path.read_bytes()) if not line.lstrip().startswith(b"#"))
            scanned = [name.decode() for name in _SECTION_LINE.findall(text) if name.lower() != b"perl"]
            assert scanned == [section.name for section in _sections(loaded)], path  # <Perl> is opaque text


def _logical_lines(data: bytes) -> list[bytes]:
    """Lines joined as Apache joins them (a backslash at the end continues the line)."""
    return re.sub(rb"\\\r?\n", b" ", data).split(b"\n")


def _apache(root: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["apache2", "-d", str(root), "-f", str(root / "apache2.conf"), *args], capture_output=True,
                          text=True, timeout=60, env=env, check=False)


def _enable_if_accepted(root: Path, env: dict[str, str], link: Path, target: Path | str) -> bool:
    """Link ``target`` at ``link``; keep it if apache2 -t still passes."""
    if isinstance(target, Path):
        link.symlink_to(target)
    else:
        link.write_text(target)
    if _apache(root, env, "-t").returncode == 0:
        return True
    link.unlink()
    return False


@pytest.fixture
def debian_root(corpus: Corpus, tmp_path: Path) -> tuple[Path, dict[str, str], list[Path]]:
    """apache2's /etc/apache2 as the package ships it, with everything of the corpus apache2 accepts.

    Enabled: every module of apache2 (event MPM), the corpus packages' modules (loaded from the
    extracted package) when they load, every conf snippet, 000-default and default-ssl (with a
    throwaway certificate), and every corpus site with a vhost that apache2 accepts.
    """
    require_binary("apache2", "apache2")
    root = tmp_path / "apache2"
    shutil.copytree(corpus.apache2_root, root, symlinks=True)
    state = tmp_path / "state"
    for name in ("run", "lock", "logs"):
        (state / name).mkdir(parents=True)
    user = "www-data" if os.geteuid() == 0 else os.environ.get("USER", "nobody")
    env = {**os.environ, "APACHE_RUN_DIR": str(state / "run"), "APACHE_PID_FILE": str(state / "run" / "pid"),
           "APACHE_LOCK_DIR": str(state / "lock"), "APACHE_LOG_DIR": str(state / "logs"),
           "APACHE_RUN_USER": user, "APACHE_RUN_GROUP": user}
    for load in sorted((root / "mods-available").glob("*.load")):
        if load.stem not in ("mpm_prefork", "mpm_worker"):
            for available in (load, load.with_suffix(".conf")):
                if available.exists():
                    (root / "mods-enabled" / available.name).symlink_to(f"../mods-available/{available.name}")
    for conf in sorted((root / "conf-available").glob("*.conf")):
        (root / "conf-enabled" / conf.name).symlink_to(f"../conf-available/{conf.name}")
    identity = make_tls_identity(tmp_path, ["localhost"])
    ssl_site = root / "sites-available" / "default-ssl.conf"
    ssl_site.write_bytes(ssl_site.read_bytes().replace(b"/etc/ssl/certs/ssl-cert-snakeoil.pem", bytes(identity.cert))
                         .replace(b"/etc/ssl/private/ssl-cert-snakeoil.key", bytes(identity.key)))
    for site in ("000-default.conf", "default-ssl.conf"):
        (root / "sites-enabled" / site).symlink_to(f"../sites-available/{site}")
    assert _apache(root, env, "-t").returncode == 0
    kept: list[Path] = []
    for module in sorted(corpus.root.glob("*/usr/lib/apache2/modules/*.so")):
        package = corpus.package_of(module)
        loads = sorted((corpus.root / package / "etc/apache2/mods-available").glob("*.load"))
        names = [found.group(1) for load in loads if (found := re.search(r"LoadModule\s+(\w+)", load.read_text()))]
        if names and _enable_if_accepted(root, env, root / "mods-enabled" / f"zz-{package}.load",
                                         f"LoadModule {names[0]} {module}\n"):
            kept.append(module)
    for index, path in enumerate(corpus.files):
        relative = path.relative_to(corpus.root / corpus.package_of(path)).as_posix()
        if corpus.package_of(path) == ESSENTIAL:
            continue
        if relative.startswith("etc/apache2/conf-available/"):
            target = root / "conf-enabled" / f"zz-{index:03d}-{path.name}"
        elif b"<VirtualHost" in path.read_bytes():
            target = root / "sites-enabled" / f"zz-{index:03d}-{path.name}"
        else:
            continue
        if _enable_if_accepted(root, env, target, path):
            kept.append(path)
    return root, env, kept


def test_debian_root_with_the_corpus_reads_as_apache_reads_it(
        debian_root: tuple[Path, dict[str, str], list[Path]]) -> None:
    root, env, kept = debian_root
    assert any(b"<VirtualHost" in path.read_bytes() for path in kept if path.suffix == ".conf")
    config = ApacheConfig.read(LoadOptions(root, environment=env, build=server_build()))

    result = _apache(root, env, "-t", "-D", "DUMP_INCLUDES")
    reported = [re.fullmatch(r"( +)\((\*|\d+)\) (.+)", line) for line in result.stdout.splitlines()]
    assert [((len(m.group(1)) - 2) // 2, m.group(2), m.group(3)) for m in reported if m] == [
        (included.depth, str(included.via.line) if included.via else "*", included.file)
        for included in config.loaded.includes]
    assert len(config.loaded.includes) > 100

    listing = _apache(root, env, "-S").stdout
    reported_vhosts = set(re.findall(r"(\S+) \((/[^()]+:\d+)\)", listing))  # (name, file:line)
    assert {place for _, place in reported_vhosts} == {f"{vhost.file}:{vhost.line}" for vhost in config}
    named = {(vhost.server_name, f"{vhost.file}:{vhost.line}") for vhost in config if vhost.has_own_name}
    assert named <= reported_vhosts  # vhosts without a ServerName show the machine's name there
    assert len(config) >= 3
