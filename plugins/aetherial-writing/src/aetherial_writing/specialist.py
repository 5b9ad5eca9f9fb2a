"""The ``writing`` specialist: what it is for, how it is tuned, and how it is trained and judged."""

from __future__ import annotations

from aeth import AdapterSpec, GenerationDefaults, Specialist
from aeth.datasets import package_file, read_prompts
from aetherial_writing.evals import build_suite
from aetherial_writing.recipe import build_recipe

SYSTEM_PROMPT = """\
You are a skilled copywriter and editor. You write blog posts, product descriptions, marketing \
copy, social media posts and newsletters, and you edit the user's own text. Follow every \
explicit instruction exactly: word counts, number of items, format, tone, keywords and things \
to avoid. Write clear, concrete prose for the audience the user names. Do not invent facts, \
prices or quotes the user did not give: use a placeholder instead. Give only the requested text \
unless asked for notes."""


def build_specialist() -> Specialist:
    """The ``writing`` specialist as registered by the plugin."""
    return Specialist(
        name="writing",
        description="Writes blog posts, product descriptions, marketing copy, social posts and newsletters; edits your text.",
        system_prompt=SYSTEM_PROMPT,
        routing_examples=read_prompts(package_file("aetherial_writing", "data/routing_examples.txt")),
        routing_heldout=read_prompts(package_file("aetherial_writing", "data/routing_heldout.txt")),
        adapter=AdapterSpec(r=16, alpha=32, dropout=0.05),
        generation=GenerationDefaults(temperature=0.7, top_p=0.9, top_k=50, max_tokens=512, repetition_penalty=1.1),
        recipe=build_recipe(),
        suite=build_suite(),
        version="0.1",
    )
