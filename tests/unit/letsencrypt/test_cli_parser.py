"""The subcommands' option parser: click's matching, without its cost for short options."""

from __future__ import annotations

import click
import pytest

from letsencrypt.cli import _FAST_SHORT, _Command


def _command() -> click.Command:
    @click.command(cls=_Command)
    @click.option("-d", "--domains", "--domain", "domains", multiple=True)
    @click.option("-n", "--non-interactive", is_flag=True)
    @click.option("-v", "--verbose", count=True)
    @click.option("-m", "--email")
    def run(**_: object) -> None:
        pass

    return run


def _parse(*args: str) -> dict[str, object]:
    return dict(_command().make_context("run", list(args)).params)


def test_the_fast_path_is_in_use() -> None:
    assert _FAST_SHORT  # the click in this environment has the methods it relies on


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["-d", "a.test", "-d", "b.test"], ("a.test", "b.test")),
        (["-da.test", "--domain", "b.test", "--domains=c.test"], ("a.test", "b.test", "c.test")),
        (["-nd", "a.test"], ("a.test",)),  # combined short flags, the last taking a value
        (["-m", "-d", "-d", "x.test"], ("x.test",)),  # "-d" as -m's value is a value
    ],
)
def test_short_and_long_forms_parse_as_click_does(args: list[str], expected: tuple[str, ...]) -> None:
    assert _parse(*args)["domains"] == expected


def test_counted_and_combined_flags() -> None:
    params = _parse("-vvn", "-d", "a.test")
    assert params["verbose"] == 2 and params["non_interactive"] is True


@pytest.mark.parametrize(("arg", "message"), [("-x", "-x"), ("--nope", "--nope")])
def test_unknown_options_still_fail_with_clicks_message(arg: str, message: str) -> None:
    with pytest.raises(click.NoSuchOption) as caught:
        _parse(arg)
    assert "No such option" in caught.value.format_message() and message in caught.value.format_message()


def test_a_long_option_misspelt_still_gets_suggestions() -> None:
    with pytest.raises(click.NoSuchOption) as caught:
        _parse("--domian", "a.test")
    assert "--domain" in caught.value.format_message()


def test_subcommand_options_are_made_when_first_read() -> None:
    from letsencrypt.cli import command

    @command("probe", "A test command.")
    @click.option("--own-flag", is_flag=True)
    def probe(ctx: click.Context, **params: object) -> None:
        pass

    assert probe._build_params is not None  # type: ignore[attr-defined]  # nothing built yet
    names = [param.name for param in probe.params]
    assert probe._build_params is None  # type: ignore[attr-defined]
    assert names.index("domains") < names.index("own_flag")  # common flags first, as click.command lists them
    assert "webroot_path" in names  # a plugin's flag (--webroot-path), after the command's own
    assert names.index("own_flag") < names.index("webroot_path")
    context = probe.make_context("probe", ["-d", "a.test", "--own-flag"])
    assert context.params["domains"] == ("a.test",) and context.params["own_flag"] is True
