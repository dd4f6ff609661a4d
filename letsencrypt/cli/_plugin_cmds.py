"""``plugins``: the plugins found through the ``letsencrypt.plugins`` entry points, and the broken ones.

Each plugin is shown with what it is (authenticator, installer), its description, where it comes
from and the ``--<plugin>-<option>`` flags its option declarations make; a plugin that failed to
load is listed with its error (it is skipped everywhere else). ``--json`` is the stable form
documented in ``docs/json-output.md``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from letsencrypt.cli import command
from letsencrypt.cli._context import runtime_from
from letsencrypt.plugin_api import Option
from letsencrypt.plugins.discovery import PluginEntry, PluginRegistry

__all__ = ["commands", "plugins_document"]


def commands() -> list[click.Command]:
    return [plugins]


def _json_value(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, list | tuple):
        return [_json_value(item) for item in value]
    if isinstance(value, Path):
        return str(value)
    return str(value)


def _option(plugin: str, option: Option) -> dict[str, Any]:
    return {
        "flag": option.flag(plugin),
        "name": option.name,
        "type": option.type,
        "multiple": option.multiple,
        "required": option.required,
        "default": None if option.secret else _json_value(option.default),
        "help": option.help,
    }


def _plugin(entry: PluginEntry) -> dict[str, Any]:
    return {
        "name": entry.name,
        "authenticator": entry.is_authenticator,
        "installer": entry.is_installer,
        "description": entry.description,
        "distribution": entry.distribution,
        "entry_point": entry.entry_point,
        "options": [_option(entry.name, option) for option in entry.options],
    }


def plugins_document(registry: PluginRegistry) -> dict[str, Any]:
    """``plugins --json``: ``{"plugins": [...], "broken": [...]}``, each list sorted by name."""
    return {
        "plugins": [_plugin(entry) for entry in registry],
        "broken": [{"name": broken.name, "distribution": broken.distribution, "error": broken.reason}
                   for broken in sorted(registry.broken, key=lambda broken: broken.name)],
    }


def _human(document: dict[str, Any]) -> str:
    blocks = []
    for plugin in document["plugins"]:
        kinds = [kind.capitalize() for kind in ("authenticator", "installer") if plugin[kind]]
        lines = [f"* {plugin['name']}", f"Description: {plugin['description']}", f"Interfaces: {', '.join(kinds)}",
                 f"Entry point: {plugin['name']} = {plugin['entry_point']}"
                 + (f" ({plugin['distribution']})" if plugin["distribution"] else "")]
        for option in plugin["options"]:
            lines.append(f"Option: {option['flag']}{' (repeatable)' if option['multiple'] else ''}: {option['help']}")
        blocks.append("\n".join(lines))
    for broken in document["broken"]:
        blocks.append(f"* {broken['name']} (BROKEN, skipped)\nDistribution: {broken['distribution'] or 'unknown'}\n"
                      f"Error: {broken['error']}")
    return ("\n\n".join(blocks) if blocks else "No plugins found.") + "\n"


@command("plugins", "List the plugins found (authenticators, installers, their flags) and those that failed to load.")
@click.option("--json", "as_json", is_flag=True, help="Print the list as JSON (see docs/json-output.md).")
def plugins(ctx: click.Context, as_json: bool, **params: Any) -> None:
    runtime = runtime_from(ctx, params)
    document = plugins_document(runtime.registry)
    click.echo(json.dumps(document, indent=2) if as_json else _human(document), nl=as_json)
