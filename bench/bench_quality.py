"""Quality control before an answer leaves: what self-consistency and best-of-k buy, and what they cost.

Two measurements on the offline default model (SmolLM2-135M-Instruct, no adapter), each case
answered both ways through aeth's own ``Aeth.run`` (config, routing to the named specialist,
safety hooks, the quality step of :mod:`aeth.quality`), interleaved case by case (the order of the
two sides alternates), one torch thread pinned for both:

1. **reasoning**: the reasoning suite's cases (its first ``--reasoning`` N, taken round-robin
   over the five groups as ``aeth eval --limit`` takes them), greedy vs self-consistency
   (``quality.reasoning.method=vote``, ``k=--vote-k``: k sampled answers, the final answer most
   of them share leaves; :func:`aetherial_reasoning.quality.vote_key`). Scored by the suite's own
   scorer (reasoning-gym's ``score_answer``, MMLU's letter).
2. **humaneval**: the coding suite's HumanEval problems (first ``--humaneval`` N), greedy pass@1
   vs best-of-k with parse-and-doctest (``quality.coding.method=best``, ``k=--best-k``: the
   greedy answer and k-1 samples, the first that parses and passes its own / the prompt's
   doctests leaves; :func:`aetherial_coding.quality.check`). Scored by the suite's own scorer: the
   problem's hidden unit tests, run in aeth's sandbox.

Each side reports its score, wall time (``Aeth.run`` from call to response, check and sandbox
included; each side's model is loaded before timing) and tokens generated (every candidate's);
the pair reports the paired changes (cases the method fixed / broke) with an exact two-sided
sign test, and the time and token ratios (method / greedy). The verdict says whether the gain
is significant at 5% and what it costs. Every case is appended to ``--out/<part>.jsonl`` as it
finishes (``--resume`` skips cases already there with the same settings); the summary is
``--out/results.json``.

    python bench/bench_quality.py [--reasoning 40] [--humaneval 40] [--vote-k 5] [--best-k 4] [--threads 1] [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

PARTS = {
    # part: (specialist, quality method, the argument holding its k, what the score is)
    "reasoning": ("reasoning", "vote", "vote_k", "accuracy"),
    "humaneval": ("coding", "best", "best_k", "pass@1"),
}


def sign_test(before: list[bool], after: list[bool]) -> tuple[int, int, float]:
    """(improved, worsened, two-sided exact sign-test p) on paired outcomes; ties drop out."""
    from aeth.evals.sweep import sign_test as p_value

    up = sum(a and not b for b, a in zip(before, after, strict=True))
    down = sum(b and not a for b, a in zip(before, after, strict=True))
    return up, down, p_value([float(a) for a in after], [float(b) for b in before])


def make_app(home: Path, threads: int, specialist: str, method: str, k: int):
    from aeth.app import Aeth
    from aeth.config import load_config

    # the input policies are off: some eval questions trip the jailbreak classifier, and the input
    # check is the same on both sides (it is not what is measured)
    policies = [f"policy.{specialist}.{check}=off" for check in ("harmful", "jailbreak", "injection")]
    return Aeth(load_config([f"home={home}", f"model.threads={threads}", *policies,
                             f"quality.{specialist}.method={method}", f"quality.{specialist}.k={k}"]))


def cases_of(app, specialist: str, n: int) -> tuple[object, object, list]:
    """The specialist and the first ``n`` cases of its suite, as ``aeth eval --limit n`` takes them."""
    from aeth.evals.runner import limited

    spec = app.specialist(specialist)
    suite = limited(spec.suite, n)
    return spec, suite, list(suite.cases())


def answer(app, specialist: str, case, suite, seed: int) -> dict:
    """One case answered through ``app.run``: its text, wall seconds, tokens generated, quality report."""
    from aeth.request import Request

    request = Request(prompt=case.prompt, specialist=specialist, temperature=0.0,
                      max_tokens=case.max_tokens or suite.max_tokens, seed=seed)
    started = time.perf_counter()
    response = app.run(request)
    seconds = time.perf_counter() - started
    report = response.quality or {}
    return {"text": response.text, "seconds": round(seconds, 3), "tokens": report.get("tokens_generated", response.tokens_out),
            "quality": report}


def run_part(part: str, n: int, k: int, args) -> dict:
    specialist, method, _, metric = PARTS[part]
    home = args.out / "home"
    greedy_app = make_app(home, args.threads, specialist, "off", k)
    method_app = make_app(home, args.threads, specialist, method, k)
    spec, suite, cases = cases_of(greedy_app, specialist, n)
    settings = {"part": part, "method": method, "k": k, "threads": args.threads, "suite": f"{suite.name} {suite.version}"}
    log = args.out / f"{part}.jsonl"
    done = {}
    if args.resume and log.exists():
        for line in log.read_text().splitlines():
            row = json.loads(line)
            if row.get("settings") == settings:
                done[row["id"]] = row
    elif log.exists():
        log.unlink()
    # load each side's model (and the suite's data) before anything is timed
    warm = type(cases[0])(id="warm", prompt="Say hello.", max_tokens=4)
    for app in (greedy_app, method_app):
        answer(app, specialist, warm, suite, 0)
    rows = []
    for i, case in enumerate(cases):
        if case.id in done:
            rows.append(done[case.id])
            continue
        sides = [("greedy", greedy_app), (method, method_app)]
        if i % 2:
            sides.reverse()  # alternate who goes first: drift in the machine's load falls on both sides
        row = {"id": case.id, "group": case.group, "settings": settings}
        for name, app in sides:
            got = answer(app, specialist, case, suite, seed=i)
            got["score"] = float(suite.score(case, got["text"]))
            row[name] = got
        rows.append(row)
        with log.open("a") as f:
            f.write(json.dumps(row) + "\n")
        print(f"  {part} {i + 1}/{len(cases)} {case.id}: greedy {row['greedy']['score']:.0f} ({row['greedy']['seconds']:.1f} s), "
              f"{method} {row[method]['score']:.0f} ({row[method]['seconds']:.1f} s) {_note(row[method]['quality'])}", flush=True)
    return summarise(part, method, k, metric, rows)


def _note(report: dict) -> str:
    if report.get("method") == "vote":
        return f"votes {report.get('votes')} -> {report.get('answer')}"
    if report.get("method") in ("best", "retry"):
        return f"chosen {report.get('chosen')} passed={report.get('passed')} problems={[p and p[:60] for p in report.get('problems', [])]}"
    return ""


def summarise(part: str, method: str, k: int, metric: str, rows: list[dict]) -> dict:
    n = len(rows)
    greedy = [r["greedy"]["score"] >= 1.0 for r in rows]
    better = [r[method]["score"] >= 1.0 for r in rows]
    up, down, p = sign_test(greedy, better)
    total = {side: {"seconds": sum(r[side]["seconds"] for r in rows), "tokens": sum(r[side]["tokens"] for r in rows)}
             for side in ("greedy", method)}
    out = {
        "part": part, "method": method, "k": k, "metric": metric, "n": n,
        "greedy": sum(greedy) / n if n else 0.0, method: sum(better) / n if n else 0.0,
        "fixed": up, "broken": down, "sign_test_p": p,
        "seconds": total, "time_ratio": total[method]["seconds"] / max(total["greedy"]["seconds"], 1e-9),
        "token_ratio": total[method]["tokens"] / max(total["greedy"]["tokens"], 1),
        "groups": {},
    }
    for group in dict.fromkeys(r["group"] for r in rows):
        rs = [r for r in rows if r["group"] == group]
        out["groups"][group] = {"n": len(rs), "greedy": sum(r["greedy"]["score"] >= 1.0 for r in rs) / len(rs),
                                method: sum(r[method]["score"] >= 1.0 for r in rs) / len(rs)}
    reports = [r[method]["quality"] for r in rows]
    if method == "vote":
        out["no_answer_voted"] = sum(1 for q in reports if not q.get("votes"))
        out["majority"] = sum(1 for q in reports if q.get("votes") and max(q["votes"].values()) > k // 2)
    else:
        out["greedy_failed_check"] = sum(1 for q in reports if q.get("problems") and q["problems"][0] is not None)
        out["sample_chosen"] = sum(1 for q in reports if q.get("chosen", 0) != 0)
        out["chosen_passed_check"] = sum(1 for q in reports if q.get("passed"))
    return out


def table(results: list[dict]) -> str:
    lines = [f"{'part':<10} {'n':>3} {'metric':<9} {'greedy':>7} {'method':>10} {'score':>6} {'delta':>7} "
             f"{'fixed':>5} {'broke':>5} {'p':>6} {'greedy s':>9} {'method s':>9} {'time x':>7} {'tokens x':>8}"]
    for r in results:
        m = r["method"]
        lines.append(f"{r['part']:<10} {r['n']:>3} {r['metric']:<9} {r['greedy']:>7.3f} {m + '@' + str(r['k']):>10} {r[m]:>6.3f} "
                     f"{r[m] - r['greedy']:>+7.3f} {r['fixed']:>5} {r['broken']:>5} {r['sign_test_p']:>6.3f} "
                     f"{r['seconds']['greedy']['seconds']:>9.1f} {r['seconds'][m]['seconds']:>9.1f} {r['time_ratio']:>7.2f} "
                     f"{r['token_ratio']:>8.2f}")
    return "\n".join(lines)


def verdict(r: dict) -> str:
    m, gain = r["method"], r[r["method"]] - r["greedy"]
    significant = r["sign_test_p"] < 0.05
    said = ("a significant gain" if significant and gain > 0 else "a significant loss" if significant
            else "no significant difference")
    return (f"{r['part']}: {m}@{r['k']} {r[m]:.3f} vs greedy {r['greedy']:.3f} ({gain:+.3f}, fixed {r['fixed']}, "
            f"broke {r['broken']}, p={r['sign_test_p']:.3f}): {said}, at {r['time_ratio']:.2f}x the time "
            f"and {r['token_ratio']:.2f}x the tokens")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reasoning", type=int, default=40, help="Reasoning cases (0: skip the part).")
    parser.add_argument("--humaneval", type=int, default=40, help="HumanEval problems (0: skip the part).")
    parser.add_argument("--vote-k", type=int, default=5)
    parser.add_argument("--best-k", type=int, default=4)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--quick", action="store_true", help="Smallest end-to-end run: 5 reasoning cases, 2 problems.")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent.parent / ".bench" / "quality")
    parser.add_argument("--resume", action="store_true", help="Keep the cases already in --out/<part>.jsonl.")
    args = parser.parse_args()
    if args.quick:
        args.reasoning, args.humaneval = min(args.reasoning, 5), min(args.humaneval, 2)
    args.out = args.out.resolve()
    args.out.mkdir(parents=True, exist_ok=True)
    os.environ["AETH_HOME"] = str(args.out / "home")  # nothing reads or writes the user's home
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))

    import torch

    torch.set_num_threads(args.threads)
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    started = time.perf_counter()
    results = []
    for part, n in (("reasoning", args.reasoning), ("humaneval", args.humaneval)):
        if n > 0:
            results.append(run_part(part, n, getattr(args, PARTS[part][2]), args))
    summary = {"results": results, "threads": args.threads, "model": "smollm2-135m-instruct (no adapter)",
               "seconds": round(time.perf_counter() - started, 1)}
    (args.out / "results.json").write_text(json.dumps(summary, indent=2))
    print()
    print(table(results))
    for r in results:
        print(verdict(r))
    print(f"({summary['seconds']:.0f} s in all; cases in {args.out}/<part>.jsonl, summary in {args.out}/results.json)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
