"""Training throughput: aeth's LoRA loop vs HF ``Trainer`` + PEFT, and as a fraction of measured FLOP/s.

aeth fine-tunes a specialist with its own loop (``aeth.training.loop.train``); the peer is what a
plain Hugging Face user writes: ``peft.get_peft_model`` + ``transformers.Trainer``. Both run in
one process on the offline default model (SmolLM2-135M-Instruct) with the coding specialist's
LoRA (its ``AdapterSpec``: r=16 on the 7 projections), the coding training records encoded by
aeth (``encode_records``, batches made by aeth's ``collate`` on both sides, in the order aeth draws
them, so only the loop differs), the same dtype, seed, batch size, sequence length and number of
steps; AdamW (``adamw_torch``, no weight decay), gradient clipping at 1.0, warm-up then cosine to
10 % of the lr, no evaluation and no saving on either side (aeth gets no validation records, so it
computes no validation loss). Rounds alternate which side goes first; each round loads the base
model afresh for each side.

Timing: a forward pre-hook on the base model marks the start of every training micro-batch on
both sides; a step's time is from one step's forward to the next (so it includes collation, the
backward, clipping, the optimizer and the loop's own bookkeeping). The first step (allocation
warm-up) and the last (no next forward) are not timed. Tokens are counted as aeth's metrics count
them (tokens of the examples, padding excluded); the hook also checks the two sides saw identical
batches.

FLOP fraction: model FLOPs per trained token = 4*N_base + 6*N_lora + 12*L*d*s, where N_base is the
weights of every Linear of the base (lm_head included; the tied embedding lookup costs nothing),
counted twice for the forward (2*N) and twice for the backward's activation gradients (2*N); the
frozen base weights get no weight gradients, so nothing is counted for them; N_lora is the LoRA
weights (forward, activation and weight gradients: 6*N_lora); 12*L*d*s is attention's QK^T and AV
(4*L*d*s forward, twice that backward) over the padded width s. Achieved FLOP/s (FLOPs per token x
tokens/s) is divided by the FLOP/s of a matmul of the model's own shapes (``F.linear`` of
[batch*seq, hidden] by [intermediate, hidden] and back) measured in the same dtype, on the same
pinned threads, before every round. These are *model* FLOPs (full logits, as the peer computes
them): aeth computes the lm_head and cross-entropy only where a token is learned, so it does fewer
and its fraction counts that saving. Goals: aeth >= 1.2x the peer's tokens/s, and a FLOP fraction
>= 0.6.

    python bench/bench_train.py [--rounds 3] [--steps 6] [--batch-size 2] [--seq-len 256] [--threads 1] [--dtype auto]
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

GOAL_RATIO, GOAL_FRACTION = 1.2, 0.6
MODEL = "smollm2-135m-instruct"


@dataclass
class Run:
    """What one side did in one round: when each training forward started, its batch, its losses."""

    starts: list[float] = field(default_factory=list)
    tokens: list[int] = field(default_factory=list)
    widths: list[int] = field(default_factory=list)
    batches: list[int] = field(default_factory=list)  # a fingerprint of each batch's token ids
    threads: set[int] = field(default_factory=set)
    losses: list[float] = field(default_factory=list)

    def tokens_per_s(self) -> float:
        """Tokens of the timed steps (all but the first and last) over the time between their forwards."""
        return sum(self.tokens[1:-1]) / (self.starts[-1] - self.starts[1])


def watch(base_model, run: Run):
    """Record every training forward of ``base_model`` into ``run``; returns the hook's handle."""
    import torch

    def hook(module, args, kwargs):
        if module.training:
            ids, mask = kwargs["input_ids"], kwargs["attention_mask"]
            run.starts.append(time.perf_counter())
            run.tokens.append(int(mask.sum()))
            run.widths.append(ids.shape[1])
            run.batches.append(hash(tuple(ids.flatten().tolist())))
            run.threads.add(torch.get_num_threads())

    return base_model.register_forward_pre_hook(hook, with_kwargs=True)


def load(path, dtype: str, threads: int):
    import torch

    from aeth.models.loading import load_model

    loaded = load_model(path, quantization="none", dtype=dtype, device="cpu", name=MODEL)
    torch.set_num_threads(threads)
    return loaded


def run_aeth(path, spec, records, args) -> Run:
    """aeth's loop: ``train`` with no validation records, no store, evaluation and saving out of reach."""
    from aeth.training import TrainPlan
    from aeth.training.loop import train

    loaded = load(path, args.dtype, args.threads)
    run = Run()
    handle = watch(loaded.model, run)
    with tempfile.TemporaryDirectory(prefix="aeth-bench-") as tmp:
        plan = TrainPlan(base_model=MODEL, quantization="none", max_steps=args.steps, batch_size=args.batch_size,
                         seq_len=args.seq_len, eval_every=10**9, save_every=10**9, seed=args.seed, run_dir=Path(tmp))
        train(spec, plan, records, [], loaded, store=None, progress=False)
        lines = (Path(tmp) / "metrics.jsonl").read_text().splitlines()
        run.losses = [json.loads(line)["loss"] for line in lines]
    handle.remove()
    return run


