"""``aeth adapters``: list, inspect, activate, roll back and export a specialist's adapter versions."""

from __future__ import annotations

import json

import click

from aeth.cli.root import active_config, cli


def _store(ctx):
    from aeth.models.adapters import AdapterStore

    return AdapterStore(active_config(ctx).home)


@cli.group()
def adapters():
    """A specialist's adapter versions under $AETH_HOME/adapters/ (PEFT files + manifest).

    \b
    Examples:
      aeth adapters list coding
      aeth adapters show coding v0002
      aeth adapters activate coding v0002
      aeth adapters rollback coding          back to the version active before
      aeth adapters export coding v0002 ./coding-lora   loadable with plain PEFT
    """


@adapters.command("list")
@click.argument("specialist")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def list_cmd(ctx, specialist, as_json):
    """List SPECIALIST's adapter versions, oldest first; the active one is marked."""
    store = _store(ctx)
    active = store.active(specialist)
    rows = [{"version": v.version, "active": active is not None and v.version == active.version,
             "created": v.manifest.get("created"), "base_model": v.manifest.get("base_model"),
             "score": (v.manifest.get("eval") or {}).get("score")} for v in store.versions(specialist)]
    if as_json:
        click.echo(json.dumps(rows))
        return
    if not rows:
        click.echo(f"{specialist} has no adapter versions yet: the bare base model answers", err=True)
        return
    for r in rows:
        score = "" if r["score"] is None else f"  eval {r['score']:.3f}"
        click.echo(f"{'*' if r['active'] else ' '} {r['version']}  {r['created']}  {r['base_model'] or ''}{score}")


@adapters.command()
@click.argument("specialist")
@click.argument("version")
@click.pass_context
def show(ctx, specialist, version):
    """Print VERSION's manifest (a unique prefix such as v0002 is enough)."""
    click.echo(json.dumps(_store(ctx).get(specialist, version).manifest, indent=2))


@adapters.command()
@click.argument("specialist")
@click.argument("version")
@click.pass_context
def activate(ctx, specialist, version):
    """Make VERSION the one `aeth run` serves for SPECIALIST."""
    chosen = _store(ctx).activate(specialist, version, reason="activated by hand")
    click.echo(f"{specialist}: {chosen.version} is active", err=True)


@adapters.command()
@click.argument("specialist")
@click.pass_context
def rollback(ctx, specialist):
    """Re-activate the version that was active before the current one."""
    chosen = _store(ctx).rollback(specialist)
    click.echo(f"{specialist}: {chosen.version if chosen else 'no adapter (the bare base model)'} is active", err=True)


@adapters.command()
@click.argument("specialist")
@click.argument("version")
@click.argument("dest", type=click.Path(file_okay=False))
@click.pass_context
def export(ctx, specialist, version, dest):
    """Copy VERSION's PEFT files and manifest into DEST (plain PEFT loads it)."""
    path = _store(ctx).export(specialist, version, dest)
    click.echo(f"exported {specialist} {version} to {path}", err=True)
