"""``aeth route``: show how a prompt would be routed, without generating."""

from __future__ import annotations

import json

import click

from aeth.cli.root import cli, cli_app


@cli.command()
@click.argument("prompt", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option("--evaluate", is_flag=True,
              help="Instead of one prompt, route every installed specialist's held-out prompts and print the "
                   "accuracy and a confusion matrix.")
@click.pass_context
def route(ctx, prompt, as_json, evaluate):
    """Rank the specialists for PROMPT: score, which router bid, and why.

    \b
    Examples:
      aeth route "Fix this TypeError in my Python script"
      aeth route --evaluate          how well the router routes prompts it never saw
    """
    from aeth.request import Request

    app = cli_app(ctx)
    if evaluate:
        _evaluate(app, as_json)
        return
    if not prompt:
        raise click.UsageError("give a PROMPT to route, or --evaluate")
    from aeth.compose import plan

    request = Request(prompt=prompt)
    winner, bids = app.route(request)
    parts = plan(app, request, bids) or []
    for part in parts or [None]:
        app.check_input(Request(part.prompt) if part else request, app.specialist(part.specialist if part else winner.specialist))
    if as_json:
        click.echo(json.dumps({"winner": winner.specialist, "bids": [b.__dict__ for b in bids],
                               "parts": [{"specialist": p.specialist, "part": p.prompt, "score": p.bid.score} for p in parts]},
                              ensure_ascii=False))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table("", "specialist", "score", "router", "reason", box=None)
    for b in bids:
        table.add_row("->" if b is winner and not parts else "", b.specialist, f"{b.score:.3f}", b.plugin, b.reason)
    Console().print(table)
    if parts:
        click.echo("composed from " + "; ".join(f"{p.specialist} for {p.prompt!r} ({p.bid.score:.2f})" for p in parts))


def _evaluate(app, as_json: bool) -> None:
    """Route every held-out prompt; print accuracy, the confusion matrix and the mistakes (or JSON).

    Off a terminal (a pipe, a log file) the table is printed at its full width instead of being cut
    to 80 columns, and progress comes as a line every ~10 %.
    """
    import sys

    from aeth.errors import RoutingError
    from aeth.progress import Progress
    from aeth.request import Request
    from aeth.routing.calibrate import accuracy

    specs = app.specialists()
    labelled = [(p, s.name) for s in specs.values() for p in s.routing_heldout]
    if not labelled:
        raise RoutingError("no installed specialist has held-out routing prompts (Specialist.routing_heldout)")
    # through app.route, so every router plugin bids, as in `aeth run`; a specialist that sees
    # is asked with an image attached, as its users would
    seeing = {p for s in specs.values() if s.accepts_images for p in s.routing_heldout}
    image = _placeholder_png() if seeing else b""

    def predict(prompt: str) -> str:
        chosen = app.route(Request(prompt=prompt, images=(image,) if prompt in seeing else ()))[0].specialist
        bar.advance()
        return chosen

    with Progress("route", len(labelled), unit="prompts") as bar:
        result = accuracy(predict, labelled)
    confusion, correct = result["confusion"], result["correct"]
    result["mistakes"] = [{"prompt": p, "expected": e, "predicted": r} for p, e, r in result["mistakes"]]
    if as_json:
        click.echo(json.dumps(result, ensure_ascii=False))
        return
    from rich.console import Console
    from rich.table import Table

    labels = sorted(confusion)
    predicted_labels = labels + sorted({p for row in confusion.values() for p in row} - set(labels))
    table = Table("expected \\ routed to", *predicted_labels, "recall", box=None,
                  title=f"held-out routing accuracy: {result['accuracy']:.1%} ({correct}/{len(labelled)})", title_justify="left")
    for expected in labels:
        row = confusion[expected]
        table.add_row(expected, *(str(row.get(p, 0)) or "" for p in predicted_labels),
                      f"{row.get(expected, 0) / sum(row.values()):.0%}")
    # rich cuts a table to 80 columns when stdout is not a terminal: print it whole there instead
    console = Console() if sys.stdout.isatty() else Console(width=10_000)
    console.print(table)
    for m in result["mistakes"]:
        console.print(f"  {m['expected']} -> {m['predicted']}: {m['prompt']}", markup=False, highlight=False, style="dim",
                      soft_wrap=True)


def _placeholder_png() -> bytes:
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (8, 8), (128, 128, 128)).save(buf, format="PNG")
    return buf.getvalue()
