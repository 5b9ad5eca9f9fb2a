"""``aeth train``: fine-tune a specialist's LoRA adapter on its training data.

The command turns its flags into a :class:`~aeth.training.plan.TrainPlan` (a new run, or the
saved plan of the run ``--resume`` names), hands it to :func:`aeth.training.run`, and prints. Its
options are derived from the plan's fields (:func:`plan_options`), so a setting is declared once,
in :mod:`aeth.training.plan`; :func:`train_command` builds the command for any plan class.
"""

from __future__ import annotations

from typing import Any

import click

from aeth.cli.root import cli, cli_app
from aeth.training.plan import DISTILL_GROUPS, TRAIN_GROUPS, TrainPlan, settings

TRAIN_HELP = """Fine-tune SPECIALIST's LoRA adapter into a new adapter version, promoted only if not worse.

Data: the specialist's recipe (train split) plus generated sets under $AETH_HOME/datasets/.
Loss is on answer tokens only, in the base model's chat format. Checkpoints are written
atomically under $AETH_HOME/runs/SPECIALIST/; Ctrl-C saves one and exits, and --resume
continues from it. The new version then faces the promotion gate: the specialist's eval
suite (--gate-limit cases, greedy) runs on it and on what answers today, and it becomes
active only if its score is not lower (--force overrides; --no-gate only stores it).

\b
Examples:
  aeth train coding --max-steps 50
  aeth train reasoning --epochs 2 --lr 1e-4 --batch-size 8
  aeth train coding --resume              continue the latest run
  aeth train coding --nproc 2             two processes (DDP), same result as one
  aeth adapters activate coding v0001     serve the result in aeth run
"""


def _option(declared) -> Any:
    """The click option of one declared setting (type, range or choices, default shown in --help)."""
    s, kind = declared.setting, declared.kind
    if kind is bool:  # a flag: --fsdp sets true; --no-gate sets a default-true setting false
        return click.option(declared.flag, declared.name, is_flag=True, flag_value=not declared.default,
                            default=declared.default, help=s.help)
    if s.choices is not None:
        kind = click.Choice(list(s.choices))
    elif kind is int and (s.min is not None or s.max is not None):
        kind = click.IntRange(s.min, s.max, min_open=s.min_open, max_open=s.max_open)
    elif kind is float and (s.min is not None or s.max is not None):
        kind = click.FloatRange(s.min, s.max, min_open=s.min_open, max_open=s.max_open)
    shown = not (declared.optional or s.from_specialist)
    return click.option(declared.flag, declared.name, type=kind, metavar=s.metavar, help=s.help,
                        default=declared.default if shown else None, show_default=shown)


def plan_options(plan_class: type = TrainPlan, groups: tuple[str, ...] = TRAIN_GROUPS, exclude: tuple[str, ...] = ()) -> Any:
    """A decorator adding the options of ``plan_class``'s settings in ``groups`` (in that order in
    ``--help``) but those named in ``exclude`` (a command that sets them itself), then ``--plan``
    and ``--resume``."""
    declared = [d for d in settings(plan_class, groups) if d.name not in exclude]

    def decorate(command: Any) -> Any:
        extra = [
            click.option("--plan", "plan_file", type=click.Path(exists=True, dir_okay=False), metavar="FILE",
                         help=f"A YAML run config with keys {', '.join(d.name for d in declared)}; flags given on "
                              "the command line override it. Every run writes its own as runs/SPECIALIST/RUN/plan.yaml."),
            click.option("--resume", "resume", metavar="RUN", is_flag=False, flag_value="latest", default=None,
                         help="Continue a run from its newest complete checkpoint (the latest run of SPECIALIST, "
                              "or RUN), with its saved settings."),
        ]
        for option in reversed([_option(d) for d in declared] + extra):
            command = option(command)
        return command
    return decorate


