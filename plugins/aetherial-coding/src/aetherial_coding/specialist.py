"""The ``coding`` specialist: what it is for, how it is tuned, and how it is trained and judged."""

from __future__ import annotations

from aeth import AdapterSpec, GenerationDefaults, Policy, Quality, Specialist
from aeth.datasets import package_file, read_prompts
from aetherial_coding.evals import build_suite
from aetherial_coding.quality import check
from aetherial_coding.recipe import build_recipe, practice
from aetherial_coding.verify import verify

SYSTEM_PROMPT = """\
You are an expert programming assistant. You write code, explain code, find and fix bugs, review \
code and write documentation, in any mainstream language. Put code in fenced blocks tagged with \
the language. Prefer simple, idiomatic, correct code that uses the standard library. When fixing a \
bug, say what was wrong and why the fix works. When reviewing, list concrete problems, most \
important first. If the request is ambiguous, state your assumption. Be concise."""


def build_specialist() -> Specialist:
    """The ``coding`` specialist as registered by the plugin."""
    return Specialist(
        name="coding",
        description="Writes, explains, debugs, reviews and documents code (Python, JavaScript, SQL, shell, Go, Rust, ...).",
        system_prompt=SYSTEM_PROMPT,
        routing_examples=read_prompts(package_file("aetherial_coding", "data/routing_examples.txt")),
        routing_heldout=read_prompts(package_file("aetherial_coding", "data/routing_heldout.txt")),
        adapter=AdapterSpec(r=16, alpha=32, dropout=0.05),
        # Code wants the likeliest token: low temperature, a tight nucleus. No repetition penalty:
        # code legitimately repeats names and punctuation.
        generation=GenerationDefaults(temperature=0.2, top_p=0.95, top_k=40, max_tokens=512, repetition_penalty=1.0),
        recipe=build_recipe(),
        suite=build_suite(),
        # answers to prompts that carry tests are checked by running them in the sandbox
        verifier=verify,
        practice=practice,
        # keys, tokens and private keys in answers are masked (code answers echo config files and .env lines)
        policy=Policy(secrets="mask"),
        # code that does not parse or fails its own doctests (or the prompt's tests) is regenerated, up to 3 answers
        quality=Quality(check=check, method="retry", k=3),
        version="0.1",
    )
