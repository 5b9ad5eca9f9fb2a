"""The ``aeth`` command line: one click group, one small module per noun."""

from __future__ import annotations

import sys
import warnings

import click

from aeth.cli import config, plugins, route, run  # noqa: F401  (each adds its command)
from aeth.cli.root import cli


def _show_warning(message, category, filename, lineno, file=None, line=None):  # noqa: ARG001
    click.echo(f"warning: {message}", err=True)


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``aeth`` script: load plugins, let them add commands, run."""
    from aeth.plugins import AethWarning, get_host

    warnings.showwarning = _show_warning
    warnings.simplefilter("default", AethWarning)
    host = get_host()
    for _plugin, _ in host.call_each("register_commands", cli=cli):
        pass
    cli.main(args=argv if argv is not None else sys.argv[1:], prog_name="aeth")


__all__ = ["cli", "main"]
