"""Streaming perplexity: aeth's SinkCache vs window-only vs a recomputed window vs dense (StreamingLLM Table 1).

Next-token negative log-likelihood over the first ``--tokens`` tokens of long real English text
(the Python reference docs shipped in the stdlib, ``pydoc_data.topics``, values joined in sorted-key
order, no chat template), with the offline default model (SmolLM2-135M-Instruct, fp32), in one
process, threads pinned, every method a cache of ``--cache`` (C) tokens:
- **dense**: one DynamicCache holding everything (fed in chunks); the model's full-context figure;
- **window-only**: ``sink_cache_for(sinks=0, window=C)`` fed token by token, room made before each
  forward: StreamingLLM's "window attention", the first tokens evicted;
- **sinks + window** (aeth): ``sink_cache_for(sinks=4, window=C-4)``, fed the same way;
- **recompute**: for each t >= C a fresh forward (no cache) over the last C tokens ending at t
  (StreamingLLM's "sliding window with re-computation", the quality reference); dense for t < C.

Printed: each method's perplexity over all tokens and over those past the first eviction (t >= C),
the time each took, and the ratios sinks/recompute (goal <= 1.05) and window-only/recompute
(expected far above). Checked: before the first eviction sinks+window equals dense (per-token NLL
within 1e-4).

    python bench/bench_streaming_ppl.py [--tokens 1024] [--cache 128] [--threads 1] [--batch 8]
"""

from __future__ import annotations

import argparse
import math
import time

GOAL_SINKS = 1.05  # sinks perplexity / recompute perplexity, past the first eviction
SINKS = 4


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=1024)
    parser.add_argument("--cache", type=int, default=128, help="tokens every method keeps in view (C)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--batch", type=int, default=8, help="windows per recompute forward")
    args = parser.parse_args()
    if not SINKS < args.cache < args.tokens - 1:
        parser.error(f"need {SINKS} < --cache < --tokens - 1")

    import pydoc_data.topics

    import torch
    from transformers import DynamicCache

    from aeth.config import load_config
    from aeth.generation.sink_cache import sink_cache_for
    from aeth.models.pool import ModelPool

    loaded = ModelPool(load_config([f"model.threads={args.threads}"])).get("smollm2-135m-instruct")
    torch.set_num_threads(args.threads)
    model, cache_size, n = loaded.model, args.cache, args.tokens
    topics = pydoc_data.topics.topics
    text = "".join(topics[key] for key in sorted(topics))
    ids = loaded.tokenizer(text[:n * 20], verbose=False)["input_ids"][:n]  # ~4.5 chars a token here
    if len(ids) < n:
        parser.error(f"the text gives only {len(ids)} tokens")
    targets = torch.tensor(ids[1:])

    def nll(logits, first: int) -> torch.Tensor:
        """NLL of tokens first+1 .. from logits at first .. (rows of ``logits``)."""
        logp = torch.log_softmax(logits.float(), dim=-1)
        return -logp.gather(-1, targets[first:first + len(logits)].unsqueeze(-1)).squeeze(-1)

    def streamed(sinks: int) -> torch.Tensor:
        cache = sink_cache_for(model, sinks=sinks, window=cache_size - sinks)
        out = torch.empty(n - 1)
        for t in range(n - 1):
            cache.make_room(1)
            logits = model(input_ids=torch.tensor([[ids[t]]]), cache=cache, use_cache=True).logits[0]
            out[t] = nll(logits, t)[0]
        return out

    nlls: dict[str, torch.Tensor] = {}
    took: dict[str, float] = {}
    with torch.inference_mode():
        started = time.perf_counter()
        cache, parts = DynamicCache(config=model.config), []
        for start in range(0, n - 1, 256):
            chunk = ids[start:min(start + 256, n - 1)]
            logits = model(input_ids=torch.tensor([chunk]), cache=cache, use_cache=True).logits[0]
            parts.append(nll(logits, start))
        nlls["dense"], took["dense"] = torch.cat(parts), time.perf_counter() - started
        print(f"  dense done ({took['dense']:.0f} s)", flush=True)

        for name, sinks in (("window-only", 0), ("sinks + window", SINKS)):
            started = time.perf_counter()
            nlls[name], took[name] = streamed(sinks), time.perf_counter() - started
            print(f"  {name} done ({took[name]:.0f} s)", flush=True)

        started = time.perf_counter()
        recompute = nlls["dense"].clone()
        ends = list(range(cache_size, n - 1))  # t: the window is ids[t-C+1 .. t], predicting t+1
        for i in range(0, len(ends), args.batch):
            batch = ends[i:i + args.batch]
            windows = torch.tensor([ids[t - cache_size + 1:t + 1] for t in batch])
            logits = model(input_ids=windows, logits_to_keep=1).logits[:, -1]
            logp = torch.log_softmax(logits.float(), dim=-1)
            recompute[batch] = -logp.gather(-1, targets[batch].unsqueeze(-1)).squeeze(-1)
        nlls["recompute"], took["recompute"] = recompute, time.perf_counter() - started
        print(f"  recompute done ({took['recompute']:.0f} s)", flush=True)

    for name in ("sinks + window", "window-only"):
        gap = (nlls[name][:cache_size] - nlls["dense"][:cache_size]).abs().max().item()
        assert gap < 1e-4, f"{name} differs from dense before the first eviction: max |dNLL| = {gap:.2e}"
    print(f"threads {args.threads}, SmolLM2-135M-Instruct {loaded.dtype}, {n} tokens of pydoc_data.topics "
          f"({n - 1} predictions, {n - 1 - cache_size} past the first eviction), cache C = {cache_size} "
          f"(sinks {SINKS} + window {cache_size - SINKS})")
    print("before the first eviction (t < C) sinks+window and window-only equal dense: max |dNLL| < 1e-4, checked")
    ppl = {name: (math.exp(v.mean().item()), math.exp(v[cache_size:].mean().item())) for name, v in nlls.items()}
    print(f"{'method':16} {'ppl all':>9} {'ppl t>=C':>9} {'time':>7}")
    for name in ("dense", "recompute", "sinks + window", "window-only"):
        print(f"{name:16} {ppl[name][0]:9.2f} {ppl[name][1]:9.2f} {took[name]:6.0f}s")
    sinks_ratio = ppl["sinks + window"][1] / ppl["recompute"][1]
    window_ratio = ppl["window-only"][1] / ppl["recompute"][1]
    print(f"past the first eviction: sinks/recompute {sinks_ratio:.3f} (goal <= {GOAL_SINKS}), "
          f"window-only/recompute {window_ratio:.2f} (expected far above 1)")
    print(f"verdict: sinks within {(GOAL_SINKS - 1) * 100:.0f} % of recompute "
          f"{'met' if sinks_ratio <= GOAL_SINKS else 'not met'}")


if __name__ == "__main__":
    main()
