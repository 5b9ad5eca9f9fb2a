"""Answers from several specialists: do two-part prompts get both parts answered?

A small labelled set of two-part prompts, written for this benchmark: each part has the specialist
it belongs to and a marker that an answer to it must contain (a function named ``add``, ``144``,
``Paris``, ...). Every prompt is answered twice by the offline default model with the installed
specialists (no adapters unless trained): routed to one specialist (``router.compose=false``) and
composed (``router.compose=true``, the default). Reported:

- routing: how often the composed plan names both labelled specialists (and how often it composes at all);
- coverage: the share of parts whose marker is in the reply, and of prompts with both markers;
- cost: seconds and generated tokens per reply.

Greedy answers, ``--max-tokens`` per answer (a composed reply has one answer per part).

    python bench/bench_compose.py [--quick] [--threads 1]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

OUT = Path(__file__).resolve().parent.parent / ".bench" / "compose"

#: (specialist, request, marker) parts; prompts pair parts of different specialists
PARTS = {
    "add": ("coding", "Write a Python function named add that returns the sum of two numbers.", r"def\s+add\s*\("),
    "reverse": ("coding", "Write a Python function named reverse_text that reverses a string.", r"def\s+reverse_text\s*\("),
    "sql": ("coding", "Write a SQL query that selects every row of a table named users.", r"(?i)select\s+\*\s+from\s+users"),
    "square": ("reasoning", "What is 12 times 12? Give the number.", r"\b144\b"),
    "train": ("reasoning", "A train travels 60 km in one hour. How many km does it travel in 3 hours?", r"\b180\b"),
    "france": ("general", "What is the capital of France?", r"Paris"),
    "japan": ("general", "What is the capital of Japan?", r"Tokyo"),
    "gracias": ("writing", "Translate the word 'thank you' into Spanish.", r"(?i)gracias"),
    "haiku": ("writing", "Write a haiku about the ocean.", r"(?i)ocean|sea|wave"),
    "mug": ("ecommerce", "Write a one-sentence product description for a red coffee mug.", r"(?i)\bmug\b"),
    "refund": ("ecommerce", "Draft a short reply to a customer asking for a refund on a late order.", r"(?i)refund"),
    "quiz": ("elearning", "Create one multiple-choice question about photosynthesis with four options.", r"(?i)photosynthesis"),
}
PROMPTS = [("add", "france"), ("square", "haiku"), ("reverse", "gracias"), ("sql", "japan"), ("mug", "add"),
           ("quiz", "reverse"), ("train", "france"), ("refund", "square"), ("haiku", "sql"), ("japan", "mug"),
           ("gracias", "train"), ("france", "quiz")]


def prompt_of(pair: tuple[str, str]) -> str:
    first, second = (PARTS[k][1] for k in pair)
    return f"{first} Also, {second[0].lower()}{second[1:]}"


def run(mode: str, prompts: list[tuple[str, str]], args) -> list[dict]:
    from aeth.app import Aeth
    from aeth.compose import plan
    from aeth.config import load_config
    from aeth.request import Request

    overrides = [f"home={args.home}", f"router.compose={'true' if mode == 'composed' else 'false'}",
                 f"generation.max_tokens={args.max_tokens}", "generation.temperature=0", f"model.threads={args.threads}"]
    app = Aeth(load_config(overrides))
    app.run(Request("Hello", specialist="general"))  # the model loaded and the router warm before any timing
    app.bids(Request("warm up the router"))
    out = []
    for pair in prompts:
        text = prompt_of(pair)
        request = Request(text)
        parts = plan(app, request, app.bids(request)) or []
        started = time.perf_counter()
        answer = app.stream(request)
        reply = answer.text()
        seconds = time.perf_counter() - started
        hits = [bool(re.search(PARTS[k][2], reply)) for k in pair]
        out.append({"pair": pair, "prompt": text, "specialist": answer.response.specialist,
                    "parts": [p.specialist for p in parts], "expected": [PARTS[k][0] for k in pair], "hits": hits,
                    "seconds": round(seconds, 2), "tokens_out": answer.response.tokens_out, "reply": reply})
        print(f"  [{mode}] {answer.response.specialist:<22} markers {hits}  {seconds:5.1f} s  {pair}", flush=True)
    app.close()
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="3 prompts")
    parser.add_argument("--max-tokens", type=int, default=96)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    prompts = PROMPTS[:3] if args.quick else PROMPTS
    with tempfile.TemporaryDirectory() as home:
        args.home = home
        results = {mode: run(mode, prompts, args) for mode in ("single", "composed")}
    print(f"\n{len(prompts)} two-part prompts, greedy, at most {args.max_tokens} tokens per answer, "
          f"{args.threads} thread(s)\n")
    composed = results["composed"]
    planned = sum(bool(r["parts"]) for r in composed)
    both = sum(sorted(r["parts"]) == sorted(r["expected"]) for r in composed)
    print(f"routing: composed {planned}/{len(prompts)} prompts; both labelled specialists named in {both}/{len(prompts)}")
    print(f"{'mode':<10} {'parts covered':>14} {'both covered':>13} {'s/reply':>8} {'tokens/reply':>13}")
    summary = {}
    for mode, rows in results.items():
        parts = sum(sum(r["hits"]) for r in rows) / (2 * len(rows))
        both_hit = sum(all(r["hits"]) for r in rows) / len(rows)
        seconds = statistics.mean(r["seconds"] for r in rows)
        tokens = statistics.mean(r["tokens_out"] for r in rows)
        summary[mode] = {"parts_covered": parts, "both_covered": both_hit, "seconds": seconds, "tokens": tokens}
        print(f"{mode:<10} {parts:>14.1%} {both_hit:>13.1%} {seconds:>8.1f} {tokens:>13.1f}")
    s, c = summary["single"], summary["composed"]
    print(f"\ncomposed vs single: parts covered {c['parts_covered'] - s['parts_covered']:+.1%}, both covered "
          f"{c['both_covered'] - s['both_covered']:+.1%}, time {c['seconds'] / s['seconds']:.2f}x, "
          f"tokens {c['tokens'] / max(s['tokens'], 1e-9):.2f}x")
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "results.json").write_text(json.dumps({"summary": summary, "results": results, "planned": planned,
                                                  "both_named": both, "max_tokens": args.max_tokens}, indent=1))
    print(f"wrote {OUT / 'results.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
