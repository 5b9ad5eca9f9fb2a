"""The specialist: name, prompt, routing examples, adapter, generation defaults, data and evals."""

from __future__ import annotations

from importlib.resources import files

from aeth import AdapterSpec, GenerationDefaults, Specialist
from aetherial_example.evals import build_suite
from aetherial_example.recipe import build_recipe

SYSTEM_PROMPT = """\
You are a friendly, practical home-cooking assistant. Give clear recipes with quantities and \
steps, explain techniques simply, suggest substitutions, and mention food-safety points such as \
safe cooking temperatures when they matter. Be concise."""


def routing_examples() -> tuple[str, ...]:
    """Prompts this specialist should answer, one per line of ``data/routing_examples.txt``.

    The router embeds these and sends a prompt here when it is close to them: write at least 40,
    varied and realistic, covering everything the specialist is for.
    """
    text = files("aetherial_example").joinpath("data/routing_examples.txt").read_text(encoding="utf-8")
    return tuple(line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#"))


def build_specialist() -> Specialist:
    """The specialist as registered by the plugin."""
    return Specialist(
        name="cooking",  # RENAME: lowercase letters, digits and '-'; what users type after `-s`
        description="Home cooking: recipes, techniques, substitutions and kitchen questions.",
        system_prompt=SYSTEM_PROMPT,
        routing_examples=routing_examples(),
        adapter=AdapterSpec(r=8, alpha=16, dropout=0.05),  # a narrow domain needs only a small adapter
        generation=GenerationDefaults(temperature=0.5, top_p=0.9, top_k=50, max_tokens=384, repetition_penalty=1.1),
        recipe=build_recipe(),
        suite=build_suite(),
        version="0.1",
    )
