"""``register``, ``update_account``, ``unregister`` and ``show_account``: the account with the CA (``--server``).

certbot's behaviour: one account per CA is used (the oldest stored one); ``register`` refuses a
second one; ``update_account -m`` replaces the contacts at the CA and then on disk;
``unregister`` deactivates the account at the CA (RFC 8555 §7.3.6, for good) and then deletes
it from ``--config-dir``; ``show_account`` asks the CA (POST-as-GET, §7.3) for what it holds.
``show_account --json`` is the stable form documented in ``docs/json-output.md``.
"""

from __future__ import annotations

import datetime
import json
from typing import Any

import click

from letsencrypt.accounts import register_account, with_terms_retry
from letsencrypt.acme.errors import ProblemError
from letsencrypt.cli import command
from letsencrypt.cli._context import runtime_from
from letsencrypt.cli._runtime import Runtime
from letsencrypt.errors import AccountError, ConfigError
from letsencrypt.storage.accounts import AccountStore, StoredAccount

__all__ = ["commands"]


def commands() -> list[click.Command]:
    return [register, update_account, unregister, show_account]


def _stored_account(runtime: Runtime) -> StoredAccount:
    server = runtime.settings.server
    accounts = AccountStore(runtime.paths).list(server)
    if not accounts:
        raise AccountError(f"there is no account for {server} in {runtime.paths.accounts_dir}",
                           hint="create one with `letsencrypt register` (the CA is chosen with --server)")
    return accounts[0]


def _emails(contact: tuple[str, ...]) -> str:
    return ", ".join(item.removeprefix("mailto:") for item in contact) or "none"


def _refused(what: str, err: ProblemError) -> AccountError:
    hint = {
        "invalidContact": "check the e-mail address (-m)",
        "unsupportedContact": "check the e-mail address (-m)",
        "unauthorized": "the CA no longer accepts this account (deactivated?); see `letsencrypt show_account`",
        "accountDoesNotExist": "the CA does not know this account; `letsencrypt register` makes a new one",
    }.get(err.problem.short_type, "see the log file for the full exchange with the CA")
    return AccountError(f"the CA refused to {what}: {err.detail}", hint=hint)


@command("register", "Create an account with the CA (-m or --register-unsafely-without-email, --agree-tos).")
def register(ctx: click.Context, **params: Any) -> None:
    runtime = runtime_from(ctx, params)
    s = runtime.settings
    with runtime.locked():
        store = AccountStore(runtime.paths)
        existing = store.list(s.server)
        if existing:
            raise ConfigError(f"there is already an account for {s.server}: {existing[0].url}",
                              hint="`letsencrypt update_account -m ...` changes its e-mail; "
                              "`letsencrypt unregister` deactivates it")
        client, account = register_account(store, s, runtime.client, runtime.reporter, s.server)
        client.close()
    click.echo(f"Account registered: {account.url}")


def _new_contact(runtime: Runtime) -> tuple[str, ...]:
    s = runtime.settings
    if s.email:
        return tuple(f"mailto:{address.strip()}" for address in s.email.split(",") if address.strip())
    if s.no_email:
        return ()
    if not s.interactive:
        raise ConfigError("update_account needs the new e-mail address",
                          hint="add -m you@example.com (or --register-unsafely-without-email to remove it)")
    address = click.prompt("New e-mail address for urgent notices", err=True)
    return tuple(f"mailto:{item.strip()}" for item in address.split(",") if item.strip())


@command("update_account", "Change the account's contact e-mail at the CA (-m ADDRESS).")
def update_account(ctx: click.Context, **params: Any) -> None:
    runtime = runtime_from(ctx, params)
    s = runtime.settings
    with runtime.locked():
        account = _stored_account(runtime)
        contact = _new_contact(runtime)
        with runtime.client(s.server, account.key, account.url) as client:
            try:
                handle = with_terms_retry(client, s, runtime.reporter,
                                          lambda: client.update_account(contact=contact))
            except ProblemError as err:
                raise _refused("update the account", err) from err
        AccountStore(runtime.paths).update_contact(s.server, account.id, handle.account.contact or contact)
    click.echo(f"Updated the account's e-mail to: {_emails(contact)}" if contact
               else "Removed the account's e-mail address.")


@command("unregister", "Deactivate the account at the CA for good and delete it from this machine.")
def unregister(ctx: click.Context, **params: Any) -> None:
    runtime = runtime_from(ctx, params)
    s = runtime.settings
    with runtime.locked():
        account = _stored_account(runtime)
        if s.interactive and not click.confirm(
            f"Deactivate the account {account.url} at {s.server}? This cannot be undone; its certificates stay "
            "valid but cannot be renewed or revoked with it.", default=False, err=True,
        ):
            click.echo("Deactivation aborted.")
            return
        with runtime.client(s.server, account.key, account.url) as client:
            try:
                client.deactivate_account()
            except ProblemError as err:
                raise _refused("deactivate the account", err) from err
        AccountStore(runtime.paths).delete(s.server, account.id)
    click.echo(f"Account deactivated: {account.url}")


@command("show_account", "Show the account at the CA: its URL, contacts and key thumbprint.")
@click.option("--json", "as_json", is_flag=True, help="Print the account as JSON (see docs/json-output.md).")
def show_account(ctx: click.Context, as_json: bool, **params: Any) -> None:
    runtime = runtime_from(ctx, params)
    s = runtime.settings
    account = _stored_account(runtime)
    with runtime.client(s.server, account.key, account.url) as client:
        try:
            handle = client.get_account()
        except ProblemError as err:
            raise _refused("show the account", err) from err
    document = {
        "server": s.server,
        "account_id": account.id,
        "account_url": account.url,
        "status": handle.account.status.value,
        "contact": list(handle.account.contact),
        "key_thumbprint": account.thumbprint,
        "created": account.created.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    if as_json:
        click.echo(json.dumps(document, indent=2))
        return
    click.echo(f"Account details for server {s.server}:\n  Account URL: {account.url}\n"
               f"  Account Thumbprint: {account.thumbprint}\n  Email contact: {_emails(handle.account.contact)}\n"
               f"  Status: {document['status']}")
