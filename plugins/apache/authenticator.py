"""The authenticator half of the Apache plugin: challenges served by the running Apache, then removed.

Role: the actions layer for :class:`letsencrypt.plugin_api.Authenticator`. ``perform`` makes one
temporary checkpoint (``server.ApacheSite.apply``) and reloads Apache, returning once every
challenge is really served (fetched over HTTP, or its certificate presented over TLS):

- ``http-01``: the key authorization in a file under ``<work-dir>/apache-challenges``, and an
  ``Include`` of ``snippets.challenge_include`` as the first line of the vhost Apache picks for the
  name on the http-01 port (``model.ApacheConfig.vhost_for``: name-based, IP-based and default
  vhosts alike), so that it comes before the vhost's own rewrites and redirects. No vhost on that
  port: the include goes to the main server.
- ``simpleHttps``: the token at ``/.well-known/acme-challenge/<path>`` over TLS, in the TLS vhost
  serving the name, or else in a temporary TLS vhost for the name (self-signed certificate).
- ``dvsni``: a temporary TLS vhost for the SNI ``<nonce>.acme.invalid`` presenting the challenge
  certificate (signed by the account key, as the 2015 draft requires).

mod_ssl, mod_rewrite and a ``Listen`` are enabled for the challenge only when it needs them.
``cleanup`` (and any failure in ``perform``) rolls the checkpoint back byte for byte and reloads.

Allowed imports: the standard library, ``letsencrypt.plugin_api``, ``letsencrypt.acme``; this package.
"""

from __future__ import annotations

import contextlib
import dataclasses
import ssl
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from letsencrypt.acme import challenges
from letsencrypt.plugin_api import (
    ChallengeSetupError,
    ChallengeTask,
    ChallengeType,
    Identifier,
    NotSupported,
    PluginContext,
    PluginError,
)
from letsencrypt.plugin_api.solutions import dvsni_solution

from . import snippets
from .control import ApacheNotRunning, http_get, module_links
from .model import Address, VirtualHost
from .server import ApacheSite, Check, certificate_check, connect_host
from .transactions import Checkpoint, Content, Transaction
from .tree import ConfigTree, Section

__all__ = ["ApacheAuthenticator"]

CHALLENGE_DIR = "apache-challenges"
_PRIVATE = 0o600


@dataclasses.dataclass
class _Plan:
    """What one ``perform`` writes and edits, and how to check it is served."""

    files: dict[Path, Content] = dataclasses.field(default_factory=dict)
    keys: dict[Path, Content] = dataclasses.field(default_factory=dict)
    includes: dict[tuple[str, str], tuple[VirtualHost, Path]] = dataclasses.field(default_factory=dict)
    main_includes: list[Path] = dataclasses.field(default_factory=list)
    modules: set[str] = dataclasses.field(default_factory=set)
    listen_tls: bool = False
    checks: list[Check] = dataclasses.field(default_factory=list)
    responses: list[Mapping[str, Any]] = dataclasses.field(default_factory=list)


