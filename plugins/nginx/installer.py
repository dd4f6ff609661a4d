"""The installer's edits: TLS for a name, the enhancements, and where a lineage is still used.

Role: the actions layer's configuration changes for ``deploy_certificate`` and ``enhance``, on a
:class:`~plugins.nginx.configuration.Configuration` (in memory; the plugin saves, tests and
reloads). Each function returns the :class:`~plugins.nginx.probes.Expectation` s that prove, after
the reload, that nginx serves the change.

- TLS goes into the block nginx uses for the name (:func:`tls_targets`): an existing TLS setup is
  updated in place; otherwise ``listen <https-port> ssl`` is added for each address the block
  listens on (``[::]:443 ssl`` beside ``[::]:80``), with ``ssl_certificate``/``ssl_certificate_key``,
  the shared options snippet and DH parameters.
- ``redirect`` goes into every block that serves the name on a plain-HTTP port (any port), and
  only where nginx already serves the name over HTTPS; it applies to plain HTTP only, so it cannot
  loop. The authenticator's http-01 answers go before it, so renewals keep working.
- ``hsts``, ``uir`` and ``staple-ocsp`` go into the blocks that serve the name over TLS.

Allowed imports: the standard library, ``letsencrypt.plugin_api`` and this package.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from letsencrypt.plugin_api import MisconfigurationError, NotSupported

from .configuration import MANAGED, Configuration, managed
from .model import Listen, ServerBlock, serving, top_matches
from .probes import Expectation
from .ssl_files import DHPARAM_NAME, OPTIONS_DIRECTIVES, OPTIONS_NAME, leaf_der, ocsp_responder
from .tree import Block, Directive

__all__ = ["deploy", "enhance", "lineage_in_use", "no_block_error", "tls_targets"]

CERTIFICATE_DIRECTIVES = ("ssl_certificate", "ssl_certificate_key", "ssl_trusted_certificate")
_REDIRECT_CODES = frozenset({"301", "302", "307", "308"})


def no_block_error(domain: str) -> MisconfigurationError:
    return MisconfigurationError(
        f"no nginx server block has a server_name matching {domain}",
        hint=f"add {domain} to the server_name of the server block that should serve it (nginx -T shows them), "
        "or run interactively to have one created",
    )


def tls_targets(conf: Configuration, domain: str) -> tuple[list[ServerBlock], bool]:
    """The blocks to give the certificate, and whether they already have TLS (update in place).

    nginx serves a name from its best-matching block: the blocks sharing the best match that already
    listen with TLS, else the first best-matching block.
    """
    best = top_matches(conf.blocks, domain)
    if not best:
        raise no_block_error(domain)
    with_tls = [block for block in best if block.tls_listens]
    return (with_tls, True) if with_tls else (best[:1], False)


def deploy(conf: Configuration, domain: str, *, key_path: Path, fullchain_path: Path, https_port: int,
           server_root: Path) -> list[Expectation]:
    """Point the blocks serving ``domain`` at the lineage's files; return what to check after reload."""
    targets, in_place = tls_targets(conf, domain)
    indexes = [block.index for block in targets]
    for block in targets:
        if not in_place:
            _add_tls_listens(conf, block, https_port)
            block = conf.blocks[block.index]
        _set_file(conf, block, "ssl_certificate", fullchain_path)
        block = conf.blocks[block.index]
        _set_file(conf, block, "ssl_certificate_key", key_path)
        block = conf.blocks[block.index]
        _add_shared_settings(conf, block, server_root)
    try:
        leaf = leaf_der(fullchain_path)
    except (OSError, ValueError) as err:
        raise MisconfigurationError(f"cannot read the certificate {fullchain_path} for {domain}: {err}") from err
    return [Expectation("certificate", listen.connect_host, listen.port, domain, leaf)
            for index in indexes for listen in conf.blocks[index].tls_listens]


