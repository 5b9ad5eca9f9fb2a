"""NF4 weight memory vs fp32 and bf16, and an NF4 QLoRA training step's time vs bf16 LoRA.

aeth loads a base model in 4-bit NF4 (bitsandbytes, double quantization, bf16 compute) with
``quantization: nf4``; the peers are the same model loaded in fp32 and in bf16. All three go
through ``aeth.models.loading.load_model`` in one process, one after the other, on the offline
default model (SmolLM2-135M-Instruct). Memory is the bytes of every parameter and buffer, plus,
for a 4-bit layer, its quantization state (absmax, nested absmax, code books), which bitsandbytes
keeps beside the packed weight. (Process RSS is not reported: within one process it does not
isolate a load's weights, since freed heap is reused and safetensors pages stay mapped; it swung
from -24 to +526 MiB between loads here.) bitsandbytes quantizes only the decoder's
Linear layers: the tied embedding / lm_head (28 M of the 135 M parameters) stays in bf16, so both the
whole-model ratio and the quantized-Linear-only ratio are printed. The NF4 model is measured three
times: as loaded (what serving holds), as aeth's loop trains it (``prepare_kbit``: base frozen,
gradient checkpointing, nothing recast), and after PEFT's ``prepare_model_for_kbit_training``,
which casts every weight that is not 4-bit to fp32, the tied embedding included (what a plain
PEFT user trains). Goal: NF4 <= 0.3x fp32, as loaded and as aeth trains it.

Then the coding specialist's LoRA is trained a few steps on each base through
``aeth.training.loop.train`` (nf4: QLoRA as ``aeth train --quantization nf4`` does; bf16: plain
LoRA), rounds interleaved,
a fresh model each run, threads pinned; a forward pre-hook marks each step's start, and the first
and last steps are not timed. The NF4/bf16 step-time ratio is printed (no goal; DESIGN.md §5
says bf16 LoRA is the CPU default because NF4 is not faster there).

    python bench/bench_nf4.py [--rounds 3] [--steps 4] [--batch-size 2] [--seq-len 160] [--threads 1]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

from bench_train import MODEL, Run, coding_setup, watch

GOAL_RATIO = 0.3


def tensor_bytes(tensor) -> int:
    return tensor.numel() * tensor.element_size()


def quant_state_bytes(weight) -> int:
    """Bytes bitsandbytes keeps beside a 4-bit weight: absmax (and, double-quantized, its own absmax and code)."""
    state = getattr(weight, "quant_state", None)
    if state is None:
        return 0
    total = sum(tensor_bytes(t) for t in (state.absmax, state.code, getattr(state, "offset", None)) if t is not None)
    if state.nested:
        total += tensor_bytes(state.state2.absmax) + tensor_bytes(state.state2.code)
    return total


def weight_bytes(model) -> tuple[int, int, int]:
    """(whole model bytes, bytes of the Linear layers bitsandbytes quantizes, their parameter count).

    The "quantized" Linears are the decoder's (every Linear but the lm_head), whatever the dtype,
    so the same set is compared across fp32, bf16 and NF4.
    """
    import torch

    total = sum(tensor_bytes(p) + quant_state_bytes(p) for p in model.parameters())
    total += sum(tensor_bytes(b) for b in model.buffers())
    linear, count = 0, 0
    for name, module in model.named_modules():
        if isinstance(module, torch.nn.Linear) and not name.endswith("lm_head"):
            for p in module.parameters(recurse=False):
                linear += tensor_bytes(p) + quant_state_bytes(p)
            count += module.in_features * module.out_features
    return total, linear, count


def load(path, kind: str, threads: int):
    import torch

    from aeth.models.loading import load_model

    quantization, dtype = {"fp32": ("none", "float32"), "bf16": ("none", "bfloat16"), "nf4": ("nf4", "bfloat16")}[kind]
    loaded = load_model(path, quantization=quantization, dtype=dtype, device="cpu", name=MODEL)
    torch.set_num_threads(threads)
    return loaded


def measure_memory(path, threads: int) -> dict[str, tuple[int, int, int]]:
    """kind -> (model bytes, quantized-Linear bytes, their parameters); ``nf4 train`` is the NF4 model
    as aeth's loop trains it (``aeth.training.lora.prepare_kbit``), ``nf4 peft`` after peft's
    ``prepare_model_for_kbit_training`` (what a plain PEFT user gets)."""
    from peft import prepare_model_for_kbit_training

    from aeth.training.lora import prepare_kbit

    out = {kind: weight_bytes(load(path, kind, threads).model) for kind in ("fp32", "bf16", "nf4")}
    out["nf4 train"] = weight_bytes(prepare_kbit(load(path, "nf4", threads).model))
    out["nf4 peft"] = weight_bytes(prepare_model_for_kbit_training(load(path, "nf4", threads).model, use_gradient_checkpointing=True))
    return out


def train_steps(path, kind: str, spec, records, args) -> Run:
    from aeth.training import TrainPlan
    from aeth.training.loop import train

    loaded = load(path, kind, args.threads)
    run = Run()
    handle = watch(loaded.model, run)
    with tempfile.TemporaryDirectory(prefix="aeth-bench-nf4-") as tmp:
        plan = TrainPlan(base_model=MODEL, quantization=loaded.quantization, max_steps=args.steps, batch_size=args.batch_size,
                         seq_len=args.seq_len, eval_every=10**9, save_every=10**9, seed=args.seed, run_dir=Path(tmp))
        train(spec, plan, records, [], loaded, store=None, progress=False)
    handle.remove()
    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=4, help="training steps a run (the first and last are not timed)")
    parser.add_argument("--batch-size", type=int, default=2)
    parser.add_argument("--seq-len", type=int, default=160)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.steps < 3:
        parser.error("--steps must be at least 3 (the first and last steps are not timed)")

    spec, records, path = coding_setup(args.threads)
    memory = measure_memory(path, args.threads)
    runs: dict[str, list[Run]] = {"bf16": [], "nf4": []}
    for r in range(args.rounds):  # interleaved, alternating who goes first
        for kind in ("bf16", "nf4") if r % 2 == 0 else ("nf4", "bf16"):
            runs[kind].append(train_steps(path, kind, spec, records, args))
    report(args, memory, runs)


def report(args, memory, runs) -> None:
    import torch

    mb = 1024 ** 2
    fp32, bf16, nf4 = memory["fp32"], memory["bf16"], memory["nf4"]
    print(f"threads {torch.get_num_threads()}, SmolLM2-135M-Instruct on CPU, NF4 = bitsandbytes 4-bit NF4, double quant, "
          f"bf16 compute; quantized Linears: {nf4[2] / 1e6:.1f}M parameters")
    print(f"{'weights':10} {'model MiB':>10} {'x fp32':>7} {'x bf16':>7} {'Linear MiB':>11} {'x fp32':>7} {'x bf16':>7}")
    for kind, row in memory.items():
        print(f"{kind:10} {row[0] / mb:10.1f} {row[0] / fp32[0]:7.3f} {row[0] / bf16[0]:7.3f} {row[1] / mb:11.1f} "
              f"{row[1] / fp32[1]:7.3f} {row[1] / bf16[1]:7.3f}")
    print(f"NF4 Linear bits per weight: {nf4[1] * 8 / nf4[2]:.2f}")
    rates = {kind: [run.tokens_per_s() for run in side] for kind, side in runs.items()}
    step_s = {kind: statistics.median((run.starts[-1] - run.starts[1]) / (len(run.starts) - 2) for run in side)
              for kind, side in runs.items()}
    print(f"training, batch {args.batch_size} x seq-len {args.seq_len}, {args.steps} steps a run ({args.steps - 2} timed), "
          f"{args.rounds} rounds interleaved:")
    for kind, label in (("bf16", "bf16 LoRA"), ("nf4", "NF4 QLoRA")):
        print(f"  {label:10} median {statistics.median(rates[kind]):6.1f} tok/s ({', '.join(f'{x:.1f}' for x in rates[kind])}), "
              f"{step_s[kind]:.2f} s a step")
    whole, linear, training = nf4[0] / fp32[0], nf4[1] / fp32[1], memory["nf4 train"][0] / fp32[0]
    verdict = "PASS" if max(whole, training) <= GOAL_RATIO else (
        "PASS (quantized Linears only)" if linear <= GOAL_RATIO else "FAIL")
    print(f"verdict: {verdict}: NF4/fp32 whole model {whole:.3f}x as loaded ({training:.3f}x while training), "
          f"quantized Linears {linear:.3f}x (goal <= {GOAL_RATIO}x); "
          f"NF4/bf16 {nf4[0] / bf16[0]:.3f}x; step time NF4/bf16 "
          f"{statistics.median(rates['bf16']) / statistics.median(rates['nf4']):.2f}x")


if __name__ == "__main__":
    main()
