"""``aeth feedback``: say what was good or bad about an answer, for continuous learning."""

from __future__ import annotations

import json

import click

from aeth.cli.root import cli, cli_app

KIND_FLAGS = ("--up", "--down", "--rating", "--correct", "--prefer")


@cli.command()
@click.argument("interaction_id", metavar="[ID]", required=False)
@click.option("--up", is_flag=True, help="The answer was good (thumbs up).")
@click.option("--down", is_flag=True, help="The answer was bad (thumbs down).")
@click.option("--rating", type=click.IntRange(1, 5), metavar="N", help="Rate the answer from 1 (bad) to 5 (very good).")
@click.option("--correct", metavar="TEXT", help="The answer it should have given (- reads it from standard input).")
@click.option("--prefer", metavar="OTHER_ID", help="Another answer to the same prompt (e.g. another of `n` choices) is "
              "better than this one.")
@click.option("--comment", metavar="TEXT", help="A remark: alone, stored as a comment; with another flag, attached to it.")
@click.option("--id", "feedback_id", metavar="FEEDBACK_ID", help="Your id for this feedback: giving it again stores it once.")
@click.option("--list", "listing", is_flag=True, help="List stored feedback (on ID only, when given), oldest first.")
@click.option("--json", "as_json", is_flag=True, help="With --list: one JSON object per line.")
@click.pass_context
def feedback(ctx, interaction_id, up, down, rating, correct, prefer, comment, feedback_id, listing, as_json):
    """Store feedback on the answer ID and print the feedback's id.

    ID is the interaction id an answer came with (`aeth run` prints it on standard error, `aeth
    serve` sends it as x-aeth-interaction; `aeth log list` shows them all), or a unique start of
    it. Give exactly one of --up, --down, --rating, --correct, --prefer, optionally with a
    --comment; or only a --comment. Continuous learning turns feedback into training data
    (docs/learning.md): corrections and up-votes become examples to imitate, --prefer pairs teach
    which of two answers is better, and a share of it is held out to judge new adapter versions.

    \b
    Examples:
      aeth feedback 3f2a9c --up
      aeth feedback 3f2a9c --down --comment "wrong year"
      aeth feedback 3f2a9c --rating 4
      aeth feedback 3f2a9c --correct "Paris is the capital of France."
      pbpaste | aeth feedback 3f2a9c --correct -
      aeth feedback 3f2a9c --prefer 7be01d      7be01d's answer is better than 3f2a9c's
      aeth feedback 3f2a9c --comment "too long"
      aeth feedback 3f2a9c --up --id my-app-42  a retry with the same --id stores it once
      aeth feedback --list 3f2a9c
    """
    given = (up, down, rating is not None, correct is not None, prefer is not None)
    chosen = [flag for flag, on in zip(KIND_FLAGS, given, strict=True) if on]
    if listing:
        if chosen or comment is not None or feedback_id is not None:
            raise click.UsageError("--list only shows feedback: leave out --up/--down/--rating/--correct/--prefer/"
                                   "--comment/--id, or drop --list to store feedback")
        return _list(ctx, interaction_id, as_json)
    if as_json:
        raise click.UsageError("--json goes with --list")
    if interaction_id is None:
        raise click.UsageError("which answer? give its interaction ID (see `aeth log list`), e.g. aeth feedback 3f2a9c --up")
    if len(chosen) > 1:
        raise click.UsageError(f"{' and '.join(chosen)} cannot go together: one piece of feedback has one kind; "
                               "run `aeth feedback` once for each")
    if not chosen and comment is None:
        raise click.UsageError("say what you think of the answer: --up, --down, --rating N, --correct TEXT, "
                               "--prefer OTHER_ID or --comment TEXT")
    kind, value, remark = _kind_and_value(chosen[0] if chosen else None, rating, correct, comment)
    app = cli_app(ctx)
    iid = app.store.find(interaction_id).id
    if kind == "preference":  # --prefer OTHER: the other answer is better than this one
        value = {"chosen": app.store.find(prefer).id, "rejected": iid}
    fid = app.feedback(iid, kind, value, comment=remark, feedback_id=feedback_id)
    click.echo(fid)
    click.echo(f"stored {_describe(kind, value)} on interaction {iid}", err=True)


def _kind_and_value(flag, rating, correct, comment):
    """(kind, value, comment) for the store, from the one kind flag given (or only --comment); a
    preference's value is filled in once the ids are resolved."""
    if flag is None:
        if not comment.strip():
            raise click.BadParameter("a comment is some text", param_hint="--comment")
        return "comment", comment, None
    comment = comment if comment and comment.strip() else None
    if flag in ("--up", "--down"):
        return "thumbs", flag == "--up", comment
    if flag == "--rating":
        return "rating", rating, comment
    if flag == "--correct":
        text = correct
        if correct == "-":
            from aeth.cli.run import read_stdin

            text = read_stdin()
            if not text.strip():
                raise click.BadParameter("- reads the correction from standard input, which was empty or a terminal: "
                                         "pipe or redirect it in", param_hint="--correct")
        if not text.strip():
            raise click.BadParameter("the correction is the answer it should have given; it was empty",
                                     param_hint="--correct")
        return "correction", text.strip(), comment
    return "preference", None, comment


def _describe(kind, value) -> str:
    if kind == "thumbs":
        return "thumbs " + ("up" if value else "down")
    if kind == "rating":
        return f"rating {value}"
    if kind == "preference":
        return f"preference for {value['chosen']} over this answer"
    return kind


def _list(ctx, interaction_id, as_json) -> None:
    store = cli_app(ctx).store
    iid = store.find(interaction_id).id if interaction_id else None
    rows = store.feedback(iid)
    if as_json:
        for f in rows:
            click.echo(json.dumps(f.to_dict(), ensure_ascii=False))
        return
    if not rows:
        click.echo("no feedback stored" + (f" on {iid}" if iid else " yet: `aeth feedback ID --up` adds some"), err=True)
        return
    from aeth.cli.log import _short, _when

    click.echo(f"{'FEEDBACK':<24}  {'INTERACTION':<24}  {'CREATED (UTC)':<19}  {'SOURCE':<8}  {'KIND':<10}  VALUE")
    for f in rows:
        value = json.dumps(f.value, ensure_ascii=False) + (f" ({f.comment})" if f.comment else "")
        click.echo(f"{_short(f.id, 24):<24}  {f.interaction_id:<24}  {_when(f.created)}  {f.source:<8}  {f.kind:<10}  "
                   f"{_short(value, 60)}")