def _add_tls_listens(conf: Configuration, block: ServerBlock, https_port: int) -> None:
    """``listen <https-port> ssl`` for each address the block listens on, joining the port's existing groups.

    nginx serves a connection to an address from the blocks listening on exactly that address, else
    from those on the wildcard: a new ``127.0.0.1:443`` beside an existing ``*:443`` would take every
    connection to 127.0.0.1 away from the other TLS sites, so the wildcard is joined instead.
    """
    sockets = {listen.socket: other for other in conf.blocks for listen in other.listens if listen.port == https_port}
    new: list[Directive] = []
    if not conf.members(block, "listen"):  # the implicit "listen 80" stops applying once any listen exists
        new.append(managed("listen", block.listens[0].with_port(block.listens[0].port, ssl=False)))
    targets: list[Listen] = []
    for listen in block.plain_listens:
        wildcard = Listen("[::]" if listen.ipv6 else "*", https_port)
        if (listen.address, https_port) in sockets or wildcard.socket not in sockets:
            target = Listen(listen.address, https_port)
        else:
            target = wildcard
        if target not in targets and not any(own.socket == target.socket for own in block.listens):
            targets.append(target)
    for target in targets:
        _refuse_plain_socket(conf, target.address, https_port)
        new.append(managed("listen", *target.with_port(https_port, ssl=True).split()))
    conf.add(block, new)


def _refuse_plain_socket(conf: Configuration, address: str, port: int) -> None:
    """nginx turns a whole address:port to TLS when one block says ``ssl``: never do that to plain HTTP."""
    for other in conf.blocks:
        for listen in other.plain_listens:
            if listen.socket == (address, port):
                raise MisconfigurationError(
                    f"port {port} serves plain HTTP ({other.where()}): TLS cannot be added there",
                    hint="give the port for HTTPS with --https-port",
                )


def _set_file(conf: Configuration, block: ServerBlock, name: str, path: Path) -> None:
    """Make ``name`` (one per block) point at ``path``: the first one is updated in place, others go."""
    found = conf.members(block, name)
    if not found:
        conf.add(block, [managed(name, str(path))])
        return
    first, *others = found
    own_file = conf.site(block).file
    if first.file is not own_file and _include_count(conf, first.file.path) > 1:
        line = first.file.position(first.statement.offset)[0]
        raise MisconfigurationError(
            f"{first.file.path}:{line} sets {name} for {block.where()} and is included by other server blocks too",
            hint=f"move {name} out of {first.file.path} into the server block, then run again",
        )
    if first.statement.args != [str(path)]:
        first.statement.set_args([str(path)])
    for extra in others:
        conf.remove(extra)
    conf.invalidate()


def _include_count(conf: Configuration, path: str | None) -> int:
    return sum(1 for found in conf.config.find("include")
               if any(file.path == path for file in conf.config.included(found.statement)))


def _add_shared_settings(conf: Configuration, block: ServerBlock, server_root: Path) -> None:
    names = {found.statement.name for found in conf.members(block)}
    options = server_root / OPTIONS_NAME
    includes = {conf.full_path(found.statement.args[0]) for found in conf.members(block, "include")
                if found.statement.args}
    new = []
    if options not in includes and not names & OPTIONS_DIRECTIVES:
        new.append(managed("include", str(options)))
    if "ssl_dhparam" not in names:
        new.append(managed("ssl_dhparam", str(server_root / DHPARAM_NAME)))
    if new:
        conf.add(block, new)


# --- enhancements ---------------------------------------------------------------------------------


def enhance(conf: Configuration, domain: str, enhancement: str, *, https_port: int) -> list[Expectation]:
    """Apply one enhancement for ``domain``; :class:`NotSupported` when it cannot apply."""
    if enhancement == "redirect":
        return _redirect(conf, domain, https_port)
    if enhancement == "hsts":
        _header(conf, domain, "Strict-Transport-Security", "max-age=31536000")
    elif enhancement == "uir":
        _header(conf, domain, "Content-Security-Policy", "upgrade-insecure-requests")
    elif enhancement == "staple-ocsp":
        _staple(conf, domain)
    else:
        raise NotSupported(f"the nginx plugin has no enhancement {enhancement!r}",
                           hint="use redirect, hsts, uir or staple-ocsp")
    return []


def _tls_blocks(conf: Configuration, domain: str, what: str) -> list[ServerBlock]:
    blocks = [block for block in top_matches(conf.blocks, domain) if block.tls_listens]
    if not blocks:
        raise MisconfigurationError(f"no nginx server block serves {domain} over HTTPS, so {what} cannot apply",
                                    hint=f"install a certificate for {domain} first (letsencrypt install)")
    return blocks


