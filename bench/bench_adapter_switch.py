"""Adapter switching: aeth's cached switch (one PEFT model, adapters selected per request) vs reloading.

aeth serves many specialists on one base model by loading each adapter once and selecting it per
request (``ModelPool.with_adapter``); the peer is what a plain PEFT user does to change adapters,
loading the adapter from disk again. Both are timed in one process, interleaved, threads pinned,
on the offline default model (SmolLM2-135M-Instruct) with two r=16 LoRA adapters on every
projection. Goal: a switch under 1 ms and at least 10x faster than a reload.

    python bench/bench_adapter_switch.py [--rounds 20] [--threads 1]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

GOAL_MS, GOAL_RATIO = 1.0, 10.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()

    import torch
    from peft import LoraConfig, PeftModel, get_peft_model

    from aeth.config import load_config
    from aeth.models.adapters import AdapterStore
    from aeth.models.pool import ModelPool

    torch.set_num_threads(args.threads)
    cfg = load_config()
    pool = ModelPool(cfg)
    loaded = pool.get("smollm2-135m-instruct", "none")
    torch.set_num_threads(args.threads)  # the pool applies its own choice; pin it back
    work = Path(tempfile.mkdtemp(prefix="aeth-bench-"))
    store = AdapterStore(work)
    targets = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    versions = {}
    for name in ("alpha", "beta"):  # two real adapters, saved the way training saves them
        from transformers import AutoModelForCausalLM

        base = AutoModelForCausalLM.from_pretrained(loaded.path, dtype=torch.bfloat16)
        peft_model = get_peft_model(base, LoraConfig(r=16, lora_alpha=32, target_modules=targets))
        peft_model.save_pretrained(work / name)
        versions[name] = store.add(name, work / name, {"base_model": "smollm2-135m-instruct"})
        del base, peft_model
    for name, version in versions.items():  # warm the cache: each adapter loaded once
        with pool.with_adapter(loaded, name, version)[1]:
            pass

    reload_base = __import__("transformers").AutoModelForCausalLM.from_pretrained(loaded.path, dtype=torch.bfloat16)
    reloading = PeftModel.from_pretrained(reload_base, str(work / "alpha"), adapter_name="alpha")
    switch_ms, reload_ms = [], []
    for i in range(args.rounds):  # interleaved, so drift hits both alike
        name = ("alpha", "beta")[i % 2]
        started = time.perf_counter()
        _, scope = pool.with_adapter(loaded, name, versions[name])
        with scope:  # the switch happens as a request's context is entered
            switch_ms.append((time.perf_counter() - started) * 1000)
        started = time.perf_counter()
        reloading.delete_adapter(reloading.active_adapter)
        reloading.load_adapter(str(work / name), adapter_name=name)
        reloading.set_adapter(name)
        reload_ms.append((time.perf_counter() - started) * 1000)
    switch, reload = statistics.median(switch_ms), statistics.median(reload_ms)
    ratio = reload / switch
    print(f"threads {args.threads}, {args.rounds} rounds, SmolLM2-135M-Instruct bf16, 2 LoRA adapters r=16 on 7 projections")
    print(f"{'':28} {'median ms':>10} {'max ms':>8}")
    print(f"{'aeth cached switch':28} {switch:10.3f} {max(switch_ms):8.3f}")
    print(f"{'PEFT reload (peer)':28} {reload:10.3f} {max(reload_ms):8.3f}")
    verdict = "PASS" if switch <= GOAL_MS and ratio >= GOAL_RATIO else "FAIL"
    print(f"verdict: {verdict}: switch {switch:.3f} ms (goal <= {GOAL_MS} ms), {ratio:.0f}x faster than a reload "
          f"(goal >= {GOAL_RATIO:.0f}x)")


if __name__ == "__main__":
    main()
