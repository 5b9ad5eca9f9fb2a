"""``aeth keys``: the API keys `aeth serve` accepts (stored as hashes; each secret shown once)."""

from __future__ import annotations

import json

import click

from aeth.cli.root import cli, cli_app


@cli.group()
def keys():
    """API keys for `aeth serve`: who may call it, how often, and which specialists.

    A key's secret is shown once, when it is created; the store keeps only its SHA-256, so a
    lost secret cannot be recovered: revoke the key and create another. Once any key exists,
    `aeth serve` answers only requests that send one (`Authorization: Bearer SECRET`), on
    loopback too. Keys live in the store (SQLite at $AETH_HOME/aeth.db, or `store.url`), so
    servers sharing a PostgreSQL database share their keys.

    \b
    Examples:
      aeth keys create my-app                        no limits, every specialist
      aeth keys create batch-job --rpm 60 --tpm 100000 --specialists coding,writing
      export OPENAI_API_KEY=$(aeth keys create notebook)   capture the secret in a script
      aeth keys list
      aeth keys revoke my-app                        by name or id; refused from now on
    """


@keys.command()
@click.argument("name")
@click.option("--rpm", type=click.IntRange(1), help="Most requests per minute (default: no limit).")
@click.option("--tpm", type=click.IntRange(1), help="Most tokens per minute, prompt and answer together (default: no limit).")
@click.option("--specialists", metavar="A,B", help="Only these specialists, comma-separated (default: all).")
@click.pass_context
def create(ctx, name, rpm, tpm, specialists):
    """Create a key called NAME and print its secret on standard output, once.

    NAME is unique among keys in use (a revoked key's name may be reused).
    """
    from aeth.plugins import warn

    app = cli_app(ctx)
    if specialists:
        known = app.specialists()
        unknown = [s for s in (x.strip() for x in specialists.split(",")) if s and s not in known]
        if unknown:
            warn(f"no installed specialist is called {', '.join(map(repr, unknown))} (installed: "
                 f"{', '.join(sorted(known)) or 'none'}); the key allows it anyway, for when it is installed")
    key, secret = app.store.create_key(name, rpm=rpm, tpm=tpm, specialists=specialists)
    click.echo(secret)
    limits = ", ".join(x for x in (f"{rpm} requests/min" if rpm else "", f"{tpm} tokens/min" if tpm else "") if x)
    scope = f"; specialists: {', '.join(key.specialists)}" if key.specialists else ""
    click.echo(f"created API key {key.name!r} (id {key.id}; {limits or 'no limits'}{scope})", err=True)
    click.secho("this secret is not stored and cannot be shown again: keep it now (a lost one is revoked and replaced)",
                err=True, fg="yellow")


@keys.command("list")
@click.option("--all", "include_revoked", is_flag=True, help="Include revoked keys.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def list_cmd(ctx, include_revoked, as_json):
    """List keys, oldest first: name, the start of the secret, id, limits, specialists, last use."""
    rows = cli_app(ctx).store.keys(include_revoked=include_revoked)
    if as_json:
        click.echo(json.dumps([k.to_dict() for k in rows]))
        return
    if not rows:
        click.echo("no API keys: `aeth serve` answers on loopback only, without one (create one with `aeth keys create NAME`)",
                   err=True)
        return
    click.echo(f"{'NAME':<20}  {'SECRET':<12}  {'ID':<24}  {'RPM':>6}  {'TPM':>8}  {'SPECIALISTS':<20}  {'CREATED (UTC)':<16}  "
               "LAST USED")
    for k in rows:
        state = f"  revoked {when(k.revoked)}" if k.revoked else ""
        click.echo(f"{k.name:<20}  {k.prefix + '...':<12}  {k.id:<24}  {k.rpm or '-':>6}  {k.tpm or '-':>8}  "
                   f"{','.join(k.specialists) if k.specialists else 'all':<20}  {when(k.created):<16}  "
                   f"{when(k.last_used)}{state}")


def when(d) -> str:
    return d.strftime("%Y-%m-%d %H:%M") if d else "-"


@keys.command()
@click.argument("name_or_id")
@click.pass_context
def revoke(ctx, name_or_id):
    """Revoke the key NAME_OR_ID: requests sending it are refused from now on (a running server
    notices at its next request)."""
    key = cli_app(ctx).store.revoke_key(name_or_id)
    click.echo(f"revoked API key {key.name!r} (id {key.id})", err=True)
