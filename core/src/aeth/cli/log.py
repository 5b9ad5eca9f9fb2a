"""``aeth log``: the interaction log: every answer of ``aeth serve``, ``aeth run`` and ``aeth chat``."""

from __future__ import annotations

import json
import re
import sys
from datetime import datetime, timedelta, timezone

import click

from aeth.cli.root import cli, cli_app

SOURCES = ("serve", "run", "chat")


def parse_since(value: str | None) -> datetime | None:
    """``--since``: an ISO date or time (UTC unless it says otherwise), or an age such as 30m, 24h, 7d."""
    if value is None:
        return None
    age = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*", value)
    if age:
        unit = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}[age.group(2)]
        return datetime.now(timezone.utc) - timedelta(**{unit: float(age.group(1))})
    try:
        when = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a time: give an ISO date or time (2026-12-01, 2026-12-01T09:30, UTC "
                                 "unless it has an offset) or an age (30m, 24h, 7d)", param_hint="--since") from None
    return when.replace(tzinfo=timezone.utc) if when.tzinfo is None else when


def _since_option(f):
    return click.option("--since", metavar="TIME", help="Only interactions from TIME on: an ISO date or time (UTC unless "
                        "it has an offset), or an age such as 30m, 24h, 7d.")(f)


def _when(dt: datetime | None) -> str:
    return dt.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S") if dt else "-"


