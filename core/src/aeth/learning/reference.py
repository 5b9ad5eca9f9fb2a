"""The reference model's log-probabilities: computed once, before the first step, and kept in the run.

DPO and KTO measure the trained model against a frozen *reference*. aeth scores every train and
validation sequence with it once, at setup, and attaches the numbers to the pairs and examples
(trl's ``precompute_ref_log_probs``): no second model in memory and no reference forward per step.
The reference is the model as the run starts:

- ``reference="active"``: the LoRA the run starts from (``plan.init_adapter``, the active adapter
  version: learning builds on what serves), or the base when the LoRA is fresh (it starts at zero);
- ``reference="base"``: the bare base model, the adapter disabled while scoring.

The numbers are written to ``<run>/reference_logps.json`` (plain JSON, atomically; floats round-trip
exactly, and nothing is unpickled) with a fingerprint of the token ids, the reference kind and the
starting adapter. ``--resume`` reads them back instead of recomputing; a file whose fingerprint does
not match (the data changed) is recomputed from the model as it was set up, which is the same
reference: setup always rebuilds the starting weights, and a checkpoint is loaded only afterwards.
"""

from __future__ import annotations

import hashlib
import json
from contextlib import nullcontext
from pathlib import Path
from typing import Any

from aeth.atomic import write_text

#: the file in a run directory holding the reference log-probabilities
REFERENCE_FILE = "reference_logps.json"


def fingerprint(items: list, describe: dict) -> str:
    """A hash of every sequence's token ids and labels, and of ``describe`` (objective, reference, adapter)."""
    digest = hashlib.sha256(json.dumps(describe, sort_keys=True).encode())
    for item in items:
        for seq in item.sequences:
            digest.update(json.dumps([seq.input_ids, seq.labels]).encode())
    return digest.hexdigest()


def score(model: Any, items: list, pad_id: int, batch_size: int, reference: str, sparse: bool,
          progress: bool = False) -> list[list[float]]:
    """The reference log-probability of each item's sequences (``item.sequences``), in order.

    ``model`` is the PEFT model before training; with ``reference="base"`` its adapter is disabled
    while scoring. Scored in eval mode (no dropout) without gradients; the model's mode is restored.
    """
    import torch

    from aeth.learning.losses import sequence_logps
    from aeth.progress import Progress

    was_training = model.training
    model.eval()
    scored: list[list[float]] = []
    context = model.disable_adapter() if reference == "base" else nullcontext()
    try:
        with torch.no_grad(), context, Progress("reference", len(items), unit="examples", show=progress) as bar:
            for start in range(0, len(items), batch_size):
                chunk = items[start:start + batch_size]
                width = len(chunk[0].sequences)
                # the k-th sequence of every item in one batch (chosen with chosen, as trl's batches are)
                columns = [sequence_logps(model, [item.sequences[k] for item in chunk], pad_id, sparse).tolist()
                           for k in range(width)]
                scored += [[columns[k][i] for k in range(width)] for i in range(len(chunk))]
                bar.update(len(scored))
    finally:
        model.train(was_training)
    return scored


def prepare(model: Any, splits: dict[str, list], run_dir: Path, describe: dict, *, pad_id: int, batch_size: int,
            reference: str, sparse: bool, dist: Any, progress: bool = False) -> dict[str, list]:
    """``splits`` (``{"train": items, "validation": items}``) with their reference log-probabilities
    attached (``item.with_reference``): read from ``<run>/reference_logps.json`` when its
    fingerprints match (rank 0 reads it and sends it to the others), else scored with ``model`` by
    every rank (each holds the whole starting model: no collective while scoring) and written by rank 0."""
    path = Path(run_dir) / REFERENCE_FILE
    prints = {name: fingerprint(items, describe) for name, items in splits.items()}
    saved = _read(path) if dist.main else None
    # rank 0 reads and decides for all (a rank that looked later could find the file rank 0 is writing)
    saved = dist.broadcast(saved if saved is not None and saved.get("fingerprints") == prints else None)
    if saved is None:
        saved = {"format": 1, **describe, "fingerprints": prints,
                 **{name: score(model, items, pad_id, batch_size, reference, sparse, progress and dist.main)
                    for name, items in splits.items()}}
        if dist.main:
            write_text(path, json.dumps(saved))
        dist.barrier()
    return {name: [item.with_reference(*values) for item, values in zip(items, saved[name], strict=True)]
            for name, items in splits.items()}


def _read(path: Path) -> dict | None:
    """The saved reference log-probabilities, or None (missing, or torn by a kill before the rename)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and data.get("format") == 1 else None
