"""Training checkpoints that survive anything, and never need unpickling.

A checkpoint is a directory ``<run>/checkpoints/step-<N>/`` holding ``adapter.safetensors`` (the
trainable weights), ``optimizer.safetensors`` (every optimizer state tensor) and ``state.json``
(step, data position, optimizer hyperparameters and scalar state, RNG states, metrics). It is
written to a temporary directory, fsynced and renamed, and ``state.json`` is written last inside
it, so a directory without it is torn and is never loaded. Only the newest ``keep`` are kept.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

from aeth.atomic import fsync_dir, fsync_tree

STATE = "state.json"


def checkpoint_dirs(run_dir: Path) -> list[Path]:
    """Complete checkpoints of a run, oldest first."""
    root = Path(run_dir) / "checkpoints"
    found = [d for d in root.glob("step-*") if d.is_dir() and (d / STATE).is_file() and d.name[5:].isdigit()]
    return sorted(found, key=lambda d: int(d.name[5:]))


def _remove(path: Path) -> None:
    """Delete a checkpoint directory, ``state.json`` first: a kill (or a second Ctrl-C) in the middle
    must leave a torn directory, never one that still looks complete with a weights file gone."""
    (path / STATE).unlink(missing_ok=True)
    shutil.rmtree(path, ignore_errors=True)


def latest(run_dir: Path) -> Path | None:
    """The newest complete checkpoint, or None."""
    found = checkpoint_dirs(run_dir)
    return found[-1] if found else None


def _optimizer_tensors(state: dict) -> tuple[dict, dict]:
    """Optimizer state split into tensors and JSON scalars, keyed ``index.key`` (nested dicts, such
    as bitsandbytes' 8-bit quantization state, as ``index.key.subkey``)."""
    tensors, scalars = {}, {}

    def walk(prefix: str, entries: dict) -> None:
        for key, value in entries.items():
            name = f"{prefix}.{key}"
            if isinstance(value, dict):
                walk(name, value)
            elif hasattr(value, "shape"):
                tensors[name] = value.detach().cpu().contiguous()
            else:
                scalars[name] = value

    for index, entries in state["state"].items():
        walk(str(index), entries)
    return tensors, {"param_groups": state["param_groups"], "scalars": scalars}


def _nest(target: dict, dotted: str, value: Any) -> None:
    *parents, leaf = dotted.split(".")
    for part in parents:
        target = target.setdefault(part, {})
    target[leaf] = value


def save(run_dir: Path, step: int, trainable: dict, optimizer_state: dict, state: dict, keep: int = 3,
         rng: list | None = None) -> Path:
    """Write checkpoint ``step`` atomically and drop all but the newest ``keep``.

    ``trainable`` maps parameter names to whole tensors and ``optimizer_state`` is a one-process
    ``optimizer.state_dict()`` (see :func:`aeth.training.distributed.full_state`). ``rng`` lists
    the torch RNG state of every rank (default: this process's current one); an interrupted step
    records the states from its start, so the resumed run redraws exactly what it would have.
    """
    import torch
    from safetensors.torch import save_file

    root = Path(run_dir) / "checkpoints"
    root.mkdir(parents=True, exist_ok=True)
    target = root / f"step-{step}"
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-step-{step}-", dir=root))
    try:
        save_file({k: v.detach().cpu().contiguous() for k, v in trainable.items()}, str(tmp / "adapter.safetensors"))
        tensors, optimizer_meta = _optimizer_tensors(optimizer_state)
        save_file(tensors, str(tmp / "optimizer.safetensors"))
        ranks = [torch.get_rng_state().tolist()] if rng is None else rng
        (tmp / STATE).write_text(json.dumps({**state, "step": step, "optimizer": optimizer_meta,
                                             "rng": {"torch": ranks[0], "torch_ranks": ranks}}))
        fsync_tree(tmp)
        if target.exists():  # the same step again (Ctrl-C just after a save or a resume), or a torn leftover
            _remove(target)
        tmp.rename(target)
        fsync_dir(root)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    for old in checkpoint_dirs(run_dir)[:-keep]:
        _remove(old)
    for torn in root.glob(".tmp-step-*"):  # left by a process killed mid-write
        shutil.rmtree(torn, ignore_errors=True)
    return target


def read(path: Path, rank: int = 0) -> tuple[dict, dict, dict]:
    """(state, trainable weights, optimizer state dict) of checkpoint ``path``, and restore the
    torch RNG of ``rank`` (rank 0's when the run had fewer processes)."""
    import torch
    from safetensors.torch import load_file

    state = json.loads((Path(path) / STATE).read_text())
    weights = load_file(str(Path(path) / "adapter.safetensors"))
    tensors = load_file(str(Path(path) / "optimizer.safetensors"))
    meta = state["optimizer"]
    per_param: dict[int, dict] = {}
    for key, value in [*tensors.items(), *meta["scalars"].items()]:
        index, name = key.split(".", 1)
        _nest(per_param.setdefault(int(index), {}), name, value)
    ranks = state["rng"].get("torch_ranks") or [state["rng"]["torch"]]
    torch.set_rng_state(torch.tensor(ranks[rank] if rank < len(ranks) else ranks[0], dtype=torch.uint8))
    return state, weights, {"state": per_param, "param_groups": meta["param_groups"]}


def check_fits(path: Path, weights: dict, names: set[str]) -> None:
    """Refuse a checkpoint whose weights are not this model's trainable parameters."""
    missing = [k for k in weights if k not in names]
    if missing:
        from aeth.errors import AethError

        raise AethError(f"checkpoint {path} does not fit this model (e.g. {missing[0]}); resume with the same base and adapter spec")
