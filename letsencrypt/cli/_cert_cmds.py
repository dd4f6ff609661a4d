"""(being written)."""

import click


def commands() -> list[click.Command]:
    return []
