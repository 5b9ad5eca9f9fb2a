"""The ``coding-seed`` dataset recipe: hand-written chat records bundled with the package; and the
practice prompts the ``coding`` verifier can check, taken from the same records."""

from __future__ import annotations

import ast
import functools
import hashlib
import json
import random

from aeth import DatasetRecipe, Request
from aeth.datasets import package_file, read_records
from aetherial_coding.evals import python_blocks
from aetherial_coding.prompt_tests import Tests, find_tests, parse

SEED_FILE = "data/seed.jsonl"
RECIPE_NAME = "coding-seed"
PRACTICE_INTRO = "Your code must pass these tests:"


def load_seed() -> list[dict]:
    """The bundled seed records (``{"messages": [...]}``); a malformed line is reported with its number."""
    return read_records(package_file("aetherial_coding", SEED_FILE))


def build_recipe() -> DatasetRecipe:
    """The recipe the ``coding`` specialist trains on."""
    return DatasetRecipe(
        name=RECIPE_NAME,
        version="0.1",
        load=load_seed,
        description="Hand-written coding conversations: generation, explanation, debugging, review and "
                    "documentation, in Python, JavaScript/TypeScript, SQL, shell, Go, Rust and C.",
    )


# ---- practice prompts (for self-improvement) ----------------------------------------------------


def _defined(answer: str) -> set[str]:
    """Functions and classes the answer's Python code blocks define at top level."""
    trees = (parse(b) for b in python_blocks(answer))
    return {n.name for t in trees if t is not None for n in t.body
            if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))}


@functools.cache
def practice_candidates() -> tuple[tuple[str, str, str, Tests], ...]:
    """``(record key, prompt, reference answer, tests)`` for each training-side seed record whose
    reference answer carries tests (asserts or doctest examples in its Python code) of something it
    defines; in record-key order. Validation records stay out: they are held out."""
    train, _validation = build_recipe().split()
    out = []
    for record in train:
        messages = record["messages"]
        users = [m["content"] for m in messages if m["role"] == "user"]
        if len(users) != 1:  # a follow-up turn makes no prompt on its own
            continue
        reference = messages[-1]["content"]
        tests = find_tests(reference)
        if tests and tests.names() & _defined(reference):
            key = hashlib.sha256(json.dumps(messages, sort_keys=True, ensure_ascii=False).encode()).hexdigest()
            out.append((key, users[0], reference, tests))
    return tuple(sorted(out, key=lambda c: c[0]))


def practice_request(key: str, prompt: str, tests: Tests) -> Request:
    """The practice request for one candidate: the prompt with its tests shown, and the tests to run."""
    return Request(prompt=f"{prompt}\n\n{PRACTICE_INTRO}\n\n{tests.markdown()}", specialist="coding",
                   metadata={"verify": {"tests": tests.code()}, "practice": {"recipe": RECIPE_NAME, "record": key[:16]}})


@functools.cache
def _reference_passes(key: str) -> bool:
    from aetherial_coding.verify import verify

    key_, prompt, reference, tests = next(c for c in practice_candidates() if c[0] == key)
    return verify(practice_request(key_, prompt, tests), reference) == 1.0


def practice(n: int, seed: int = 0) -> list[Request]:
    """Up to ``n`` coding prompts with tests, drawn with ``seed`` from the seed recipe's training side.

    Each is a seed prompt whose reference answer carries tests of the code it defines (asserts or
    doctest examples): the prompt shows the tests and ``metadata["verify"]["tests"]`` carries them
    runnable. A candidate is kept only when its own reference answer passes its tests in the
    sandbox (a test that opens a file the sandbox does not have is no test), so every practice
    prompt can be solved. HumanEval, the eval, is never used; the recipe's validation records
    neither. There are a few dozen such prompts: a larger ``n`` gets all of them.
    """
    if n <= 0:
        return []
    order = list(practice_candidates())
    random.Random(seed).shuffle(order)
    out = []
    for key, prompt, _reference, tests in order:
        if _reference_passes(key):
            out.append(practice_request(key, prompt, tests))
            if len(out) == n:
                break
    return out
