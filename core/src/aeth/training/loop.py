"""Fine-tune a specialist's LoRA adapter: setup -> loop -> save, resumable at every checkpoint.

One process, CPU or one GPU. The base model is loaded in the plan's quantization (NF4 through
bitsandbytes, or bf16/fp32), the LoRA from the specialist's :class:`~aeth.specialist.AdapterSpec`
is added with PEFT, and the records are encoded with the base model's chat template (loss on
answers only). Every ``save_every`` steps, and on Ctrl-C, a checkpoint is written atomically;
``resume`` continues from the newest complete one with weights, optimizer, RNG and data position
restored, so the loss curve is the one an uninterrupted run would have drawn. The run ends in a
new adapter version in :class:`~aeth.models.adapters.AdapterStore` (not yet active).
"""

from __future__ import annotations

import json
import math
import sys
import time
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from aeth.atomic import write_text
from aeth.training import checkpoint, deepspeed_engine, distributed
from aeth.training.data import IGNORE, collate, encode_records
from aeth.training.distributed import Dist
from aeth.training.report import Reporter

#: written into a run's directory when it ends with an adapter version
FINISHED = "finished.json"


@dataclass
class TrainPlan:
    """What to train and how (every field has a CLI flag in ``aeth train``)."""

    base_model: str
    quantization: str = "auto"
    epochs: float = 1.0
    max_steps: int | None = None
    lr: float = 2e-4
    batch_size: int = 4
    grad_accum: int = 1
    seq_len: int = 512
    warmup_fraction: float = 0.05
    eval_every: int = 50
    save_every: int = 25
    keep: int = 3
    seed: int = 0
    optimizer: str = "adamw"
    report: str = "none"
    nproc: int = 1
    fsdp: bool = False
    deepspeed: str | None = None
    run_dir: Path = field(default_factory=Path)
    resume: bool = False
    #: logit distillation (``aeth distill train``): the teacher model aeth loads, None for plain SFT
    teacher: str | None = None
    #: the registered teacher it came from, if any (for the manifest)
    teacher_name: str | None = None
    kd_loss: str = "fkl"
    kd_alpha: float = 0.5
    kd_temperature: float = 1.0
    jsd_beta: float = 0.5
    #: "auto" (cache when the run passes over its examples more than once), "on" or "off"
    kd_cache: str = "auto"
    kd_top_k: int = 64

    def kd_settings(self) -> Any:
        """The distillation settings of this plan (:class:`aeth.distill.kd.KDSettings`), or None."""
        from aeth.distill.kd import KDSettings

        return None if not self.teacher else KDSettings(self.kd_loss, self.kd_alpha, self.kd_temperature, self.jsd_beta)


@dataclass
class TrainResult:
    """How a run ended: its final step, losses, where its adapter went."""

    steps: int
    train_loss: float
    val_loss: float | None
    first_val_loss: float | None
    version: Any = None
    interrupted: bool = False
    run_dir: Path | None = None
    #: the trained PEFT model as the run left it (one process; under FSDP or DeepSpeed, None)
    model: Any = field(default=None, repr=False)
    #: with a teacher: mean divergence per validation token (the run's KD loss, exact logits)
    val_kd_loss: float | None = None
    first_val_kd_loss: float | None = None


def lr_at(step: int, total: int, plan: TrainPlan) -> float:
    """Linear warm-up, then cosine decay to 10 % of ``plan.lr`` (a pure function of the step, so
    resuming needs no scheduler state)."""
    warmup = max(1, int(total * plan.warmup_fraction))
    if step < warmup:
        return plan.lr * (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return plan.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress))))


