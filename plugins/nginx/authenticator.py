"""The authenticator's edits: temporary configuration that answers challenges through nginx.

Role: the actions layer's challenge provisioning, on a
:class:`~plugins.nginx.configuration.Configuration` (in memory; the plugin saves it as a temporary
checkpoint, tests, reloads, and reverts it byte for byte in ``cleanup``).

- ``http-01``: in each block nginx uses for the name on the http-01 port, an exact-match
  ``location = /.well-known/acme-challenge/<token>`` returning the key authorization; in a block
  that runs ``return``/``rewrite`` before choosing a location (a redirect-only block), an
  ``if ($uri = ...)`` placed before them instead. No block serves the name: a temporary server
  block with that name, listening where the port's other blocks listen.
- ``simpleHttps`` (2015 draft): the same location, over TLS, in the block serving the name on the
  TLS port, or a temporary TLS server block with a self-signed certificate.
- ``dvsni`` (2015 draft): a temporary TLS server block for the SNI ``<nonce>.acme.invalid``
  presenting the challenge certificate (signed by the account key; its key file is 0600 and is
  deleted with the checkpoint).

Allowed imports: the standard library, ``letsencrypt.plugin_api``, ``letsencrypt.acme`` and this
package.
"""

from __future__ import annotations

import dataclasses
import ssl
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from letsencrypt.acme import challenges
from letsencrypt.plugin_api import ChallengeSetupError, ChallengeTask, ChallengeType, Identifier, NotSupported
from letsencrypt.plugin_api.solutions import dvsni_solution

from .configuration import MANAGED, Configuration, connect_host, listens_for, managed
from .model import serving
from .probes import Expectation
from .tree import Block, Directive, Statement

__all__ = ["Provisioned", "provision", "supported"]


def supported(identifier: Identifier) -> list[str]:
    """http-01 first; the legacy pair when a CA offers them. Wildcards need dns-01: none."""
    if identifier.type == "ip":
        return [ChallengeType.HTTP_01]
    if identifier.type != "dns" or identifier.value.startswith("*."):
        return []
    return [ChallengeType.HTTP_01, ChallengeType.DVSNI, ChallengeType.SIMPLE_HTTPS]


@dataclasses.dataclass
class Provisioned:
    """What :func:`provision` did: the responses to POST, the checks, and files to write alongside."""

    responses: list[Mapping[str, Any]] = dataclasses.field(default_factory=list)
    expectations: list[Expectation] = dataclasses.field(default_factory=list)
    files: dict[Path, bytes] = dataclasses.field(default_factory=dict)
    private: set[Path] = dataclasses.field(default_factory=set)


@dataclasses.dataclass(frozen=True, slots=True)
class Ports:
    http: int
    https: int
    address: str


def provision(conf: Configuration, tasks: Sequence[ChallengeTask], ports: Ports, scratch: Path) -> Provisioned:
    """Edit ``conf`` so that nginx answers every task; files (challenge certificates) go to ``scratch``."""
    done = Provisioned()
    for task in tasks:
        if task.type not in supported(task.identifier):
            raise NotSupported(f"the nginx plugin cannot answer {task.challenge.type_name} for {task.domain}",
                               hint="choose http-01 with --preferred-challenges, or another authenticator")
        if task.type is ChallengeType.HTTP_01:
            _http01(conf, task, ports, done)
        elif task.type is ChallengeType.SIMPLE_HTTPS:
            _simple_https(conf, task, ports, scratch, done)
        else:
            _dvsni(conf, task, ports, scratch, done)
    return done


def _answer_location(path: str, body: str) -> Block:
    return Block.new("location", ("=", path),
                     [Directive.new("default_type", "text/plain"), Directive.new("return", "200", body)],
                     comment=MANAGED)


def _answer_if(path: str, body: str) -> Block:
    return Block.new("if", ("($uri", "=", f"{path})"), [Directive.new("return", "200", body)], comment=MANAGED)


