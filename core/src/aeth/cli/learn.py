"""``aeth learn``: train a specialist on its new feedback, judged by its evals and held-out feedback.

``aeth learn SPECIALIST`` is :func:`aeth.learning.run.learn`; ``aeth learn status [SPECIALIST]`` is
:func:`aeth.learning.run.status`; ``aeth learn history SPECIALIST`` is :mod:`aeth.cli.learn_history`.
The training options are derived from :class:`~aeth.learning.plan.LearnPlan`'s settings (groups ``learn``, ``train``, ``gate``) as ``aeth
train`` derives its own (:func:`aeth.cli.train.plan_options`), less the ones learn sets itself.
"""

from __future__ import annotations

import json

import click

from aeth.cli.root import cli, cli_app
from aeth.cli.train import _given, plan_options
from aeth.learning.plan import LearnPlan
from aeth.learning.practice import PracticeSettings
from aeth.training.plan import LEARN_GROUPS, OBJECTIVES, settings

#: settings learn decides: the objective (--objective adds "auto"), where the LoRA starts (the active version)
SET_BY_LEARN = ("objective", "init_adapter")

LEARN_HELP = """Learn SPECIALIST from its new feedback; promote the result only if it is not worse.

\b
  aeth learn SPECIALIST [OPTIONS]     train on the feedback no earlier learn used
  aeth learn SPECIALIST --self        train on its own answers to practice prompts, judged by its verifier
  aeth learn status [SPECIALIST]      last run and outcome, feedback waiting, running learns
  aeth learn history SPECIALIST       every adapter version: data, gate scores, promotion
  aeth learn --watch [SPECIALIST ...] learn each one when its learn.* schedule says so (--once: check once)

A learn run: runs the specialist's verifier over its new answers (if it declares one; --no-verify
skips it); turns the new feedback into a dataset version under $AETH_HOME/datasets/SPECIALIST/
with a held-out share (--heldout); trains with --objective (auto: DPO when there are preference
pairs, else KTO when there are good and bad answers, else SFT), starting from the active adapter
and measured against it (--reference); then gates the new version: the eval suite (--gate-limit
cases) and agreement with the held-out feedback, each on the new version and on what answers
now. It becomes active only if neither is worse (--force overrides; --no-gate only stores it);
`aeth adapters rollback SPECIALIST` undoes a promotion. One learn per specialist at a time (a
second refuses, or waits with --wait). Ctrl-C saves a checkpoint; --resume continues the run
on the same dataset version.

\b
Examples:
  aeth learn coding                       learn from whatever feedback is new
  aeth learn coding --objective dpo --max-steps 40
  aeth learn coding --resume              continue an interrupted learn run
  aeth learn coding --self --prompts 64 --k 4   no teacher, no users: rejection sampling (STaR)
  aeth learn status                       every specialist's learning at a glance
  aeth learn history coding --plot coding.png   its versions; --plot draws the scores (needs matplotlib)
  aeth adapters rollback coding           undo the last promotion
  aeth learn --watch --interval 300       beside aeth serve: learn on schedule, at low CPU priority
  aeth learn --watch --self               also self-practice every learn.every_hours when no feedback waits
  aeth -o learn.every_feedback=20 learn --once   what a cron job or systemd timer runs
"""


