"""Obtaining a certificate into a lineage: names, lineage choice, key, order, save, hooks.

``obtain_into_lineage`` is the one path every command that gets a certificate takes (``certonly``,
``run``, ``renew``). It never silently creates a ``-0001`` sibling when names are added to an
existing lineage: that needs ``--expand`` (or a yes at the prompt) and reuses the lineage.
"""

from __future__ import annotations

import datetime
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

import click

from letsencrypt._crashpoints import storage_steps
from letsencrypt.acme import crypto
from letsencrypt.acme._lazy import lazy_module
from letsencrypt.acme.ari import certificate_id
from letsencrypt.acme.client import AcmeClient
from letsencrypt.acme.errors import (
    AcmeError,
    MessageError,
    NetworkError,
    ProblemError,
    RateLimited,
    UserActionRequired,
)
from letsencrypt.acme.messages import Identifier
from letsencrypt.acme.records import record
from letsencrypt.errors import ChallengeFailed, ConfigError, LetsencryptError
from letsencrypt.issuance import IssuanceRequest, Obtained, obtain_certificate
from letsencrypt.paths import Paths
from letsencrypt.plugin_api import Authenticator, Reporter
from letsencrypt.storage.lineage import Lineage, find_all, unique_name
from letsencrypt.storage.renewal_config import RenewalConfig

if TYPE_CHECKING:
    from cryptography import x509
else:
    x509 = lazy_module("cryptography.x509")  # imported on first use: see letsencrypt.acme._lazy

__all__ = ["LineageChoice", "choose_lineage", "issue_for", "key_for"]

logger = logging.getLogger(__name__)


@record
class LineageChoice:
    name: str
    existing: Lineage | None
    reason: str  # "new", "renew", "expand", "replace"


def choose_lineage(
    paths: Paths, names: Sequence[str], *, cert_name: str | None, expand: bool, interactive: bool
) -> LineageChoice:
    """Which lineage ``names`` go to, certbot's rules minus the silent ``-0001`` on expansion."""
    lineages = {lineage.name: lineage for lineage in find_all(paths)}
    wanted = set(names)
    if cert_name is not None:
        existing = lineages.get(cert_name)
        if existing is None:
            return LineageChoice(cert_name, None, "new")
        return LineageChoice(cert_name, existing, "renew" if set(existing.names) == wanted else "replace")
    for lineage in lineages.values():
        if set(lineage.names) == wanted:
            return LineageChoice(lineage.name, lineage, "renew")
    for lineage in lineages.values():
        if set(lineage.names) < wanted:
            if not expand:
                if not interactive:
                    raise ConfigError(
                        f"the certificate {lineage.name} covers {', '.join(sorted(lineage.names))}; "
                        f"you asked for {', '.join(names)}",
                        hint=f"add --expand to add the names to {lineage.name}, or --cert-name NEW for a separate "
                        "certificate",
                    )
                if not click.confirm(f"Add {', '.join(sorted(wanted - set(lineage.names)))} to the existing "
                                     f"certificate {lineage.name}?", default=True, err=True):
                    raise ConfigError("nothing was done", hint="use --cert-name NEW for a separate certificate")
            return LineageChoice(lineage.name, lineage, "expand")
    base = names[0].removeprefix("*.")
    return LineageChoice(unique_name(paths, base), None, "new")


def key_for(
    lineage: Lineage | None, key_type: crypto.CertKeyType, reuse_key: bool
) -> tuple[crypto.CertPrivateKey, bool]:
    """The private key for the next certificate: the lineage's own with ``reuse_key``; else a new one."""
    if reuse_key and lineage is not None:
        try:
            return crypto.load_private_key(lineage.key_path.read_bytes()), True
        except (OSError, MessageError) as err:
            logger.warning("cannot reuse the key of %s (%s); making a new one", lineage.name, err)
    return crypto.generate_private_key(key_type), False


def replaces_id(lineage: Lineage | None) -> str | None:
    """The ARI certificate ID of the lineage's current certificate (RFC 9773 ``replaces``)."""
    if lineage is None:
        return None
    try:
        certificate = x509.load_pem_x509_certificate(lineage.cert_path.read_bytes())
        return certificate_id(certificate)
    except (OSError, ValueError, AcmeError):
        return None


def issue_for(
    client: AcmeClient,
    authenticator: Authenticator,
    names: Sequence[str],
    key: crypto.CertPrivateKey,
    *,
    preferred_challenges: tuple[str, ...],
    preferred_chain: str | None,
    profile: str | None,
    replaces: str | None,
    reporter: Reporter,
    csr_der: bytes | None = None,
) -> Obtained:
    identifiers = tuple(Identifier.parse(name) for name in names)
    request = IssuanceRequest(
        identifiers=identifiers,
        csr_der=csr_der or crypto.make_csr(key, identifiers),
        preferred_challenges=preferred_challenges,
        profile=profile,
        replaces=replaces,
        preferred_chain=preferred_chain,
    )
    try:
        return obtain_certificate(client, authenticator, request, reporter)
    except (ChallengeFailed, UserActionRequired):
        raise  # UserActionRequired: ``accounts.with_terms_retry`` agrees to the new terms and asks again
    except AcmeError as err:
        raise LetsencryptError(f"getting the certificate for {', '.join(names)} failed: {err}",
                               hint=_hint_for(err)) from err


def _hint_for(err: AcmeError) -> str | None:
    if isinstance(err, RateLimited):
        return "the CA limits how often you may ask; wait and try again (see the CA's rate-limit documentation)"
    if isinstance(err, ProblemError):
        types = {err.problem.short_type, *(sub.short_type for sub in err.problem.subproblems)}
        if types & {"rejectedIdentifier", "unsupportedIdentifier"}:
            return "the CA will not issue for one of the names; check their spelling"
    if isinstance(err, NetworkError):
        return "check the network and the --server URL"
    return "see the log file for the full exchange with the CA"


def expiry_text(certificate_pem: str) -> str:
    when = crypto.certificate_facts(crypto.split_pem_der(certificate_pem)[0]).not_after
    days = (when - datetime.datetime.now(datetime.UTC)).days
    return f"{when:%Y-%m-%d %H:%M:%S} UTC ({days} days)"


def save_obtained(
    paths: Paths, choice: LineageChoice, obtained: Obtained, key: crypto.CertPrivateKey, reused_key: bool,
    renewal: RenewalConfig,
) -> Lineage:
    key_pem = None if reused_key and choice.existing is not None else crypto.private_key_to_pem(key)
    if choice.existing is None:
        return Lineage.create(paths, choice.name, obtained.cert_pem, obtained.chain_pem,
                              key_pem or crypto.private_key_to_pem(key), renewal, _fail_at=storage_steps())
    choice.existing.save_successor(obtained.cert_pem, obtained.chain_pem, key_pem, renewal, _fail_at=storage_steps())
    return choice.existing