def _short(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[:width - 1] + "…"


@cli.group()
def log():
    """The interaction log: every answer aeth gave, with what it cost.

    `aeth serve`, `aeth run` and `aeth chat` record each answer (the messages the model was sent,
    the answer, specialist, adapter version, sampling, tokens, latency, machine time, finish
    reason, API key) in the store: SQLite at $AETH_HOME/aeth.db, or the PostgreSQL database in
    `store.url`. `-o store.log_interactions=false` records nothing. Feedback and continuous
    learning refer to answers by these ids.

    \b
    Examples:
      aeth log list                          the 20 newest answers
      aeth log list --specialist coding --source serve --limit 50
      aeth log show 3f2a9c                   one answer in full (a unique start of its id is enough)
      aeth log export --jsonl answers.jsonl --since 7d
      aeth log export --jsonl - | jq .answer
      aeth log stats --since 24h             tokens, latency, machine time, and cost against API prices
    """


@log.command("list")
@click.option("--limit", default=20, show_default=True, type=click.IntRange(1), help="How many, newest first.")
@click.option("--specialist", metavar="NAME", help="Only this specialist's answers.")
@click.option("--source", type=click.Choice(SOURCES), help="Only answers given by `aeth serve`, `aeth run` or `aeth chat`.")
@_since_option
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object per line instead of a table.")
@click.pass_context
def list_cmd(ctx, limit, specialist, source, since, as_json):
    """List answers, newest first: id, time (UTC), source, specialist and adapter, tokens, latency, prompt."""
    rows = cli_app(ctx).store.list(limit=limit, specialist=specialist, source=source, since=parse_since(since))
    if as_json:
        for r in rows:
            click.echo(json.dumps(r.to_dict(), ensure_ascii=False))
        return
    if not rows:
        click.echo("no interactions logged yet: `aeth run`, `aeth chat` and `aeth serve` record every answer", err=True)
        return
    click.echo(f"{'ID':<24}  {'CREATED (UTC)':<19}  {'SOURCE':<6}  {'SPECIALIST':<20}  {'IN':>6}  {'OUT':>5}  "
               f"{'LATENCY':>8}  PROMPT")
    for r in rows:
        who = f"{r.specialist}@{r.adapter}" if r.adapter else r.specialist
        click.echo(f"{r.id:<24}  {_when(r.created)}  {r.source:<6}  {_short(who, 20):<20}  {r.tokens_in:>6}  "
                   f"{r.tokens_out:>5}  {r.latency_s:>6.2f} s  {_short(r.prompt, 50)}")


@log.command()
@click.argument("interaction_id", metavar="ID")
@click.option("--json", "as_json", is_flag=True, help="Print the interaction and its feedback as one JSON object.")
@click.pass_context
def show(ctx, interaction_id, as_json):
    """Show one answer in full: the messages the model was sent, the answer, how it was made, its feedback.

    ID may be the start of an id, if only one id starts with it.
    """
    store = cli_app(ctx).store
    r = store.find(interaction_id)
    feedback = store.feedback(r.id)
    if as_json:
        click.echo(json.dumps({**r.to_dict(), "feedback": [f.to_dict() for f in feedback]}, ensure_ascii=False, indent=2))
        return
    adapter = f"adapter {r.adapter}" if r.adapter else "no adapter"
    click.echo(f"interaction {r.id}: {r.source}, {_when(r.created)} UTC")
    click.echo(f"specialist: {r.specialist} ({adapter}{', model ' + r.model if r.model else ''})")
    if r.route:
        click.echo(f"route: {r.route.get('reason', '')}")
    ttft = f", first token {r.ttft_s:.2f} s" if r.ttft_s is not None else ""
    click.echo(f"tokens: {r.tokens_in} in, {r.tokens_out} out; latency {r.latency_s:.2f} s{ttft}; "
               f"machine {r.machine_seconds:.2f} s; finish: {r.finish_reason or '-'}")
    if r.sampling:
        click.echo("sampling: " + ", ".join(f"{k}={v}" for k, v in r.sampling.items()))
    if r.key_id:
        click.echo(f"API key: {r.key_id}")
    if r.group_id:
        click.echo(f"choice {r.choice_index} of group {r.group_id}")
    if r.metadata:
        click.echo(f"metadata: {json.dumps(r.metadata, ensure_ascii=False)}")
    for m in r.messages:
        click.secho(f"--- {m.get('role')} ---", dim=True)
        click.echo(m.get("content", ""))
    click.secho("--- answer ---", dim=True)
    click.echo(r.answer)
    for f in feedback:
        comment = f" ({f.comment})" if f.comment else ""
        click.echo(f"feedback {f.id}: {f.kind} {json.dumps(f.value, ensure_ascii=False)}{comment}, by {f.source}, "
                   f"{_when(f.created)} UTC")


@log.command()
@click.argument("dest", default="-", metavar="[FILE|-]")
@click.option("--jsonl", is_flag=True, default=True, help="One JSON object per line (the only format, and the default).")
@_since_option
@click.option("--specialist", metavar="NAME", help="Only this specialist's answers.")
@click.option("--source", type=click.Choice(SOURCES), help="Only answers given by `aeth serve`, `aeth run` or `aeth chat`.")
@click.pass_context
def export(ctx, dest, jsonl, since, specialist, source):  # noqa: ARG001  (--jsonl names the format)
    """Write answers, oldest first, as JSON Lines to FILE (or standard output with - or nothing).

    Each line has every field of `aeth log show --json` except feedback. A FILE appears whole
    or not at all.
    """
    store = cli_app(ctx).store
    when = parse_since(since)
    if dest == "-":
        n = store.export(sys.stdout, since=when, specialist=specialist, source=source)
    else:
        n = store.export(dest, since=when, specialist=specialist, source=source)
    click.echo(f"exported {n} interaction{'s' if n != 1 else ''}" + ("" if dest == "-" else f" to {dest}"), err=True)


@log.command()
@_since_option
@click.option("--specialist", metavar="NAME", help="Only this specialist's answers.")
@click.option("--source", type=click.Choice(SOURCES), help="Only answers given by `aeth serve`, `aeth run` or `aeth chat`.")
@click.option("--json", "as_json", is_flag=True, help="Print every figure as one JSON object.")
@click.pass_context
def stats(ctx, since, specialist, source, as_json):
    """Totals: answers, tokens, latency, machine time, and what they cost against API prices.

    aeth's cost is the machine time the answers took (each answer's share of it when several
    are generated at once) at `cost.machine_per_hour` USD; beside it, the same tokens in and
    out at the API prices of the `cost.compare` models (the table of `aeth distill prices`).
    The ratio is how many times more the API would have cost.

    \b
    Examples:
      aeth log stats
      aeth -o cost.machine_per_hour=0.35 log stats --since 30d
      aeth -o cost.compare=gpt-4.1-mini,claude-sonnet-4-0 log stats --json
    """
    from aeth.store.cost import Pricing

    app = cli_app(ctx)
    s = app.store.stats(since=parse_since(since), specialist=specialist, source=source,
                        pricing=Pricing.from_config(app.config))
    if as_json:
        click.echo(json.dumps(s, indent=2))
        return
    if not s["interactions"]:
        click.echo("no interactions logged" + (" that match" if since or specialist or source else " yet"), err=True)
        return
    sources = ", ".join(f"{k} {v:,}" for k, v in sorted(s["by_source"].items()))
    click.echo(f"answers: {s['interactions']:,} ({sources}), {s['first'][:19].replace('T', ' ')} to "
               f"{s['last'][:19].replace('T', ' ')} UTC")
    rate = f"; {s['tokens_per_machine_second']:.1f} tokens/s of machine time" if s["tokens_per_machine_second"] else ""
    click.echo(f"tokens: {s['tokens_in']:,} in, {s['tokens_out']:,} out{rate}")
    lat, ttft = s["latency_s"], s["ttft_s"]
    first = f"; first token p50 {ttft['p50']:.2f} s, p95 {ttft['p95']:.2f} s" if ttft["p50"] is not None else ""
    click.echo(f"latency: p50 {lat['p50']:.2f} s, p95 {lat['p95']:.2f} s{first}")
    click.echo(f"machine time: {s['machine_seconds']:,.1f} s")
    click.echo("")
    click.echo(f"{'SPECIALIST':<24}  {'ADAPTER':<10}  {'ANSWERS':>7}  {'IN':>9}  {'OUT':>9}  {'MACHINE':>9}  {'COST':>9}")
    for r in s["by_adapter"]:
        click.echo(f"{_short(r['specialist'], 24):<24}  {r['adapter'] or '-':<10}  {r['interactions']:>7,}  "
                   f"{r['tokens_in']:>9,}  {r['tokens_out']:>9,}  {r['machine_seconds']:>7.1f} s  {_usd(r['aeth_usd']):>9}")
    c = s["cost"]
    click.echo("")
    assumed = "" if "cost.machine_per_hour" in app.config.sources else ", the default: set what your machine costs"
    click.echo(f"cost of these tokens (aeth: machine time at {_usd(c['machine_per_hour'])}/hour, "
               f"`cost.machine_per_hour`{assumed}):")
    click.echo(f"  {'':<26}  {'USD':>10}  {'USD per 1M tokens':>17}  API / aeth")
    click.echo(f"  {'aeth':<26}  {_usd(c['aeth_usd']):>10}  {_usd(c['aeth_usd_per_mtok']):>17}")
    for row in c["compare"]:
        if row["usd"] is None:
            click.echo(f"  {row['model']:<26}  {row['note']}")
            continue
        ratio = f"{row['ratio']:,.1f}x" if row["ratio"] is not None else "-"
        click.echo(f"  {row['model']:<26}  {_usd(row['usd']):>10}  {_usd(row['usd_per_mtok']):>17}  {ratio:>10}")


def _usd(value: float | None) -> str:
    if value is None:
        return "-"
    if value == 0 or value >= 0.01:
        return f"${value:,.2f}"
    return f"${value:.4f}" if value >= 0.0001 else f"${value:.2e}"
