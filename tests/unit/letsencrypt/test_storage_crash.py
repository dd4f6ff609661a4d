"""Crash safety of lineages: a crash at every step of a save, and real kill -9 of a saving process.

After each crash the live files must already be one consistent version (the old one or the new
one: the certificate matches the key, fullchain is cert + chain), without any recovery; then
``recover`` must leave no journal or stray files, and the next save must work.
"""

from __future__ import annotations

import datetime
import os
import random
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import NameOID

from letsencrypt.acme import crypto
from letsencrypt.paths import LETSENCRYPT_STAGING, Paths
from letsencrypt.storage import Lineage, RenewalConfig, find_all, recover

KINDS = ("cert", "chain", "fullchain", "privkey")
NAME = "crash.example"
CONFIG = RenewalConfig(server=LETSENCRYPT_STAGING, authenticator="standalone")
NEW_CONFIG = RenewalConfig(server=LETSENCRYPT_STAGING, authenticator="webroot", webroot_path=("/srv/www",))
REPO = Path(__file__).resolve().parents[3]

SAVE_STEPS = [
    "journal:writing",
    "archive:cert", "archive:cert:before-rename",
    "archive:chain", "archive:chain:before-rename",
    "archive:fullchain", "archive:fullchain:before-rename",
    "archive:privkey", "archive:privkey:before-rename",
    "journal:ready",
    "live:generation",
    "live:switch",
    "renewal-conf", "renewal-conf:before-rename",
    "cleanup",
    "journal:remove",
]
COMMITTED_FROM = SAVE_STEPS.index("renewal-conf")  # a crash at or after this step finds the switch done


class Crash(Exception):
    """The simulated crash: nothing after the failing step runs, nothing is cleaned up."""


def crash_at(wanted: str):  # type: ignore[no-untyped-def]
    def step(name: str) -> None:
        if name == wanted:
            raise Crash(name)

    return step


def _issue(names: list[str], key_pem: bytes | None = None) -> tuple[str, str, bytes]:
    key = crypto.load_private_key(key_pem) if key_pem else crypto.generate_private_key("ec256")
    now = datetime.datetime.now(datetime.UTC)
    issuer = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "crash test CA")])
    cert = (
        x509.CertificateBuilder().subject_name(x509.Name([])).issuer_name(issuer).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=90))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False)
        .sign(key, hashes.SHA256())  # self-signed is enough: storage checks pairing, not trust
    )
    chain_cert = cert  # any certificate does as the "chain"; only its bytes matter here
    return crypto.pem_of([cert]), crypto.pem_of([chain_cert]), crypto.private_key_to_pem(key)


def assert_consistent(paths: Paths, name: str = NAME) -> int:
    """The version live/NAME shows, after checking that its four files belong together."""
    live = paths.live(name)
    versions = set()
    for kind in KINDS:
        target = os.path.realpath(live / f"{kind}.pem")
        match = re.fullmatch(re.escape(kind) + r"([0-9]+)\.pem", os.path.basename(target))
        assert match and Path(target).parent == Path(os.path.realpath(paths.archive(name))), target
        versions.add(int(match.group(1)))
    assert len(versions) == 1, f"live files of mixed versions: {versions}"
    cert_pem, chain_pem = (live / "cert.pem").read_bytes(), (live / "chain.pem").read_bytes()
    assert (live / "fullchain.pem").read_bytes() == cert_pem + chain_pem
    cert = x509.load_pem_x509_certificate(cert_pem)
    key = crypto.load_private_key((live / "privkey.pem").read_bytes())
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    assert cert.public_key().public_bytes(serialization.Encoding.DER, spki) == key.public_key().public_bytes(
        serialization.Encoding.DER, spki
    ), "the live certificate does not match the live key"
    assert os.stat(live / "privkey.pem").st_mode & 0o777 == 0o600
    return versions.pop()


def assert_clean(paths: Paths, name: str = NAME) -> None:
    """After recover: no journal, no temporary files, only the live generation folder."""
    archive = paths.archive(name)
    assert not (archive / ".pending").exists()
    leftovers = [p.name for folder in (archive, paths.live_dir, paths.renewal_dir) if folder.is_dir()
                 for p in folder.iterdir() if ".tmp-" in p.name]
    assert leftovers == []
    live_target = os.readlink(paths.live(name))
    hidden = sorted(p.name for p in paths.live_dir.iterdir() if p.name.startswith(f".{name}."))
    assert hidden == [live_target]


@pytest.fixture(scope="module")
def materials() -> list[tuple[str, str, bytes]]:
    return [_issue([NAME, f"www.{NAME}"]) for _ in range(3)]


def test_the_steps_are_the_documented_ones(tmp_path: Path, materials: list[tuple[str, str, bytes]]) -> None:
    paths = Paths.under(tmp_path)
    lineage = Lineage.create(paths, NAME, *materials[0], CONFIG)
    seen: list[str] = []
    lineage.save_successor(*materials[1], NEW_CONFIG, _fail_at=seen.append)
    assert seen == SAVE_STEPS


