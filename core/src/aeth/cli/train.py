"""``aeth train``: fine-tune a specialist's LoRA adapter on its training data."""

from __future__ import annotations

import time

import click

from aeth.cli.root import active_config, cli

#: ``aeth train``'s options, shared with every command that trains an adapter (``aeth distill train``)
TRAIN_OPTIONS = [
    click.option("--base", metavar="MODEL", help="Base model (default: the specialist's)."),
    click.option("--quantization", type=click.Choice(["auto", "nf4", "none"]),
                  help="auto = NF4 on CUDA, a plain base on CPU (in model.dtype; auto = bf16 where native, else fp32)."),
    click.option("--epochs", type=click.FloatRange(0, min_open=True), default=1.0, show_default=True),
    click.option("--max-steps", type=click.IntRange(1), help="Stop after this many optimizer steps (overrides --epochs)."),
    click.option("--lr", type=click.FloatRange(0, min_open=True), default=2e-4, show_default=True, help="Peak learning rate."),
    click.option("--batch-size", type=click.IntRange(1), default=4, show_default=True),
    click.option("--grad-accum", type=click.IntRange(1), default=1, show_default=True, help="Micro-batches per optimizer step."),
    click.option("--seq-len", type=click.IntRange(16), default=512, show_default=True, help="Longest sequence, in tokens."),
    click.option("--save-every", type=click.IntRange(1), default=25, show_default=True, help="Checkpoint every N steps."),
    click.option("--eval-every", type=click.IntRange(1), default=50, show_default=True, help="Validation loss every N steps."),
    click.option("--seed", type=click.IntRange(0), default=0, show_default=True),
    click.option("--optimizer", type=click.Choice(["adamw", "adamw8bit", "paged_adamw8bit", "paged_adamw"]), default="adamw",
                  show_default=True, help="AdamW (torch), or bitsandbytes' 8-bit state (a quarter of the memory) / paged state."),
    click.option("--report", type=click.Choice(["none", "tensorboard", "mlflow"]), default="none", show_default=True,
                  help="Also send metrics to TensorBoard (RUN/tensorboard) or MLflow (MLFLOW_TRACKING_URI); needs the package."),
    click.option("--nproc", type=click.IntRange(1), default=1, show_default=True,
                  help="Train in N processes under torchrun (gloo on CPU, nccl with one GPU each); --batch-size is the "
                       "global batch, split evenly, so results match one process."),
    click.option("--fsdp", is_flag=True, help="With --nproc: shard weights, gradients and optimizer state with FSDP2 "
                                               "(fully_shard) instead of replicating them (DDP)."),
    click.option("--deepspeed", "deepspeed_config", metavar="CONFIG",
                  help="With --nproc: train through DeepSpeed with this JSON config; 'auto' values are filled from the "
                       "plan. 'zero2-offload' is aeth's ZeRO-2 example with CPU optimizer offload (see docs/training.md)."),
    click.option("--gate-limit", type=click.IntRange(1), default=20, show_default=True,
                  help="Eval cases the promotion gate runs on the new version and on the active one."),
    click.option("--no-gate", is_flag=True, help="Only store the new version; judge and activate it later."),
    click.option("--force", is_flag=True, help="Activate the new version even if its evals are worse (the manifest says so)."),
    click.option("--plan", "plan_file", type=click.Path(exists=True, dir_okay=False), metavar="FILE",
                  help="A YAML run config with keys base_model, quantization, epochs, max_steps, lr, batch_size, grad_accum, "
                       "seq_len, save_every, eval_every, seed; flags given on the command line override it. Every run "
                       "writes its own as runs/SPECIALIST/RUN/plan.yaml."),
    click.option("--resume", "resume", metavar="RUN", is_flag=False, flag_value="latest", default=None,
                  help="Continue a run from its newest complete checkpoint (the latest run of SPECIALIST, or RUN)."),
]


def train_options(command):
    """Decorate ``command`` with :data:`TRAIN_OPTIONS` (in their order in ``--help``)."""
    for option in reversed(TRAIN_OPTIONS):
        command = option(command)
    return command


