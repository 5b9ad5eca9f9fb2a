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
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from aeth.training import checkpoint
from aeth.training.data import collate, encode_records


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
    run_dir: Path = field(default_factory=Path)
    resume: bool = False


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


def _loss(model: Any, examples: list, pad_id: int) -> Any:
    batch = collate(examples, pad_id)
    device = next(model.parameters()).device
    return model(**{k: v.to(device) for k, v in batch.items()}).loss


def _validation_loss(model: Any, examples: list, pad_id: int, batch_size: int) -> float | None:
    import torch

    if not examples:
        return None
    model.eval()
    total, tokens = 0.0, 0
    with torch.no_grad():
        for i in range(0, len(examples), batch_size):
            chunk = examples[i:i + batch_size]
            n = sum(e.trained_tokens for e in chunk)
            total += _loss(model, chunk, pad_id).item() * n
            tokens += n
    model.train()
    return total / max(1, tokens)


def train(specialist: Any, plan: TrainPlan, train_records: list[dict], val_records: list[dict], loaded: Any,
          store: Any = None, manifest: dict | None = None, progress: bool = True) -> TrainResult:
    """Train ``specialist``'s adapter on ``loaded`` (a freshly loaded, not shared, base model)."""
    import torch
    from peft import LoraConfig, get_peft_model, get_peft_model_state_dict

    torch.manual_seed(plan.seed)
    tokenizer = loaded.tokenizer
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    train_set = encode_records(tokenizer, train_records, specialist.system_prompt, plan.seq_len)
    val_set = encode_records(tokenizer, val_records, specialist.system_prompt, plan.seq_len)
    if not train_set:
        from aeth.errors import AethError

        raise AethError(f"no training record of {specialist.name!r} fits in --seq-len {plan.seq_len} with an answer to learn")
    model = loaded.model
    if loaded.quantization == "nf4":
        from peft import prepare_model_for_kbit_training

        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=True)
    spec = specialist.adapter
    present = {name.rsplit(".", 1)[-1] for name, _ in model.named_modules()}
    targets = [m for m in spec.target_modules if m in present] or list(spec.target_modules)
    model = get_peft_model(model, LoraConfig(r=spec.r, lora_alpha=spec.alpha, lora_dropout=spec.dropout,
                                             target_modules=targets, task_type="CAUSAL_LM"))
    model.train()
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=plan.lr, weight_decay=0.0)
    per_step = plan.batch_size * plan.grad_accum
    total = plan.max_steps or max(1, math.ceil(len(train_set) / per_step * plan.epochs))
    run_dir = Path(plan.run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    step, micro, first_val = 0, 0, None
    resumed = checkpoint.latest(run_dir) if plan.resume else None
    if resumed is not None:
        state = checkpoint.load(resumed, model, optimizer)
        step, micro, first_val = state["step"], state["micro"], state.get("first_val_loss")
    else:
        (run_dir / "plan.json").write_text(json.dumps({**asdict(plan), "run_dir": str(run_dir)}, indent=2))
        first_val = _validation_loss(model, val_set, pad_id, plan.batch_size)
    named_trainable = {n: p for n, p in model.named_parameters() if p.requires_grad}
    metrics = open(run_dir / "metrics.jsonl", "a", encoding="utf-8")
    batches = _batches(len(train_set), plan, micro)
    started, tokens_seen, loss_value, val_loss = time.perf_counter(), 0, float("nan"), first_val
    bar = _Bar(progress, total, step)
    micro_at_start, rng_at_start = micro, torch.get_rng_state()
    try:
        while step < total:
            micro_at_start, rng_at_start = micro, torch.get_rng_state()
            for group in optimizer.param_groups:
                group["lr"] = lr_at(step, total, plan)
            optimizer.zero_grad(set_to_none=True)
            loss_sum = 0.0
            for _ in range(plan.grad_accum):
                micro, indices = next(batches)
                examples = [train_set[i] for i in indices]
                loss = _loss(model, examples, pad_id) / plan.grad_accum
                loss.backward()
                loss_sum += loss.detach().item()
                tokens_seen += sum(len(e.input_ids) for e in examples)
            micro += 1
            torch.nn.utils.clip_grad_norm_(trainable, 1.0)
            optimizer.step()
            step += 1
            loss_value = loss_sum
            record = {"step": step, "loss": round(loss_value, 5), "lr": optimizer.param_groups[0]["lr"],
                      "tokens_per_s": round(tokens_seen / max(1e-9, time.perf_counter() - started), 1)}
            if step % plan.eval_every == 0 or step == total:
                val_loss = _validation_loss(model, val_set, pad_id, plan.batch_size)
                record["val_loss"] = val_loss
            metrics.write(json.dumps(record) + "\n")
            metrics.flush()
            bar.update(step, loss_value, record["tokens_per_s"])
            if step % plan.save_every == 0 and step < total:
                checkpoint.save(run_dir, step, named_trainable, optimizer,
                                {"micro": micro, "first_val_loss": first_val, "loss": loss_value}, plan.keep)
    except KeyboardInterrupt:  # the step in flight is dropped whole: resuming redoes it from its start
        checkpoint.save(run_dir, step, named_trainable, optimizer,
                        {"micro": micro_at_start, "first_val_loss": first_val, "loss": loss_value}, plan.keep, rng_at_start)
        return TrainResult(step, loss_value, val_loss, first_val, None, True, run_dir)
    finally:
        metrics.close()
        bar.close()
    version = None
    if store is not None:
        import tempfile

        with tempfile.TemporaryDirectory(dir=run_dir) as tmp:
            model.save_pretrained(tmp)
            adapter_state = get_peft_model_state_dict(model)
            version = store.add(specialist.name, Path(tmp), {
                **(manifest or {}), "hyperparameters": {k: v for k, v in asdict(plan).items() if k not in ("run_dir", "resume")},
                "metrics": {"steps": step, "train_loss": loss_value, "val_loss": val_loss, "first_val_loss": first_val,
                            "trainable_parameters": sum(v.numel() for v in adapter_state.values())},
                "run": str(run_dir)})
    return TrainResult(step, loss_value, val_loss, first_val, version, False, run_dir)


class _Bar:
    """A rich progress bar with loss and tokens/s (nothing when not asked or not a terminal)."""

    def __init__(self, show: bool, total: int, done: int):
        import sys

        self.bar = None
        if show and sys.stderr.isatty():
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self.bar = Progress(TextColumn("train"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[info]}"),
                                TextColumn("eta"), TimeRemainingColumn(), transient=True)
            self.bar.start()
            self.task = self.bar.add_task("train", total=total, completed=done, info="")

    def update(self, step: int, loss: float, tokens_per_s: float) -> None:
        if self.bar is not None:
            self.bar.update(self.task, completed=step, info=f"loss {loss:.3f}, {tokens_per_s:.0f} tok/s")

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()
