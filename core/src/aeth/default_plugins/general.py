"""The ``general`` specialist: the base model with a plain assistant prompt.

It bids for everyday questions (trivia, chit-chat, advice) with routing examples of its own, and
it is the router's fallback when no specialist is confident, so ``aeth run`` answers something
sensible with no specialist installed at all.
"""

from __future__ import annotations

from pathlib import Path

from aeth.datasets import read_prompts
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
        generation=GenerationDefaults(temperature=0.3, top_p=0.9, top_k=50, max_tokens=256, repetition_penalty=1.1),
        # everyday prompts, so "general" bids like any specialist and an everyday question is not
        # taken by whichever specialist is least far from it; held-out ones measure that
        routing_examples=read_prompts(DATA / "general_examples.txt"),
        routing_heldout=read_prompts(DATA / "general_heldout.txt"),
    ))
