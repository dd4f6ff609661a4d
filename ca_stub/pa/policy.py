"""The policy authority: which identifiers, challenges, profiles and keys the CA accepts.

Boulder's PA (protocol-notes B.11) in one class conforming to ``PolicyAuthority``. Challenge
offers: DNS names get ``http-01``, ``dns-01`` and ``tls-alpn-01`` (RFC 8555 §8, RFC 8737);
wildcards only ``dns-01`` (RFC 8555 §7.1.3: a wildcard cannot be proven over HTTP or TLS);
IP addresses ``http-01`` and ``tls-alpn-01`` (RFC 8738 §7: no ``dns-01``). With
``legacy_challenges`` the 2015 draft's ``simpleHttps`` and ``dvsni`` are offered too, never
for wildcards.

Imports: stdlib, ``letsencrypt.acme``, ``ca_stub.contracts`` and ``ca_stub.pa``.
"""

from __future__ import annotations

import types
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ca_stub.contracts import CAError, PolicyAuthority, Profile
from ca_stub.pa.identifiers import BlockList, check_dns, check_ip
from ca_stub.pa.keys import check_account_key, check_certificate_key
from ca_stub.pa.profiles import DEFAULT_PROFILES
from letsencrypt.acme.messages import Identifier, Problem

__all__ = ["MAX_IDENTIFIERS", "Policy"]

MAX_IDENTIFIERS = 100  # per order, as Let's Encrypt (protocol-notes B.8)

_MODERN_DNS = ("http-01", "dns-01", "tls-alpn-01")
_WILDCARD = ("dns-01",)
_MODERN_IP = ("http-01", "tls-alpn-01")
_LEGACY = ("simpleHttps", "dvsni")


class Policy:
    """What the CA will do: identifiers, challenge offers, profiles, acceptable keys."""

    def __init__(
        self,
        block_list: Sequence[str] = (),
        legacy_challenges: bool = False,
        profiles: Mapping[str, Profile] | None = None,
        default_profile: str = "default",
    ) -> None:
        chosen = dict(DEFAULT_PROFILES if profiles is None else profiles)
        if default_profile not in chosen:
            raise ValueError(f"default profile {default_profile!r} is not among the profiles {sorted(chosen)}")
        for name, profile in chosen.items():
            if name != profile.name:
                raise ValueError(f"profile registered as {name!r} is named {profile.name!r}")
        self._block_list = BlockList(block_list)
        self._legacy = legacy_challenges
        self._profiles: Mapping[str, Profile] = types.MappingProxyType(chosen)
        self._default = default_profile

    # --- identifiers -----------------------------------------------------------------------

    def check_identifiers(self, identifiers: Sequence[Identifier], profile: Profile) -> None:
        """Raise ``CAError`` with one subproblem per bad identifier (RFC 8555 §6.7.1), else nothing.

        The top-level type is the subproblems' common type, or ``compound`` when they differ.
        """
        if not identifiers:
            raise CAError("malformed", "an order needs at least one identifier")
        if len(identifiers) > MAX_IDENTIFIERS:
            raise CAError(
                "malformed", f"an order may hold at most {MAX_IDENTIFIERS} identifiers, not {len(identifiers)}"
            )
        problems = [p for p in (self._check_one(i, profile) for i in identifiers) if p is not None]
        if not problems:
            return
        types_found = {problem.short_type for problem in problems}
        top = types_found.pop() if len(types_found) == 1 else "compound"
        if len(problems) == 1:
            detail = f"cannot issue for {problems[0].detail}"
        else:
            names = ", ".join(repr(p.identifier.value) for p in problems if p.identifier is not None)
            detail = f"cannot issue for {len(problems)} identifiers ({names}); see the subproblems"
        raise CAError(top, detail, subproblems=problems)

    def _check_one(self, identifier: Identifier, profile: Profile) -> Problem | None:
        if identifier.type not in ("dns", "ip"):
            return Problem.acme(
                "unsupportedIdentifier",
                f"{identifier.value!r}: identifier type {identifier.type!r} is not supported; use 'dns' or 'ip'",
                identifier=identifier,
            )
        if identifier.type not in profile.identifier_types:
            return Problem.acme(
                "rejectedIdentifier",
                f"{identifier.value!r}: profile {profile.name!r} does not allow {identifier.type!r} identifiers",
                identifier=identifier,
            )
        if identifier.type == "dns":
            return check_dns(identifier, self._block_list)
        return check_ip(identifier, self._block_list)

    # --- challenges --------------------------------------------------------------------------

    def challenge_types(self, identifier: Identifier, wildcard: bool) -> tuple[str, ...]:
        """The challenge types offered for an authorization, in order of preference."""
        legacy = _LEGACY if self._legacy else ()
        if identifier.type == "ip":
            return _MODERN_IP + legacy
        if wildcard or identifier.value.startswith("*."):
            return _WILDCARD
        return _MODERN_DNS + legacy

    # --- profiles ----------------------------------------------------------------------------

    def profiles(self) -> Mapping[str, Profile]:
        return self._profiles

    def profile(self, name: str | None) -> Profile:
        """The named profile, the default for ``None``; ``invalidProfile`` for an unknown name."""
        if name is None:
            return self._profiles[self._default]
        found = self._profiles.get(name)
        if found is None:
            offered = ", ".join(sorted(self._profiles))
            raise CAError("invalidProfile", f"profile {name!r} is not offered; choose one of {offered}")
        return found

    # --- keys --------------------------------------------------------------------------------

    def allowed_key(self, public_key: Any) -> None:
        """``CAError(badCSR)`` unless a CSR's key may be certified (RSA 2048/3072/4096, P-256, P-384)."""
        check_certificate_key(public_key)

    def allowed_account_key(self, jwk: Mapping[str, Any]) -> None:
        """``CAError(badPublicKey)`` unless the JWK is an acceptable account key (RSA, P-256/384, Ed25519)."""
        check_account_key(jwk)


if TYPE_CHECKING:
    _conforms: type[PolicyAuthority] = Policy
