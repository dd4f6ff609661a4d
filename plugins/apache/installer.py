"""The installer half of the Apache plugin: TLS virtual hosts, enhancements, checks after the reload.

Role: the actions layer for :class:`letsencrypt.plugin_api.Installer`. ``deploy_certificate`` and
``enhance`` only decide (and refuse early: no vhost for the name, no OCSP responder); ``save``
applies every decision as one checkpoint (``server.ApacheSite.apply``):

1. modules the Debian way (mod_ssl; mod_rewrite for a redirect; mod_headers for HSTS/UIR), the
   shared TLS options file (written once), the TLS copy of each plain-HTTP vhost (``tls_vhost``);
2. the configuration read again, so that the new files and modules are seen as Apache sees them;
3. through the tree: ``Listen`` for the https port when none exists, looping redirects removed
   from the copies, existing TLS vhosts pointed at the new certificate in place, the redirect in
   the vhost serving the name on plain HTTP, HSTS/UIR/stapling in the TLS vhost.

``restart`` reloads and returns once the new certificate is served for every name (and the
redirect answers), instead of sleeping.

Allowed imports: the standard library, ``letsencrypt.plugin_api``, ``letsencrypt.acme``; this package.
"""

from __future__ import annotations

import dataclasses
import ssl
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from letsencrypt.acme.crypto import split_pem_chain
from letsencrypt.plugin_api import MisconfigurationError, NotSupported, PluginContext

from . import snippets
from .control import http_get, module_links
from .model import Address, VirtualHost
from .server import ApacheSite, Check, certificate_check, connect_host
from .tls_vhost import TlsCopy, copy_text, plan_copy
from .transactions import Link, Transaction
from .tree import ConfigTree, Section

__all__ = ["ApacheInstaller", "ocsp_responder"]

SUPPORTED = ("redirect", "hsts", "uir", "staple-ocsp")
_OCSP = "1.3.6.1.5.5.7.48.1"
_AIA = "1.3.6.1.5.5.7.1.1"
_TLS_ENHANCEMENTS = ("hsts", "uir", "staple-ocsp")

Key = tuple[str, int]  # (file, line) of a vhost: stable until its file is edited


@dataclasses.dataclass
class _Target:
    """The TLS vhost for some names: one to create from ``source``, or an existing one (``source`` None)."""

    key: Key
    certificate: Path
    key_file: Path
    names: list[str]
    source: VirtualHost | None
    enhancements: set[str] = dataclasses.field(default_factory=set)
    copy: TlsCopy | None = None


def ocsp_responder(pem: bytes) -> str | None:
    """The OCSP responder URL the leaf certificate of ``pem`` names (AIA extension), if any."""
    try:
        leaf = split_pem_chain(pem.decode())[0]
    except (ValueError, IndexError, UnicodeDecodeError):
        return None
    for extension in leaf.extensions:
        if extension.oid.dotted_string == _AIA:
            for description in extension.value:
                if description.access_method.dotted_string == _OCSP:
                    return str(description.access_location.value)
    return None


def _leaf_der(pem: bytes) -> bytes:
    first = pem.decode(errors="replace").split("-----END CERTIFICATE-----")[0] + "-----END CERTIFICATE-----\n"
    return ssl.PEM_cert_to_DER_cert(first[first.index("-----BEGIN CERTIFICATE-----"):])


def _key(vhost: VirtualHost) -> Key:
    return vhost.file, vhost.line