@cli.command()
@click.argument("specialist")
@train_options
@click.pass_context
def train(ctx, specialist, **options):
    """Fine-tune SPECIALIST's LoRA adapter into a new adapter version, promoted only if not worse.

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
    run_training(ctx, specialist, options)


def run_training(ctx, specialist: str, options: dict, command: str = "train", extra_flags: dict | None = None,
                 extra_keys: dict | None = None, prepare=None):
    """Everything ``aeth train`` does after parsing, for it and for commands that train with more.

    ``options`` are the values of :data:`TRAIN_OPTIONS`; ``command`` is what follows ``aeth`` in
    messages and in plan.yaml's header; ``extra_flags`` are more :class:`~aeth.training.loop.TrainPlan`
    fields, ``extra_keys`` (command-line parameter -> plan field) the ones a ``--plan`` file may set
    too; ``prepare(spec, cfg, flags)`` checks and completes the merged flags of a new run before
    anything loads (a resumed run keeps its saved plan).
    """
    import json

    from aeth.app import Aeth
    from aeth.errors import AethError
    from aeth.training import distributed
    from aeth.training import report as reporting

    o = options
    resume, keys = o["resume"], {**_PLAN_KEYS, **(extra_keys or {})}
    cfg = active_config(ctx)
    app = Aeth(cfg)
    spec = app.specialist(specialist)
    flags = {"base_model": o["base"] or spec.base_model, "quantization": o["quantization"] or spec.quantization,
             "epochs": o["epochs"], "max_steps": o["max_steps"], "lr": o["lr"], "batch_size": o["batch_size"],
             "grad_accum": o["grad_accum"], "seq_len": o["seq_len"], "save_every": o["save_every"],
             "eval_every": o["eval_every"], "seed": o["seed"], "optimizer": o["optimizer"], "report": o["report"],
             "nproc": o["nproc"], "fsdp": o["fsdp"], "deepspeed": o["deepspeed_config"], **(extra_flags or {})}
    if o["plan_file"]:
        flags = _merge_plan_file(ctx, o["plan_file"], flags, keys)
    reporting.check(flags["report"])
    if (flags["fsdp"] or flags["deepspeed"]) and flags["nproc"] == 1 and not distributed.under_torchrun() and not resume:
        raise AethError("--fsdp and --deepspeed shard over several processes; add --nproc N (N >= 2)")
    if flags["fsdp"] and flags["deepspeed"]:
        raise AethError("choose one engine: --fsdp or --deepspeed")
    if flags["deepspeed"]:
        flags["deepspeed"] = _deepspeed_config_path(flags["deepspeed"])
    if prepare is not None and not resume:
        prepare(spec, cfg, flags)
    nproc = flags["nproc"]
    if resume and ctx.get_parameter_source("nproc") != click.core.ParameterSource.COMMANDLINE:
        nproc = json.loads((_resume_dir(spec, cfg, resume, command) / "plan.json").read_text()).get("nproc", 1)
    if nproc > 1 and not distributed.under_torchrun():
        import sys

        ctx.exit(distributed.launch(nproc, sys.argv[1:]))  # every worker runs this same command
    dist = distributed.setup()
    plan = dist.broadcast(_plan(ctx, spec, cfg, resume, flags, keys, command) if dist.main else None)  # one run, one plan
    result = app.host.pm.hook.train(specialist=spec, plan=plan)
    if result is None:
        raise AethError("no plugin implements the train hook (aeth's default trainer was disabled?)")
    distributed.teardown(dist)
    if not dist.main:
        return
    if result.interrupted:
        click.echo(f"interrupted at step {result.steps}; checkpoint saved. Continue with: aeth {command} {spec.name} --resume",
                   err=True)
        ctx.exit(130)
    first = "-" if result.first_val_loss is None else f"{result.first_val_loss:.4f}"
    last = "-" if result.val_loss is None else f"{result.val_loss:.4f}"
    click.echo(f"{spec.name}: {result.steps} steps, train loss {result.train_loss:.4f}, validation loss {first} -> {last}", err=True)
    if getattr(result, "first_val_kd_loss", None) is not None:
        click.echo(f"distillation ({plan.kd_loss} to {plan.teacher_name or plan.teacher}): validation KD loss "
                   f"{result.first_val_kd_loss:.4f} -> {result.val_kd_loss:.4f}", err=True)
    if result.version is None:
        return
    if o["no_gate"]:
        click.echo(f"stored adapter {result.version.version} (not active); serve it with: "
                   f"aeth adapters activate {spec.name} {result.version.version}", err=True)
        return
    from aeth.evals.runner import PROGRESS_WITHOUT_TTY
    from aeth.training.promotion import gate

    PROGRESS_WITHOUT_TTY.set("lines")  # the gate's two evals take minutes: say how far they are, in CI too
    click.echo(f"promotion gate: {spec.name}'s eval suite ({o['gate_limit']} cases) on {result.version.version} and on "
               "what answers now", err=True)
    decision = gate(app, spec, result.version, limit=o["gate_limit"], force=o["force"])
    click.echo(f"stored adapter {result.version.version}; {decision.reason}", err=True)
    if not decision.promoted:
        click.echo(f"activate it anyway with: aeth adapters activate {spec.name} {result.version.version}", err=True)


def _plan(ctx, spec, cfg, resume, flags, keys=None, command="train"):
    """A new run's plan (written as plan.yaml), or the saved plan of the run ``resume`` names."""
    import json

    from aeth.training.loop import TrainPlan, write_plan

    if not resume:
        name = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        runs = cfg.home / "runs" / spec.name
        taken = sum(1 for _ in runs.glob(f"{name}*")) if runs.is_dir() else 0  # two runs in one second
        plan = TrainPlan(**flags, run_dir=runs / (f"{name}-{taken + 1}" if taken else name))
        _write_plan_yaml(ctx, spec.name, plan, keys or _PLAN_KEYS, command)
        write_plan(plan)  # resumable from the first moment, even if killed before the model loads
        return plan
    run_dir = _resume_dir(spec, cfg, resume, command)
    saved = json.loads((run_dir / "plan.json").read_text())
    saved.pop("run_dir", None)
    saved["resume"] = True
    if ctx.get_parameter_source("nproc") == click.core.ParameterSource.COMMANDLINE:
        saved["nproc"] = flags["nproc"]  # a checkpoint does not depend on the number of processes
    return TrainPlan(**saved, run_dir=run_dir)


