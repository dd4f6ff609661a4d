"""What nginx must serve once a change took effect: :class:`Expectation` checks, polled until they hold.

The plugin waits for these instead of sleeping after a reload (certbot sleeps a fixed time). The
probes underneath (served certificate chain, HTTP(S) with SNI, :func:`wait_until`) are the public
:mod:`letsencrypt.plugin_api.probes`, re-exported here for the plugin's modules.

Allowed imports: the standard library and ``letsencrypt.plugin_api``.
"""

from __future__ import annotations

import dataclasses
import http.client
from collections.abc import Callable, Sequence

from letsencrypt.plugin_api import probes
from letsencrypt.plugin_api.probes import HttpAnswer, ServedChain, http_get, pem_certificates, served_chain, served_leaf

__all__ = [
    "Expectation", "HttpAnswer", "ServedChain", "check_all", "http_get", "pem_certificates", "served_chain",
    "served_leaf", "wait_until",
]

def wait_until(check: Callable[[], str | None], deadline: float, what: str) -> None:
    """:func:`letsencrypt.plugin_api.probes.wait_until`, its error pointing at nginx's error log."""
    probes.wait_until(check, deadline, what, hint="see nginx's error log")


@dataclasses.dataclass(frozen=True, slots=True)
class Expectation:
    """Something nginx must serve once a change took effect; :meth:`check` says whether it does.

    ``kind`` is ``"certificate"`` (``value``: the leaf's DER, for SNI ``name``), ``"redirect"``
    (``value``: the start of the ``Location`` a GET of ``path`` must get) or ``"body"`` (a GET of
    ``path`` must answer 200 with exactly ``value``). ``host``:``port`` is where to connect.
    """

    kind: str
    host: str
    port: int
    name: str
    value: bytes
    path: str = "/"
    tls: bool = False

    def where(self) -> str:
        scheme = "https" if self.tls or self.kind == "certificate" else "http"
        return f"{scheme}://{self.name}{self.path} (at {self.host}:{self.port})"

    def check(self) -> str | None:
        """None when nginx serves what is expected, else what it serves instead."""
        try:
            if self.kind == "certificate":
                served = served_leaf(self.host, self.port, self.name)
                return None if served == self.value else f"{self.where()} still presents another certificate"
            answer = http_get(self.host, self.port, self.name, self.path, tls=self.tls)
        except (OSError, http.client.HTTPException) as err:
            return f"{self.where()}: {err}"
        if self.kind == "redirect":
            location = answer.headers.get("location", "")
            if answer.status in (301, 302, 307, 308) and location.startswith(self.value.decode()):
                return None
            return f"{self.where()} answered {answer.status} {location!r}, not a redirect to {self.value.decode()}"
        if answer.status == 200 and answer.body == self.value:
            return None
        return f"{self.where()} answered {answer.status} with {answer.body[:80]!r}"


def check_all(expectations: Sequence[Expectation]) -> Callable[[], str | None]:
    """One check for :func:`wait_until` that holds when every expectation does."""

    def check() -> str | None:
        for expectation in expectations:
            seen = expectation.check()
            if seen is not None:
                return seen
        return None

    return check
