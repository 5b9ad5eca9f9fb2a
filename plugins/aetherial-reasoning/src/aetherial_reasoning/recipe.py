"""The ``reasoning-seed`` dataset recipe: hand-written chat records bundled with the package."""

from __future__ import annotations

from aeth import DatasetRecipe
from aeth.datasets import package_file, read_records

SEED_FILE = "data/seed.jsonl"


def load_seed() -> list[dict]:
    """The bundled seed records (``{"messages": [...]}``); a malformed line is reported with its number."""
    return read_records(package_file("aetherial_reasoning", SEED_FILE))


def build_recipe() -> DatasetRecipe:
    """The recipe the ``reasoning`` specialist trains on (deterministic 90/10 split by content hash)."""
    return DatasetRecipe(
        name="reasoning-seed",
        version="0.1",
        load=load_seed,
        description="Hand-written reasoning conversations covering reasoning: math word problems, logic puzzles, analysis and planning.",
    )
