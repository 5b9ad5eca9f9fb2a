"""The dataset recipe: chat records to fine-tune on, bundled with the package as JSONL."""

from __future__ import annotations

import json
from collections.abc import Iterator
from importlib.resources import files

from aeth import DatasetRecipe, Request


def load_seed() -> Iterator[dict]:
    """Yield ``{"messages": [{"role", "content"}, ...]}`` records, one per line of ``data/seed.jsonl``."""
    text = files("aetherial_example").joinpath("data/seed.jsonl").read_text(encoding="utf-8")
    for line in text.splitlines():
        if line.strip():
            yield json.loads(line)


def build_recipe() -> DatasetRecipe:
    """The recipe the specialist trains on.

    aeth splits it deterministically by content hash; with few records a larger
    ``validation_fraction`` keeps the validation side from being empty.
    """
    return DatasetRecipe(
        name="cooking-seed",
        version="0.1",
        load=load_seed,
        description="Hand-written home-cooking conversations: recipes, techniques, substitutions, food safety.",
        validation_fraction=0.2,
    )


# Practice prompts: questions the verifier can check, for self-improvement (`aeth learn cooking
# --self` answers them, keeps the answers the verifier accepts and trains on them). Never reuse an
# eval case here: the eval must keep measuring questions the model has not practised.
PRACTICE: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("What internal temperature should a pork chop reach?", ("63", "145")),
    ("What can I use instead of buttermilk in pancakes?", ("lemon", "vinegar", "yogurt", "kefir")),
    ("How do I stop pasta from sticking together?", ("stir", "water", "salt")),
    ("What makes bread dough rise?", ("yeast", "gas", "carbon dioxide")),
)


def practice(n: int, seed: int = 0) -> list[Request]:
    """Up to ``n`` requests the verifier can check (``metadata["verify"]["keywords"]``), the same for
    the same ``seed``; this small list rotates by the seed."""
    start = seed % len(PRACTICE)
    rotated = PRACTICE[start:] + PRACTICE[:start]
    return [Request(prompt=prompt, specialist="cooking", metadata={"verify": {"keywords": list(terms)}})  # RENAME
            for prompt, terms in rotated[:max(n, 0)]]
