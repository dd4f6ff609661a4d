"""``ca-stub``: run the test CA (``serve``) or its key ceremony alone (``ceremony``).

Every option can also come from the environment as ``CA_STUB_<OPTION>`` (for example
``CA_STUB_BAD_NONCE_RATE=5``), the way Pebble's knobs come from ``PEBBLE_*``.
"""

from __future__ import annotations

import logging
import signal
import sys
from pathlib import Path
from types import FrameType

import click

__all__ = ["main"]


def _host_port(value: str, what: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit():
        raise click.BadParameter(f"{what} must be HOST:PORT, not {value!r}")
    return host.strip("[]") or "127.0.0.1", int(port)


def _eab(values: tuple[str, ...]) -> dict[str, bytes]:
    from letsencrypt.acme.errors import JWSError
    from letsencrypt.acme.jws import b64decode

    keys = {}
    for value in values:
        kid, sep, key = value.partition(":")
        if not sep or not kid:
            raise click.BadParameter(f"--eab-key must be KID:BASE64URL_HMAC_KEY, not {value!r}")
        try:
            keys[kid] = b64decode(key.rstrip("="))
        except JWSError as err:
            raise click.BadParameter(f"the HMAC key of {kid!r} is not base64url") from err
    return keys


@click.group(context_settings={"auto_envvar_prefix": "CA_STUB", "help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", count=True, help="More log output on stderr (-vv: requests too).")
def main(verbose: int) -> None:
    """ca_stub: a test ACME certificate authority for running offline."""
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("ca_stub").setLevel(min(level, logging.INFO))


@main.command()
@click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="SQLite database, CA keys and certificates, api-root.pem; kept across restarts.")
def ceremony(data_dir: Path) -> None:
    """Make the roots (keys kept in DATA/offline) and the intermediates that sign leaves."""
    from ca_stub.ceremony import run_ceremony

    if (data_dir / "ca.json").exists():
        raise click.ClickException(f"{data_dir} already holds a CA (ca.json); use another --data-dir")
    result = run_ceremony(data_dir)
    click.echo(f"key ceremony done in {result.elapsed:.1f} s")
    for root in result.root_certificates:
        click.echo(f"root certificate (trust anchor for issued certificates): {root}")
    click.echo(f"root keys, never read by `ca-stub serve`: {result.offline_dir} (move them off this machine)")


@main.command()
@click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="SQLite database, CA keys and certificates, api-root.pem; kept across restarts.")
@click.option("--listen", default="127.0.0.1:14000", show_default=True, help="HOST:PORT of the ACME API (HTTPS).")
@click.option("--tls-cert", type=click.Path(dir_okay=False, exists=True, path_type=Path),
              help="The API's TLS certificate (default: one made from DATA/api-root.pem).")
@click.option("--tls-key", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@click.option("--management", help="HOST:PORT of the Pebble-compatible management API (plain HTTP).")
@click.option("--http-port", type=int, default=80, show_default=True, help="Where the VA connects for http-01.")
@click.option("--tls-port", type=int, default=443, show_default=True,
              help="Where the VA connects for tls-alpn-01, simpleHttps and dvsni.")
@click.option("--resolve-all", metavar="IP", help="Resolve every name to this address (tests).")
@click.option("--dns-server", metavar="HOST:PORT", help="Resolve names and dns-01 TXT records here.")
@click.option("--legacy-challenges", is_flag=True, help="Also offer the 2015 draft's simpleHttps and dvsni.")
@click.option("--bad-nonce-rate", type=click.FloatRange(0, 100), default=0.0, show_default=True,
              help="Percent of valid nonces rejected as badNonce (Pebble: PEBBLE_WFE_NONCEREJECT).")
@click.option("--validation-delay", type=click.FloatRange(0, 60), default=0.0, show_default=True,
              help="Sleep up to this many seconds, at random, before each validation.")
@click.option("--authorization-reuse", type=click.IntRange(0, 100), default=100, show_default=True,
              help="Percent chance a valid authorization is reused (Pebble: PEBBLE_AUTHZREUSE).")
@click.option("--eab-key", "eab_keys", multiple=True, metavar="KID:KEY",
              help="An External Account Binding key (repeatable); KEY is base64url.")
@click.option("--eab-required", is_flag=True, help="Refuse accounts without External Account Binding.")
@click.option("--block", "block_list", multiple=True, metavar="DOMAIN",
              help="Refuse this domain and its subdomains (repeatable).")
@click.option("--terms", type=click.Path(dir_okay=False, path_type=Path),
              help="Terms of service document (default DATA/terms.txt). Editing it makes accounts agree again.")
@click.option("--threads", type=click.IntRange(2, 512), default=32, show_default=True)
@click.option("--retry-after", "poll_retry_after", type=click.IntRange(0, 3600), default=None,
              help="Send Retry-After: SECONDS on pending orders and authorizations (default: none, as Pebble).")
def serve(data_dir: Path, listen: str, tls_cert: Path | None, tls_key: Path | None, management: str | None,
          http_port: int, tls_port: int, resolve_all: str | None, dns_server: str | None,
          legacy_challenges: bool, bad_nonce_rate: float, validation_delay: float, authorization_reuse: int,
          eab_keys: tuple[str, ...], eab_required: bool, block_list: tuple[str, ...], terms: Path | None,
          threads: int, poll_retry_after: int | None) -> None:
    """Serve the ACME API (and the management API) until interrupted."""
    from ca_stub.server import CAServer, ServeConfig

    if (tls_cert is None) != (tls_key is None):
        raise click.UsageError("--tls-cert and --tls-key go together")
    config = ServeConfig(
        data_dir=data_dir, listen=_host_port(listen, "--listen"),
        management=_host_port(management, "--management") if management else None,
        tls_cert=tls_cert, tls_key=tls_key, http_port=http_port, tls_port=tls_port, resolve_all=resolve_all,
        dns_server=_host_port(dns_server, "--dns-server") if dns_server else None,
        legacy_challenges=legacy_challenges, bad_nonce_rate=bad_nonce_rate, validation_delay=validation_delay,
        authorization_reuse=authorization_reuse, eab_keys=_eab(eab_keys), eab_required=eab_required,
        block_list=block_list, terms=terms, threads=threads, poll_retry_after=poll_retry_after,
    )
    try:
        server = CAServer(config)
    except OSError as err:
        raise click.ClickException(f"cannot listen: {err}") from err
    stop = False

    def on_signal(signum: int, frame: FrameType | None) -> None:
        nonlocal stop
        stop = True
        server.stop()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    server.start()
    click.echo(f"ca_stub directory: {server.directory_url}")
    if server.api_root is not None:
        click.echo(f"ca_stub API trust anchor: {server.api_root}")
    if server.management_url:
        click.echo(f"ca_stub management: {server.management_url}")
    sys.stdout.flush()
    server.wait()


if __name__ == "__main__":  # pragma: no cover
    main()
