"""The ``coding-seed`` dataset recipe: hand-written chat records bundled with the package."""

from __future__ import annotations

from aeth import DatasetRecipe
from aeth.datasets import package_file, read_records

SEED_FILE = "data/seed.jsonl"


def load_seed() -> list[dict]:
    """The bundled seed records (``{"messages": [...]}``); a malformed line is reported with its number."""
    return read_records(package_file("aetherial_coding", SEED_FILE))


def build_recipe() -> DatasetRecipe:
    """The recipe the ``coding`` specialist trains on."""
    return DatasetRecipe(
        name="coding-seed",
        version="0.1",
        load=load_seed,
        description="Hand-written coding conversations: generation, explanation, debugging, review and "
                    "documentation, in Python, JavaScript/TypeScript, SQL, shell, Go, Rust and C.",
    )