def _redirect(conf: Configuration, domain: str, https_port: int) -> list[Expectation]:
    _tls_blocks(conf, domain, "a redirect to HTTPS")
    plain_ports = sorted({listen.port for block in conf.blocks for listen in block.plain_listens})
    chosen: dict[int, list[tuple[str, int]]] = {}
    for port in plain_ports:
        for choice in serving(conf.blocks, domain, port):
            if choice.by_name and not choice.block.is_tls(choice.listen):
                chosen.setdefault(choice.block.index, []).append((choice.listen.connect_host, port))
    if not chosen:
        raise NotSupported(f"no server block serves {domain} over plain HTTP: there is nothing to redirect")
    target = f"https://$host{'' if https_port == 443 else f':{https_port}'}$request_uri"
    location = f"https://{domain}{'' if https_port == 443 else f':{https_port}'}/"
    expectations = []
    for index, sockets in chosen.items():
        block = conf.blocks[index]
        if not _redirects(conf, block):
            conf.add(block, [_redirect_block(target)], early=True)
        expectations += [Expectation("redirect", host, port, domain, location.encode()) for host, port in sockets]
    return expectations


def _redirect_block(target: str) -> Block:
    """``if ($scheme != https) { return 301 TARGET; }``: a no-op over TLS, so it never loops in a block
    that serves both. The authenticator puts its http-01 answer before it (see ``authenticator``)."""
    return Block.new("if", ("($scheme", "!=", "https)"), [Directive.new("return", "301", target)], comment=MANAGED)


def _redirects(conf: Configuration, block: ServerBlock) -> bool:
    """Whether the block already sends plain HTTP to HTTPS (a return or rewrite to https:, maybe in an if)."""
    for found in conf.members(block, "return", "rewrite", "if"):
        statements = found.statement.children if isinstance(found.statement, Block) else [found.statement]
        for statement in statements:
            args = statement.args
            if statement.name == "return" and len(args) >= 2 and args[0] in _REDIRECT_CODES \
                    and args[1].startswith("https://"):
                return True
            if statement.name == "rewrite" and len(args) >= 2 and args[1].startswith("https://"):
                return True
    return False


def _header(conf: Configuration, domain: str, header: str, value: str) -> None:
    for block in _tls_blocks(conf, domain, header):
        present = any(found.statement.args[:1] and found.statement.args[0].lower() == header.lower()
                      for found in conf.members(block, "add_header"))
        if not present:
            conf.add(block, [managed("add_header", header, value, "always")])


def _staple(conf: Configuration, domain: str) -> None:
    for block in _tls_blocks(conf, domain, "OCSP stapling"):
        if conf.members(block, "ssl_stapling"):
            continue
        certificates = conf.members(block, "ssl_certificate")
        if not certificates or not certificates[0].statement.args:
            raise MisconfigurationError(f"{block.where()} serves {domain} over TLS without ssl_certificate")
        path = conf.full_path(certificates[0].statement.args[0])
        try:
            responder = ocsp_responder(leaf_der(path))
        except (OSError, ValueError) as err:
            raise MisconfigurationError(f"cannot read the certificate {path} of {domain}: {err}") from err
        if responder is None:
            raise NotSupported(f"the certificate for {domain} ({path}) names no OCSP responder: there is nothing "
                               "to staple", hint="drop --staple-ocsp")
        chain = path.with_name("chain.pem")
        trusted = chain if path.name == "fullchain.pem" and chain.exists() else path
        conf.add(block, [managed("ssl_stapling", "on"), managed("ssl_stapling_verify", "on"),
                         managed("ssl_trusted_certificate", str(trusted))])


# --- delete -------------------------------------------------------------------------------------------


def lineage_in_use(conf: Configuration, live_paths: Sequence[Path]) -> list[str]:
    """``file:line`` of each certificate directive pointing at one of ``live_paths`` (files or folders)."""
    wanted = [os.path.normpath(os.path.abspath(path)) for path in live_paths]
    places = []
    for found in conf.config.walk():
        if found.statement.name not in CERTIFICATE_DIRECTIVES or not found.statement.args:
            continue
        target = os.path.normpath(str(conf.full_path(found.statement.args[0])))
        if any(target == path or target.startswith(path.rstrip("/") + "/") for path in wanted):
            line = found.file.position(found.statement.offset)[0]
            places.append(f"{found.file.path}:{line}")
    return list(dict.fromkeys(places))
