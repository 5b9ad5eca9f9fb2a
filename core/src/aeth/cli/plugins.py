"""``aeth plugins`` and ``aeth specialists``: what is installed (never imports torch)."""

from __future__ import annotations

import json

import click

from aeth.cli.root import cli, cli_app


@cli.command()
@click.option("--all", "include_defaults", is_flag=True, help="Include aeth's built-in default plugins.")
def plugins(include_defaults):
    """List installed plugins as JSON: name, distribution, version, hooks, and what each registered."""
    click.echo(json.dumps(cli_app(click.get_current_context()).describe_plugins(include_defaults), indent=2))


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.pass_context
def specialists(ctx, as_json):
    """List the specialists that installed plugins register."""
    specs = sorted(cli_app(ctx).specialists().values(), key=lambda s: s.name)
    if as_json:
        click.echo(json.dumps([s.summary() for s in specs], indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table("name", "plugin", "base model", "examples", "description", box=None)
    for s in specs:
        table.add_row(s.name, s.plugin, s.base_model, str(len(s.routing_examples)), s.description)
    Console().print(table)