def _deepspeed_config_path(value: str) -> str:
    """A DeepSpeed config file, or the path of aeth's example ``zero2-offload``."""
    from pathlib import Path

    from aeth.errors import AethError

    if value == "zero2-offload":
        return str(Path(__file__).parent.parent / "training" / "zero2_offload.json")
    if not Path(value).is_file():
        raise AethError(f"--deepspeed {value}: no such file (give a DeepSpeed JSON config, or zero2-offload)")
    return str(Path(value).resolve())


def _resume_dir(spec, cfg, resume: str, command: str = "train"):
    """The run directory ``--resume`` names: the latest run of ``spec``, or the one whose name starts so."""
    import json

    from aeth.errors import AethError

    runs = cfg.home / "runs" / spec.name
    candidates = sorted(d for d in runs.glob("*") if d.is_dir() and (d / "plan.json").is_file()) if runs.is_dir() else []
    chosen = candidates[-1:] if resume == "latest" else [d for d in candidates if d.name.startswith(resume)]
    if len(chosen) != 1:
        raise AethError(f"no run of {spec.name!r} matches {resume!r} to resume (runs: "
                        f"{', '.join(d.name for d in candidates) or 'none'})")
    from aeth.training.loop import FINISHED

    if (chosen[0] / FINISHED).is_file():
        done = json.loads((chosen[0] / FINISHED).read_text())
        raise AethError(f"run {chosen[0].name} of {spec.name!r} already finished ({done['steps']} steps, adapter "
                        f"{done['version']}); start a new run with: aeth {command} {spec.name}")
    return chosen[0]


#: command-line parameter name -> TrainPlan field, for the options a plan file may set
_PLAN_KEYS = {"base": "base_model", "quantization": "quantization", "epochs": "epochs", "max_steps": "max_steps", "lr": "lr",
              "batch_size": "batch_size", "grad_accum": "grad_accum", "seq_len": "seq_len", "save_every": "save_every",
              "eval_every": "eval_every", "seed": "seed", "optimizer": "optimizer", "report": "report", "nproc": "nproc",
              "fsdp": "fsdp", "deepspeed_config": "deepspeed"}


def _merge_plan_file(ctx, path: str, flags: dict, keys: dict | None = None) -> dict:
    """The plan file's values, overridden by every option given on the command line."""
    import yaml
    from click.core import ParameterSource

    from aeth.errors import ConfigError

    try:
        data = yaml.safe_load(open(path, encoding="utf-8")) or {}
    except yaml.YAMLError as e:
        raise ConfigError([f"not valid YAML: {e}"], source=f"plan file {path}") from None
    if not isinstance(data, dict):
        raise ConfigError(["must be a mapping of option: value"], source=f"plan file {path}")
    keys = keys or _PLAN_KEYS
    fields = set(keys.values())
    unknown = sorted(set(data) - fields)
    if unknown:
        raise ConfigError([f"unknown key {k!r} (keys: {', '.join(sorted(fields))})" for k in unknown], source=f"plan file {path}")
    merged = dict(flags)
    for option, field in keys.items():
        if field in data and ctx.get_parameter_source(option) != ParameterSource.COMMANDLINE:
            merged[field] = data[field]
    return merged


def _write_plan_yaml(ctx, specialist: str, plan, keys: dict | None = None, command: str = "train") -> None:
    """runs/SPECIALIST/RUN/plan.yaml: every setting of the run, the equivalent command in its header."""
    import shlex
    from dataclasses import asdict

    import yaml

    from aeth.atomic import write_text

    plan.run_dir.mkdir(parents=True, exist_ok=True)
    keys = keys or _PLAN_KEYS
    values = {k: v for k, v in asdict(plan).items() if k in keys.values()}
    if values.get("teacher") and plan.teacher_name:  # the name the user gave, which a --plan file takes back
        values["teacher"] = plan.teacher_name
    flag = {p.name: max(p.opts, key=len) for p in ctx.command.params}
    option = {field: flag[name] for name, field in keys.items()}
    words = ["aeth", *command.split(), specialist]
    for field, value in values.items():
        if isinstance(value, bool):
            words += [option[field]] if value else []
        elif value is not None:
            words += [option[field], str(value)]
    header = f"# {shlex.join(words)}\n# the same run: aeth {command} {specialist} --plan plan.yaml\n"
    write_text(plan.run_dir / "plan.yaml", header + yaml.safe_dump(values, sort_keys=False))
