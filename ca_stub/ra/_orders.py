"""Order and authorization rules of the RA (RFC 8555 §7.1.6, §7.4; protocol-notes B.3).

Pure functions: normalising the identifiers of a newOrder, checking its ``notBefore``/``notAfter``,
splitting a wildcard into the authorization it needs, and computing what status an order should
have given its authorizations. The RA persists what they decide.

Imports: stdlib, ``ca_stub.contracts`` and ``letsencrypt.acme``.
"""

from __future__ import annotations

import dataclasses
import datetime
import random
from collections.abc import Sequence

from ca_stub.contracts import AuthorizationRecord, CAError, NewChallenge, OrderRecord, Profile
from letsencrypt.acme.jws import b64encode
from letsencrypt.acme.messages import (
    AuthorizationStatus,
    ChallengeStatus,
    Identifier,
    OrderStatus,
    Problem,
    format_time,
)

__all__ = [
    "MAX_BACKDATE",
    "authorization_target",
    "check_validity_window",
    "new_challenge",
    "normalise_identifiers",
    "order_identifier",
    "refreshed_status",
]

MAX_BACKDATE = datetime.timedelta(days=1)  # how far in the past a requested notBefore may lie


def as_utc(value: datetime.datetime) -> datetime.datetime:
    """Naive datetimes are UTC (RFC 3339 times on the wire always carry an offset anyway)."""
    return value.replace(tzinfo=datetime.UTC) if value.tzinfo is None else value


def normalise_identifiers(identifiers: Sequence[Identifier]) -> tuple[Identifier, ...]:
    """Lower-case DNS names, canonical IP text (RFC 8738 §3), duplicates dropped, order kept.

    ``malformed`` for an empty list or an IP identifier that is not an address (with a subproblem
    naming it, RFC 8555 §6.7.1). Other types are left for the PA to refuse.
    """
    if not identifiers:
        raise CAError("malformed", "an order needs at least one identifier")
    result: dict[Identifier, None] = {}
    for identifier in identifiers:
        if identifier.type == "dns":
            result[Identifier("dns", identifier.value.lower())] = None
        elif identifier.type == "ip":
            try:
                result[Identifier.ip(identifier.value)] = None
            except ValueError as err:
                detail = f"{identifier.value[:100]!r} is not an IP address"
                raise CAError(
                    "malformed", detail, subproblems=[Problem.acme("malformed", detail, identifier=identifier)]
                ) from err
        else:
            result[identifier] = None
    return tuple(result)


def check_validity_window(
    not_before: datetime.datetime | None,
    not_after: datetime.datetime | None,
    profile: Profile,
    now: datetime.datetime,
    latest_start: datetime.timedelta,
) -> None:
    """``malformed`` unless the requested validity is sane for ``profile`` (RFC 8555 §7.1.3).

    ``notAfter`` must be in the future and after ``notBefore``; the span from ``notBefore`` (or
    now) must fit the profile's validity; ``notBefore`` may be at most ``MAX_BACKDATE`` in the
    past and ``latest_start`` in the future.
    """
    start = as_utc(not_before) if not_before is not None else now
    if not_before is not None and not now - MAX_BACKDATE <= start <= now + latest_start:
        raise CAError("malformed", f"notBefore {format_time(start)} must lie between {format_time(now - MAX_BACKDATE)} "
                                   f"and {format_time(now + latest_start)}")
    if not_after is None:
        return
    end = as_utc(not_after)
    if end <= now or end <= start:
        raise CAError("malformed", f"notAfter {format_time(end)} must be in the future and after notBefore")
    if end - start > profile.validity:
        raise CAError("malformed", f"the requested validity {end - start} is longer than profile "
                                   f"{profile.name!r} allows ({profile.validity})")


def authorization_target(identifier: Identifier) -> tuple[Identifier, bool]:
    """The identifier an authorization covers and its ``wildcard`` flag (RFC 8555 §7.1.3, §7.1.4).

    ``*.example.com`` is authorized through ``example.com`` with ``wildcard: true``.
    """
    if identifier.type == "dns" and identifier.value.startswith("*."):
        return Identifier("dns", identifier.value[2:]), True
    return identifier, False


def order_identifier(authorization: AuthorizationRecord) -> Identifier:
    """The order's identifier an authorization stands for (the wildcard put back)."""
    if authorization.wildcard:
        return Identifier(authorization.identifier.type, "*." + authorization.identifier.value)
    return authorization.identifier


def new_challenge(challenge_type: str, rng: random.Random) -> NewChallenge:
    """A fresh challenge: a 32-byte token; ``dvsni`` also R (32 bytes) and N (16 bytes, hex).

    protocol-notes A.4: N must never be reused; 128 fresh random bits make a repeat negligible.
    """
    token = b64encode(rng.randbytes(32))
    if challenge_type == "dvsni":
        return NewChallenge(challenge_type, token, r=b64encode(rng.randbytes(32)), nonce=rng.randbytes(16).hex())
    return NewChallenge(challenge_type, token)


def _failure_of(authorization: AuthorizationRecord) -> Problem:
    """Why an authorization no longer counts, as a subproblem naming its identifier (RFC 8555 §6.7.1)."""
    identifier = order_identifier(authorization)
    if authorization.status == AuthorizationStatus.INVALID:
        for challenge in authorization.challenges:
            if challenge.status == ChallengeStatus.INVALID and challenge.error is not None:
                return dataclasses.replace(challenge.error, identifier=identifier, subproblems=())
        return Problem.acme("unauthorized", f"authorization for {identifier} failed", 403, identifier=identifier)
    return Problem.acme(
        "unauthorized", f"authorization for {identifier} is {authorization.status}", 403, identifier=identifier
    )


def _failed_order_problem(failed: Sequence[AuthorizationRecord]) -> Problem:
    """The order's ``error``: one subproblem per failed identifier; ``compound`` when their types differ."""
    subproblems = tuple(_failure_of(authorization) for authorization in failed)
    types = {sub.short_type for sub in subproblems}
    kind = types.pop() if len(types) == 1 else "compound"
    detail = "; ".join(f"{sub.identifier}: {sub.detail}" for sub in subproblems)
    return Problem.acme(kind, f"authorization failed for {detail}", 403, subproblems=subproblems)


def refreshed_status(
    order: OrderRecord, authorizations: Sequence[AuthorizationRecord], now: datetime.datetime
) -> tuple[OrderStatus, Problem | None] | None:
    """The status ``order`` should move to now, with its error, or ``None`` to leave it.

    Only ``pending`` and ``ready`` orders move (RFC 8555 §7.1.6): past ``expires`` or with an
    authorization that is neither pending nor valid they become ``invalid``; a pending order
    whose authorizations are all valid becomes ``ready``.
    """
    if order.status not in (OrderStatus.PENDING, OrderStatus.READY):
        return None
    if as_utc(order.expires) <= now:
        return OrderStatus.INVALID, Problem.acme(
            "malformed", f"the order expired at {format_time(order.expires)} before it was finalized", 403
        )
    failed = [a for a in authorizations if a.status not in (AuthorizationStatus.PENDING, AuthorizationStatus.VALID)]
    if failed:
        return OrderStatus.INVALID, _failed_order_problem(failed)
    if len(authorizations) != len(order.authorization_ids):
        return OrderStatus.INVALID, Problem.acme("serverInternal", "an authorization of the order is missing", 500)
    if order.status == OrderStatus.PENDING and all(a.status == AuthorizationStatus.VALID for a in authorizations):
        return OrderStatus.READY, None
    return None