def _http01(conf: Configuration, task: ChallengeTask, ports: Ports, done: Provisioned) -> None:
    path, body = task.http01_path, task.key_authorization
    choices = [choice for choice in serving(conf.blocks, task.domain, ports.http)
               if choice.by_name and not choice.block.is_tls(choice.listen)]
    answered: set[int] = set()
    for choice in choices:
        if choice.block.index not in answered:
            answered.add(choice.block.index)
            if conf.has_rewrite_phase(choice.block):
                conf.add(choice.block, [_answer_if(path, body)], early=True)
            else:
                conf.add(choice.block, [_answer_location(path, body)])
        done.expectations.append(Expectation("body", choice.listen.connect_host, ports.http, task.domain,
                                             task.http01_body, path))
    if not choices:
        listens = listens_for(conf, ports.http, ports.address, tls=False)
        conf.append_server([*(managed("listen", *text.split()) for text in listens),
                            managed("server_name", task.domain), _answer_location(path, body)])
        done.expectations += [Expectation("body", connect_host(text), ports.http, task.domain, task.http01_body,
                                          path) for text in listens]
    done.responses.append(challenges.challenge_response(ChallengeType.HTTP_01))


def _simple_https(conf: Configuration, task: ChallengeTask, ports: Ports, scratch: Path, done: Provisioned) -> None:
    try:
        solution = challenges.simple_https_solution(task.token)
    except ValueError as err:
        raise ChallengeSetupError(f"cannot answer the CA's simpleHttps challenge for {task.domain}: {err}") from err
    body = solution.body.decode("ascii")
    choices = [choice for choice in serving(conf.blocks, task.domain, ports.https)
               if choice.by_name and choice.block.is_tls(choice.listen)]
    for index in dict.fromkeys(choice.block.index for choice in choices):
        conf.add(conf.blocks[index], [_answer_location(solution.url_path, body)])
    hosts = [choice.listen.connect_host for choice in choices]
    if not choices:
        certificate = challenges.tls_alpn01_certificate(task.identifier, task.key_authorization or task.token)
        cert_file, key_file = _write_pair(done, scratch, f"simple-https-{solution.path}",
                                          certificate.certificate_pem(), certificate.private_key_pem())
        listens = listens_for(conf, ports.https, ports.address, tls=True)
        conf.append_server(_tls_server(listens, task.domain, cert_file, key_file,
                                       [_answer_location(solution.url_path, body)]))
        hosts = [connect_host(text) for text in listens]
    done.expectations += [Expectation("body", host, ports.https, task.domain, solution.body, solution.url_path,
                                      tls=True) for host in hosts]
    done.responses.append(solution.response_payload())


def _dvsni(conf: Configuration, task: ChallengeTask, ports: Ports, scratch: Path, done: Provisioned) -> None:
    solution = dvsni_solution(task)
    pair = solution.challenge_certificate
    cert_file, key_file = _write_pair(done, scratch, f"dvsni-{task.challenge.nonce}", pair.certificate_pem(),
                                      pair.private_key_pem())
    listens = listens_for(conf, ports.https, ports.address, tls=True)
    conf.append_server(_tls_server(listens, solution.sni, cert_file, key_file, [managed("return", "404")]))
    der = ssl.PEM_cert_to_DER_cert(pair.certificate_pem().decode("ascii"))
    done.expectations += [Expectation("certificate", connect_host(text), ports.https, solution.sni, der)
                          for text in listens]
    done.responses.append(solution.response_payload())


def _write_pair(done: Provisioned, scratch: Path, stem: str, cert: bytes, key: bytes) -> tuple[Path, Path]:
    cert_file, key_file = scratch / f"{stem}.crt", scratch / f"{stem}.key"
    done.files[cert_file] = cert
    done.files[key_file] = key
    done.private.add(key_file)
    return cert_file, key_file


def _tls_server(listens: Sequence[str], name: str, cert: Path, key: Path,
                extra: Sequence[Statement]) -> list[Statement]:
    return [*(managed("listen", *text.split()) for text in listens), managed("server_name", name),
            managed("ssl_certificate", str(cert)), managed("ssl_certificate_key", str(key)), *extra]