def _batches(n: int, plan: TrainPlan, start: int):
    """(global micro-batch index, example indices), from micro-batch ``start`` on, epoch after epoch."""
    import torch

    per_epoch = max(1, n // plan.batch_size)
    index = start
    while True:
        epoch, within = divmod(index, per_epoch)
        order = torch.randperm(n, generator=torch.Generator().manual_seed(plan.seed + epoch)).tolist()
        yield index, order[within * plan.batch_size:(within + 1) * plan.batch_size]
        index += 1


def _learned(example: Any) -> int:
    """Tokens of ``example`` that carry a loss once labels are shifted (the model predicts t+1 from t)."""
    return sum(label != IGNORE for label in example.labels[1:])


def _loss(model: Any, examples: list, pad_id: int, items: int, sparse: bool = True, teacher: Any = None) -> Any:
    """Summed token loss of ``examples`` divided by ``items``, the trained tokens of the whole step on
    all ranks, so micro-batches and ranks add up to one mean over the step's global batch.

    With ``sparse`` (models whose forward takes ``logits_to_keep``), the vocabulary projection and
    the cross-entropy run only at positions whose next token is learned in some row of the batch:
    prompt tokens (system, user turns) cost no lm_head and no log-softmax over the vocabulary. The
    loss is the same sum as transformers' own (fp32 logits, labels shifted by one).

    With a ``teacher`` (:class:`~aeth.training.teacher_logits.LoopTeacher`), each learned token's
    loss is ``alpha * divergence(teacher, student) + (1 - alpha) * cross-entropy``, the teacher's
    distribution taken at exactly those positions of the same inputs.
    """
    import torch

    batch = collate(examples, pad_id)
    device = next(model.parameters()).device
    labels = batch.pop("labels").to(device)
    inputs = {k: v.to(device) for k, v in batch.items()}
    if not sparse and teacher is None:
        return model(**inputs, labels=labels, num_items_in_batch=max(1, items)).loss
    targets = labels[:, 1:]
    keep = (targets != IGNORE).any(dim=0).nonzero().flatten()
    if keep.numel() == 0:  # nothing learned here (a rank's padding share): a zero that keeps the graph
        keep = torch.zeros(1, dtype=torch.long, device=device)
    logits = model(**inputs, logits_to_keep=keep).logits if sparse else model(**inputs).logits[:, keep]
    chosen = targets[:, keep]
    loss = torch.nn.functional.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), chosen.reshape(-1),
                                             ignore_index=IGNORE, reduction="sum")
    if teacher is not None:
        from aeth.distill.kd import mixed_loss, token_divergence

        learned = chosen != IGNORE
        student = logits[learned][..., :teacher.vocab]
        kd = token_divergence(student, teacher.targets(examples, inputs, keep, learned), teacher.settings).sum()
        loss = mixed_loss(kd, loss, teacher.settings.alpha)
    return loss / max(1, items)


def takes_logits_to_keep(model: Any) -> bool:
    """Whether the causal LM inside ``model`` (PEFT, DDP, FSDP or DeepSpeed wrapped) accepts ``logits_to_keep``."""
    import inspect

    inner = distributed.unwrap(model)
    inner = getattr(getattr(inner, "base_model", inner), "model", inner)
    return "logits_to_keep" in inspect.signature(inner.forward).parameters


def _validation_pass(model: Any, examples: list, batch_size: int, dist: Dist, measure: Any) -> float | None:
    """Sum of ``measure(chunk) -> (total, tokens)`` over ``examples`` divided by its tokens, each rank
    taking its share of every chunk (a rank whose share is empty still runs a forward with weight 0:
    under FSDP every rank must take part)."""
    import torch

    if not examples:
        return None
    model.eval()
    total, tokens = 0.0, 0.0
    with torch.no_grad():
        for i in range(0, len(examples), batch_size):
            chunk = examples[i:i + batch_size]
            mine, weight = dist.shard(chunk), 1.0
            if not mine:
                mine, weight = chunk[:1], 0.0
            part, count = measure(mine)
            total += part * weight
            tokens += count * weight
    model.train()
    total, tokens = dist.sum(total, tokens)
    return total / max(1.0, tokens)


def _validation_loss(model: Any, examples: list, pad_id: int, batch_size: int, dist: Dist,
                     sparse: bool = True) -> float | None:
    """Mean token loss over ``examples`` (see :func:`_validation_pass`)."""
    return _validation_pass(model, examples, batch_size, dist, lambda mine: (
        _loss(model, mine, pad_id, 1, sparse).item(), sum(_learned(e) for e in mine)))


