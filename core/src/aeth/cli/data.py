"""``aeth data``: check and count a specialist's training data (seed, your files, generated sets)."""

from __future__ import annotations

import json

import click

from aeth.cli.root import cli, cli_app


@cli.command("data")
@click.argument("specialist")
@click.option("--file", "files", multiple=True, type=click.Path(dir_okay=False), metavar="FILE",
              help="Also read this file (JSONL, JSON, CSV, TSV or Parquet); repeatable.")
@click.option("--map", "mapping", metavar="FIELD=COLUMN,...",
              help="Which columns of --file hold what: prompt=..,answer=..[,system=..] or messages=.. "
                   "(default: a messages column, else prompt and answer).")
@click.option("--no-generated", is_flag=True, help="Leave out generated sets under $AETH_HOME/datasets/SPECIALIST/.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def data(ctx, specialist, files, mapping, no_generated, as_json):
    """Validate SPECIALIST's training data and count it by source and split.

    \b
    Examples:
      aeth data writing
      aeth data ecommerce --file tickets.csv --map prompt=question,answer=reply
    """
    from aeth.datasets import ColumnMapping, training_records

    app = cli_app(ctx)
    cfg, spec = app.config, app.specialist(specialist)
    parsed = ColumnMapping.parse(mapping) if mapping else None
    result = training_records(spec, cfg.home, [(f, parsed) for f in files], include_generated=not no_generated)
    summary = {"specialist": spec.name, "sources": result.sources, "train": len(result.train),
               "validation": len(result.validation)}
    if as_json:
        click.echo(json.dumps(summary))
        return
    for source, n in result.sources.items():
        click.echo(f"{n:6d}  {source}")
    total = len(result.train) + len(result.validation)
    click.echo(f"{total:6d}  distinct records: {len(result.train)} train, {len(result.validation)} validation")
