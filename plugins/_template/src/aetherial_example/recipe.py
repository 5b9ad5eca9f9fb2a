"""The dataset recipe: chat records to fine-tune on, bundled with the package as JSONL."""

from __future__ import annotations

import json
from collections.abc import Iterator
from importlib.resources import files

from aeth import DatasetRecipe


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
