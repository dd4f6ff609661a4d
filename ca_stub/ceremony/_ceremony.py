"""The key ceremony: two roots, kept offline, and the intermediates that sign for the CA.

Like Let's Encrypt, the CA offers two hierarchies (RFC 8555 §7.4.2 alternate chains):

- ``default``: root ``ca_stub Root X1`` (RSA 4096, like ISRG Root X1);
- ``alternate``: root ``ca_stub Root X2`` (ECDSA P-384, like ISRG Root X2).

Each intermediate (``ca_stub E1``, ECDSA P-256; ``ca_stub R1``, RSA 2048) has one key and one subject and
is certified by both roots, so a leaf it signs verifies under X1 with the X1-signed intermediate
and under X2 with the X2-signed one.

Layout of the data directory (paths in ``ca.json`` are relative to it)::

    ca.json                    the manifest (CAManifest), written last
    roots/x1.pem roots/x2.pem  root certificates (0644)
    issuers/r1.key.pem         intermediate keys (0600), issuers/ is 0700
    issuers/r1-x1.pem ...      intermediate certificates, one per root
    offline/x1.key.pem ...     root keys (0600) in a 0700 directory; --offline-dir moves them

Only the ceremony writes root keys, and nothing in the serving process reads them. Timing on
this project's 2-core machine: one RSA 4096 key costs ~0.6 s on average (rarely ~4 s), the rest
~0.1 s, so a default ceremony takes about a second.

Imports: stdlib, cryptography, ``ca_stub.contracts``, ``letsencrypt.acme``.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import logging
import time
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from ca_stub.ceremony._certs import make_intermediate, make_root
from ca_stub.ceremony._files import ensure_private_dir, write_atomic
from ca_stub.contracts import CA_MANIFEST_NAME, CAManifest, ManifestIssuer, ManifestRoot, utcnow
from letsencrypt.acme.crypto import CertKeyType, CertPrivateKey, generate_private_key, key_type_of, private_key_to_pem
from letsencrypt.acme.messages import format_time

__all__ = ["FAST_KEYS", "CeremonyError", "CeremonyKeys", "CeremonyResult", "manifest_exists", "run_ceremony"]

logger = logging.getLogger(__name__)

_ROOTS = (("x1", "ca_stub Root X1"), ("x2", "ca_stub Root X2"))  # default hierarchy first
_ISSUERS = (("e1", "ca_stub E1"), ("r1", "ca_stub R1"))  # ECDSA first: most clients default to it


class CeremonyError(Exception):
    """The ceremony refused to run (a CA already exists) or could not write its files."""


@dataclasses.dataclass(frozen=True, slots=True)
class CeremonyKeys:
    """Key types of the two roots and the two intermediates."""

    root_x1: CertKeyType = "rsa4096"
    root_x2: CertKeyType = "ec384"
    rsa_issuer: CertKeyType = "rsa2048"
    ecdsa_issuer: CertKeyType = "ec256"

    def __post_init__(self) -> None:
        if not self.rsa_issuer.startswith("rsa") or not self.ecdsa_issuer.startswith("ec"):
            raise ValueError("rsa_issuer must be an RSA key type and ecdsa_issuer an ECDSA one")


FAST_KEYS = CeremonyKeys(root_x1="rsa2048")  # for tests: no RSA 4096 key generation


@dataclasses.dataclass(frozen=True, slots=True)
class CeremonyResult:
    data_dir: Path
    offline_dir: Path
    manifest_path: Path
    manifest: CAManifest
    root_certificates: tuple[Path, ...]  # default hierarchy first
    root_keys: tuple[Path, ...]  # under offline_dir
    elapsed: float  # seconds


def manifest_exists(data_dir: Path) -> bool:
    """Whether ``data_dir`` already holds a CA (``serve`` runs the ceremony only when it does not)."""
    return (data_dir / CA_MANIFEST_NAME).exists()


def run_ceremony(
    data_dir: Path,
    *,
    offline_dir: Path | None = None,
    force: bool = False,
    keys: CeremonyKeys = CeremonyKeys(),
    now: datetime.datetime | None = None,
) -> CeremonyResult:
    """Make the roots and intermediates and write them under ``data_dir`` (see the module docstring).

    ``CeremonyError`` if ``data_dir`` already has a manifest, unless ``force``: then every file is
    replaced, the old CA is gone, and certificates it issued no longer chain to the new roots.
    """
    started = time.monotonic()
    manifest_path = data_dir / CA_MANIFEST_NAME
    if manifest_path.exists() and not force:
        raise CeremonyError(f"{manifest_path} exists: this data directory already has a CA (use force to replace it)")
    offline = offline_dir if offline_dir is not None else data_dir / "offline"
    moment = now if now is not None else utcnow()
    data_dir.mkdir(parents=True, exist_ok=True)
    ensure_private_dir(offline)
    ensure_private_dir(data_dir / "issuers")

    root_types = (keys.root_x1, keys.root_x2)
    roots = [_make_root(data_dir, offline, root_id, name, key_type, moment)
             for (root_id, name), key_type in zip(_ROOTS, root_types, strict=True)]
    issuer_types = (keys.ecdsa_issuer, keys.rsa_issuer)
    issuers = [_make_issuer(data_dir, issuer_id, name, key_type, roots, moment)
               for (issuer_id, name), key_type in zip(_ISSUERS, issuer_types, strict=True)]

    manifest = CAManifest(
        roots=tuple(root.entry for root in roots), issuers=tuple(issuers), created=format_time(moment)
    )
    text = json.dumps(manifest.to_json(), indent=2, sort_keys=True) + "\n"
    try:
        write_atomic(manifest_path, text.encode(), mode=0o644, exclusive=not force)
    except FileExistsError as err:
        raise CeremonyError(f"{manifest_path} appeared while the ceremony ran; nothing was replaced") from err
    elapsed = time.monotonic() - started
    logger.info("key ceremony done in %.2f s: roots %s, issuers %s; root keys in %s", elapsed,
                ", ".join(root.entry.name for root in roots), ", ".join(i.name for i in issuers), offline)
    return CeremonyResult(
        data_dir=data_dir, offline_dir=offline, manifest_path=manifest_path, manifest=manifest,
        root_certificates=tuple(data_dir / root.entry.certificate for root in roots),
        root_keys=tuple(root.key_path for root in roots), elapsed=elapsed,
    )


@dataclasses.dataclass(frozen=True, slots=True)
class _Root:
    entry: ManifestRoot
    certificate: x509.Certificate
    key: CertPrivateKey
    key_path: Path


def _make_root(
    data_dir: Path, offline: Path, root_id: str, name: str, key_type: CertKeyType, now: datetime.datetime
) -> _Root:
    key = generate_private_key(key_type)
    key_path = offline / f"{root_id}.key.pem"
    write_atomic(key_path, private_key_to_pem(key), mode=0o600)
    certificate = make_root(key, name, now)
    relative = f"roots/{root_id}.pem"
    write_atomic(data_dir / relative, certificate.public_bytes(Encoding.PEM), mode=0o644)
    logger.info("made root %r (%s), key in %s", name, key_type_of(key), key_path)
    entry = ManifestRoot(id=root_id, name=name, key_type=key_type_of(key), certificate=relative)
    return _Root(entry=entry, certificate=certificate, key=key, key_path=key_path)


def _make_issuer(
    data_dir: Path, issuer_id: str, name: str, key_type: CertKeyType, roots: list[_Root], now: datetime.datetime
) -> ManifestIssuer:
    key = generate_private_key(key_type)
    key_relative = f"issuers/{issuer_id}.key.pem"
    write_atomic(data_dir / key_relative, private_key_to_pem(key), mode=0o600)
    chains: list[tuple[str, ...]] = []
    for root in roots:
        certificate = make_intermediate(key, name, root.certificate, root.key, now)
        relative = f"issuers/{issuer_id}-{root.entry.id}.pem"
        write_atomic(data_dir / relative, certificate.public_bytes(Encoding.PEM), mode=0o644)
        chains.append((relative,))
    logger.info("made intermediate %r (%s) under %s", name, key_type_of(key), ", ".join(r.entry.name for r in roots))
    return ManifestIssuer(id=issuer_id, name=name, key_type=key_type_of(key), key=key_relative, chains=tuple(chains))
