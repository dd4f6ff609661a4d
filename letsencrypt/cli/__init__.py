"""``letsencrypt``: the command line (certbot's subcommands and flags; ``run`` when none is given).

Only this package talks to the user. Errors of the client (``LetsencryptError``), of plugins
(``PluginError``) and of the protocol (``AcmeError``) become one message on stderr, the next step
to try, and an exit code; a traceback only goes to the log file.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
import sys
import threading
from collections.abc import Callable, Sequence
from typing import Any

import click

from letsencrypt.acme.errors import AcmeError
from letsencrypt.errors import LetsencryptError
from letsencrypt.plugin_api import PluginError

__all__ = ["main"]

logger = logging.getLogger(__name__)

COMMANDS = (
    "run", "certonly", "install", "renew", "revoke", "certificates", "delete", "register", "update_account",
    "unregister", "show_account", "plugins", "rollback", "enhance",
)
VERSION = "0.1.0"


class LetsencryptGroup(click.Group):
    """certbot's grammar: the subcommand may come anywhere, and ``run`` is the default.

    ``lazy_modules`` (in ``letsencrypt.cli``) define further commands with a ``commands()`` function;
    each is imported only when a command not found so far is asked for, so ``certonly`` does not pay
    for importing ``revoke`` or ``show_account`` (start-up time is most of a run's time).
    """

    def __init__(self, *args: Any, lazy_modules: Sequence[str] = (), **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._lazy_modules = list(lazy_modules)

    def _names(self) -> set[str]:
        return set(self.commands) | (set(COMMANDS) if self._lazy_modules else set())

    def _load_next(self) -> None:
        module = importlib.import_module(f"letsencrypt.cli.{self._lazy_modules.pop(0)}")
        for command in module.commands():
            self.add_command(command)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        while cmd_name not in self.commands and cmd_name in COMMANDS and self._lazy_modules:
            self._load_next()
        return self.commands.get(cmd_name)

    def list_commands(self, ctx: click.Context) -> list[str]:
        while self._lazy_modules:
            self._load_next()
        return super().list_commands(ctx)

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        names = self._names()
        if any(arg in ("-h", "--help", "--version") for arg in args) and not any(a in names for a in args):
            return super().parse_args(ctx, args)
        command = next((arg for arg in args if arg in names), None)
        if command is None:
            args = ["run", *args]
        else:
            position = args.index(command)
            args = [command, *args[:position], *args[position + 1:]]
        ctx.meta["argv"] = list(args[1:])
        return super().parse_args(ctx, args)


def _report(err: BaseException) -> int:
    if isinstance(err, LetsencryptError | PluginError):
        message, hint, code = err.message, err.hint, getattr(err, "exit_code", 1)
    else:
        message, hint, code = str(err), "see the log file for the full exchange with the CA", 1
    click.secho(f"Error: {message}", err=True, fg="red")
    if hint:
        click.echo(f"Hint: {hint}", err=True)
    return int(code)


def _build() -> click.Group:
    group = LetsencryptGroup(name="letsencrypt", context_settings={"help_option_names": ["-h", "--help"],
                                                                    "auto_envvar_prefix": "LETSENCRYPT"},
                             help="Get TLS certificates from an ACME CA and install them on nginx or Apache.",
                             lazy_modules=("_obtain_cmds", "_cert_cmds", "_account_cmds", "_plugin_cmds"))
    group.params.append(click.Option(["--version"], is_flag=True, expose_value=False, is_eager=True,
                                     callback=_print_version, help="Show the version and exit."))
    return group


def _print_version(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if value and not ctx.resilient_parsing:
        click.echo(f"letsencrypt {VERSION}")
        ctx.exit()


def main(argv: Sequence[str] | None = None) -> None:
    """Run the command line; exits with its status (``SystemExit``).

    Without ``argv`` (the ``letsencrypt`` program itself, and ``python -m letsencrypt``), the process
    ends with ``os._exit`` once logs and output are flushed: tearing the interpreter down (module
    dictionaries, cryptography and OpenSSL objects) would add about a tenth of a second to every
    run and save nothing on disk, where everything was already written, fsynced and closed.
    """
    try:
        _main(argv)
    except SystemExit as done:
        if argv is not None:
            raise
        _exit_now(done.code)
    if argv is None:
        _exit_now(0)


def _main(argv: Sequence[str] | None) -> None:
    if argv is None:
        from letsencrypt.cli._context import scope_plugins_to

        scope_plugins_to(sys.argv[1:])
    group = _build()
    try:
        group.main(args=list(argv) if argv is not None else sys.argv[1:], prog_name="letsencrypt",
                   standalone_mode=False)
    except click.exceptions.Exit as done:
        sys.exit(done.exit_code)
    except click.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(130)
    except click.ClickException as err:
        err.show()
        sys.exit(err.exit_code)
    except (LetsencryptError, PluginError, AcmeError) as err:
        logger.debug("command failed", exc_info=True)
        sys.exit(_report(err))
    except KeyboardInterrupt:
        click.echo("Interrupted.", err=True)
        sys.exit(130)


def _exit_now(code: object) -> None:
    """``sys.exit(code)``'s status, without interpreter teardown (only for the process's own main)."""
    if code is None:
        status = 0
    elif isinstance(code, int):
        status = code
    else:
        print(code, file=sys.stderr)
        status = 1
    from letsencrypt._preload import finish

    finish()  # a preload thread still importing (a run that failed early) ends first
    if threading.active_count() > 1:  # someone still working: let the normal exit wait for them
        sys.exit(status)
    if sys.gettrace() is not None or sys.getprofile() is not None or "coverage" in sys.modules:
        sys.exit(status)  # cProfile and coverage write their data at the normal exit
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(status)


# click (8.1 and 8.2+ name it differently) first tries every option token as a long option and
# builds a NoSuchOption, with difflib suggestions and a gettext lookup on disk, before it tries a
# short one: ~0.4 ms for each ``-d NAME`` of a 100-name command line. Tokens that cannot be a long
# option go straight to the short-option matcher, as click would send them after that exception.
_BaseParser: Any = getattr(click.parser, "_OptionParser", None) or getattr(click.parser, "OptionParser", None)
_FAST_SHORT = _BaseParser is not None and all(
    hasattr(_BaseParser, name) for name in ("_process_opts", "_match_short_opt", "_match_long_opt")
)


if _BaseParser is not None:

    class _Parser(_BaseParser):  # type: ignore[misc]
        def _process_opts(self, arg: str, state: Any) -> None:
            long_options = getattr(self, "_long_opt", None)
            prefixes = getattr(self, "_opt_prefixes", None)
            if (
                long_options is not None
                and prefixes is not None
                and (self.ctx is None or self.ctx.token_normalize_func is None)
                and arg[:2] not in prefixes
                and arg.split("=", 1)[0] not in long_options
            ):
                self._match_short_opt(arg, state)
                return
            super()._process_opts(arg, state)


class _Command(click.Command):
    """A subcommand whose options are made the first time anything reads them (parsing, help).

    Each subcommand has ~50 common options plus every plugin's; a run parses one subcommand, so
    the others defined in the same module (``run`` next to ``certonly``, ``renew``) never build
    theirs (~5 ms each at start-up).
    """

    def __init__(self, *args: Any, build_params: Callable[[], list[click.Parameter]] | None = None,
                 **kwargs: Any) -> None:
        self._build_params = build_params
        super().__init__(*args, **kwargs)

    @property
    def params(self) -> list[click.Parameter]:
        if self._build_params is not None:
            build, self._build_params = self._build_params, None
            self._params[:0] = build()
        return self._params

    @params.setter
    def params(self, value: list[click.Parameter]) -> None:
        self._params = value

    def make_parser(self, ctx: click.Context) -> Any:
        if not _FAST_SHORT:
            return super().make_parser(ctx)
        parser = _Parser(ctx)
        for param in self.get_params(ctx):
            param.add_to_parser(parser, ctx)
        return parser


def _options_of(own: list[click.Parameter]) -> list[click.Parameter]:
    """The common flags, the command's ``own``, every plugin's flags: ``click.command``'s order."""
    from letsencrypt.cli._context import plugin_flags
    from letsencrypt.cli._options import common_options

    def holder() -> None:
        pass

    common_options(holder)
    params: list[click.Parameter] = list(reversed(getattr(holder, "__click_params__", [])))
    return [*params, *own, *plugin_flags()]


def command(name: str, help_text: str) -> Callable[[Callable[..., Any]], click.Command]:
    """A subcommand with the common flags and every plugin's flags (made when first needed)."""

    def decorate(function: Callable[..., Any]) -> click.Command:
        own: list[click.Parameter] = list(reversed(getattr(function, "__click_params__", [])))
        if hasattr(function, "__click_params__"):
            del function.__click_params__  # as click.command does: they are the command's now
        return _Command(
            name, callback=click.pass_context(function), help=help_text,
            context_settings={"ignore_unknown_options": False}, build_params=lambda: _options_of(own),
        )  # fmt: skip

    return decorate
