"""Fine-tune a specialist's LoRA adapter: setup -> loop -> save, resumable at every checkpoint.

The base model comes loaded in the plan's quantization (NF4 through bitsandbytes, or bf16/fp32);
the LoRA from the specialist's :class:`~aeth.specialist.AdapterSpec` is added with PEFT
(:mod:`aeth.training.lora`), and the records are encoded with the base model's chat template (loss
on answers only). How processes share the work is the engine's business
(:mod:`aeth.training.engines`), what is minimised the objective's (:mod:`aeth.training.objective`,
where a teacher joins for logit distillation, or :mod:`aeth.learning.objectives` for DPO and KTO,
whose reference pass runs once at setup). With ``plan.init_adapter`` the LoRA starts from that
adapter version's weights instead of a fresh one. Every ``save_every`` steps, and on Ctrl-C, a
checkpoint is written atomically; ``resume`` continues from the newest complete one with weights,
optimizer, RNG and data position restored, so the loss curve is the one an uninterrupted run would
have drawn. The run ends in a new adapter version in
:class:`~aeth.models.adapters.AdapterStore` (not yet active).

:func:`train` is the loop itself, for a model already loaded; :func:`aeth.training.run` is the
whole run (processes, the ``train`` hook, the promotion gate).
"""

from __future__ import annotations

import json
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aeth.atomic import write_text
from aeth.progress import Progress
from aeth.training import checkpoint, engines, objective
from aeth.training.distributed import Dist, unwrap
from aeth.training.lora import make_optimizer, prepare_kbit, start_lora
from aeth.training.plan import FINISHED, TrainPlan, TrainResult, write_plan
from aeth.training.report import Reporter

__all__ = ["FINISHED", "TrainPlan", "TrainResult", "lr_at", "prepare_kbit", "train", "write_plan"]


def lr_at(step: int, total: int, plan: TrainPlan) -> float:
    """Linear warm-up, then cosine decay to 10 % of ``plan.lr`` (a pure function of the step, so
    resuming needs no scheduler state)."""
    warmup = max(1, int(total * plan.warmup_fraction))
    if step < warmup:
        return plan.lr * (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return plan.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress))))