class ApacheAuthenticator:
    """Serves http-01, simpleHttps and dvsni through the running Apache."""

    def __init__(self, site: ApacheSite, context: PluginContext) -> None:
        self.site = site
        self.context = context
        self.folder = context.work_dir / CHALLENGE_DIR
        self._checkpoint: Checkpoint | None = None

    def supported_challenges(self, identifier: Identifier) -> list[str]:
        if identifier.value.startswith("*."):
            return []  # a wildcard needs dns-01
        if identifier.type != "dns":
            return ["http-01"]
        return ["http-01", "simpleHttps", "dvsni"]

    def perform(self, tasks: Sequence[ChallengeTask]) -> Sequence[Mapping[str, Any]]:
        plan = _Plan()
        for task in tasks:
            self._provision(task, plan)
        names = ", ".join(dict.fromkeys(task.domain for task in tasks))
        try:
            self._checkpoint = self.site.apply(f"letsencrypt: challenges for {names}",
                                               lambda transaction, tree: self._apply(transaction, tree, plan),
                                               temporary=True, scratch=True)
            self.site.reload(plan.checks)
        except PluginError as err:
            self._undo()
            raise ChallengeSetupError(f"Apache could not serve the challenges for {names}: {err.message}",
                                      hint=err.hint) from err
        return plan.responses

    def cleanup(self, tasks: Sequence[ChallengeTask]) -> None:
        self._undo()

    def _undo(self) -> None:
        if self._checkpoint is None:
            return
        checkpoint, self._checkpoint = self._checkpoint, None
        self.site.revert(checkpoint, scratch=True)
        if checkpoint.files:
            with contextlib.suppress(ApacheNotRunning):
                self.site.reload(test=False)  # the configuration Apache ran before, byte for byte

    # --- planning ----------------------------------------------------------------------------------

    def _provision(self, task: ChallengeTask, plan: _Plan) -> None:
        kind = task.type
        if kind is ChallengeType.HTTP_01:
            self._http01(task, plan)
        elif kind is ChallengeType.SIMPLE_HTTPS:
            self._simple_https(task, plan)
        elif kind is ChallengeType.DVSNI:
            self._dvsni(task, plan)
        else:
            raise NotSupported(f"the apache authenticator cannot answer {task.challenge.type_name} for {task.domain}",
                               hint="choose http-01 with --preferred-challenges, or another authenticator")

    def _include_for(self, vhost: VirtualHost | None, plan: _Plan) -> Path:
        rewrite = vhost is not None and any(
            e.key in ("rewriterule", "redirect", "redirectmatch", "redirectpermanent", "redirecttemp")
            for e in vhost.entry.walk())
        include = self.folder / ("challenge-rewrite.conf" if rewrite else "challenge.conf")
        plan.files[include] = snippets.challenge_include(self.folder, rewrite=rewrite).encode()
        plan.modules |= {"alias"} | ({"rewrite"} if rewrite else set())
        return include

    def _http01(self, task: ChallengeTask, plan: _Plan) -> None:
        config, port = self.site.config, self.context.http01_port
        plan.files[self.folder / task.token] = task.http01_body
        vhost = config.vhost_for(task.domain, port)
        include = self._include_for(vhost, plan)
        if vhost is not None:
            plan.includes[(vhost.file, vhost.path)] = (vhost, include)
        elif any(listen.port == port for listen in config.listens):
            plan.main_includes.append(include)
        else:
            raise ChallengeSetupError(f"Apache does not listen on port {port}, where the CA checks {task.domain}",
                                      hint=f"add `Listen {port}` to the Apache configuration, or give the port "
                                      "Apache listens on with --http-01-port")
        host = connect_host(config, vhost, port)
        plan.checks.append(_body_check(host, port, task.domain, task.http01_path, task.http01_body, tls=False))
        plan.responses.append(challenges.challenge_response(task.type))

    def _simple_https(self, task: ChallengeTask, plan: _Plan) -> None:
        config, port = self.site.config, self.context.https_port
        solution = challenges.simple_https_solution(task.token)
        plan.files[self.folder / solution.path] = solution.body
        served_by = config.vhost_for(task.domain, port)
        if served_by is not None and served_by.tls and served_by.matches(task.domain):
            plan.includes[(served_by.file, served_by.path)] = (served_by, self._include_for(served_by, plan))
        else:
            certificate = challenges.tls_alpn01_certificate(task.identifier, task.key_authorization)
            self._temporary_vhost(task.domain, certificate, plan, include=self._include_for(None, plan))
        host = connect_host(config, served_by, port)
        plan.checks.append(_body_check(host, port, task.domain, solution.url_path, solution.body, tls=True))
        plan.responses.append(solution.response_payload())

    def _dvsni(self, task: ChallengeTask, plan: _Plan) -> None:
        solution = dvsni_solution(task)
        self._temporary_vhost(solution.sni, solution.challenge_certificate, plan, include=None)
        der = ssl.PEM_cert_to_DER_cert(solution.challenge_certificate.certificate_pem().decode())
        host = connect_host(self.site.config, None, self.context.https_port)
        plan.checks.append(certificate_check(host, self.context.https_port, solution.sni, der))
        plan.responses.append(solution.response_payload())

    def _temporary_vhost(self, name: str, certificate: challenges.ChallengeCertificate, plan: _Plan, *,
                         include: Path | None) -> None:
        port = self.context.https_port
        stem = self.folder / f"tls-{len(plan.main_includes) + 1}"
        cert_file, key_file, conf = stem.with_suffix(".crt"), stem.with_suffix(".key"), stem.with_suffix(".conf")
        plan.keys[key_file] = certificate.private_key_pem()
        plan.files[cert_file] = certificate.certificate_pem()
        addresses = [f"*:{port}"] + [str(a) for v in self.site.config.vhosts for a in v.addresses
                                     if not a.is_wildcard and a.port == port]
        plan.files[conf] = snippets.temporary_vhost(list(dict.fromkeys(addresses)), name, include=include,
                                                    certificate=(cert_file, key_file)).encode()
        plan.main_includes.append(conf)
        plan.modules.add("ssl")
        plan.listen_tls = True

    # --- applying ----------------------------------------------------------------------------------

    def _apply(self, transaction: Transaction, tree: ConfigTree, plan: _Plan) -> None:
        site = self.site
        config = site.config
        files = dict(plan.files)
        for module in sorted(plan.modules):
            loaded = set(config.loaded.modules) | {f"{p.stem}_module" for p in files if p.suffix == ".load"}
            files.update(module_links(site.server_root, module, loaded))
        transaction.write(plan.keys, mode=_PRIVATE)
        transaction.write(files)
        tree.load(list(dict.fromkeys([*(vhost.file for vhost, _ in plan.includes.values()),
                                      config.loaded.main_file])))
        for vhost, include in plan.includes.values():
            section = tree.file(vhost.file).nodes[vhost.path]
            assert isinstance(section, Section)
            first = section.children[0] if section.children else None
            tree.add_directive(section, "Include", [snippets.quote(str(include))], before=first)
        main = config.loaded.main_file
        port = self.context.https_port
        if plan.listen_tls and not any(listen.port == port for listen in config.listens) \
                and not _listen_under_ssl(config, port):
            address = str(Address("127.0.0.1", port)) if _loopback_only(config) else str(port)
            tree.add_directive(tree.file(main), "Listen", [address])
        for include in dict.fromkeys(plan.main_includes):
            tree.add_directive(tree.file(main), "Include", [snippets.quote(str(include))])


def _listen_under_ssl(config: Any, port: int) -> bool:
    """A ``Listen`` for ``port`` that Apache skips now only because mod_ssl is not loaded yet."""
    for file in config.loaded.files:
        for node in config.tree.file(file).walk():
            if node.name.lower() == "listen" and node.words and node.words[0].rsplit(":", 1)[-1] == str(port):
                return True
    return False


def _loopback_only(config: Any) -> bool:
    return bool(config.listens) and all(listen.host in ("127.0.0.1", "::1") for listen in config.listens)


def _body_check(host: str, port: int, name: str, path: str, body: bytes, *, tls: bool) -> Check:
    def check() -> str | None:
        try:
            answer = http_get(host, port, name, path, tls=tls, timeout=1.0)
        except OSError as err:
            return f"{path} for {name}: {err}"
        if answer.status == 200 and answer.body == body:
            return None
        return f"{path} for {name} answers {answer.status} {answer.body[:80]!r}"
    return check