def train_command(plan_class: type = TrainPlan, *, name: str = "train", groups: tuple[str, ...] = TRAIN_GROUPS,
                  command: str = "train", prepare: Any = None, help: str = TRAIN_HELP) -> click.Command:
    """An ``aeth train``-like command for ``plan_class``: its options are the settings in ``groups``;
    ``command`` is what follows ``aeth`` in messages; ``prepare(app, spec, config, values)`` checks and
    completes a new run's settings before anything loads (a resumed run keeps its saved plan)."""
    @click.command(name, help=help)
    @click.argument("specialist")
    @plan_options(plan_class, groups)
    @click.pass_context
    def train(ctx, specialist, **options):
        run_training(ctx, specialist, options, plan_class=plan_class, groups=groups, command=command, prepare=prepare)

    return train


def run_training(ctx, specialist: str, options: dict, *, plan_class: type = TrainPlan,
                 groups: tuple[str, ...] = TRAIN_GROUPS, command: str = "train", prepare: Any = None) -> None:
    """Everything a training command does after parsing: the plan, :func:`aeth.training.run`, the report."""
    from aeth.evals.runner import PROGRESS_WITHOUT_TTY
    from aeth.training import run
    from aeth.training.runs import reports_here

    app = cli_app(ctx)
    spec = app.specialist(specialist)
    if options["resume"]:
        plan = _resumed_plan(ctx, app, spec, options, plan_class, groups)
    else:
        plan = _new_plan(ctx, app, spec, options, plan_class, groups, prepare)
    token = PROGRESS_WITHOUT_TTY.set("lines")  # the gate's two evals take minutes: say how far they are, in CI too
    try:
        result = run(app, spec, plan, echo=lambda line: click.echo(line, err=True))
    finally:
        PROGRESS_WITHOUT_TTY.reset(token)
    if not reports_here():  # another rank of a torchrun started by hand: rank 0 reports
        return
    if result.interrupted:
        click.echo(f"interrupted at step {result.steps}; checkpoint saved. Continue with: aeth {command} {spec.name} --resume",
                   err=True)
        ctx.exit(130)
    version = result.version
    if version is not None and result.decision is None:
        click.echo(f"stored adapter {version.version} (not active); serve it with: "
                   f"aeth adapters activate {spec.name} {version.version}", err=True)
    elif version is not None and not result.decision.promoted:
        click.echo(f"activate it anyway with: aeth adapters activate {spec.name} {version.version}", err=True)


def _given(ctx, name: str) -> bool:
    """Whether option ``name`` was given on the command line (not a default)."""
    return ctx.get_parameter_source(name) == click.core.ParameterSource.COMMANDLINE


def _new_plan(ctx, app, spec, options: dict, plan_class: type, groups: tuple[str, ...], prepare: Any) -> TrainPlan:
    """A new run's plan: defaults (the specialist's base and quantization), then the --plan file, then
    the flags given on the command line."""
    from aeth.training.plan import read_plan_file

    declared = settings(plan_class, groups)
    values = {d.name: options[d.name] for d in declared}
    for d in declared:
        if d.setting.from_specialist and values[d.name] is None:
            values[d.name] = getattr(spec, d.name)
    if options["plan_file"]:
        from_file = read_plan_file(options["plan_file"], plan_class, groups)
        values.update({k: v for k, v in from_file.items() if not _given(ctx, k)})
    if prepare is not None:
        prepare(app, spec, app.config, values)
    return plan_class(**values)


def _resumed_plan(ctx, app, spec, options: dict, plan_class: type, groups: tuple[str, ...]) -> TrainPlan:
    """The saved plan of the run --resume names; flags of settings a checkpoint does not depend on
    (--nproc, the gate's) apply when given."""
    from dataclasses import replace

    from aeth.training import resume_plan

    plan = resume_plan(app, spec, options["resume"], plan_class)
    changed = {d.name: options[d.name] for d in settings(plan_class, groups) if d.setting.on_resume and _given(ctx, d.name)}
    return replace(plan, **changed)


train = train_command()
cli.add_command(train)

__all__ = ["DISTILL_GROUPS", "TRAIN_GROUPS", "plan_options", "run_training", "train", "train_command"]
