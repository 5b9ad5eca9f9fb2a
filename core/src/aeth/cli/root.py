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


class AethGroup(click.Group):
    """Turns :class:`AethError` into a one-line message and a non-zero exit."""

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


def active_config(ctx: click.Context):
    """Load the configuration from the root options and make it the process's active one."""
    from aeth import runtime
    from aeth.config import load_config

    root = ctx.find_root().obj or {}
    cfg = load_config(root.get("overrides", ()), root.get("config_path"))
    runtime.set_config(cfg)
    return cfg
