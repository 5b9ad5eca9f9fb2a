"""Content hashes that tie an adapter version to exactly what made it: base weights and training data.

``model_hash`` hashes a model directory's weights and config (SHA-256 over file names and bytes);
reading gigabytes takes a while, so results are remembered in ``$AETH_HOME/cache/model-hashes.json``
keyed by each file's size and modification time. ``records_hash`` hashes training records in a
canonical JSON form, so the same data gives the same hash whatever file it came from.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from pathlib import Path

#: files of a model directory whose bytes define it (weights, config, tokenizer)
_MODEL_FILES = ("*.safetensors", "*.gguf", "config.json", "tokenizer.json", "tokenizer_config.json")


def model_hash(directory: Path, cache_dir: Path | None = None) -> str:
    """``sha256:<hex>`` of the model in ``directory`` (cached by file size and mtime under ``cache_dir``)."""
    directory = Path(directory)
    files = sorted({f for pattern in _MODEL_FILES for f in directory.glob(pattern) if f.is_file()})
    stamp = [[f.name, f.stat().st_size, f.stat().st_mtime_ns] for f in files]
    cache = Path(cache_dir) / "model-hashes.json" if cache_dir else None
    known = {}
    if cache is not None and cache.is_file():
        try:
            known = json.loads(cache.read_text())
        except ValueError:
            known = {}
    entry = known.get(str(directory.resolve()))
    if entry and entry["files"] == stamp:
        return entry["hash"]
    digest = hashlib.sha256()
    for f in files:
        digest.update(f.name.encode() + b"\0")
        with open(f, "rb") as handle:
            while chunk := handle.read(1 << 22):
                digest.update(chunk)
    value = f"sha256:{digest.hexdigest()}"
    if cache is not None:
        from aeth.atomic import write_text

        cache.parent.mkdir(parents=True, exist_ok=True)
        known[str(directory.resolve())] = {"files": stamp, "hash": value}
        write_text(cache, json.dumps(known, indent=1))
    return value


def records_hash(records: Iterable[dict]) -> str:
    """``sha256:<hex>`` of records in order, each as canonical JSON (sorted keys, no spaces)."""
    digest = hashlib.sha256()
    for record in records:
        digest.update(json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode() + b"\n")
    return f"sha256:{digest.hexdigest()}"
