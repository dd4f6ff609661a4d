"""The ``live/`` side of a lineage: generation folders and the one symlink switch that commits a version.

``live/NAME`` is a relative symlink to ``.NAME.vN``, a generation folder beside it in ``live/``
holding the four certbot links (``cert.pem -> ../../archive/NAME/certN.pem``, ...) and a README.
Since the generation folder sits at the same depth as ``live/NAME``, the ``../../archive`` links
resolve the same whether one follows them through the kernel or, as certbot does, by joining the
link's folder path with its target. Replacing the ``live/NAME`` symlink by ``rename(2)`` switches
all four files to another version in one atomic step.

A certbot lineage has a real folder at ``live/NAME``; the first switch exchanges it with the new
symlink atomically (``renameat2(RENAME_EXCHANGE)``, Linux 3.15+) and, where the system lacks that,
moves the folder aside to ``.NAME.old`` and puts the symlink in its place (a crash between those two
renames leaves no ``live/NAME`` until ``recover`` rolls the pending version forward).

Imports: the standard library and the storage helpers.
"""

from __future__ import annotations

import errno
import os
import re
from pathlib import Path

from letsencrypt.storage._files import TEMP_MARKER, atomic_symlink, fsync_dir

__all__ = [
    "KINDS",
    "build_generation",
    "generation_name",
    "generations",
    "live_generation",
    "remove_generations",
    "switch",
    "write_live_readme",
]

KINDS = ("cert", "chain", "fullchain", "privkey")

_README = """\
This directory contains the keys and certificates of the certificate "{name}".

`privkey.pem`  : the private key for the certificate.
`fullchain.pem`: the certificate and its chain: what most server software wants.
`chain.pem`    : the intermediate certificates (OCSP stapling in nginx >= 1.3.7).
`cert.pem`     : the certificate alone; it breaks many server configurations, so use it
                 only when the server asks for the certificate and the chain separately.

WARNING: DO NOT MOVE OR RENAME THESE FILES! letsencrypt updates them in place on renewal:
point your server configuration at {live}/ and they always hold one
matching certificate and key.

They are links into ../../archive/{name}/, through the hidden folder this directory links to;
letsencrypt switches to a renewed certificate by replacing the link live/{name} in one step.
"""

_TOP_README = """\
This directory contains your keys and certificates.

`[cert name]/privkey.pem`  : the private key for your certificate.
`[cert name]/fullchain.pem`: the certificate file used in most server software.
`[cert name]/chain.pem`    : used for OCSP stapling in nginx >= 1.3.7.
`[cert name]/cert.pem`     : will break many server configurations; see the README beside it.

Do not move or rename these files: letsencrypt renews them in place.
Each `[cert name]` is a link to a hidden `.[cert name].vN` folder: leave those alone too.
"""

_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def generation_name(name: str, version: int) -> str:
    return f".{name}.v{version}"


def generations(live_dir: Path, name: str) -> dict[int, Path]:
    """The generation folders of ``name`` in ``live_dir``, by version."""
    pattern = re.compile(re.escape(f".{name}.v") + r"([0-9]+)")
    found: dict[int, Path] = {}
    if live_dir.is_dir():
        for entry in live_dir.iterdir():
            match = pattern.fullmatch(entry.name)
            if match:
                found[int(match.group(1))] = entry
    return found


def live_generation(live_dir: Path, name: str) -> int | None:
    """The version whose generation folder ``live/NAME`` links to, or None (no link, a certbot folder)."""
    try:
        target = os.readlink(live_dir / name)
    except OSError:
        return None
    match = re.fullmatch(re.escape(f".{name}.v") + r"([0-9]+)", target)
    return int(match.group(1)) if match else None


def build_generation(live_dir: Path, name: str, version: int) -> Path:
    """(Re)create the generation folder of ``version``: the four links and the README, made durable."""
    folder = live_dir / generation_name(name, version)
    _remove(folder)
    folder.mkdir(mode=0o755)
    for kind in KINDS:
        os.symlink(f"../../archive/{name}/{kind}{version}.pem", folder / f"{kind}.pem")
    (folder / "README").write_text(_README.format(name=name, live=(live_dir / name).absolute()), encoding="utf-8")
    fsync_dir(folder)
    return folder


def write_live_readme(live_dir: Path) -> None:
    readme = live_dir / "README"
    if not readme.exists():
        readme.write_text(_TOP_README, encoding="utf-8")


def _exchange(first: Path, second: Path) -> bool:
    """Swap two paths atomically with renameat2; False where the system cannot."""
    import ctypes  # only needed once per certbot lineage, kept out of start-up

    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (AttributeError, OSError):
        return False
    result = renameat2(_AT_FDCWD, os.fsencode(first), _AT_FDCWD, os.fsencode(second), _RENAME_EXCHANGE)
    if result == 0:
        return True
    error = ctypes.get_errno()
    if error in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP):
        return False
    raise OSError(error, os.strerror(error), str(first))


def switch(live_dir: Path, name: str, version: int) -> None:
    """Point ``live/NAME`` at the generation folder of ``version`` in one atomic step."""
    link = live_dir / name
    target = generation_name(name, version)
    if link.is_symlink() or not link.exists():
        atomic_symlink(link, target)
    else:  # a certbot folder: swap it with the new link, then move it aside for removal
        aside = live_dir / f".{name}.old"
        temp = _switch_temp(live_dir, name)
        for leftover in (aside, temp):
            _remove(leftover)
        os.symlink(target, temp)
        if _exchange(temp, link):
            os.rename(temp, aside)
        else:
            os.rename(link, aside)
            os.replace(temp, link)
    fsync_dir(live_dir)


def _switch_temp(live_dir: Path, name: str) -> Path:
    return live_dir / f".{name}{TEMP_MARKER}switch"


def _remove(path: Path) -> None:
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.exists():
        import shutil  # here: only a folder needs it (it imports bz2 and lzma)

        shutil.rmtree(path)


def remove_generations(live_dir: Path, name: str, keep: int | None) -> None:
    """Remove every generation folder of ``name`` but ``keep``, and what a folder switch left aside."""
    for version, folder in generations(live_dir, name).items():
        if version != keep:
            _remove(folder)
    _remove(live_dir / f".{name}.old")
    _remove(_switch_temp(live_dir, name))
