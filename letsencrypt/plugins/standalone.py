"""The ``standalone`` authenticator: answers challenges with its own short-lived servers.

http-01 is served on ``--http-01-address``:``--http-01-port``; tls-alpn-01 (RFC 8737) and the
legacy ``simpleHttps`` and ``dvsni`` (2015 draft, protocol-notes A.1/A.4) share one TLS listener
on ``--https-port`` (same address) that dispatches by SNI and ALPN, so every task of a run is answerable at once.
The listeners start in :meth:`StandaloneAuthenticator.perform` and stop (threads joined) once
:meth:`StandaloneAuthenticator.cleanup` has removed the last task that needed them.

Registered through the ``letsencrypt.plugins`` entry point like any third-party plugin.
Imports: stdlib, ``letsencrypt.plugin_api``, ``letsencrypt.acme`` and this package's private
modules.
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from letsencrypt.acme import challenges
from letsencrypt.acme.challenges import ACME_TLS_ALPN_PROTOCOL
from letsencrypt.acme.records import record
from letsencrypt.plugin_api import (
    ChallengeSetupError,
    ChallengeTask,
    ChallengeType,
    Identifier,
    NotSupported,
    Option,
    PluginContext,
)
from letsencrypt.plugins import _tls
from letsencrypt.plugins._responders import HttpResponder

if TYPE_CHECKING:
    from letsencrypt import plugin_api
    from letsencrypt.plugins._tls_responder import TlsResponder, TlsRoutes

logger = logging.getLogger(__name__)

_FALLBACK_NAME = "letsencrypt-standalone.invalid"


@record
class _Served:
    """What one task put on a listener: an HTTP resource, a TLS route, or both (simpleHttps)."""

    kind: ChallengeType
    path: str = ""
    body: bytes = b""
    sni: str = ""
    context: ssl.SSLContext | None = None
    domain: str = ""


class StandaloneAuthenticator:
    """Serves http-01, tls-alpn-01, dvsni and simpleHttps from servers of its own."""

    name = "standalone"
    description = "Spin up temporary web and TLS servers (needs ports 80/443 free)"
    options: Sequence[Option] = ()

    def __init__(self, context: PluginContext) -> None:
        self._context = context
        self._served: dict[str, _Served] = {}  # challenge URL -> what is served for it
        self._http: HttpResponder | None = None
        self._tls: TlsResponder | None = None

    def prepare(self) -> None:
        for flag, port in (("--http-01-port", self._context.http01_port), ("--https-port", self._context.https_port)):
            if not 0 <= port <= 65535:
                raise ChallengeSetupError(f"{flag} {port} is not a TCP port", hint="give a port from 1 to 65535")

    def supported_challenges(self, identifier: Identifier) -> Sequence[str]:
        if identifier.type == "ip":
            return [ChallengeType.HTTP_01, ChallengeType.TLS_ALPN_01]
        if identifier.type != "dns" or identifier.value.startswith("*."):
            return []  # wildcards need dns-01
        return [ChallengeType.HTTP_01, ChallengeType.TLS_ALPN_01, ChallengeType.DVSNI, ChallengeType.SIMPLE_HTTPS]

    def perform(self, tasks: Sequence[ChallengeTask]) -> Sequence[Mapping[str, Any]]:
        try:
            responses = [self._provision(task) for task in tasks]
            self._publish()
        except BaseException:
            self.cleanup(tasks)
            raise
        by_type: dict[str, list[str]] = {}
        for task in tasks:
            by_type.setdefault(task.challenge.type_name, []).append(task.domain)
        for type_name, domains in by_type.items():  # one line per type: a 100-name order logs 1, not 100
            logger.info("standalone: serving %s for %s", type_name, ", ".join(domains))
        return responses

    def cleanup(self, tasks: Sequence[ChallengeTask]) -> None:
        for task in tasks:
            self._served.pop(task.challenge.url, None)
        self._publish()

    # --- internals ----------------------------------------------------------------------------

    def _provision(self, task: ChallengeTask) -> Mapping[str, Any]:
        kind = task.type
        if kind not in self.supported_challenges(task.identifier):
            raise NotSupported(
                f"the standalone authenticator cannot answer {task.challenge.type_name} for {task.domain}",
                hint="choose another challenge with --preferred-challenges or another authenticator",
            )
        if kind is ChallengeType.HTTP_01:
            served = _Served(kind, path=task.http01_path, body=task.http01_body)
            response: Mapping[str, Any] = challenges.challenge_response(kind)
        elif kind is ChallengeType.TLS_ALPN_01:
            certificate = challenges.tls_alpn01_certificate(task.identifier, task.key_authorization)
            context = _tls.server_context(certificate, [ACME_TLS_ALPN_PROTOCOL])
            served = _Served(kind, sni=challenges.tls_alpn01_sni(task.identifier), context=context)
            response = challenges.challenge_response(kind)
        elif kind is ChallengeType.SIMPLE_HTTPS:
            solution = challenges.simple_https_solution(task.token)
            served = _Served(kind, path=solution.url_path, body=solution.body, domain=task.domain)
            response = solution.response_payload()
        else:
            served, response = self._dvsni(task)
        self._served[task.challenge.url] = served
        return response

    @staticmethod
    def _dvsni(task: ChallengeTask) -> tuple[_Served, Mapping[str, Any]]:
        from letsencrypt.plugin_api.solutions import dvsni_solution  # legacy: only when a CA offers dvsni

        solution = dvsni_solution(task)
        context = _tls.server_context(solution.challenge_certificate)
        return _Served(ChallengeType.DVSNI, sni=solution.sni, context=context), solution.response_payload()

    def _publish(self) -> None:
        """Start, update or stop the listeners so that they serve exactly what ``_served`` holds."""
        http = {s.path: s.body for s in self._served.values() if s.kind is ChallengeType.HTTP_01}
        tls = [s for s in self._served.values() if s.kind is not ChallengeType.HTTP_01]
        if http and self._http is None:
            self._http = HttpResponder(self._context.http01_address, self._context.http01_port).__enter__()
        if tls and self._tls is None:
            from letsencrypt.plugins._tls_responder import (
                TlsResponder,  # only for TLS challenges: spares http-01 runs http.server
            )

            self._tls = TlsResponder(self._context.http01_address, self._context.https_port).__enter__()
        if self._http is not None:
            self._http.publish(http)
        if self._tls is not None and tls:
            self._tls.publish(_routes(tls))
        if not http and self._http is not None:
            self._http.__exit__(None, None, None)
            self._http = None
        if not tls and self._tls is not None:
            self._tls.__exit__(None, None, None)
            self._tls = None


def _routes(served: Sequence[_Served]) -> TlsRoutes:
    """TLS routes for the served TLS-based tasks; the default certificate names the simpleHttps domains."""
    from letsencrypt.plugins._tls_responder import TlsRoutes  # only for TLS challenges: spares http-01 runs http.server

    https = [s for s in served if s.kind is ChallengeType.SIMPLE_HTTPS]
    names = sorted({s.domain for s in https}) or [_FALLBACK_NAME]
    default = _tls.server_context(_tls.self_signed(names), ["http/1.1"])
    return TlsRoutes(
        default=default,
        alpn={s.sni: s.context for s in served if s.kind is ChallengeType.TLS_ALPN_01 and s.context is not None},
        sni={s.sni: s.context for s in served if s.kind is ChallengeType.DVSNI and s.context is not None},
        resources={s.path: s.body for s in https},
    )


if TYPE_CHECKING:
    _: type[plugin_api.Authenticator] = StandaloneAuthenticator
