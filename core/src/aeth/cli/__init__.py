"""The ``aeth`` command line: one click group, one small module per noun."""

from __future__ import annotations

import sys
import warnings

import click

from aeth.cli import adapters, chat, config, data, distill, distill_train, eval, plugins, route, run, train  # noqa: F401  (each adds its command)
from aeth.cli.root import cli

OWNER = "_aeth_plugin"  # attribute naming the plugin that added a command (absent: aeth's own)


def _show_warning(message, category, filename, lineno, file=None, line=None):  # noqa: ARG001
    click.echo(f"warning: {message}", err=True)


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``aeth`` script: load plugins, let them add commands, run."""
    from aeth.plugins import AethWarning, get_host

    warnings.showwarning = _show_warning
    warnings.simplefilter("default", AethWarning)
    # deprecation notices between the ML libraries are for their developers, not aeth's users
    warnings.filterwarnings("ignore", category=FutureWarning, module=r"(transformers|peft|torch)\.")
    add_plugin_commands(get_host())
    cli.main(args=argv if argv is not None else sys.argv[1:], prog_name="aeth")


def add_plugin_commands(host) -> None:
    """Let every plugin add commands to :data:`cli` through ``register_commands``.

    A plugin may add commands but not replace one that exists (aeth's own, or one an earlier
    plugin added): the first keeps its name, and the plugin that tried gets one warning. What each
    plugin added is recorded, so ``aeth plugins`` shows it.
    """
    from aeth.plugins import warn

    before = dict(cli.commands)
    # call_each runs a plugin's hook just before yielding it, so `before` is what the plugin found
    for plugin, _ in host.call_each("register_commands", cli=cli):
        after = dict(cli.commands)
        cli.commands.clear()
        cli.commands.update(before)  # whatever the plugin removed or replaced comes back...
        added = []
        for name, cmd in after.items():  # ...and only what it may add or re-add is taken
            old = before.get(name)
            if cmd is old:
                continue
            owner = None if old is None else getattr(old, OWNER, "aeth")
            if owner not in (None, plugin):
                whose = "aeth's own command" if owner == "aeth" else f"the command added by plugin {owner!r}"
                warn(f"plugin {plugin!r} tried to replace {whose} {name!r}; kept the original")
                continue
            setattr(cmd, OWNER, plugin)
            cli.commands[name] = cmd
            added.append(name)
        if added:
            host.infos[plugin].registered["commands"] = sorted(added)
        before = dict(cli.commands)


__all__ = ["add_plugin_commands", "cli", "main"]