def _validation_kd(model: Any, teacher: Any, examples: list, pad_id: int, batch_size: int, dist: Dist,
                   sparse: bool = True) -> float | None:
    """Mean divergence per learned validation token between ``teacher`` and ``model`` (full teacher
    logits, never the cache: this is what the run is trying to bring down)."""
    from aeth.distill.kd import token_divergence

    if teacher is None:
        return None

    def measure(mine: list) -> tuple[float, int]:
        batch = collate(mine, pad_id)
        device = next(model.parameters()).device
        targets = batch.pop("labels")[:, 1:].to(device)
        inputs = {k: v.to(device) for k, v in batch.items()}
        keep = (targets != IGNORE).any(dim=0).nonzero().flatten()
        logits = model(**inputs, logits_to_keep=keep).logits if sparse else model(**inputs).logits[:, keep]
        learned = targets[:, keep] != IGNORE
        kd = token_divergence(logits[learned][..., :teacher.vocab], teacher.logits(inputs, keep)[learned], teacher.settings)
        return kd.sum().item(), int(learned.sum())

    return _validation_pass(model, examples, batch_size, dist, measure)


def prepare_kbit(model: Any) -> Any:
    """Ready a 4-bit base for QLoRA: base frozen, gradient checkpointing on, inputs requiring grad.

    peft's ``prepare_model_for_kbit_training`` also casts every weight that is not 4-bit to fp32;
    the tied embedding / lm_head alone would raise SmolLM2-135M's weights from 0.21x to 0.31x of
    fp32 (bench/bench_nf4.py), so aeth leaves them in the compute dtype.
    """
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    options = {"use_reentrant": False}
    if hasattr(model, "activation_checkpointing_enable"):  # transformers >= 5.x's name for it
        model.activation_checkpointing_enable(activation_checkpointing_kwargs=options)
    else:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs=options)
    model.enable_input_require_grads()
    return model


def make_optimizer(name: str, params: list, lr: float) -> Any:
    """AdamW (torch), or bitsandbytes' 8-bit / paged AdamW: 8-bit state takes a quarter of the memory
    of fp32 state, paged state spills to CPU memory instead of failing when the GPU runs out."""
    import torch

    if name == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
    import bitsandbytes as bnb

    kinds = {"adamw8bit": bnb.optim.AdamW8bit, "paged_adamw8bit": bnb.optim.PagedAdamW8bit,
             "paged_adamw": bnb.optim.PagedAdamW32bit}
    return kinds[name](params, lr=lr, weight_decay=0.0)


