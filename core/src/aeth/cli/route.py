"""``aeth route``: show how a prompt would be routed, without generating."""

from __future__ import annotations

import json

import click

from aeth.cli.root import active_config, cli


@cli.command()
@click.argument("prompt")
@click.option("--json", "as_json", is_flag=True, help="Print the bids as JSON.")
@click.pass_context
def route(ctx, prompt, as_json):
    """Rank the specialists for PROMPT: score, which router bid, and why.

    \b
    Example:
      aeth route "Fix this TypeError in my Python script"
    """
    from aeth.app import Aeth
    from aeth.request import Request

    app = Aeth(active_config(ctx))
    request = Request(prompt=prompt)
    app.check_input(request)
    winner, bids = app.route(request)
    if as_json:
        click.echo(json.dumps({"winner": winner.specialist, "bids": [b.__dict__ for b in bids]}, ensure_ascii=False))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table("", "specialist", "score", "router", "reason", box=None)
    for b in bids:
        table.add_row("->" if b is winner else "", b.specialist, f"{b.score:.3f}", b.plugin, b.reason)
    Console().print(table)
