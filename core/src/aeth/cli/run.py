"""``aeth run``: answer one prompt, streamed, with the specialist that fits it best."""

from __future__ import annotations

import json
import os
import stat
import sys

import click

from aeth.cli.root import cli, cli_app


def read_stdin() -> str:
    """Piped or redirected standard input, else "" (a terminal or /dev/null is never waited on).

    Bytes that are not UTF-8 are replaced (U+FFFD) with one warning, so a binary or Latin-1 file
    piped in gets an answer instead of an error deep in the router.
    """
    try:
        mode = os.fstat(sys.stdin.fileno()).st_mode
    except (OSError, ValueError, AttributeError):  # no real stdin (closed, or a test runner's buffer)
        if sys.stdin is None or sys.stdin.isatty():
            return ""
    else:
        if not (stat.S_ISFIFO(mode) or stat.S_ISREG(mode)):
            return ""
    buffer = getattr(sys.stdin, "buffer", None)
    raw = buffer.read() if buffer is not None else sys.stdin.read()
    return decode_input(raw, "standard input")


def decode_input(raw: bytes | str, where: str) -> str:
    """``raw`` as text: UTF-8, with undecodable bytes replaced and one warning saying how many."""
    if isinstance(raw, str):  # a text stream already decoded (perhaps with surrogate escapes)
        raw = raw.encode("utf-8", errors="surrogateescape")
    text = raw.decode("utf-8", errors="replace")
    bad = text.count("\ufffd") - raw.count("\ufffd".encode())
    if bad:
        from aeth.plugins import warn

        warn(f"{where} is not valid UTF-8: {bad} undecodable byte sequence{'s' if bad != 1 else ''} replaced by U+FFFD "
             "(convert it to UTF-8, e.g. with iconv, to keep them)")
    return text


@cli.command()
@click.argument("prompt", required=False)
@click.option("-s", "--specialist", metavar="NAME", help="Answer with this specialist; skips routing.")
@click.option("--temperature", type=click.FloatRange(0, 10), help="Sampling temperature; 0 = greedy.")
@click.option("--top-p", type=click.FloatRange(0, 1, min_open=True), help="Nucleus sampling mass.")
@click.option("--top-k", type=click.IntRange(0), help="Sample from the k likeliest tokens (0 = off).")
@click.option("--max-tokens", type=click.IntRange(1), help="Most tokens to generate.")
@click.option("--seed", type=click.IntRange(0), help="Random seed, for a reproducible answer.")
@click.option("--image", "images", multiple=True, metavar="FILE",
              help="An image for a specialist that sees (repeatable); routes to `vision` unless -s says otherwise.")
@click.option("--file", "files", multiple=True, type=click.Path(exists=True, dir_okay=False), metavar="FILE",
              help="Put this text file (UTF-8) before the prompt; repeatable. Any length: a document longer than the "
                   "model's context rolls through its attention-sink cache, ending with the prompt in view (what fell "
                   "out of the window is forgotten).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object (text, specialist, reason, token counts, interaction id) instead of streaming.")
@click.option("-q", "--quiet", is_flag=True, help="Do not say on stderr which specialist answered and why.")
@click.pass_context
def run(ctx, prompt, specialist, temperature, top_p, top_k, max_tokens, seed, images, files, as_json, quiet):
    """Answer PROMPT with the best specialist, streaming tokens as they come.

    PROMPT may also come on standard input; given both, the piped text follows the prompt.
    Which specialist answered, and why, goes to stderr, with the id under which the answer is
    logged (`aeth log show ID`; `-o store.log_interactions=false` logs nothing).

    \b
    Examples:
      aeth run "What is the capital of France?"
      aeth run -s coding "Write a function that reverses a string"
      cat error.log | aeth run "Why does this fail?"
      aeth run --json --seed 1 "Give me a haiku"
      aeth run --image receipt.png "What is the total?"
      aeth run --file report.txt "Summarise this in five bullet points"
    """
    from aeth.progress import quiet as no_progress
    from aeth.request import Request

    documents = [_read_document(f) for f in files]  # first, so the instruction is the last thing read
    piped = read_stdin().strip()
    text = "\n\n".join(p for p in (*documents, prompt, piped) if p)
    if not text.strip():
        raise click.UsageError("no prompt: give one as an argument or pipe it on standard input")
    app = cli_app(ctx)
    for i, image in enumerate(images):  # fail now, before routing and loading models
        from aeth.images import image_bytes

        image_bytes(image, i)
    request = Request(prompt=text, specialist=specialist, temperature=temperature, top_p=top_p, top_k=top_k,
                      max_tokens=max_tokens, seed=seed, images=tuple(images))
    with no_progress(quiet):  # -q: not even a long input's reading progress
        _answer(ctx, app, request, as_json, quiet)


def _answer(ctx, app, request, as_json: bool, quiet: bool) -> None:
    """Stream (or, with ``as_json``, collect) the answer to ``request`` and say how it went."""
    from aeth.errors import PolicyBlocked

    try:
        answer = app.stream(request)
    except PolicyBlocked as e:  # refused before any model saw it: logged like an answer, then said
        interaction = app.log_blocked(request, e, "run")
        if not as_json:
            raise
        click.echo(json.dumps({"id": request.id, "specialist": e.specialist, "text": "", "finish_reason": "content_filter",
                               "blocked": {"stage": e.stage, "plugin": e.plugin, "rule": e.reason},
                               "interaction": interaction}, ensure_ascii=False))
        ctx.exit(1)
    if not quiet and not as_json:
        click.secho(f"[{answer.bid.specialist}] {answer.bid.reason}", err=True, dim=True)
    if as_json:
        answer.text()
        out = answer.response.to_dict()
        out["bids"] = [{"specialist": b.specialist, "score": round(b.score, 4), "plugin": b.plugin} for b in answer.bids]
        out["interaction"] = app.log_answer(answer, "run")
        click.echo(json.dumps(out, ensure_ascii=False))
        if out["interaction"] and not quiet:
            click.secho(f"interaction: {out['interaction']}", err=True, dim=True)
        return
    try:
        for chunk in answer:
            click.echo(chunk, nl=False)
            sys.stdout.flush()
    except KeyboardInterrupt:
        click.echo("", err=False)
        click.secho("interrupted", err=True, fg="yellow")
        ctx.exit(130)
    except PolicyBlocked:
        click.echo("")
        raise
    click.echo("")
    r = answer.response
    interaction = app.log_answer(answer, "run")  # after the answer is out: a failure to log only warns
    if not quiet:
        rate = f", {r.tokens_per_second:.0f} tok/s" if r.tokens_per_second else ""
        loading = f"; model ready in {r.load_seconds:.1f} s" if r.load_seconds >= 0.1 else ""
        who = f"{r.specialist} {r.adapter}" if r.adapter else r.specialist
        click.secho(f"[{who}] {r.tokens_out} tokens in {r.seconds - r.load_seconds:.1f} s{rate} "
                    f"({r.finish_reason}{loading})", err=True, dim=True)
        if interaction:
            click.secho(f"interaction: {interaction}", err=True, dim=True)

def _read_document(path: str) -> str:
    """The text of ``--file`` ``path`` (UTF-8), or an error naming the file and what is wrong."""
    from pathlib import Path

    try:
        return Path(path).read_text(encoding="utf-8").strip()
    except UnicodeDecodeError as e:
        raise click.BadParameter(f"{path} is not UTF-8 text (byte {e.start}); convert it, e.g. with iconv",
                                 param_hint="--file") from None
    except OSError as e:
        raise click.BadParameter(f"cannot read {path}: {e.strerror}", param_hint="--file") from None