class ApacheInstaller:
    """Plans from ``deploy_certificate``/``enhance``, applied by ``save``, checked by ``restart``."""

    def __init__(self, site: ApacheSite, context: PluginContext) -> None:
        self.site = site
        self.context = context
        self._targets: dict[Key, _Target] = {}
        self._by_name: dict[str, _Target] = {}
        self._redirects: dict[Key, tuple[VirtualHost, list[str]]] = {}
        self._checks: list[Check] = []
        self._tested = False  # config_test passed since the last change
        self._hosts: dict[str, str] = {}  # where each name deployed in this run is served

    @property
    def https_port(self) -> int:
        return self.context.https_port

    # --- deciding ----------------------------------------------------------------------------------

    def _tls_vhost(self, domain: str) -> VirtualHost | None:
        return next((v for v in self.site.config.vhosts_named(domain, self.https_port) if v.tls), None)

    def deploy_certificate(self, domain: str, *, cert_path: Path, key_path: Path, chain_path: Path,
                           fullchain_path: Path) -> None:
        config = self.site.config
        existing = self._tls_vhost(domain)
        if existing is not None:
            target = self._targets.setdefault(_key(existing), _Target(_key(existing), fullchain_path, key_path, [],
                                                                      None))
        else:
            plain = [v for v in config.vhosts_named(domain) if not v.tls]
            port_first = sorted(plain, key=lambda v: not v.serves_port(self.context.http01_port))
            if not port_first:
                raise MisconfigurationError(
                    f"no Apache virtual host serves {domain} (no ServerName or ServerAlias names it)",
                    hint=f"add `ServerName {domain}` or `ServerAlias {domain}` to the site's <VirtualHost>, "
                    "then run again (or install with --cert-name and another installer)")
            source = port_first[0]
            target = self._targets.setdefault(_key(source), _Target(_key(source), fullchain_path, key_path, [],
                                                                    source))
        target.certificate, target.key_file = fullchain_path, key_path
        target.names.append(domain)
        self._by_name[domain] = target

    def supported_enhancements(self) -> list[str]:
        return list(SUPPORTED)

    def enhance(self, domain: str, enhancement: str, options: Mapping[str, Any] | None = None) -> None:
        if enhancement not in SUPPORTED:
            raise NotSupported(f"the apache installer does not know the enhancement {enhancement!r}",
                               hint=f"it supports {', '.join(SUPPORTED)}")
        if enhancement == "redirect":
            plain = [v for v in self.site.config.vhosts_named(domain) if not v.tls]
            if not plain:
                raise NotSupported(f"no plain-HTTP virtual host serves {domain}: there is nothing to redirect")
            for vhost in plain:
                self._redirects.setdefault(_key(vhost), (vhost, []))[1].append(domain)
            return
        target = self._by_name.get(domain)
        if target is None:
            existing = self._tls_vhost(domain)
            if existing is None:
                raise MisconfigurationError(f"no TLS virtual host serves {domain} on port {self.https_port}",
                                            hint="install a certificate for it first (letsencrypt install)")
            certificate = existing.directives("SSLCertificateFile")
            path = Path(certificate[-1].words[0]) if certificate and certificate[-1].words else Path()
            target = self._targets.setdefault(_key(existing), _Target(_key(existing), path, Path(), [], None))
            target.names.append(domain)
            self._by_name[domain] = target
        if enhancement == "staple-ocsp":
            try:
                pem = target.certificate.read_bytes()
            except OSError as err:
                raise NotSupported(f"cannot read the certificate {target.certificate} for {domain}: {err}") from err
            if ocsp_responder(pem) is None:
                raise NotSupported(f"the certificate for {domain} names no OCSP responder: there is nothing to staple",
                                   hint="OCSP stapling needs a certificate with an OCSP URL (AIA); skip --staple-ocsp")
        target.enhancements.add(enhancement)

    # --- applying ----------------------------------------------------------------------------------

    def save(self, title: str, *, temporary: bool = False) -> None:
        self._tested = False
        self.site.settle()
        if not (self._targets or self._redirects):
            return
        self.site.apply(title, lambda transaction, _tree: self._apply(transaction), temporary=temporary)
        self._targets.clear()
        self._by_name.clear()
        self._redirects.clear()

    def _apply(self, transaction: Transaction) -> None:
        site, root = self.site, self.site.server_root
        config = site.config
        modules = {"ssl"} if self._targets else set()
        modules |= {"rewrite"} if self._redirects else set()
        if any(t.enhancements & {"hsts", "uir"} for t in self._targets.values()):
            modules.add("headers")
        files: dict[Path, bytes | Link] = {}
        for module in sorted(modules):
            loaded = set(config.loaded.modules) | {f"{p.stem}_module" for p in files if p.suffix == ".load"}
            files.update(module_links(root, module, loaded))
        options_file = root / snippets.OPTIONS_FILE_NAME
        if any(t.source is not None for t in self._targets.values()) and not options_file.exists():
            files[options_file] = snippets.tls_options()
        for target in self._targets.values():
            if target.source is not None:
                self._plan_copy(target, files, options_file)
        transaction.write(files)
        site.read()  # Apache's view now: the modules enabled, the copies included
        self._ensure_listen()
        for target in self._targets.values():
            if target.source is None:
                vhost = self._existing(target)
                self._point_at_certificate(vhost, target)
                self._add(vhost, self._tls_directives(target, vhost))
        if any("staple-ocsp" in t.enhancements for t in self._targets.values()):
            self._stapling_cache()
        for vhost, names in self._redirects.values():
            self._redirect(vhost, names)
        self._include_copies()
        self._plan_checks()

    def _plan_copy(self, target: _Target, files: dict[Path, bytes | Link], options_file: Path) -> None:
        source = target.source
        assert source is not None
        target.copy = plan_copy(self.site.config, self.site.server_root, source, files)
        added = [] if source.has_own_name else [f"ServerName {target.names[0]}"]
        added += ["SSLEngine on", f"SSLCertificateFile {snippets.quote(str(target.certificate))}",
                  f"SSLCertificateKeyFile {snippets.quote(str(target.key_file))}",
                  f"Include {snippets.quote(str(options_file))}"]
        added += [f"{name} {' '.join(snippets.quote(a) for a in args)}"
                  for name, args in self._tls_directives(target, None)]
        files[target.copy.file] = copy_text(Path(source.file).read_bytes(), source, self.https_port, added)
        if target.copy.link is not None:
            files[target.copy.link] = Link(f"../sites-available/{target.copy.file.name}")

    def _tls_directives(self, target: _Target, vhost: VirtualHost | None) -> list[snippets.Directive]:
        """The enhancement directives ``vhost`` (None: a new copy) still lacks."""
        headers = " ".join(" ".join(e.words) for e in vhost.directives("Header")).lower() if vhost else ""
        wanted: list[snippets.Directive] = []
        if "hsts" in target.enhancements and "strict-transport-security" not in headers:
            wanted += snippets.hsts_directives()
        if "uir" in target.enhancements and "upgrade-insecure-requests" not in headers:
            wanted += snippets.uir_directives()
        if "staple-ocsp" in target.enhancements and not (vhost and vhost.directives("SSLUseStapling")):
            wanted += snippets.staple_directives()
        return wanted

    def _add(self, vhost: VirtualHost, directives: list[snippets.Directive]) -> None:
        tree = self.site.config.tree
        for name, args in directives:
            tree.add_directive(_fresh_section(tree, vhost), name, [snippets.quote(a) for a in args])

    def _existing(self, target: _Target) -> VirtualHost:
        file, line = target.key
        for vhost in self.site.config.vhosts:
            if vhost.file == file and vhost.line == line:
                return vhost
        raise MisconfigurationError(f"the virtual host at {file}:{line} is gone from the configuration",
                                    hint="run again: the configuration changed while we worked")

    def _include_copies(self) -> None:
        """Outside Debian's layout: ``Include`` each copy right after its original vhost (last edit of a save)."""
        tree = self.site.config.tree
        for target in self._targets.values():
            if target.copy is None or target.copy.link is not None or target.source is None:
                continue
            original = target.source
            file_tree = tree.file(original.file)
            parent_path = original.path.rpartition("/")[0]
            parent = file_tree if parent_path == file_tree.path else _section(file_tree.nodes[parent_path])
            tree.add_directive(parent, "Include", [snippets.quote(str(target.copy.file))],
                               after=_fresh_section(tree, original))

    def _ensure_listen(self) -> None:
        config = self.site.config
        if any(listen.port == self.https_port for listen in config.listens):
            return
        plain = [listen for listen in config.listens if listen.port == self.context.http01_port] or \
            config.listens[:1]
        ports_conf = next((f for f in config.loaded.files if Path(f).name == "ports.conf"), config.loaded.main_file)
        for host in dict.fromkeys(listen.host for listen in plain) or ["*"]:
            address = str(Address("*" if host == "*" else host, self.https_port)).removeprefix("*:")
            args = [address] if self.https_port == 443 else [address, "https"]
            config.tree.add_directive(config.tree.file(ports_conf), "Listen", args)

    def _point_at_certificate(self, vhost: VirtualHost, target: _Target) -> None:
        """An existing TLS vhost: certificate directives updated in place (never a second vhost)."""
        if target.key_file == Path():
            return  # only enhanced, no certificate deployed
        tree = self.site.config.tree
        for name, path in (("SSLCertificateFile", target.certificate), ("SSLCertificateKeyFile", target.key_file)):
            found = vhost.directives(name)
            if found and tuple(found[-1].words) == (str(path),):
                continue
            own = [e for e in found if e.node.file == vhost.file]
            if own:
                tree.set_args(tree.file(vhost.file).nodes[own[-1].node.path], [snippets.quote(str(path))])
            else:
                tree.add_directive(_fresh_section(tree, vhost), name, [snippets.quote(str(path))])
        for chain in reversed([e for e in vhost.directives("SSLCertificateChainFile") if e.node.file == vhost.file]):
            tree.remove(tree.file(vhost.file).nodes[chain.node.path])

    def _stapling_cache(self) -> None:
        config = self.site.config
        if any(entry.key == "sslstaplingcache" for entry in config.loaded.walk()):
            return
        tree = config.tree
        section = tree.add_section(tree.file(config.loaded.main_file), "IfModule", ["mod_ssl.c"])
        name, args = snippets.STAPLING_CACHE
        tree.add_directive(section, name, list(args))

    def _redirect(self, vhost: VirtualHost, names: list[str]) -> None:
        """Our redirect at the end of the vhost, unless its own rules already send everyone to https."""
        own = any(snippets.redirects_all_to_https(e.name, e.words) for e in vhost.entry.walk())
        if not own:
            self._add(vhost, snippets.redirect_directives(self.https_port))
        port = next((a.port for a in vhost.addresses if a.port is not None), self.context.http01_port)
        host = connect_host(self.site.config, vhost, port)
        https_port = None if own else self.https_port
        self._checks.extend(_redirect_check(host, port, name, https_port) for name in names)

    def _plan_checks(self) -> None:
        for target in self._targets.values():
            vhost = self._tls_vhost(target.names[0]) if target.names else None
            der = _leaf_der(target.certificate.read_bytes())
            host = connect_host(self.site.config, vhost, self.https_port)
            self._checks.extend(certificate_check(host, self.https_port, name, der) for name in target.names)
            self._hosts.update(dict.fromkeys(target.names, host))

    # --- the server --------------------------------------------------------------------------------

    def config_test(self) -> None:
        self.site.control.config_test()
        self._tested = True

    def restart(self) -> None:
        """Reload (testing the configuration first unless :meth:`config_test` just did) and wait for the checks."""
        checks, self._checks = self._checks, []
        tested, self._tested = self._tested, False
        self.site.reload(checks, test=not tested)
        self.site.confirm_mine()

    def rollback_checkpoints(self, count: int) -> None:
        self._tested = False
        self.site.checkpoints.rollback(count)
        self.site.forget()

    def recovery_routine(self) -> None:
        self._tested = False
        self._targets.clear()
        self._by_name.clear()
        self._redirects.clear()
        self._checks.clear()
        self.site.revert_mine()

    def verify_deployment(self, domain: str, fullchain_pem: bytes) -> None:
        host = self._hosts.get(domain) or connect_host(self.site.config, self._tls_vhost(domain), self.https_port)
        message = certificate_check(host, self.https_port, domain, _leaf_der(fullchain_pem))()
        if message is not None:
            raise MisconfigurationError(f"Apache does not serve the new certificate for {domain}: {message}",
                                        hint=f"check the TLS virtual host for {domain} on port {self.https_port}")


def _section(node: object) -> Section:
    assert isinstance(node, Section)
    return node


def _fresh_section(tree: ConfigTree, vhost: VirtualHost) -> Section:
    return _section(tree.file(vhost.file).nodes[vhost.path])


def _redirect_check(host: str, port: int, name: str, https_port: int | None) -> Check:
    """A check that ``http://name:port/`` redirects to ``https://name[:https_port]/`` (None: to any https URL)."""
    expected = "https://" if https_port is None else \
        f"https://{name}" + ("" if https_port == 443 else f":{https_port}") + "/"

    def check() -> str | None:
        try:
            answer = http_get(host, port, name, "/", timeout=1.0)
        except OSError as err:
            return f"http://{name}:{port}/: {err}"
        location = answer.headers.get("location", "")
        if 300 <= answer.status < 400 and (location.lower() == expected.lower() or
                                           (https_port is None and location.lower().startswith(expected))):
            return None
        return f"http://{name}:{port}/ answers {answer.status} {location!r}, not a redirect to {expected}"
    return check
