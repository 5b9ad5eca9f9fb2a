"""The ``aeth`` command line: one click group, one small module per noun."""

from __future__ import annotations

import sys
import warnings

import click

from aeth.cli import adapters, chat, config, data, distill, distill_train, eval, feedback, keys, learn, log, plugins, route, run, serve, train  # noqa: F401  (each adds its command)
from aeth.cli.root import OWNER, cli


def _show_warning(message, category, filename, lineno, file=None, line=None):  # noqa: ARG001
    click.echo(f"warning: {message}", err=True)


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``aeth`` script: load plugins, let them add commands, run."""
    from aeth.plugins import AethWarning, default_host
    from aeth.quiet import quiet_libraries

    warnings.showwarning = _show_warning
    warnings.simplefilter("default", AethWarning)
    quiet_libraries()
    add_plugin_commands(default_host())
    cli.main(args=argv if argv is not None else sys.argv[1:], prog_name="aeth")


def add_plugin_commands(host) -> None:
    """Let every plugin add commands to :data:`cli` through ``register_commands``.

    A plugin may add commands but not replace one that exists (aeth's own, or one an earlier
    plugin added): the first keeps its name, and the plugin that tried gets one warning (see
    :meth:`aeth.cli.root.AethGroup.add_command`). A command a plugin removed comes back. What each
    plugin added is recorded, so ``aeth plugins`` shows it.
    """
    before = dict(cli.commands)
    host.call("register_commands", cli=cli)
    cli.commands.update(before)  # whatever a plugin removed or replaced behind add_command's back comes back
    for name, cmd in cli.commands.items():
        owner = getattr(cmd, OWNER, None)
        if owner in host.infos and name not in host.infos[owner].commands and name not in before:
            host.infos[owner].commands.append(name)


__all__ = ["add_plugin_commands", "cli", "main"]
