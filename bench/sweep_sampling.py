"""Sampling defaults by measurement: the sweep of every specialist, written into docs/evals.md.

For each specialist with an eval suite, :func:`aeth.evals.sweep.sweep` tries greedy and sampled
settings (temperature, top-p, repetition penalty) on the *tune* half of its suite and reports the
winner and the current defaults on the *check* half (see the module's docstring). Each result is
saved as JSON in ``--out`` as it finishes (a killed run keeps what it finished; ``--resume``
skips those), and ``--write-docs`` renders all saved results into the table between the
``<!-- sweep -->`` markers of docs/evals.md.

    python bench/sweep_sampling.py                               # every specialist, the limits below
    python bench/sweep_sampling.py general --limit 0             # general on all its cases
    python bench/sweep_sampling.py --write-docs                  # the table from the saved results

Per-specialist case limits (per half) keep each specialist's sweep to under half an hour on 2 CPU
cores, except ``general``: its answers are one sentence, so it runs on all 80 questions (87 min
on a shared machine). The others answer at length (up to 384 tokens of code), so they run on a
few cases of each benchmark, and their table rows say how many; ``--limit`` raises it.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs" / "evals.md"
START, END = "<!-- sweep:start -->", "<!-- sweep:end -->"
#: cases per half (None: all), and samples per sampled case
LIMITS = {"general": (None, 3), "coding": (3, 2), "reasoning": (4, 2), "writing": (4, 2), "ecommerce": (8, 2),
          "elearning": (4, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("specialists", nargs="*", help="default: " + ", ".join(LIMITS))
    parser.add_argument("--limit", type=int, help="cases per half for every specialist named (0: all)")
    parser.add_argument("--samples", type=int, help="answers per case for sampled settings")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=ROOT / ".bench" / "sweep")
    parser.add_argument("--resume", action="store_true", help="skip specialists whose result is saved")
    parser.add_argument("--write-docs", action="store_true", help="only render the saved results into docs/evals.md")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    if args.write_docs:
        write_docs(args.out)
        return

    from aeth.app import Aeth
    from aeth.config import load_config
    from aeth.evals.sweep import sweep

    app = Aeth(load_config([f"model.threads={args.threads}"]))
    for name in args.specialists or list(LIMITS):
        path = args.out / f"{name}.json"
        if args.resume and path.is_file():
            print(f"{name}: saved in {path}, skipped", file=sys.stderr)
            continue
        limit, samples = LIMITS.get(name, (6, 2))
        if args.limit is not None:
            limit = args.limit or None
        result = sweep(app, app.specialist(name), samples=args.samples or samples, limit=limit,
                       echo=lambda line: print(line, file=sys.stderr, flush=True))
        path.write_text(json.dumps(result.to_dict(), indent=1))
        print(f"{name}: chosen {result.chosen.label} ({result.check_chosen:.3f} on {result.check_cases} check cases); "
              f"current {result.current.label} ({result.check_current:.3f}); {result.seconds / 60:.0f} min", flush=True)
    write_docs(args.out)


def write_docs(out: Path) -> None:
    """Render every saved result in ``out`` into docs/evals.md between the sweep markers."""
    from aeth.evals.sweep import from_dict, markdown

    results = [from_dict(json.loads(p.read_text())) for p in sorted(out.glob("*.json"))]
    order = list(LIMITS)
    results.sort(key=lambda r: order.index(r.specialist) if r.specialist in order else len(order))
    text = DOCS.read_text(encoding="utf-8")
    if START not in text or END not in text:
        sys.exit(f"{DOCS} has no {START} ... {END} markers to write between")
    table = markdown(results)
    text = re.sub(re.escape(START) + r".*?" + re.escape(END), lambda m: f"{START}\n{table}{END}", text, flags=re.S)
    DOCS.write_text(text, encoding="utf-8")
    print(f"wrote {len(results)} specialists' sweeps into {DOCS.relative_to(ROOT)}", file=sys.stderr)


if __name__ == "__main__":
    main()
