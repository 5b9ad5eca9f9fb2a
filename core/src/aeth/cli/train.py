"""``aeth train``: fine-tune a specialist's LoRA adapter on its training data."""

from __future__ import annotations

import time

import click

from aeth.cli.root import active_config, cli


@cli.command()
@click.argument("specialist")
@click.option("--base", metavar="MODEL", help="Base model (default: the specialist's).")
@click.option("--quantization", type=click.Choice(["auto", "nf4", "none"]), help="auto = NF4 on CUDA, bf16 LoRA on CPU.")
@click.option("--epochs", type=click.FloatRange(0, min_open=True), default=1.0, show_default=True)
@click.option("--max-steps", type=click.IntRange(1), help="Stop after this many optimizer steps (overrides --epochs).")
@click.option("--lr", type=click.FloatRange(0, min_open=True), default=2e-4, show_default=True, help="Peak learning rate.")
@click.option("--batch-size", type=click.IntRange(1), default=4, show_default=True)
@click.option("--grad-accum", type=click.IntRange(1), default=1, show_default=True, help="Micro-batches per optimizer step.")
@click.option("--seq-len", type=click.IntRange(16), default=512, show_default=True, help="Longest sequence, in tokens.")
@click.option("--save-every", type=click.IntRange(1), default=25, show_default=True, help="Checkpoint every N steps.")
@click.option("--eval-every", type=click.IntRange(1), default=50, show_default=True, help="Validation loss every N steps.")
@click.option("--seed", type=click.IntRange(0), default=0, show_default=True)
@click.option("--gate-limit", type=click.IntRange(1), default=20, show_default=True,
              help="Eval cases the promotion gate runs on the new version and on the active one.")
@click.option("--no-gate", is_flag=True, help="Only store the new version; judge and activate it later.")
@click.option("--force", is_flag=True, help="Activate the new version even if its evals are worse (the manifest says so).")
@click.option("--plan", "plan_file", type=click.Path(exists=True, dir_okay=False), metavar="FILE",
              help="A YAML run config with keys base_model, quantization, epochs, max_steps, lr, batch_size, grad_accum, "
                   "seq_len, save_every, eval_every, seed; flags given on the command line override it. Every run "
                   "writes its own as runs/SPECIALIST/RUN/plan.yaml.")
@click.option("--resume", "resume", metavar="RUN", is_flag=False, flag_value="latest", default=None,
              help="Continue a run from its newest complete checkpoint (the latest run of SPECIALIST, or RUN).")
@click.pass_context
def train(ctx, specialist, base, quantization, epochs, max_steps, lr, batch_size, grad_accum, seq_len, save_every,
          eval_every, seed, gate_limit, no_gate, force, plan_file, resume):
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
      aeth adapters activate coding v0001     serve the result in aeth run
    """
    from aeth.app import Aeth
    from aeth.errors import AethError
    from aeth.training.loop import TrainPlan

    cfg = active_config(ctx)
    app = Aeth(cfg)
    spec = app.specialist(specialist)
    runs = cfg.home / "runs" / spec.name
    if resume:
        candidates = sorted(d for d in runs.glob("*") if d.is_dir()) if runs.is_dir() else []
        chosen = candidates[-1:] if resume == "latest" else [d for d in candidates if d.name.startswith(resume)]
        if len(chosen) != 1:
            raise AethError(f"no run of {spec.name!r} matches {resume!r} to resume (runs: "
                            f"{', '.join(d.name for d in candidates) or 'none'})")
        run_dir = chosen[0]
        import json

        saved = json.loads((run_dir / "plan.json").read_text())
        saved.pop("run_dir", None)
        saved["resume"] = True
        plan = TrainPlan(**saved, run_dir=run_dir)
    else:
        run_dir = runs / time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        flags = {"base_model": base or spec.base_model, "quantization": quantization or spec.quantization, "epochs": epochs,
                 "max_steps": max_steps, "lr": lr, "batch_size": batch_size, "grad_accum": grad_accum, "seq_len": seq_len,
                 "save_every": save_every, "eval_every": eval_every, "seed": seed}
        if plan_file:
            flags = _merge_plan_file(ctx, plan_file, flags)
        plan = TrainPlan(**flags, run_dir=run_dir)
        _write_plan_yaml(spec.name, plan)
    result = app.host.pm.hook.train(specialist=spec, plan=plan)
    if result is None:
        raise AethError("no plugin implements the train hook (aeth's default trainer was disabled?)")
    if result.interrupted:
        click.echo(f"interrupted at step {result.steps}; checkpoint saved. Continue with: aeth train {spec.name} --resume",
                   err=True)
        ctx.exit(130)
    first = "-" if result.first_val_loss is None else f"{result.first_val_loss:.4f}"
    last = "-" if result.val_loss is None else f"{result.val_loss:.4f}"
    click.echo(f"{spec.name}: {result.steps} steps, train loss {result.train_loss:.4f}, validation loss {first} -> {last}", err=True)
    if result.version is None:
        return
    if no_gate:
        click.echo(f"stored adapter {result.version.version} (not active); serve it with: "
                   f"aeth adapters activate {spec.name} {result.version.version}", err=True)
        return
    from aeth.training.promotion import gate

    decision = gate(app, spec, result.version, limit=gate_limit, force=force)
    click.echo(f"stored adapter {result.version.version}; {decision.reason}", err=True)
    if not decision.promoted:
        click.echo(f"activate it anyway with: aeth adapters activate {spec.name} {result.version.version}", err=True)


#: command-line parameter name -> TrainPlan field, for the options a plan file may set
_PLAN_KEYS = {"base": "base_model", "quantization": "quantization", "epochs": "epochs", "max_steps": "max_steps", "lr": "lr",
              "batch_size": "batch_size", "grad_accum": "grad_accum", "seq_len": "seq_len", "save_every": "save_every",
              "eval_every": "eval_every", "seed": "seed"}


def _merge_plan_file(ctx, path: str, flags: dict) -> dict:
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
    fields = set(_PLAN_KEYS.values())
    unknown = sorted(set(data) - fields)
    if unknown:
        raise ConfigError([f"unknown key {k!r} (keys: {', '.join(sorted(fields))})" for k in unknown], source=f"plan file {path}")
    merged = dict(flags)
    for option, field in _PLAN_KEYS.items():
        if field in data and ctx.get_parameter_source(option) != ParameterSource.COMMANDLINE:
            merged[field] = data[field]
    return merged


def _write_plan_yaml(specialist: str, plan) -> None:
    """runs/SPECIALIST/RUN/plan.yaml: every setting of the run, the equivalent command in its header."""
    import shlex
    from dataclasses import asdict

    import yaml

    from aeth.atomic import write_text

    plan.run_dir.mkdir(parents=True, exist_ok=True)
    values = {k: v for k, v in asdict(plan).items() if k in _PLAN_KEYS.values()}
    option = {field: name for name, field in _PLAN_KEYS.items()}
    command = ["aeth", "train", specialist]
    for field, value in values.items():
        if value is not None:
            command += [f"--{option[field].replace('_', '-')}", str(value)]
    header = f"# {shlex.join(command)}\n# the same run: aeth train {specialist} --plan plan.yaml\n"
    write_text(plan.run_dir / "plan.yaml", header + yaml.safe_dump(values, sort_keys=False))
