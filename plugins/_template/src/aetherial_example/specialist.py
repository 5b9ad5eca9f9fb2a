"""The specialist: name, prompt, routing examples, adapter, generation defaults, data and evals."""

from __future__ import annotations

from aeth import AdapterSpec, GenerationDefaults, Specialist
from aeth.datasets import package_file, read_prompts
from aetherial_example.evals import build_suite
from aetherial_example.recipe import build_recipe, practice
from aetherial_example.verify import verify

SYSTEM_PROMPT = """\
You are a friendly, practical home-cooking assistant. Give clear recipes with quantities and \
steps, explain techniques simply, suggest substitutions, and mention food-safety points such as \
safe cooking temperatures when they matter. Be concise."""


def routing_examples() -> tuple[str, ...]:
    """Prompts this specialist should answer, one per line of ``data/routing_examples.txt``.

    The router embeds these and sends a prompt here when it is close to them: write at least 40,
    varied and realistic, covering everything the specialist is for.
    """
    return read_prompts(package_file("aetherial_example", "data/routing_examples.txt"))


def routing_heldout() -> tuple[str, ...]:
    """Prompts kept out of routing, one per line of ``data/routing_heldout.txt``: ``aeth route
    --evaluate`` routes them to measure how often this specialist is picked (write at least 20,
    never copies of the routing examples)."""
    return read_prompts(package_file("aetherial_example", "data/routing_heldout.txt"))


def build_specialist() -> Specialist:
    """The specialist as registered by the plugin."""
    return Specialist(
        name="cooking",  # RENAME: lowercase letters, digits and '-'; what users type after `-s`
        description="Home cooking: recipes, techniques, substitutions and kitchen questions.",
        system_prompt=SYSTEM_PROMPT,
        routing_examples=routing_examples(),
        routing_heldout=routing_heldout(),
        adapter=AdapterSpec(r=8, alpha=16, dropout=0.05),  # a narrow domain needs only a small adapter
        generation=GenerationDefaults(temperature=0.5, top_p=0.9, top_k=50, max_tokens=384, repetition_penalty=1.1),
        recipe=build_recipe(),
        suite=build_suite(),
        # optional: how to check an answer without a person, and prompts it can check (see verify.py)
        verifier=verify,
        practice=practice,
        version="0.1",
    )
