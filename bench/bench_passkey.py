"""Passkey retrieval inside and beyond the window: aeth's SinkCache vs a DynamicCache (dense reference).

Each prompt hides one line "The pass key is NNNNN. Remember it. NNNNN is the pass key." in filler
("The grass is green. The sky is blue. ..."), as in the passkey-retrieval literature, then asks
"What is the pass key? The pass key is"; the distance d is counted in tokens from the start of the
passkey line to the start of the question. The offline default model (SmolLM2-135M-Instruct)
answers greedily (8 tokens) through ``aeth.generation.decode.stream_tokens``, in one process,
threads pinned, with:
- **SinkCache** (aeth): 4 sinks + ``--window`` recent tokens, prefilled in chunks of at most the
  window, room made before every forward;
- **DynamicCache** (reference): the whole prompt in view, what the model can do when nothing is evicted.

A trial is right when the first number in the answer is the key. Printed: accuracy per distance,
grouped "inside window" (the passkey line is in view when the answer starts) and "beyond window".
The point: content evicted from the window is forgotten; a sink cache keeps memory constant, not
everything it has read.

``--format``: ``plain`` text completion (the default) or ``chat`` (the model's chat template, the
question in the user turn, "The pass key is" opening the assistant's). Both answered 12/12 inside
the window (d = 50, 150, 220) when tried; plain is the default because with it the dense reference
also found the key at d = 2000 (3/3 against 0/3 with chat), so it shows more of what eviction loses.

    python bench/bench_passkey.py [--window 252] [--trials 5] [--distances 50,150,220,400,1000,2000]
                                  [--format plain] [--threads 1] [--seed 0]
"""

from __future__ import annotations

import argparse
import random
import re
import time

SINKS = 4
INTRO = ("There is an important info hidden inside a lot of irrelevant text. Find it and memorize it. "
         "I will quiz you about the important information there.")
FILLER = " The grass is green. The sky is blue. The sun is yellow. Here we go. There and back again."
PREFIX = 32  # filler tokens before the passkey line, so it is never among the sinks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--window", type=int, default=252)
    parser.add_argument("--trials", type=int, default=5, help="random 5-digit keys per distance")
    parser.add_argument("--distances", default="50,150,220,400,1000,2000", help="tokens, comma-separated")
    parser.add_argument("--format", choices=("chat", "plain"), default="plain")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    distances = [int(d) for d in args.distances.split(",")]

    import torch
    from transformers import DynamicCache

    from aeth.config import load_config
    from aeth.generation.decode import stop_ids, stream_tokens
    from aeth.generation.sink_cache import sink_cache_for
    from aeth.models.pool import ModelPool
    from aeth.request import Sampling

    loaded = ModelPool(load_config([f"model.threads={args.threads}"])).get("smollm2-135m-instruct")
    torch.set_num_threads(args.threads)
    model, tokenizer = loaded.model, loaded.tokenizer
    stop = stop_ids(model, tokenizer)
    sampling = Sampling(temperature=0, top_p=1, top_k=0, max_tokens=8, repetition_penalty=1.0, seed=0)

    def encode(text: str) -> list[int]:
        return tokenizer(text, add_special_tokens=False)["input_ids"]

    if args.format == "chat":  # the template around the user's text, then the answer's opening words
        marker = "\u2063MARK\u2063"
        templated = tokenizer.apply_chat_template([{"role": "user", "content": marker}], add_generation_prompt=True,
                                                  tokenize=False)
        before, after = templated.split(marker)
        head, tail = encode(before) + encode(INTRO), encode(" What is the pass key?" + after + "The pass key is")
    else:
        head, tail = encode(INTRO), encode(" What is the pass key? The pass key is")
    filler = encode(FILLER * (max(distances) // 10 + 10))

    def prompt(key: str, distance: int) -> tuple[list[int], int]:
        """Token ids, and how many tokens before the answer the passkey line starts."""
        line = encode(f" The pass key is {key}. Remember it. {key} is the pass key.")
        if distance < len(line):
            parser.error(f"distance {distance} is shorter than the passkey line ({len(line)} tokens)")
        ids = head + filler[:PREFIX] + line + filler[:distance - len(line)] + tail
        return ids, distance + len(tail)

    def answer(ids: list[int], cache) -> str:
        return tokenizer.decode(list(stream_tokens(model, ids, sampling, stop, {}, cache=cache)),
                                skip_special_tokens=True)

    rng = random.Random(args.seed)
    rows = []
    started = time.perf_counter()
    for distance in distances:
        right = {"sink": 0, "dense": 0}
        samples = []
        for _ in range(args.trials):
            key = str(rng.randrange(10000, 100000))
            ids, span = prompt(key, distance)
            for name, cache in (("sink", sink_cache_for(model, SINKS, args.window)),
                                ("dense", DynamicCache(config=model.config))):
                text = answer(ids, cache)
                right[name] += re.findall(r"\d+", text)[:1] == [key]
                if name == "sink" and len(samples) < 2:
                    samples.append(f"{key} -> {text.strip()!r}")
        rows.append((distance, span, len(ids), right, samples))
        print(f"  d={distance}: SinkCache {right['sink']}/{args.trials}, DynamicCache {right['dense']}/{args.trials} "
              f"({time.perf_counter() - started:.0f} s)", flush=True)

    print(f"threads {args.threads}, SmolLM2-135M-Instruct {loaded.dtype}, {args.format} prompts, SinkCache "
          f"{SINKS} sinks + window {args.window}, {args.trials} keys per distance (seed {args.seed}), greedy 8 tokens")
    for group, inside in (("inside window", True), ("beyond window", False)):
        chosen = [row for row in rows if (row[1] <= args.window) == inside]
        if not chosen:
            continue
        print(f"{group}:")
        for distance, span, length, right, samples in chosen:
            print(f"  d={distance:5} (line starts {span:5} tokens before the answer, prompt {length:5}): SinkCache "
                  f"{right['sink'] / args.trials:4.0%}  DynamicCache {right['dense'] / args.trials:4.0%}   "
                  f"e.g. {'; '.join(samples)}")
        total = len(chosen) * args.trials
        print(f"  all: SinkCache {sum(r[3]['sink'] for r in chosen) / total:.0%}, "
              f"DynamicCache {sum(r[3]['dense'] for r in chosen) / total:.0%}")
    print(f"wall {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
