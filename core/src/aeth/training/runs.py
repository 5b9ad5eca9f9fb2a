"""A training run as one library call: :func:`run` (``aeth.training.run``), and finding runs to resume.

::

    from aeth.app import Aeth
    from aeth.training import TrainPlan, run

    app = Aeth()
    spec = app.specialist("coding")
    result = run(app, spec, TrainPlan(base_model=spec.base_model, max_steps=50))
    print(result.version.version, result.decision.reason if result.decision else "not gated")

:func:`run` checks the plan, gives a new run its directory (``plan.json`` and ``plan.yaml``
first, so even a run killed in its first second resumes), trains through the ``train`` hook
(in ``plan.nproc`` processes under torchrun when asked), then puts the new adapter version
through the promotion gate unless the plan says not to. :func:`resume_plan` is the saved plan of
a run to continue. The CLI (``aeth train``, ``aeth distill train``) is a thin layer over both.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import fields, replace
from pathlib import Path
from typing import Any

from aeth.atomic import write_text
from aeth.errors import AethError, PluginError
from aeth.training import distributed
from aeth.training.plan import FINISHED, PLAN_JSON, TrainPlan, TrainResult, check, read_plan, write_plan, write_plan_yaml

#: a launched run's files in its directory: what the workers join, and what rank 0 reports back
LAUNCH, LAUNCH_RESULT = "launch.json", "launch-result.json"


def run(app: Any, specialist: Any, plan: TrainPlan, *, progress: bool = True,
        echo: Callable[[str], None] | None = None) -> TrainResult:
    """Train ``specialist`` according to ``plan`` and return how it ended.

    ``app`` is the :class:`~aeth.app.Aeth` whose configuration, plugins and adapter store the run
    uses. A plan without ``run_dir`` gets a new directory under ``$AETH_HOME/runs/<specialist>/``.
    With ``plan.nproc > 1`` (and not already under torchrun) the run is relaunched as that many
    torchrun workers, which rebuild the same app and plan from ``<run>/launch.json``; this process
    waits and reads rank 0's result (the specialist must then be one a plugin registers, since the
    workers find it by name). The ``train`` hook trains (aeth's default trainer runs last). A new
    adapter version then faces the promotion gate (:func:`aeth.training.promotion.gate`) unless
    ``plan.gate`` is false; :attr:`TrainResult.decision` holds its decision. ``progress=False``
    silences the progress bars and lines; ``echo`` receives the run's summary and the gate's
    lines as they happen (the CLI prints them).
    """
    from aeth.progress import quiet

    plan = check(plan, under_torchrun=distributed.under_torchrun())
    with quiet(not progress):
        if plan.nproc > 1 and not distributed.under_torchrun():
            result = _launch(app, specialist, _claim(app, specialist, plan), progress)
        else:
            result = _train_here(app, specialist, plan)
        if reports_here():
            _finish(app, specialist, plan, result, echo or (lambda line: None))
    return result


def reports_here() -> bool:
    """Whether this process reports the run and runs the gate: one process, or rank 0 of a torchrun
    started by hand; a worker aeth launched leaves both to the process that launched it."""
    return not distributed.under_torchrun() or (os.environ.get("RANK", "0") == "0" and not distributed.launched_by_aeth())


def _train_here(app: Any, specialist: Any, plan: TrainPlan) -> TrainResult:
    """The ``train`` hook in this process (one rank of a job under torchrun: ranks agree on one run
    directory first, and rank 0 of a job aeth launched writes the result for its launcher)."""
    dist = distributed.setup() if distributed.under_torchrun() else None
    if dist is None:
        plan = _claim(app, specialist, plan)
    elif not distributed.launched_by_aeth():  # a torchrun started by hand: rank 0 names the run, every rank takes it
        plan = dist.broadcast(_claim(app, specialist, plan) if dist.main else None)
    result = app.hook.train(specialist=specialist, plan=plan, app=app)
    if result is None:
        raise PluginError("no plugin implements the train hook (aeth's default trainer was disabled?)")
    if dist is not None:
        distributed.teardown(dist)
        if dist.main and distributed.launched_by_aeth():
            _write_result(Path(plan.run_dir) / LAUNCH_RESULT, result)
    return result


def _finish(app: Any, specialist: Any, plan: TrainPlan, result: TrainResult, echo: Callable[[str], None]) -> None:
    """The run's summary, then the promotion gate for a new version (unless ``plan.gate`` is off)."""
    if result.interrupted:
        return
    for line in summary(specialist, plan, result):
        echo(line)
    if result.version is None or not plan.gate:
        return
    from aeth.training.promotion import gate

    echo(f"promotion gate: {specialist.name}'s eval suite ({plan.gate_limit} cases) on {result.version.version} and on "
         "what answers now")
    result.decision = gate(app, specialist, result.version, limit=plan.gate_limit, force=plan.force)
    echo(f"stored adapter {result.version.version}; {result.decision.reason}")


def summary(specialist: Any, plan: TrainPlan, result: TrainResult) -> list[str]:
    """How a finished run went, in a line (and one more for distillation)."""
    first = "-" if result.first_val_loss is None else f"{result.first_val_loss:.4f}"
    last = "-" if result.val_loss is None else f"{result.val_loss:.4f}"
    lines = [f"{specialist.name}: {result.steps} steps, train loss {result.train_loss:.4f}, validation loss {first} -> {last}"]
    if result.first_val_kd_loss is not None:
        lines.append(f"distillation ({plan.kd_loss} to {plan.teacher_name or plan.teacher}): validation KD loss "
                     f"{result.first_val_kd_loss:.4f} -> {result.val_kd_loss:.4f}")
    return lines


# ---- run directories --------------------------------------------------------------------------


def _claim(app: Any, specialist: Any, plan: TrainPlan) -> TrainPlan:
    """``plan`` with its run directory: a new one for a plan without, and its plan files written
    (plan.json before anything loads, so the run can be resumed from its first moment)."""
    if plan.resume:
        return plan
    if plan.run_dir is None:
        plan = replace(plan, run_dir=new_run_dir(app.config.home, specialist.name))
    Path(plan.run_dir).mkdir(parents=True, exist_ok=True)
    write_plan_yaml(plan, specialist.name)
    write_plan(plan)
    return plan


def new_run_dir(home: Path, specialist: str) -> Path:
    """A new, empty run directory ``<home>/runs/<specialist>/<UTC time>`` (``-2``, ``-3``... when
    several start in the same second)."""
    runs = Path(home) / "runs" / specialist
    runs.mkdir(parents=True, exist_ok=True)
    name = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    for n in range(1, 10_000):
        candidate = runs / (name if n == 1 else f"{name}-{n}")
        try:
            candidate.mkdir()
            return candidate
        except FileExistsError:
            continue
    raise AethError(f"cannot create a run directory under {runs}")


def find_run(home: Path, specialist: str, which: str = "latest") -> Path:
    """The run directory ``which`` names: ``latest`` (the newest run of ``specialist``), or the one
    whose name starts with ``which``; a finished run is refused."""
    runs = Path(home) / "runs" / specialist
    candidates = sorted(d for d in runs.glob("*") if d.is_dir() and (d / PLAN_JSON).is_file()) if runs.is_dir() else []
    chosen = candidates[-1:] if which == "latest" else [d for d in candidates if d.name.startswith(which)]
    if len(chosen) != 1:
        raise AethError(f"no run of {specialist!r} matches {which!r} to resume (runs: "
                        f"{', '.join(d.name for d in candidates) or 'none'})")
    if (chosen[0] / FINISHED).is_file():
        done = json.loads((chosen[0] / FINISHED).read_text())
        command = read_plan(chosen[0]).command
        raise AethError(f"run {chosen[0].name} of {specialist!r} already finished ({done['steps']} steps, adapter "
                        f"{done['version']}); start a new run with: aeth {command} {specialist}")
    return chosen[0]


def resume_plan(app: Any, specialist: Any, which: str = "latest", plan_class: type[TrainPlan] | None = None) -> TrainPlan:
    """The saved plan of the run ``which`` names (see :func:`find_run`), ready to continue it."""
    return replace(read_plan(find_run(app.config.home, specialist.name, which), plan_class), resume=True)


# ---- several processes -------------------------------------------------------------------------


def _launch(app: Any, specialist: Any, plan: TrainPlan, progress: bool) -> TrainResult:
    """Train under torchrun in ``plan.nproc`` workers; rank 0's result, read back here."""
    if specialist.name not in app.specialists():
        raise AethError(f"training in {plan.nproc} processes needs specialist {specialist.name!r} registered by an "
                        "installed plugin: each worker process finds it by name")
    cls = type(plan)
    module = __import__(cls.__module__, fromlist=["_"])
    if getattr(module, cls.__qualname__, None) is not cls:
        raise AethError(f"plan class {cls.__qualname__} cannot be imported by name from {cls.__module__}; the workers "
                        "need it: define it at the top level of a module")
    run_dir, config = Path(plan.run_dir), app.config
    (run_dir / LAUNCH_RESULT).unlink(missing_ok=True)
    write_text(run_dir / LAUNCH, json.dumps({
        "specialist": specialist.name, "plan_class": f"{cls.__module__}:{cls.__qualname__}", "plan": plan.to_json(),
        "config": {"values": {k: v for k, v, _ in config.items()}, "sources": dict(config.sources)},
        "progress": progress}, indent=2, default=str))
    os.chmod(run_dir / LAUNCH, 0o600)  # the app's whole configuration: the user's eyes only, and only while it runs
    try:
        code = distributed.launch(plan.nproc, str(run_dir / LAUNCH))
        if not (run_dir / LAUNCH_RESULT).is_file():
            raise AethError(f"the {plan.nproc} training processes stopped (exit {code}) before the run ended; their "
                            f"output above says why. Continue with: aeth {plan.command} {specialist.name} --resume")
        return _read_result(run_dir / LAUNCH_RESULT, app, specialist)
    finally:
        (run_dir / LAUNCH).unlink(missing_ok=True)
        (run_dir / LAUNCH_RESULT).unlink(missing_ok=True)


def _write_result(path: Path, result: TrainResult) -> None:
    """Rank 0's result for the launcher: the numbers, the run directory and the version's name."""
    data = {f.name: getattr(result, f.name) for f in fields(result) if f.name not in ("model", "decision")}
    data["version"] = result.version.version if result.version is not None else None
    data["run_dir"] = str(result.run_dir) if result.run_dir is not None else None
    write_text(path, json.dumps(data))


def _read_result(path: Path, app: Any, specialist: Any) -> TrainResult:
    """The :class:`TrainResult` rank 0 wrote, its version looked up in the app's adapter store."""
    data = json.loads(path.read_text())
    if data.get("version"):
        data["version"] = app.adapters.get(specialist.name, data["version"])
    if data.get("run_dir"):
        data["run_dir"] = Path(data["run_dir"])
    return TrainResult(**data)


def work(launch_file: str) -> None:
    """One torchrun worker of a launched run: the same app, specialist and plan as the launcher, then
    :func:`run` (which, here, trains only: the launcher reports and gates)."""
    import importlib

    from aeth.app import Aeth
    from aeth.config import Config

    launch = json.loads(Path(launch_file).read_text())
    app = Aeth(Config(launch["config"]["values"], launch["config"]["sources"]))
    module, _, name = launch["plan_class"].partition(":")
    plan = getattr(importlib.import_module(module), name).from_json(launch["plan"])
    run(app, app.specialist(launch["specialist"]), plan, progress=launch["progress"])