def _batches(n: int, plan: TrainPlan, start: int, groups: list[list[int]] | None = None):
    """(global micro-batch index, example indices), from micro-batch ``start`` on, epoch after epoch:
    ``plan.batch_size`` examples of a shuffled order, or with ``groups``, one group (shuffled groups,
    each kept whole: KTO's chunks)."""
    import torch

    per_epoch = len(groups) if groups else max(1, n // plan.batch_size)
    index = start
    while True:
        epoch, within = divmod(index, per_epoch)
        order = torch.randperm(len(groups) if groups else n, generator=torch.Generator().manual_seed(plan.seed + epoch))
        if groups:
            yield index, groups[order[within].item()]
        else:
            yield index, order.tolist()[within * plan.batch_size:(within + 1) * plan.batch_size]
        index += 1


@dataclass
class _Run:
    """What setup made: the data, the engine holding model and optimizer, the objective, the length."""

    specialist: Any
    plan: TrainPlan
    dist: Dist
    train_set: list
    val_set: list
    engine: engines.Engine
    objective: Any  # objective.Objective (SFT), or aeth.learning.objectives.DPOObjective / KTOObjective
    total: int
    run_dir: Path


@dataclass
class _State:
    """Where the run is: steps done, the next micro-batch, the last loss, first and latest validation."""

    step: int = 0
    micro: int = 0
    loss: float = float("nan")
    first: dict = field(default_factory=dict)
    last: dict = field(default_factory=dict)

    def result(self, run: _Run, **more: Any) -> TrainResult:
        return TrainResult(steps=self.step, train_loss=self.loss, val_loss=self.last.get("val_loss"),
                           first_val_loss=self.first.get("val_loss"), run_dir=run.run_dir,
                           val_kd_loss=self.last.get("val_kd_loss"), first_val_kd_loss=self.first.get("val_kd_loss"),
                           **more)


def train(specialist: Any, plan: TrainPlan, train_records: list[dict], val_records: list[dict], loaded: Any,
          store: Any = None, manifest: dict | None = None, progress: bool = True, dist: Dist | None = None,
          teacher: Any = None, home: Path | None = None) -> TrainResult:
    """Train ``specialist``'s adapter on ``loaded`` (a freshly loaded, not shared, base model).

    ``dist`` places this process in a multi-process job (:func:`aeth.training.distributed.setup`);
    every rank calls this with the same arguments, and rank 0 alone writes files. ``teacher`` (a
    loaded model, with ``plan.teacher`` set) turns on logit distillation with ``plan``'s settings.
    ``store`` (an :class:`~aeth.models.adapters.AdapterStore`) receives the adapter version, with
    ``manifest`` in its manifest; ``home`` is ``$AETH_HOME`` (MLflow's default store goes there).
    """
    run = _setup(specialist, plan, train_records, val_records, loaded, dist or Dist(), teacher, progress)
    state = _start(run)
    if _steps(run, state, progress, home):
        return state.result(run, interrupted=True)
    version = _store_version(run, state, store, manifest)
    return state.result(run, version=version, model=run.engine.trained_model())


def _setup(specialist: Any, plan: TrainPlan, train_records: list[dict], val_records: list[dict], loaded: Any,
           dist: Dist, teacher: Any, progress: bool = False) -> _Run:
    """Seed, encode the data, add the LoRA (or load the one to start from), build the objective and
    let it prepare (DPO/KTO: the reference pass), hand the model to its engine."""
    import torch

    from aeth.errors import AethError

    if plan.run_dir is None:
        raise AethError("plan.run_dir is not set: give the run a directory (aeth.training.run makes one)")
    if plan.batch_size % dist.world:
        raise AethError(f"--batch-size {plan.batch_size} does not split evenly over {dist.world} processes; "
                        f"use a multiple of {dist.world} (each process trains on an equal share of every batch)")
    torch.manual_seed(plan.seed)
    tokenizer = loaded.tokenizer
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    train_set = objective.encode(plan, tokenizer, train_records, specialist.system_prompt)
    val_set = objective.encode(plan, tokenizer, val_records, specialist.system_prompt)
    if not train_set:
        raise AethError(f"no training record of {specialist.name!r} fits in --seq-len {plan.seq_len} with an answer to learn")
    engine = engines.create(plan, dist)
    model = start_lora(loaded, specialist.adapter, plan.init_adapter)
    per_step = plan.batch_size * plan.grad_accum
    total = plan.max_steps or max(1, math.ceil(len(train_set) / per_step * plan.epochs))
    run_dir = Path(plan.run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    goal = objective.objective_for(plan, teacher, loaded, model, pad_id, run_dir,
                                   passes=total * per_step / len(train_set), dist=dist)
    # before the engine takes the model: every rank scores with the whole starting model, no collective
    train_set, val_set = goal.prepare(model, train_set, val_set, run_dir, progress)
    engine.wrap(model, lambda params: make_optimizer(plan.optimizer, params, plan.lr))
    engine.model.train()
    return _Run(specialist, plan, dist, train_set, val_set, engine, goal, total, run_dir)


def _start(run: _Run) -> _State:
    """Resume from the newest checkpoint (``plan.resume``), or start: plan.json, first validation."""
    plan, dist, state = run.plan, run.dist, _State()
    resumed = checkpoint.latest(run.run_dir) if plan.resume else None
    if resumed is not None:
        saved, weights, optim = checkpoint.read(resumed, dist.rank)
        checkpoint.check_fits(resumed, weights, run.engine.trainable_names())
        run.engine.load_full_state(weights, optim)
        state.step, state.micro = saved["step"], saved["micro"]
        state.first = {name: saved.get(f"first_{name}") for name in run.objective.metrics}
    else:
        if dist.main:
            write_plan(plan)
        state.first = run.objective.validate(run.engine.model, run.val_set, plan.batch_size, dist)
    state.last = dict(state.first)
    if dist.main:
        _truncate_metrics(run.run_dir / "metrics.jsonl", state.step)  # steps after the checkpoint are redone, not repeated
        if plan.resume:
            where = resumed.name if resumed is not None else "no checkpoint yet"
            print(f"resuming from step {state.step} ({where}); {max(0, run.total - state.step)} steps to go",
                  file=sys.stderr, flush=True)
    return state


def _steps(run: _Run, state: _State, progress: bool, home: Path | None) -> bool:
    """Train from ``state`` to the last step; True when interrupted (Ctrl-C, or any rank asked to
    stop), after a checkpoint of where the step in flight started (it is dropped whole)."""
    import torch

    plan, dist, engine, total = run.plan, run.dist, run.engine, run.total
    batches = _batches(len(run.train_set), plan, state.micro, run.objective.groups(run.train_set))
    started, tokens_seen, pending = time.perf_counter(), 0, None
    at_start = state.micro, torch.get_rng_state()  # where the step in flight starts: what an interrupt saves
    dist.watch_signals()
    with _Metrics(run, home) as log, Progress("train", total, done=state.step, unit="steps",
                                              show=progress and dist.main) as bar:
        try:
            while state.step < total:
                if dist.stop_requested():  # every rank stops at the same step boundary
                    raise KeyboardInterrupt
                engine.set_lr(lr_at(state.step, total, plan))
                engine.zero_grad()
                step_batches = []
                for _ in range(plan.grad_accum):
                    index, indices = next(batches)
                    step_batches.append([run.train_set[i] for i in indices])
                items = run.objective.items([e for examples in step_batches for e in examples])
                loss_sum = 0.0
                for k, examples in enumerate(step_batches):
                    with engine.accumulating(last=k == len(step_batches) - 1):
                        # DDP, FSDP and DeepSpeed average gradients over ranks; each rank's share of the sum is wanted
                        loss = run.objective.loss(engine.model, dist.shard(examples), items) * dist.world
                        engine.backward(loss)
                    loss_sum += loss.detach().item() / dist.world
                    tokens_seen += run.objective.tokens(examples)
                engine.step()
                state.step, state.micro = state.step + 1, index + 1
                at_start = state.micro, torch.get_rng_state()  # done: an interrupt from here on keeps it
                state.loss = dist.sum(loss_sum)[0]
                record = pending = {"step": state.step, "loss": round(state.loss, 5), "lr": engine.lr,
                                    "tokens_per_s": round(tokens_seen / max(1e-9, time.perf_counter() - started), 1),
                                    **run.objective.step_metrics()}
                if state.step % plan.eval_every == 0 or state.step == total:
                    state.last = run.objective.validate(engine.model, run.val_set, plan.batch_size, dist)
                    record.update(state.last)
                log(record)
                pending = None
                bar.update(state.step, f"loss {state.loss:.3f}, {record['tokens_per_s']:.0f} tok/s")
                if state.step % plan.save_every == 0 and state.step < total:
                    _save(run, state, state.micro)
        except KeyboardInterrupt:
            if pending is not None:  # interrupted in the validation after a finished step: that step counts
                log(pending)
            _save(run, state, at_start[0], None if dist.active else at_start[1])
            return True
    return False


def _save(run: _Run, state: _State, micro: int, rng: Any = None) -> None:
    """Checkpoint the steps done, the data position ``micro`` and the RNG (``rng``: this process's
    state to record; default every rank's current one). A collective under FSDP: every rank calls it."""
    weights, optim = run.engine.full_state()
    ranks = [rng.tolist()] if rng is not None else run.dist.rng_states()
    if run.dist.main:
        saved = {"micro": micro, **{f"first_{k}": v for k, v in state.first.items()}, "loss": state.loss}
        checkpoint.save(run.run_dir, state.step, weights, optim, saved, run.plan.keep, ranks)
    run.dist.barrier()


def _store_version(run: _Run, state: _State, store: Any, manifest: dict | None) -> Any:
    """The trained adapter as a new version in ``store`` (rank 0; None without a store), and the
    run marked finished (``--resume`` then refuses it instead of training it again)."""
    import tempfile

    weights, _ = run.engine.full_state()
    rank_diff = run.engine.rank_difference(weights)  # DDP keeps a full copy per rank: they must agree
    version = None
    if store is not None and run.dist.main:
        settings = {k: v for k, v in run.plan.to_json().items() if k not in ("run_dir", "resume")}
        metrics = {"steps": state.step, "train_loss": state.loss, **state.last,
                   **{f"first_{k}": v for k, v in state.first.items()},
                   "trainable_parameters": sum(v.numel() for v in weights.values()),
                   "processes": run.dist.world, "rank_weight_max_difference": rank_diff}
        with tempfile.TemporaryDirectory(dir=run.run_dir) as tmp:
            unwrap(run.engine.model).save_pretrained(tmp, state_dict=weights)
            version = store.add(run.specialist.name, Path(tmp), {
                **(manifest or {}), "hyperparameters": settings, "metrics": metrics,
                **run.objective.manifest(run.plan), "run": str(run.run_dir)})
    if run.dist.main:
        write_text(run.run_dir / FINISHED, json.dumps({"steps": state.step, "version": version.version if version else None}))
    run.dist.barrier()
    return version


class _Metrics:
    """``metrics.jsonl`` and the ``--report`` tracker (rank 0 only): ``log(record)`` writes both."""

    def __init__(self, run: _Run, home: Path | None):
        self.main = run.dist.main
        self.reporter = Reporter(run.plan.report, run.run_dir, run.specialist.name, home) if self.main else None
        self.file = open(run.run_dir / "metrics.jsonl", "a", encoding="utf-8") if self.main else None

    def __enter__(self) -> Any:
        return self.log

    def __exit__(self, *exc: object) -> None:
        for resource in (self.file, self.reporter):
            if resource is not None:
                resource.close()

    def log(self, record: dict) -> None:
        if self.main:
            self.file.write(json.dumps(record) + "\n")
            self.file.flush()
            self.reporter.log(record)


def _truncate_metrics(path: Path, step: int) -> None:
    """Keep the records of steps up to ``step`` (a resumed run redoes the later ones)."""
    if not path.is_file():
        return
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    kept = []
    for line in lines:
        try:
            if json.loads(line)["step"] <= step:
                kept.append(line)
        except (ValueError, KeyError, TypeError):  # a line torn by a kill mid-write
            continue
    if len(kept) != len(lines):
        write_text(path, "".join(kept))