@pytest.mark.parametrize("step", SAVE_STEPS)
def test_crash_at_each_step_of_save_successor(
    tmp_path: Path, materials: list[tuple[str, str, bytes]], step: str
) -> None:
    paths = Paths.under(tmp_path)
    lineage = Lineage.create(paths, NAME, *materials[0], CONFIG)
    lineage.save_successor(*materials[1])  # version 2 is live; the crash hits the save of version 3
    with pytest.raises(Crash):
        lineage.save_successor(*materials[2], NEW_CONFIG, _fail_at=crash_at(step))
    committed = SAVE_STEPS.index(step) >= COMMITTED_FROM
    assert assert_consistent(paths) == (3 if committed else 2)

    done = recover(paths)
    if step == "journal:writing":  # nothing was written yet
        assert done == []
    else:
        assert len(done) == 1 and NAME in done[0]
    version = assert_consistent(paths)
    assert_clean(paths)
    rolled_forward = SAVE_STEPS.index(step) >= SAVE_STEPS.index("live:generation")
    assert version == (3 if rolled_forward else 2)
    reopened = Lineage.open(paths, NAME)
    assert reopened.renewal_config == (NEW_CONFIG if rolled_forward else CONFIG)
    assert reopened.versions == ((1, 2, 3) if rolled_forward else (1, 2))
    assert reopened.read("privkey") == materials[2 if rolled_forward else 1][2]

    assert reopened.save_successor(*materials[0]) == version + 1
    assert assert_consistent(paths) == version + 1
    assert recover(paths) == []


@pytest.mark.parametrize("step", SAVE_STEPS)
def test_crash_at_each_step_of_create(tmp_path: Path, materials: list[tuple[str, str, bytes]], step: str) -> None:
    paths = Paths.under(tmp_path)
    with pytest.raises(Crash):
        Lineage.create(paths, NAME, *materials[0], CONFIG, _fail_at=crash_at(step))
    if SAVE_STEPS.index(step) >= COMMITTED_FROM:
        assert assert_consistent(paths) == 1
    recover(paths)
    if SAVE_STEPS.index(step) >= SAVE_STEPS.index("live:generation"):
        assert [lineage.name for lineage in find_all(paths)] == [NAME]
        assert assert_consistent(paths) == 1
        assert_clean(paths)
    else:  # rolled back: nothing of the lineage is left, and the name is free again
        assert not paths.archive(NAME).exists() and not os.path.lexists(paths.live(NAME))
        assert not paths.renewal_conf(NAME).exists()
        Lineage.create(paths, NAME, *materials[0], CONFIG)
        assert assert_consistent(paths) == 1


@pytest.mark.parametrize("step", ["live:generation", "live:switch", "cleanup", "journal:remove"])
def test_crash_while_converting_a_certbot_lineage(
    tmp_path: Path, materials: list[tuple[str, str, bytes]], step: str
) -> None:
    paths = Paths.under(tmp_path)
    Lineage.create(paths, NAME, *materials[0], CONFIG)
    live = paths.live(NAME)  # turn it into certbot's shape: a real folder of links
    generation = paths.live_dir / os.readlink(live)
    live.unlink()
    generation.rename(live)
    lineage = Lineage.open(paths, NAME)
    with pytest.raises(Crash):
        lineage.save_successor(*materials[1], _fail_at=crash_at(step))
    assert assert_consistent(paths) == (1 if step.startswith("live:") else 2)
    recover(paths)
    assert assert_consistent(paths) == 2
    assert_clean(paths)


def test_a_failing_write_rolls_back_at_once(tmp_path: Path, materials: list[tuple[str, str, bytes]]) -> None:
    paths = Paths.under(tmp_path)
    lineage = Lineage.create(paths, NAME, *materials[0], CONFIG)

    def disk_full(name: str) -> None:
        if name == "archive:fullchain":
            raise OSError(28, "No space left on device")

    from letsencrypt.errors import StorageError

    with pytest.raises(StorageError, match="No space left"):
        lineage.save_successor(*materials[1], _fail_at=disk_full)
    assert assert_consistent(paths) == 1
    assert lineage.versions == (1,) and not (paths.archive(NAME) / "cert2.pem").exists()
    assert recover(paths) == []


_CHILD = """
import sys
from pathlib import Path
from letsencrypt.paths import Paths
from letsencrypt.storage import Lineage

paths, folder = Paths.under(Path(sys.argv[1])), Path(sys.argv[2])
materials = [tuple((folder / f"{i}.{part}").read_bytes() for part in ("cert", "chain", "key")) for i in range(3)]
lineage = Lineage(paths, sys.argv[3])
print("ready", flush=True)
count = 0
while True:
    cert, chain, key = materials[count % 3]
    reuse = count % 4 == 3 and lineage.read("privkey") == key
    lineage.save_successor(cert, chain, None if reuse else key)
    count += 1
"""


def test_kill_9_while_saving_successors(tmp_path: Path, materials: list[tuple[str, str, bytes]]) -> None:
    paths = Paths.under(tmp_path / "le")
    Lineage.create(paths, NAME, *materials[0], CONFIG)
    folder = tmp_path / "material"
    folder.mkdir()
    for index, (cert, chain, key) in enumerate(materials):
        (folder / f"{index}.cert").write_text(cert)
        (folder / f"{index}.chain").write_text(chain)
        (folder / f"{index}.key").write_bytes(key)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    rng = random.Random(9)
    last = 1
    for _ in range(8):
        child = subprocess.Popen(
            [sys.executable, "-c", _CHILD, str(paths.config_dir.parent), str(folder), NAME],
            stdout=subprocess.PIPE, env=env,
        )
        assert child.stdout is not None
        assert child.stdout.readline() == b"ready\n"
        try:
            child.wait(timeout=rng.uniform(0.005, 0.15))
        except subprocess.TimeoutExpired:
            child.send_signal(signal.SIGKILL)
        assert child.wait(timeout=10) == -signal.SIGKILL, "the child must be killed while saving"
        child.stdout.close()
        before = assert_consistent(paths)  # usable right after the kill, before any recovery
        assert before >= last
        recover(paths)
        after = assert_consistent(paths)
        assert after >= before
        assert_clean(paths)
        last = after
    assert last > 1, "the children saved at least one version"
    lineage = Lineage.open(paths, NAME)
    expected = max(lineage.versions) + 1
    assert lineage.save_successor(*materials[0]) == expected
