"""Long generation: aeth's SinkCache vs DynamicCache vs a sliding window recomputed every token.

All three generate the same tokens (each step is fed the token the SinkCache run chose, so every
method does identical work on an identical sequence) with the offline default model
(SmolLM2-135M-Instruct), in one process, threads pinned:
- **aeth SinkCache**: 4 sinks + 252 recent tokens (S+W = 256), room made before each forward;
- **DynamicCache** (peer): transformers' default, keeps every token;
- **recompute** (peer): no cache; every token a fresh forward over the last 256 tokens, the
  exact-but-slow way to keep a window (StreamingLLM's "sliding window with re-computation").

Printed: peak KV bytes (SinkCache vs DynamicCache at the end; goal >= 16x smaller at 4k),
tokens/s over the last 512 tokens (goals: >= 4x DynamicCache, >= 15x recompute), and the
SinkCache's tokens/s in each 512-token block from 512 to the end (goal: flat within +-10 %).
Recompute is timed over the last ``--recompute-tokens`` only (each of its steps is a 256-token
forward). The DynamicCache and SinkCache runs alternate in blocks of 512 tokens, so drift in the
machine's load hits both alike.

    python bench/bench_sink_cache.py [--tokens 4096] [--threads 1] [--recompute-tokens 128]
"""

from __future__ import annotations

import argparse
import statistics
import time

GOAL_KV, GOAL_DYNAMIC, GOAL_RECOMPUTE, GOAL_FLAT = 16.0, 4.0, 15.0, 0.10
BLOCK = 512


def kv_bytes(cache) -> int:
    return sum(layer.keys.nbytes + layer.values.nbytes for layer in cache.layers if layer.keys is not None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=4096)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--sinks", type=int, default=4)
    parser.add_argument("--window", type=int, default=252)
    parser.add_argument("--recompute-tokens", type=int, default=128)
    args = parser.parse_args()

    import torch
    from transformers import DynamicCache

    from aeth.config import load_config
    from aeth.generation.sink_cache import sink_cache_for
    from aeth.models.pool import ModelPool

    loaded = ModelPool(load_config([f"model.threads={args.threads}"])).get("smollm2-135m-instruct")
    torch.set_num_threads(args.threads)
    model = loaded.model
    prompt = loaded.tokenizer("Once upon a time, in a quiet village by the sea,")["input_ids"]
    sink, dynamic = sink_cache_for(model, args.sinks, args.window), DynamicCache(config=model.config)
    tokens = list(prompt)
    sink_s: list[float] = []
    dynamic_s: list[float] = []
    peak_sink = peak_dynamic = 0

    def step(cache, ids, make_room: bool) -> int:
        if make_room:
            cache.make_room(len(ids))
        out = model(input_ids=torch.tensor([ids]), cache=cache, use_cache=True, logits_to_keep=1).logits[0, -1]
        return int(out.argmax())

    with torch.inference_mode():
        for cache, room in ((sink, True), (dynamic, False)):  # prompt
            for start in range(0, len(prompt), args.window):
                step(cache, prompt[start:start + args.window], room)
        next_token = step(sink, [tokens[-1]], True)  # a first decode step, to choose the sequence
        step(dynamic, [tokens[-1]], False)
        while len(sink_s) < args.tokens:
            block = min(BLOCK, args.tokens - len(sink_s))
            chosen = []
            started = time.perf_counter()
            for _ in range(block):  # SinkCache chooses the tokens
                chosen.append(next_token)
                before = time.perf_counter()
                next_token = step(sink, [chosen[-1]], True)
                sink_s.append(time.perf_counter() - before)
            peak_sink = max(peak_sink, kv_bytes(sink))
            for token in chosen:  # DynamicCache does the same work on the same tokens
                before = time.perf_counter()
                step(dynamic, [token], False)
                dynamic_s.append(time.perf_counter() - before)
            peak_dynamic = max(peak_dynamic, kv_bytes(dynamic))
            tokens += chosen
            done = len(sink_s)
            print(f"  {done:5} tokens: SinkCache {block / sum(sink_s[-block:]):6.1f} tok/s, DynamicCache "
                  f"{block / sum(dynamic_s[-block:]):6.1f} tok/s ({time.perf_counter() - started:.0f} s)", flush=True)
        window = args.sinks + args.window
        recompute_s = []
        for i in range(args.recompute_tokens):  # the last tokens, each from scratch over its window
            end = len(tokens) - args.recompute_tokens + i
            before = time.perf_counter()
            model(input_ids=torch.tensor([tokens[max(0, end - window):end]]), logits_to_keep=1)
            recompute_s.append(time.perf_counter() - before)

    last = BLOCK if args.tokens >= BLOCK else args.tokens
    rate = {"sink": last / sum(sink_s[-last:]), "dynamic": last / sum(dynamic_s[-last:]),
            "recompute": len(recompute_s) / sum(recompute_s)}
    blocks = [BLOCK / sum(sink_s[i:i + BLOCK]) for i in range(BLOCK, len(sink_s) - BLOCK + 1, BLOCK)]
    spread = (max(blocks) - min(blocks)) / statistics.median(blocks) / 2 if blocks else 0.0
    kv_ratio = peak_dynamic / max(1, peak_sink)
    print(f"threads {args.threads}, SmolLM2-135M-Instruct {loaded.dtype}, {args.tokens} generated tokens, "
          f"SinkCache S+W = {window}")
    print(f"peak KV bytes: SinkCache {peak_sink / 2**20:.1f} MiB, DynamicCache {peak_dynamic / 2**20:.1f} MiB -> "
          f"{kv_ratio:.1f}x smaller (goal >= {GOAL_KV:.0f}x)")
    print(f"tokens/s over the last {last}: SinkCache {rate['sink']:.1f}, DynamicCache {rate['dynamic']:.1f} "
          f"({rate['sink'] / rate['dynamic']:.2f}x, goal >= {GOAL_DYNAMIC:.0f}x), recompute {rate['recompute']:.2f} "
          f"(last {len(recompute_s)}; {rate['sink'] / rate['recompute']:.1f}x, goal >= {GOAL_RECOMPUTE:.0f}x)")
    print(f"SinkCache tokens/s per {BLOCK}-token block from {BLOCK}: {', '.join(f'{b:.1f}' for b in blocks)} "
          f"(spread +-{spread * 100:.1f} %, goal +-{GOAL_FLAT * 100:.0f} %)")
    verdicts = {"KV": kv_ratio >= GOAL_KV, "vs DynamicCache": rate["sink"] / rate["dynamic"] >= GOAL_DYNAMIC,
                "vs recompute": rate["sink"] / rate["recompute"] >= GOAL_RECOMPUTE, "flat": spread <= GOAL_FLAT}
    print("verdict: " + ", ".join(f"{k} {'PASS' if v else 'FAIL'}" for k, v in verdicts.items()))


if __name__ == "__main__":
    main()
