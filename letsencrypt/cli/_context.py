"""Per-process state of the CLI: the plugin registry (discovered once) and building a ``Runtime``."""

from __future__ import annotations

import functools
import sys
from collections.abc import Mapping
from typing import Any

import click

from letsencrypt.cli._options import Settings, plugin_flag_options, settings_from
from letsencrypt.cli._runtime import Runtime, setup_logging
from letsencrypt.plugins.discovery import PluginRegistry, discover, plugin_options

__all__ = ["plugin_flags", "registry", "runtime_from"]


@functools.cache
def registry() -> PluginRegistry:
    return discover()


def plugin_flags() -> list[click.Option]:
    return plugin_flag_options(plugin_options(registry()))


def _plugin_keys() -> frozenset[str]:
    return frozenset(option.key(plugin) for plugin, option in plugin_options(registry()))


def runtime_from(ctx: click.Context, params: Mapping[str, Any]) -> Runtime:
    argv = ctx.find_root().meta.get("argv", sys.argv[1:])
    settings: Settings = settings_from(params, argv, sys.stdin.isatty(), _plugin_keys())
    setup_logging(settings)
    runtime = Runtime(settings, registry())
    for broken in registry().broken:
        runtime.reporter.warn(f"plugin {broken.name} could not be loaded and is skipped: {broken.reason}")
    return runtime