class LearnCommand(click.Command):
    """``aeth learn``, whose usage also shows ``aeth learn status [SPECIALIST]``."""

    def format_usage(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        formatter.write_usage(ctx.command_path, "[OPTIONS] SPECIALIST")
        formatter.write_usage(ctx.command_path, "status [SPECIALIST] [--json]", prefix="       ")
        formatter.write_usage(ctx.command_path, "history SPECIALIST [--json] [--plot FILE.png]", prefix="       ")
        formatter.write_usage(ctx.command_path, "--watch [SPECIALIST ...] [--interval SECONDS] [--once]",
                              prefix="       ")


@cli.command("learn", cls=LearnCommand, help=LEARN_HELP)
@click.argument("specialist", required=False)
@click.argument("which", required=False, metavar="")
@click.argument("more", nargs=-1, metavar="")  # aeth learn --watch A B C ... (aeth.cli.learn_watch)
@click.option("--objective", type=click.Choice(["auto", *OBJECTIVES]), default="auto", show_default=True,
              help="What to train: auto picks from the data (DPO, else KTO, else SFT).")
@click.option("--heldout", type=click.FloatRange(0, 1, max_open=True), default=0.2, show_default=True,
              help="Share of new prompts held out to judge the new version (never trained on).")
@click.option("--min-reward", type=click.FloatRange(0, 1), default=1.0, show_default=True,
              help="Verifier reward from which an answer is one to imitate (SFT).")
@click.option("--no-verify", "no_verify", is_flag=True, help="Do not run the specialist's verifier over new answers first.")
@click.option("--self", "self_practice", is_flag=True,
              help="Learn from self-practice instead of feedback: sample answers to the specialist's practice prompts, "
                   "keep what its verifier accepts (SFT) and its best-vs-worst pairs (DPO). --seed seeds the samples.")
@click.option("--prompts", type=click.IntRange(min=1), default=PracticeSettings.prompts, show_default=True,
              help="With --self: practice prompts to draw.")
@click.option("--k", "k", type=click.IntRange(min=1), default=PracticeSettings.k, show_default=True,
              help="With --self: answers sampled per prompt.")
@click.option("--temperature", type=click.FloatRange(min=0, min_open=True), default=PracticeSettings.temperature,
              show_default=True, help="With --self: sampling temperature.")
@click.option("--max-tokens", "practice_max_tokens", type=click.IntRange(min=1), default=None,
              help="With --self: the longest sampled answer (default: the specialist's generation.max_tokens).")
@click.option("--imitate-cut", is_flag=True,
              help="With --self: also imitate accepted answers cut at --max-tokens (a model that rarely stops).")
@click.option("--wait", is_flag=True, help="If a learn of SPECIALIST is running, wait for it instead of refusing.")
@click.option("--json", "as_json", is_flag=True, help="With status: one JSON object per specialist; with history: per version.")
@click.option("--plot", type=click.Path(dir_okay=False), default=None,
              help="With history: draw each version's scores into this PNG (needs matplotlib: pip install matplotlib).")
@click.option("--watch", is_flag=True, help="Learn each SPECIALIST (default: all) whenever its learn.* schedule says so.")
@click.option("--once", is_flag=True, help="With --watch (implied): check the schedule once, learn what is due, exit.")
@click.option("--interval", type=click.FloatRange(min=1), default=60, show_default=True,
              help="With --watch: seconds between checks of the schedule.")
@plan_options(LearnPlan, LEARN_GROUPS, exclude=SET_BY_LEARN)
@click.pass_context
def learn(ctx, specialist, which, more, objective, heldout, min_reward, no_verify, self_practice, prompts, k, temperature,
          practice_max_tokens, imitate_cut, wait, as_json, watch, once, interval, **options):
    from aeth.evals.runner import PROGRESS_WITHOUT_TTY
    from aeth.learning.run import learn as run_learn

    app = cli_app(ctx)
    values = _plan_values(ctx, options)
    practice = dict(prompts=prompts, k=k, temperature=temperature, seed=values.get("seed") or 0,
                    max_tokens=practice_max_tokens, imitate_cut=imitate_cut) if self_practice else None
    if watch or once:  # aeth.cli.learn_watch
        from aeth.cli.learn_watch import watch as run_watch

        run_watch(ctx, app, [n for n in (specialist, which, *more) if n], once, interval, wait, options,
                  dict(objective=objective, heldout=heldout, min_reward=min_reward, verify=not no_verify, **values),
                  practice)
        return
    if specialist is None:
        raise click.UsageError("Missing argument 'SPECIALIST' (or --watch to learn on a schedule).")
    if more:
        raise click.UsageError(f"unexpected argument {more[0]!r}: aeth learn takes one SPECIALIST (--watch takes several)")
    if specialist == "status":
        _status(app, which, as_json)
        return
    if specialist == "history":  # aeth.cli.learn_history
        from aeth.cli.learn_history import show_history

        if which is None:
            raise click.UsageError("aeth learn history needs a SPECIALIST")
        show_history(app, which, as_json, options["plot"])
        return
    if options["plot"]:
        raise click.UsageError("--plot goes with aeth learn history SPECIALIST")
    if which is not None:
        raise click.UsageError(f"unexpected argument {which!r}: aeth learn takes one SPECIALIST")
    token = PROGRESS_WITHOUT_TTY.set("lines")  # the gate's evals take minutes: say how far they are, in CI too
    try:
        result = run_learn(app, specialist, objective=objective, heldout=heldout, min_reward=min_reward,
                           verify=not no_verify, resume=options["resume"], wait=wait, practice=practice,
                           echo=lambda line: click.echo(line, err=True), **values)
    finally:
        PROGRESS_WITHOUT_TTY.reset(token)
    if result.outcome in ("nothing", "interrupted"):
        click.echo(result.message, err=True)
    if result.outcome == "interrupted":
        ctx.exit(130)
    if result.outcome == "kept":
        click.echo(f"activate it anyway with: aeth adapters activate {result.specialist} {result.version.version}", err=True)


def _plan_values(ctx: click.Context, options: dict) -> dict:
    """The :class:`LearnPlan` settings given (options, ``--plan-file``); with ``--resume``, only
    those a checkpoint does not depend on, since the saved plan stands."""
    declared = [d for d in settings(LearnPlan, LEARN_GROUPS) if d.name not in SET_BY_LEARN]
    if options["resume"]:
        return {d.name: options[d.name] for d in declared if d.setting.on_resume and _given(ctx, d.name)}
    values = {d.name: options[d.name] for d in declared if options[d.name] is not None}
    if options["plan_file"]:
        from aeth.training.plan import read_plan_file

        from_file = read_plan_file(options["plan_file"], LearnPlan, LEARN_GROUPS)
        values.update({k: v for k, v in from_file.items() if k not in SET_BY_LEARN and not _given(ctx, k)})
    return values


def _status(app, specialist: str | None, as_json: bool) -> None:
    """Print :func:`aeth.learning.run.status`: a block per specialist, or JSON lines."""
    from aeth.learning.run import status

    for entry in status(app, specialist):
        if as_json:
            click.echo(json.dumps(entry))
            continue
        last, running = entry["last"], entry["running"]
        click.echo(entry["specialist"])
        click.echo(f"  active version    {entry['active'] or 'none (the bare base model)'}")
        if last is None:
            click.echo("  last learn        never")
        else:
            outcome = last.get("outcome") or {}
            if not outcome:
                ended = "unfinished (aeth learn --resume continues it)" if running is None else "running"
            elif outcome.get("interrupted"):
                ended = f"interrupted at step {outcome.get('steps')} (aeth learn --resume continues it)"
            else:
                ended = f"{outcome.get('result')} {outcome.get('version')}"
            click.echo(f"  last learn        {last['run']} on {last.get('dataset')} ({last.get('objective')}): {ended}")
            if outcome.get("reason"):
                click.echo(f"                    {outcome['reason']}")
        click.echo(f"  feedback waiting  {entry['waiting']} rows")
        click.echo(f"  next learn        {'due: ' if entry['due'] else ''}{entry['next']}")
        click.echo("  learn running     " + ("no" if running is None else
                                             f"yes (pid {running.get('pid', '?')}, started {running.get('started', '?')})"))
