"""The ``general`` specialist: the base model with a plain assistant prompt.

It bids for everyday questions (trivia, chit-chat, advice) with routing examples of its own, and
it is the router's fallback when no specialist is confident, so ``aeth run`` answers something
sensible with no specialist installed at all.
"""

from __future__ import annotations

from pathlib import Path

from aeth.datasets import read_prompts
from aeth.default_plugins.general_facts import build_suite
from aeth.hookspecs import hookimpl
from aeth.specialist import GenerationDefaults, Specialist

DATA = Path(__file__).with_name("data")


@hookimpl
def register_specialists(register, app):
    register(Specialist(
        name="general",
        description="General assistant on the base model: everyday questions, and whatever no specialist is confident about.",
        base_model=app.config["model.default"],
        system_prompt="You are a helpful assistant. Answer accurately and concisely, in complete sentences.",
        # greedy, no repetition penalty: chosen by `aeth eval general --sweep` on everyday-facts (docs/evals.md). The
        # best sampled setting (T 0.7, rp 1.1: 0.702 vs greedy 0.605 on 38 tune questions) was not significantly
        # better (sign test p = 0.23), and on the 42 check questions greedy scores 0.667 vs the old T 0.3 / rp 1.1's
        # 0.683, while answering the same question the same way every time (the Quickstart's Paris, 20 of 20)
        generation=GenerationDefaults(temperature=0.0, top_p=0.9, top_k=50, max_tokens=256, repetition_penalty=1.0),
        # everyday prompts, so "general" bids like any specialist and an everyday question is not
        # taken by whichever specialist is least far from it; held-out ones measure that
        routing_examples=read_prompts(DATA / "general_examples.txt"),
        routing_heldout=read_prompts(DATA / "general_heldout.txt"),
        suite=build_suite(),
    ))