def aeth_order(n: int, args) -> list[int]:
    """Example indices in the order aeth's loop draws them (a permutation seeded by seed + epoch)."""
    import torch

    order: list[int] = []
    per_epoch, epoch = max(1, n // args.batch_size), 0
    while len(order) < args.steps * args.batch_size:
        perm = torch.randperm(n, generator=torch.Generator().manual_seed(args.seed + epoch)).tolist()
        order += perm[:per_epoch * args.batch_size]
        epoch += 1
    return order[:args.steps * args.batch_size]


def run_peer(path, spec, records, args) -> Run:
    """The peer: PEFT's ``get_peft_model`` + ``transformers.Trainer`` on the same batches."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import Trainer, TrainerCallback, TrainingArguments
    from transformers.trainer_callback import PrinterCallback

    from aeth.training.data import collate, encode_records

    loaded = load(path, args.dtype, args.threads)
    tokenizer = loaded.tokenizer
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    examples = encode_records(tokenizer, records, spec.system_prompt, args.seq_len)
    ordered = [examples[i] for i in aeth_order(len(examples), args)]

    class InOrder(torch.utils.data.IterableDataset):  # an iterable dataset: the Trainer does not shuffle it
        def __iter__(self):
            return iter(ordered)

    class Losses(TrainerCallback):
        def on_log(self, _args, state, control, logs=None, **kwargs):
            if logs and "loss" in logs:
                run.losses.append(logs["loss"])

    torch.manual_seed(args.seed)
    adapter = spec.adapter
    model = get_peft_model(loaded.model, LoraConfig(r=adapter.r, lora_alpha=adapter.alpha, lora_dropout=adapter.dropout,
                                                    target_modules=list(adapter.target_modules), task_type="CAUSAL_LM"))
    run = Run()
    with tempfile.TemporaryDirectory(prefix="aeth-bench-peer-") as tmp:
        training = TrainingArguments(
            output_dir=tmp, max_steps=args.steps, per_device_train_batch_size=args.batch_size, learning_rate=2e-4,
            optim="adamw_torch", weight_decay=0.0, max_grad_norm=1.0, lr_scheduler_type="cosine_with_min_lr",
            lr_scheduler_kwargs={"min_lr_rate": 0.1}, warmup_steps=max(1, int(args.steps * 0.05)), seed=args.seed,
            logging_steps=1, save_strategy="no", eval_strategy="no", report_to="none", disable_tqdm=True, use_cpu=True,
            dataloader_num_workers=0, dataloader_pin_memory=False, remove_unused_columns=False)
        trainer = Trainer(model=model, args=training, train_dataset=InOrder(),
                          data_collator=lambda batch: collate(batch, pad_id), callbacks=[Losses()])
        trainer.remove_callback(PrinterCallback)  # per-step log lines on stdout, which aeth's loop does not print
        torch.set_num_threads(args.threads)
        handle = watch(loaded.model, run)
        trainer.train()
    handle.remove()
    return run


def linear_shapes(model, args) -> list[tuple[int, int, int]]:
    """(tokens, in, out) of the MLP projections: the model's typical training matmuls."""
    config = model.config
    tokens = args.batch_size * args.seq_len
    return [(tokens, config.hidden_size, config.intermediate_size), (tokens, config.intermediate_size, config.hidden_size)]


def matmul_flops(shapes, dtype, seconds: float = 0.5) -> float:
    """Median FLOP/s of ``F.linear`` over ``shapes`` in ``dtype`` on the current threads."""
    import torch
    import torch.nn.functional as F

    rates = []
    for tokens, n_in, n_out in shapes:
        x, w = torch.randn(tokens, n_in, dtype=dtype), torch.randn(n_out, n_in, dtype=dtype)
        F.linear(x, w)
        started, repeats = time.perf_counter(), 0
        while time.perf_counter() - started < seconds:
            F.linear(x, w)
            repeats += 1
        rates.append(2 * tokens * n_in * n_out * repeats / (time.perf_counter() - started))
    return statistics.median(rates)


def flops_per_token(model, spec, width: int) -> tuple[float, dict]:
    """Model FLOPs per trained token (see the module docstring) and the terms it is made of."""
    import torch

    config = model.config
    n_base, n_lora = 0, 0
    for name, module in model.named_modules():
        if isinstance(module, torch.nn.Linear):
            n_base += module.weight.numel()
            if name.rsplit(".", 1)[-1] in spec.adapter.target_modules:
                n_lora += spec.adapter.r * (module.in_features + module.out_features)
    d_attn = config.num_attention_heads * getattr(config, "head_dim", config.hidden_size // config.num_attention_heads)
    attention = 12 * config.num_hidden_layers * d_attn * width
    terms = {"N_base": n_base, "N_lora": n_lora, "L": config.num_hidden_layers, "d": d_attn, "s": width}
    return 4 * n_base + 6 * n_lora + attention, terms


def coding_setup(threads: int):
    """(coding specialist, its training records, the default model's directory), threads pinned."""
    import torch

    from aeth.app import Aeth
    from aeth.config import load_config
    from aeth.datasets import training_records
    from aeth.models.resolve import resolve_model

    torch.set_num_threads(threads)
    cfg = load_config()
    spec = Aeth(cfg).specialist("coding")
    return spec, training_records(spec, cfg.home).train, resolve_model(MODEL, cfg)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=6, help="steps a round on each side (the first and last are not timed)")
    parser.add_argument("--batch-size", type=int, default=2)
    parser.add_argument("--seq-len", type=int, default=256)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--dtype", choices=("auto", "bfloat16", "float32"), default="auto",
                        help="auto: what aeth picks on this CPU (bfloat16 only where it is native)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    from aeth.models.loading import resolve_dtype

    args.dtype = resolve_dtype(args.dtype, "cpu")
    if args.steps < 3:
        parser.error("--steps must be at least 3 (the first and last steps are not timed)")

    import torch

    spec, records, path = coding_setup(args.threads)
    probe = load(path, args.dtype, args.threads).model
    shapes = linear_shapes(probe, args)
    dtype = getattr(torch, args.dtype)
    runs: dict[str, list[Run]] = {"aeth": [], "peer": []}
    measured: list[float] = []
    fp32_measured: list[float] = []
    sides = {"aeth": run_aeth, "peer": run_peer}
    for r in range(args.rounds):  # interleaved, alternating who goes first, so drift hits both alike
        measured.append(matmul_flops(shapes, dtype))
        if dtype != torch.float32:
            fp32_measured.append(matmul_flops(shapes, torch.float32))
        for side in ("aeth", "peer") if r % 2 == 0 else ("peer", "aeth"):
            runs[side].append(sides[side](path, spec, records, args))
    report(args, probe, spec, runs, measured, fp32_measured, shapes)


def report(args, model, spec, runs, measured, fp32_measured, shapes) -> None:
    widths = {w for side in runs.values() for run in side for w in run.widths}
    width = max(widths)
    per_token, terms = flops_per_token(model, spec, width)
    peak = statistics.median(measured)
    same = all(a.batches == p.batches for a, p in zip(runs["aeth"], runs["peer"], strict=True))
    threads = {t for side in runs.values() for run in side for t in run.threads}
    tokens = sum(runs["aeth"][0].tokens) / len(runs["aeth"][0].tokens)
    a = spec.adapter
    print(f"threads {sorted(threads)}, SmolLM2-135M-Instruct {args.dtype} on CPU, LoRA r={a.r} alpha={a.alpha} dropout={a.dropout} "
          f"on {len(a.target_modules)} projections, batch {args.batch_size} x seq-len {args.seq_len}, "
          f"{args.steps} steps a round per side ({args.steps - 2} timed), {args.rounds} rounds interleaved")
    print(f"batches identical on both sides: {'yes' if same else 'NO'}; {tokens:.0f} tokens a step, padded width {sorted(widths)}")
    print(f"model FLOPs per token = 4*N_base + 6*N_lora + 12*L*d*s = 4*{terms['N_base'] / 1e6:.2f}M + 6*{terms['N_lora'] / 1e6:.2f}M "
          f"+ 12*{terms['L']}*{terms['d']}*{terms['s']} = {per_token / 1e6:.1f} MFLOP")
    shape_text = ", ".join(f"[{t},{i}]x[{i},{o}]" for t, i, o in shapes)
    print(f"measured {args.dtype} matmul ({shape_text}): {peak / 1e9:.1f} GFLOP/s median of {len(measured)} "
          f"({', '.join(f'{m / 1e9:.1f}' for m in measured)})")
    if fp32_measured:
        fp32 = statistics.median(fp32_measured)
        print(f"  for reference, float32 matmul of the same shapes: {fp32 / 1e9:.1f} GFLOP/s ({fp32 / peak:.1f}x {args.dtype})")
    print(f"{'':26} {'median tok/s':>12} {'rounds':>22} {'FLOP fraction':>14} {'mean loss':>10}")
    medians = {}
    for side, label in (("aeth", "aeth loop.train"), ("peer", "HF Trainer + PEFT (peer)")):
        rates = [run.tokens_per_s() for run in runs[side]]
        medians[side] = statistics.median(rates)
        loss = statistics.fmean(x for run in runs[side] for x in run.losses)
        fraction = medians[side] * per_token / peak
        print(f"{label:26} {medians[side]:12.1f} {', '.join(f'{x:.1f}' for x in rates):>22} {fraction:14.2f} {loss:10.4f}")
    ratio = medians["aeth"] / medians["peer"]
    fraction = medians["aeth"] * per_token / peak
    verdict = "PASS" if ratio >= GOAL_RATIO and fraction >= GOAL_FRACTION and same else "FAIL"
    print(f"verdict: {verdict}: aeth/peer {ratio:.2f}x (goal >= {GOAL_RATIO}x), aeth FLOP fraction {fraction:.2f} "
          f"(goal >= {GOAL_FRACTION})" + ("" if same else "; the two sides did not see the same batches"))
    if not math.isfinite(ratio):
        raise SystemExit("no timed steps")


if __name__ == "__main__":
    main()
