"""Getting one certificate: order, authorize with an authenticator, finalize, download, pick a chain.

This is the client's only issuance path: ``certonly``, ``run``, ``renew`` and ``--dry-run`` all go
through ``obtain_certificate``. The protocol is the protocol library's (``AcmeClient``); solving is
the authenticator's (``letsencrypt.plugin_api.Authenticator``). Between the two this module:

- skips authorizations the CA already holds as valid (reuse, RFC 8555 §7.1.4);
- picks, per authorization, the first challenge the CA offers that the authenticator can serve, in
  the order of ``--preferred-challenges`` (else the authenticator's own preference);
- hands every task to the authenticator at once, answers each challenge, waits for all of them on
  one deadline, and always calls ``cleanup`` (also after a failure or Ctrl-C);
- reports failures per identifier with the CA's detail and a next step.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence

from letsencrypt._crashpoints import crash_point
from letsencrypt.acme import challenges, crypto
from letsencrypt.acme.client import AcmeClient, AuthorizationHandle, OrderHandle
from letsencrypt.acme.errors import AcmeError, PollTimeout, ResourceFailed
from letsencrypt.acme.messages import AuthorizationStatus, Challenge, Identifier
from letsencrypt.acme.records import record
from letsencrypt.errors import ChallengeFailed, ConfigError
from letsencrypt.plugin_api import Authenticator, ChallengeTask, Reporter

__all__ = ["CHALLENGE_ALIASES", "IssuanceRequest", "Obtained", "normalize_challenges", "obtain_certificate"]

logger = logging.getLogger(__name__)

CHALLENGE_ALIASES = {"http": "http-01", "dns": "dns-01", "tls-alpn": "tls-alpn-01", "simplehttps": "simpleHttps"}
KNOWN_CHALLENGES = ("http-01", "dns-01", "tls-alpn-01", "simpleHttps", "dvsni")


def normalize_challenges(values: Sequence[str]) -> tuple[str, ...]:
    """``--preferred-challenges`` values (comma lists allowed, certbot's short names) -> type names."""
    out: list[str] = []
    for value in values:
        for item in value.split(","):
            item = item.strip()
            if not item:
                continue
            name = CHALLENGE_ALIASES.get(item.lower(), item)
            if name not in KNOWN_CHALLENGES:
                raise ConfigError(
                    f"unknown challenge type {item!r}",
                    hint=f"use one of {', '.join(KNOWN_CHALLENGES)} (or certbot's short forms http, dns)",
                )
            if name not in out:
                out.append(name)
    return tuple(out)


@record
class IssuanceRequest:
    identifiers: tuple[Identifier, ...]
    csr_der: bytes
    preferred_challenges: tuple[str, ...] = ()
    profile: str | None = None
    replaces: str | None = None  # RFC 9773 certificate ID of the certificate this one renews
    preferred_chain: str | None = None  # issuer CN of the chain's top certificate
    timeout: float = 120.0  # seconds for validation and finalization together


@record
class Obtained:
    cert_pem: str  # the leaf
    chain_pem: str  # the intermediates, leaf excluded
    fullchain_pem: str
    order_url: str
    certificate_url: str


def obtain_certificate(
    client: AcmeClient,
    authenticator: Authenticator,
    request: IssuanceRequest,
    reporter: Reporter,
    *,
    clock: Callable[[], float] = time.monotonic,
) -> Obtained:
    """Run one order to a downloaded certificate; ``ChallengeFailed`` names each failed identifier."""
    deadline = clock() + request.timeout
    order = client.new_order(request.identifiers, profile=request.profile, replaces=request.replaces)
    logger.info("order %s for %s", order.url, ", ".join(i.value for i in request.identifiers))
    crash_point("order-created")
    ready = authorize(client, authenticator, order, request.preferred_challenges, reporter, deadline=deadline)
    order = ready or client.wait_for_order(order.url, deadline=deadline)
    reporter.progress("finalizing the order")
    order = client.finalize(order, request.csr_der, deadline=deadline)
    crash_point("finalized")
    download = client.download_certificate(order)
    crash_point("downloaded")
    chosen = download.select(request.preferred_chain)
    certificates = crypto.split_pem_der(chosen)  # framed as certificates; storage checks the key matches
    leaf_pem = crypto.pem_of_der(certificates[:1])
    chain_pem = crypto.pem_of_der(certificates[1:])
    return Obtained(leaf_pem, chain_pem, leaf_pem + chain_pem, order.url, download.url)


def authorize(
    client: AcmeClient,
    authenticator: Authenticator,
    order: OrderHandle,
    preferred: Sequence[str],
    reporter: Reporter,
    *,
    deadline: float,
) -> OrderHandle | None:
    """Make every authorization of ``order`` valid, or raise ``ChallengeFailed``.

    Returns the order once ready when challenges were answered, ``None`` when nothing was pending.
    """
    handles = client.authorizations(order)
    pending: list[tuple[AuthorizationHandle, ChallengeTask]] = []
    for handle in handles:
        status = handle.authorization.status
        if status == AuthorizationStatus.VALID:
            continue
        if status != AuthorizationStatus.PENDING:
            raise ChallengeFailed(
                f"the CA's authorization for {handle.authorization.identifier.value} is {status}",
                hint="run the command again to get a new order",
            )
        pending.append((handle, _task(client, authenticator, handle, preferred)))
    if not pending:
        return None
    tasks = [task for _, task in pending]
    reporter.progress(f"proving control of {', '.join(_describe(t) for t in tasks)}")
    try:
        payloads = authenticator.perform(tasks)
        if len(payloads) != len(tasks):
            raise ChallengeFailed(f"the {authenticator.name} authenticator answered {len(payloads)} of "
                                  f"{len(tasks)} challenges", hint="this is a bug in that plugin")
        client.answer_challenges([(task.challenge, payload) for task, payload in zip(tasks, payloads, strict=True)])
        crash_point("challenges-answered")
        return _wait_all(client, order, pending, reporter, deadline)
    finally:
        try:
            authenticator.cleanup(tasks)
        except Exception:  # cleanup must not hide the real outcome
            logger.exception("the %s authenticator failed to clean up", authenticator.name)
            reporter.warn(f"the {authenticator.name} authenticator could not clean up its challenge files")


def _describe(task: ChallengeTask) -> str:
    return f"{task.domain} ({task.challenge.type_name})"


def _wait_all(
    client: AcmeClient, order: OrderHandle, pending: Sequence[tuple[AuthorizationHandle, ChallengeTask]],
    reporter: Reporter, deadline: float,
) -> OrderHandle:
    """Wait for the order to become ready: one request per poll however many names it has (RFC 8555
    §7.1.6: ready once every authorization is valid, invalid once one fails). Only when it fails are
    the authorizations read, to say which names failed and why."""
    names = ", ".join(task.domain for _, task in pending[:3]) + (" ..." if len(pending) > 3 else "")
    reporter.progress(f"waiting for the CA to validate {names}")
    try:
        return client.wait_for_order(order.url, deadline=deadline, seen=order)  # still pending: no look at once
    except (ResourceFailed, PollTimeout) as err:
        failures = _failures(client, pending) or [str(err)]
    raise ChallengeFailed(
        "the CA could not validate " + ("these names" if len(failures) > 1 else "this name") + ":\n  "
        + "\n  ".join(failures),
        hint=_hint(pending[0][1].challenge.type_name),
    )


def _failures(client: AcmeClient, pending: Sequence[tuple[AuthorizationHandle, ChallengeTask]]) -> list[str]:
    failures: list[str] = []
    for handle, task in pending:
        try:
            authorization = client.get_authorization(handle.url).authorization
        except AcmeError as err:
            failures.append(f"{task.domain}: {err}")
            continue
        if authorization.status == AuthorizationStatus.VALID:
            continue
        errors = [c.error for c in authorization.challenges if c.error is not None]
        if errors:
            failures.append(f"{task.domain}: {task.challenge.type_name} failed: "
                            f"{errors[0].short_type}: {errors[0].detail}")
        else:
            failures.append(f"{task.domain}: the authorization is still {authorization.status}")
    return failures


def _hint(challenge_type: str) -> str:
    if challenge_type == "http-01":
        return ("make sure each name resolves to this server and that port 80 (or the one your --http-01-port "
                "forwards to) reaches it; see the CA's detail above")
    if challenge_type == "dns-01":
        return "check that the TXT record was published where the CA looks (_acme-challenge.<name>) before validation"
    return "check that this server answers TLS on port 443 for the name; see the CA's detail above"


def _task(
    client: AcmeClient, authenticator: Authenticator, handle: AuthorizationHandle, preferred: Sequence[str]
) -> ChallengeTask:
    authorization = handle.authorization
    identifier = authorization.identifier
    if authorization.wildcard and not identifier.value.startswith("*."):
        identifier = Identifier(identifier.type, "*." + identifier.value)
    supported = list(authenticator.supported_challenges(identifier))
    order = [name for name in preferred if name in supported] if preferred else supported
    offered = {challenge.type_name: challenge for challenge in authorization.challenges}
    challenge: Challenge | None = next((offered[name] for name in order if name in offered), None)
    if challenge is None:
        raise ChallengeFailed(
            f"no challenge for {identifier.value} that both the CA and the {authenticator.name} authenticator "
            f"can do: the CA offers {', '.join(offered) or 'none'}; {authenticator.name} can do "
            f"{', '.join(supported) or 'none'}" + (f"; you asked for {', '.join(preferred)}" if preferred else ""),
            hint="choose another authenticator (--webroot, --manual, --nginx, ...) or --preferred-challenges",
        )
    key_authorization = "" if challenge.token is None else challenges.key_authorization(challenge.token, client.key)
    return ChallengeTask(identifier, challenge, key_authorization, client.key)
