"""The ``coding-seed`` dataset recipe: hand-written chat records bundled with the package."""

from __future__ import annotations

import json
from collections.abc import Iterator
from importlib.resources import files

from aeth import DatasetRecipe

SEED_FILE = "data/seed.jsonl"


def load_seed() -> Iterator[dict]:
    """Yield the bundled seed records (``{"messages": [...]}``), one per line of ``seed.jsonl``."""
    text = files("aetherial_coding").joinpath(SEED_FILE).read_text(encoding="utf-8")
    for line in text.splitlines():
        if line.strip():
            yield json.loads(line)


def build_recipe() -> DatasetRecipe:
    """The recipe the ``coding`` specialist trains on."""
    return DatasetRecipe(
        name="coding-seed",
        version="0.1",
        load=load_seed,
        description="Hand-written coding conversations: generation, explanation, debugging, review and "
                    "documentation, in Python, JavaScript/TypeScript, SQL, shell, Go, Rust and C.",
    )