def train(specialist: Any, plan: TrainPlan, train_records: list[dict], val_records: list[dict], loaded: Any,
          store: Any = None, manifest: dict | None = None, progress: bool = True, dist: Dist | None = None,
          teacher: Any = None) -> TrainResult:
    """Train ``specialist``'s adapter on ``loaded`` (a freshly loaded, not shared, base model).

    ``dist`` places this process in a multi-process job (:func:`aeth.training.distributed.setup`);
    every rank calls this with the same arguments, and rank 0 alone writes files. ``teacher`` (a
    loaded model, with ``plan.teacher`` set) turns on logit distillation with ``plan``'s settings.
    """
    import torch
    from peft import LoraConfig, get_peft_model

    from aeth.errors import AethError

    dist = dist or Dist()
    if plan.batch_size % dist.world:
        raise AethError(f"--batch-size {plan.batch_size} does not split evenly over {dist.world} processes; "
                        f"use a multiple of {dist.world} (each process trains on an equal share of every batch)")
    torch.manual_seed(plan.seed)
    tokenizer = loaded.tokenizer
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    train_set = encode_records(tokenizer, train_records, specialist.system_prompt, plan.seq_len)
    val_set = encode_records(tokenizer, val_records, specialist.system_prompt, plan.seq_len)
    if not train_set:
        raise AethError(f"no training record of {specialist.name!r} fits in --seq-len {plan.seq_len} with an answer to learn")
    model = loaded.model
    if loaded.quantization == "nf4":
        prepare_kbit(model)
    spec = specialist.adapter
    present = {name.rsplit(".", 1)[-1] for name, _ in model.named_modules()}
    targets = [m for m in spec.target_modules if m in present] or list(spec.target_modules)
    model = get_peft_model(model, LoraConfig(r=spec.r, lora_alpha=spec.alpha, lora_dropout=spec.dropout,
                                             target_modules=targets, task_type="CAUSAL_LM"))
    if plan.deepspeed:
        trainable = [p for p in model.parameters() if p.requires_grad]
        config = deepspeed_engine.config(plan.deepspeed, plan.batch_size, plan.grad_accum, dist.world, plan.lr)
        model, optimizer = deepspeed_engine.engine(model, trainable, config,
                                                   lambda params: make_optimizer(plan.optimizer, params, plan.lr))
    else:
        model = distributed.wrap(model, dist, plan.fsdp)
        trainable = [p for p in model.parameters() if p.requires_grad]
        optimizer = make_optimizer(plan.optimizer, trainable, plan.lr)
    engine = distributed.is_deepspeed(model)  # it accumulates, clips and steps itself
    sparse = takes_logits_to_keep(model)
    ddp = type(model).__name__ == "DistributedDataParallel"
    model.train()
    per_step = plan.batch_size * plan.grad_accum
    total = plan.max_steps or max(1, math.ceil(len(train_set) / per_step * plan.epochs))
    run_dir = Path(plan.run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    kd = _loop_teacher(plan, teacher, loaded, pad_id, run_dir, passes=total * per_step / len(train_set))
    step, micro, first_val, first_kd = 0, 0, None, None
    resumed = checkpoint.latest(run_dir) if plan.resume else None
    if resumed is not None:
        state, weights, optim = checkpoint.read(resumed, dist.rank)
        checkpoint.check_fits(resumed, weights, {n for n, _ in distributed.trainable_named(model)})
        distributed.load_full_state(model, optimizer, weights, optim, plan.fsdp)
        step, micro, first_val = state["step"], state["micro"], state.get("first_val_loss")
        first_kd = state.get("first_val_kd_loss")
    else:
        if dist.main:
            write_plan(plan)
        first_val = _validation_loss(model, val_set, pad_id, plan.batch_size, dist, sparse)
        first_kd = _validation_kd(model, kd, val_set, pad_id, plan.batch_size, dist, sparse)

    def save(state: dict, rng: Any = None) -> None:  # a collective under FSDP: every rank calls it
        weights, optim = distributed.full_state(model, optimizer, plan.fsdp)
        ranks = [rng.tolist()] if rng is not None else dist.rng_states()
        if dist.main:
            checkpoint.save(run_dir, step, weights, optim, state, plan.keep, ranks)
        dist.barrier()

    if dist.main:
        _truncate_metrics(run_dir / "metrics.jsonl", step)  # steps after the checkpoint are redone, not repeated
        if plan.resume:
            where = resumed.name if resumed is not None else "no checkpoint yet"
            print(f"resuming from step {step} ({where}); {max(0, total - step)} steps to go", file=sys.stderr, flush=True)
    metrics = open(run_dir / "metrics.jsonl", "a", encoding="utf-8") if dist.main else None
    reporter = Reporter(plan.report, run_dir, specialist.name) if dist.main else None
    batches = _batches(len(train_set), plan, micro)
    started, tokens_seen, loss_value, val_loss, val_kd = time.perf_counter(), 0, float("nan"), first_val, first_kd
    bar = _Bar(progress and dist.main, total, step)
    micro_at_start, rng_at_start, pending = micro, torch.get_rng_state(), None

    def log(record: dict) -> None:
        if dist.main:
            metrics.write(json.dumps(record) + "\n")
            metrics.flush()
            reporter.log(record)

    dist.watch_signals()
    try:
        while step < total:  # micro_at_start / rng_at_start: where this step starts (set before it and after each)
            if dist.stop_requested():  # every rank stops at the same step boundary
                raise KeyboardInterrupt
            for group in optimizer.param_groups:
                group["lr"] = lr_at(step, total, plan)
            if not engine:
                optimizer.zero_grad(set_to_none=True)
            step_batches = []
            for _ in range(plan.grad_accum):
                micro, indices = next(batches)
                step_batches.append([train_set[i] for i in indices])
            items = sum(_learned(e) for examples in step_batches for e in examples)
            loss_sum = 0.0
            for k, examples in enumerate(step_batches):
                last = k == len(step_batches) - 1
                with model.no_sync() if ddp and not last else nullcontext():  # DDP: all-reduce once a step
                    # DDP, FSDP and DeepSpeed average gradients over ranks; each rank's share of the sum is wanted
                    args = (model, dist.shard(examples), pad_id, items, sparse) + ((kd,) if kd is not None else ())
                    loss = _loss(*args) * dist.world
                    if engine:
                        model.backward(loss, scale_wrt_gas=False)
                        model.step()  # an optimizer step only at the accumulation boundary
                    else:
                        loss.backward()
                loss_sum += loss.detach().item() / dist.world
                tokens_seen += sum(len(e.input_ids) for e in examples)
            micro += 1
            if not engine:
                torch.nn.utils.clip_grad_norm_(trainable, 1.0)
                optimizer.step()
            step += 1
            micro_at_start, rng_at_start = micro, torch.get_rng_state()  # done: an interrupt from here on keeps it
            loss_value = dist.sum(loss_sum)[0]
            record = pending = {"step": step, "loss": round(loss_value, 5), "lr": optimizer.param_groups[0]["lr"],
                                "tokens_per_s": round(tokens_seen / max(1e-9, time.perf_counter() - started), 1)}
            if step % plan.eval_every == 0 or step == total:
                val_loss = _validation_loss(model, val_set, pad_id, plan.batch_size, dist, sparse)
                record["val_loss"] = val_loss
                if kd is not None:
                    val_kd = record["val_kd_loss"] = _validation_kd(model, kd, val_set, pad_id, plan.batch_size,
                                                                    dist, sparse)
            log(record)
            pending = None
            bar.update(step, loss_value, record["tokens_per_s"])
            if step % plan.save_every == 0 and step < total:
                save({"micro": micro, "first_val_loss": first_val, "first_val_kd_loss": first_kd, "loss": loss_value})
    except KeyboardInterrupt:  # the step in flight is dropped whole: resuming redoes it from its start
        if pending is not None:  # interrupted in the validation after a finished step: that step counts
            pending.pop("val_loss", None)
            pending.pop("val_kd_loss", None)
            log(pending)
        save({"micro": micro_at_start, "first_val_loss": first_val, "first_val_kd_loss": first_kd, "loss": loss_value},
             None if dist.active else rng_at_start)
        return TrainResult(step, loss_value, val_loss, first_val, None, True, run_dir, val_kd_loss=val_kd,
                           first_val_kd_loss=first_kd)
    finally:
        for resource in (metrics, reporter):
            if resource is not None:
                resource.close()
        bar.close()
    weights, _ = distributed.full_state(model, optimizer, plan.fsdp)
    # DDP keeps a full copy on every rank: they must have ended identical (FSDP holds one copy, sharded)
    rank_diff = None if plan.fsdp or not dist.active else distributed.max_difference_from_rank0(weights, dist)
    version = None
    if store is not None and dist.main:
        import tempfile

        with tempfile.TemporaryDirectory(dir=run_dir) as tmp:
            distributed.unwrap(model).save_pretrained(tmp, state_dict=weights)
            version = store.add(specialist.name, Path(tmp), {
                **(manifest or {}), "hyperparameters": {k: v for k, v in asdict(plan).items() if k not in ("run_dir", "resume")},
                "metrics": {"steps": step, "train_loss": loss_value, "val_loss": val_loss, "first_val_loss": first_val,
                            "trainable_parameters": sum(v.numel() for v in weights.values()),
                            "processes": dist.world, "rank_weight_max_difference": rank_diff,
                            **({"val_kd_loss": val_kd, "first_val_kd_loss": first_kd} if kd else {})},
                **({"distillation": {"teacher": plan.teacher, "teacher_name": plan.teacher_name, **kd.describe()}}
                   if kd else {}),
                "run": str(run_dir)})
    if dist.main:  # --resume refuses a finished run instead of training it again
        write_text(run_dir / FINISHED, json.dumps({"steps": step, "version": version.version if version else None}))
    dist.barrier()
    trained = None if plan.fsdp or engine else distributed.unwrap(model)
    return TrainResult(step, loss_value, val_loss, first_val, version, False, run_dir, trained, val_kd, first_kd)


def _loop_teacher(plan: TrainPlan, teacher: Any, loaded: Any, pad_id: int, run_dir: Path, passes: float) -> Any:
    """The :class:`~aeth.training.teacher_logits.LoopTeacher` for ``plan`` (None without a teacher).

    The teacher's logits are cached (top-k, under the run directory) when ``plan.kd_cache`` is "on",
    or "auto" and the run passes over its examples more than once: the first pass must run the
    teacher anyway, and every later one then reads ~0.5 KB per learned token (k = 64) instead of
    running a forward of a model at least the student's size (docs/distillation.md has the figures).
    """
    from aeth.errors import AethError

    settings = plan.kd_settings()
    if settings is None and teacher is None:
        return None
    if settings is None or teacher is None:
        raise AethError("logit distillation needs both plan.teacher and a loaded teacher model")
    from aeth.distill.kd import check_output_sizes, check_vocabularies
    from aeth.training.teacher_logits import CACHE_DIR, LoopTeacher, TeacherCache

    check_vocabularies(loaded.tokenizer, teacher.tokenizer, loaded.name, plan.teacher)
    vocab = check_output_sizes(loaded.model, teacher.model, loaded.tokenizer, loaded.name, plan.teacher)
    if plan.kd_cache not in ("auto", "on", "off"):
        raise AethError(f"kd_cache {plan.kd_cache!r}: choose auto, on or off")
    cached = plan.kd_cache == "on" or (plan.kd_cache == "auto" and passes > 1.0)
    cache = TeacherCache(run_dir / CACHE_DIR, plan.kd_top_k, plan.kd_temperature, plan.teacher) if cached else None
    teacher.model.eval()
    for parameter in teacher.model.parameters():
        parameter.requires_grad_(False)
    return LoopTeacher(teacher.model, settings, vocab, takes_logits_to_keep(teacher.model), pad_id, cache)


def write_plan(plan: TrainPlan) -> None:
    """``<run>/plan.json``: what ``--resume`` reads back (written atomically before anything else)."""
    write_text(Path(plan.run_dir) / "plan.json", json.dumps({**asdict(plan), "run_dir": str(plan.run_dir)}, indent=2))


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


class _Bar:
    """Progress: a rich bar with loss, tokens/s and ETA on a terminal; elsewhere (CI, nohup, a
    log file) a plain line every ~10 % of the steps; nothing when not asked."""

    def __init__(self, show: bool, total: int, done: int):
        import sys

        self.bar, self.show, self.total, self.started_at = None, show, total, done
        self.started, self.every = time.monotonic(), max(1, total // 10)
        if show and sys.stderr.isatty():
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self.bar = Progress(TextColumn("train"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[info]}"),
                                TextColumn("eta"), TimeRemainingColumn(), transient=True)
            self.bar.start()
            self.task = self.bar.add_task("train", total=total, completed=done, info="")

    def update(self, step: int, loss: float, tokens_per_s: float) -> None:
        if self.bar is not None:
            self.bar.update(self.task, completed=step, info=f"loss {loss:.3f}, {tokens_per_s:.0f} tok/s")
        elif self.show and (step % self.every == 0 or step == self.total):
            elapsed = time.monotonic() - self.started
            eta = elapsed / max(1, step - self.started_at) * (self.total - step)
            print(f"train: step {step}/{self.total}, loss {loss:.4f}, {tokens_per_s:.0f} tok/s, eta {eta:.0f} s",
                  file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()
