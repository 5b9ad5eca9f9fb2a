"""The ``reasoning`` specialist: what it is for, how it is tuned, and how it is trained and judged."""

from __future__ import annotations

from aeth import AdapterSpec, GenerationDefaults, Specialist
from aeth.datasets import package_file, read_prompts
from aetherial_reasoning.evals import build_suite
from aetherial_reasoning.recipe import build_recipe

SYSTEM_PROMPT = """\
You are a careful reasoner. Solve math word problems, logic puzzles, analysis questions and \
planning tasks step by step: state what is known, work through each step briefly, and check the \
result. When the problem has a definite answer, end with a final line of the form 'Answer: \
<result>'. For analysis and planning, end with a short conclusion or the plan. Never guess \
silently: if information is missing, say what you assume."""


def build_specialist() -> Specialist:
    """The ``reasoning`` specialist as registered by the plugin."""
    return Specialist(
        name="reasoning",
        description="Solves math word problems and logic puzzles, analyses options and makes plans, step by step.",
        system_prompt=SYSTEM_PROMPT,
        routing_examples=read_prompts(package_file("aetherial_reasoning", "data/routing_examples.txt")),
        routing_heldout=read_prompts(package_file("aetherial_reasoning", "data/routing_heldout.txt")),
        adapter=AdapterSpec(r=16, alpha=32, dropout=0.05),
        generation=GenerationDefaults(temperature=0.2, top_p=0.95, top_k=50, max_tokens=512, repetition_penalty=1.0),
        recipe=build_recipe(),
        suite=build_suite(),
        version="0.1",
    )
