"""The root ``aeth`` group and its global options."""

from __future__ import annotations

import click

from aeth import __version__
from aeth.errors import AethError

HELP = """aeth: narrow AI specialists, each a small model plus a LoRA adapter.

\b
Examples:
  aeth run "What is the capital of France?"     route to the best specialist and answer
  aeth run -s coding "Reverse a list in Python"  ask one specialist directly
  aeth route "Write a haiku about rain"           show how a prompt would be routed
  aeth specialists                                the installed specialists
  aeth plugins                                    installed plugins as JSON
  aeth config                                     effective configuration and where each value comes from

Configuration: defaults < user config file < ./aeth.yaml < AETH_* environment < -o key=value
< command options. See `aeth config --help`.
"""


OWNER = "_aeth_plugin"  # attribute naming the plugin that added a command (absent: aeth's own)


class AethGroup(click.Group):
    """Turns :class:`AethError` into a one-line message and a non-zero exit, and keeps plugins from
    replacing a command that exists (aeth's own, or one another plugin added)."""

    def add_command(self, cmd: click.Command, name: str | None = None) -> None:
        from aeth.plugins import calling_plugin, warn

        plugin = calling_plugin()  # set while a plugin's register_commands runs
        name = name or cmd.name
        old = self.commands.get(name)
        if plugin is not None:
            owner = None if old is None else getattr(old, OWNER, "aeth")
            if owner not in (None, plugin):
                whose = "aeth's own command" if owner == "aeth" else f"the command added by plugin {owner!r}"
                warn(f"plugin {plugin!r} tried to replace {whose} {name!r}; kept the original")
                return
            setattr(cmd, OWNER, plugin)
        super().add_command(cmd, name)

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except AethError as e:
            raise click.ClickException(str(e)) from e


@click.group(cls=AethGroup, help=HELP, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-o", "--option", "overrides", multiple=True, metavar="KEY=VALUE",
              help="Set a configuration key for this command, e.g. -o router.threshold=0.4 (repeatable).")
@click.option("--config", "config_path", type=click.Path(dir_okay=False), envvar="AETH_CONFIG",
              help="Read this YAML file instead of the user config and ./aeth.yaml.")
@click.version_option(__version__, prog_name="aeth")
@click.pass_context
def cli(ctx: click.Context, overrides: tuple[str, ...], config_path: str | None) -> None:
    ctx.obj = {"overrides": overrides, "config_path": config_path}


def cli_app(ctx: click.Context):
    """The command's :class:`~aeth.app.Aeth`, built once per command line from the root options
    (``-o``, ``--config``) and the usual config sources; every command works through it."""
    from aeth.app import Aeth
    from aeth.config import load_config

    root = ctx.find_root()
    root.obj = root.obj if root.obj is not None else {}
    if root.obj.get("app") is None:
        root.obj["app"] = Aeth(load_config(root.obj.get("overrides", ()), root.obj.get("config_path")))
        root.call_on_close(root.obj["app"].close)  # its database connections
    return root.obj["app"]


def active_config(ctx: click.Context):
    """The configuration of the command's application (:func:`cli_app`)."""
    return cli_app(ctx).config
