"""The account used with a CA: found in storage, or registered (terms, e-mail, EAB) and stored.

Interactive runs ask for what is missing (the terms are shown with their URL); ``-n`` never asks
and fails naming the flag to add. When the CA answers ``userActionRequired`` (new terms, RFC 8555
§7.3.3) ``with_terms_retry`` shows the new terms and, once agreed (``--agree-tos`` or a yes at
the prompt), agrees at the CA and repeats the request.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TypeVar

import click

from letsencrypt.acme.client import AcmeClient, ExternalAccountBinding
from letsencrypt.acme.errors import AcmeError, ProblemError, UserActionRequired
from letsencrypt.acme.jws import AccountKey, KeyType
from letsencrypt.cli._options import Settings
from letsencrypt.errors import AccountError, ConfigError
from letsencrypt.plugin_api import Reporter
from letsencrypt.storage.accounts import AccountStore, StoredAccount

__all__ = ["ensure_account", "register_account", "with_terms_retry"]

logger = logging.getLogger(__name__)

T = TypeVar("T")

ACCOUNT_KEY_TYPE: KeyType = "ec256"


def ensure_account(
    store: AccountStore, settings: Settings, client_for: Callable[[str, AccountKey, str | None], AcmeClient],
    reporter: Reporter, server: str | None = None, account_id: str | None = None,
) -> tuple[AcmeClient, StoredAccount]:
    """A client signed in as the stored account (``account_id``, else the oldest), registering one if none."""
    server = server or settings.server
    if account_id is not None:
        account = store.load(server, account_id)
        return client_for(server, account.key, account.url), account
    accounts = store.list(server)
    if accounts:
        account = accounts[0]
        return client_for(server, account.key, account.url), account
    return register_account(store, settings, client_for, reporter, server)


def register_account(
    store: AccountStore, settings: Settings, client_for: Callable[[str, AccountKey, str | None], AcmeClient],
    reporter: Reporter, server: str,
) -> tuple[AcmeClient, StoredAccount]:
    key = AccountKey.generate(ACCOUNT_KEY_TYPE)
    client = client_for(server, key, None)
    directory = client.directory
    terms = directory.meta.terms_of_service
    if terms and not settings.agree_tos:
        if not settings.interactive:
            raise ConfigError(f"the CA's terms of service ({terms}) must be agreed to before registering",
                              hint="read them and add --agree-tos")
        reporter.info(f"Please read the terms of service of {server}:\n  {terms}")
        if not click.confirm("Do you agree?", default=False, err=True):
            raise AccountError("the terms of service were not agreed to; no account was created")
    contact = _contact(settings, reporter)
    binding = _eab(settings, directory.meta.external_account_required, server)
    try:
        handle = client.register(contact=contact, terms_of_service_agreed=bool(terms),
                                 external_account_binding=binding)
    except ProblemError as err:
        hint = {
            "invalidContact": "check the e-mail address (-m)",
            "unsupportedContact": "check the e-mail address (-m)",
            "externalAccountRequired": "this CA needs --eab-kid and --eab-hmac-key",
            "unauthorized": "check --eab-kid and --eab-hmac-key" if binding else None,
        }.get(err.problem.short_type)
        raise AccountError(f"the CA refused to create the account: {err.detail}", hint=hint) from err
    account = store.save(server, handle.url, key, contact, terms)
    reporter.info(f"Account registered with {server}" + (f" for {', '.join(contact)}" if contact else ""))
    return client, account


def _contact(settings: Settings, reporter: Reporter) -> tuple[str, ...]:
    if settings.email:
        return tuple(f"mailto:{address.strip()}" for address in settings.email.split(",") if address.strip())
    if settings.no_email:
        return ()
    if not settings.interactive:
        raise ConfigError("an e-mail address is needed for the new account",
                          hint="add -m you@example.com (or --register-unsafely-without-email)")
    address = click.prompt("E-mail address for urgent notices (empty to skip)", default="", show_default=False,
                           err=True)
    return (f"mailto:{address.strip()}",) if address.strip() else ()


def _eab(settings: Settings, required: bool, server: str) -> ExternalAccountBinding | None:
    if settings.eab_kid and settings.eab_hmac_key:
        try:
            return ExternalAccountBinding.from_base64url(settings.eab_kid, settings.eab_hmac_key)
        except ValueError as err:
            raise ConfigError(str(err), hint="copy --eab-hmac-key exactly as the CA gave it") from err
    if settings.eab_kid or settings.eab_hmac_key:
        raise ConfigError("--eab-kid and --eab-hmac-key go together", hint="give both")
    if required:
        raise ConfigError(f"{server} requires External Account Binding",
                          hint="get a key id and HMAC key from the CA and pass --eab-kid and --eab-hmac-key")
    return None


def with_terms_retry(client: AcmeClient, settings: Settings, reporter: Reporter, action: Callable[[], T]) -> T:
    """Run ``action``; on ``userActionRequired`` agree to the new terms (if allowed) and run it again."""
    try:
        return action()
    except UserActionRequired as err:
        terms = err.terms_of_service or client.directory.meta.terms_of_service or err.problem.instance
        if not settings.agree_tos:
            if not settings.interactive:
                raise AccountError(f"the CA needs you to agree to new terms of service: {terms}",
                                   hint="read them and run again with --agree-tos") from err
            reporter.info(f"The CA has new terms of service:\n  {terms}")
            if not click.confirm("Do you agree?", default=False, err=True):
                raise AccountError("the new terms were not agreed to; nothing was done") from err
        try:
            client.update_account(terms_of_service_agreed=True)
        except AcmeError as agree_err:
            raise AccountError(f"agreeing to the new terms failed: {agree_err}") from agree_err
        logger.info("agreed to the CA's new terms of service %s", terms)
        return action()
