"""``aeth config``: the effective configuration and where each value comes from."""

from __future__ import annotations

import json

import click

from aeth.cli.root import active_config, cli


@cli.command("config")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.pass_context
def config_cmd(ctx, as_json):
    """Show every configuration key: value, source and meaning.

    \b
    Precedence, lowest first:
      1. built-in defaults
      2. the user config file (aeth.yaml in the user config dir)
      3. ./aeth.yaml in the current directory   (--config FILE replaces 2 and 3)
      4. AETH_* environment variables: the key upper-cased, dots as underscores
         (router.threshold -> AETH_ROUTER_THRESHOLD)
      5. -o key=value on the command line
      6. a command's own options (e.g. aeth run --temperature)
    """
    from aeth.config import KEYS, config_files, env_name

    cfg = active_config(ctx)
    rows = [{"key": k, "value": v, "source": src, "env": env_name(k) if k in KEYS else "",
             "help": KEYS[k].help if k in KEYS else "distillation teacher" if k.startswith("teachers.") else "plugin setting"} for k, v, src in cfg.items()]
    if as_json:
        click.echo(json.dumps(rows, indent=2, default=str))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table("key", "value", "source", "meaning", box=None)
    for r in rows:
        table.add_row(r["key"], "" if r["value"] is None else str(r["value"]), r["source"], r["help"])
    Console().print(table)
    files = ", ".join(str(f) for f in config_files((ctx.find_root().obj or {}).get("config_path")))
    click.echo(f"\nfiles read (if present): {files}", err=True)
