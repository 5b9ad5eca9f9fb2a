"""The ``vision-seed`` dataset recipe: chat records about synthetic images bundled with the package.

Records are ``{"messages": [...], "images": [...]}``. ``images`` is an extra key beside the
chat (aeth's record validation checks ``messages`` and keeps other keys): in ``seed.jsonl`` the
paths are relative to the data directory (``images/shapes-001.png``); the recipe yields them as
absolute paths, so a trainer can open them wherever the package is installed. The train /
validation split is by the hash of the messages alone (aeth's rule), so the images never move a
record across it. :mod:`aetherial_vision.synth` regenerates the data deterministically.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

from aeth import DatasetRecipe
from aeth.datasets import package_file

SEED_FILE = "data/seed.jsonl"


def load_seed() -> Iterator[dict]:
    """Yield the bundled seed records, image paths made absolute."""
    path = package_file("aetherial_vision", SEED_FILE)
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            record = json.loads(line)
            record["images"] = [str(path.parent / image) for image in record.get("images", [])]
            yield record


def build_recipe() -> DatasetRecipe:
    """The recipe the ``vision`` specialist trains on."""
    return DatasetRecipe(
        name="vision-seed",
        version="0.1",
        load=load_seed,
        description="Questions and answers about synthetic images (shapes, signs, labels, receipts, notices, "
                    "tickets, bar charts, colour rows, traffic lights), correct by construction: description, "
                    "visual Q&A, reading text and classification. Each record carries its image paths in 'images'.",
    )
