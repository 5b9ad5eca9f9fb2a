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


def latest(run_dir: Path) -> Path | None:
    """The newest complete checkpoint, or None."""
    found = checkpoint_dirs(run_dir)
    return found[-1] if found else None


def _optimizer_tensors(optimizer: Any) -> tuple[dict, dict]:
    state = optimizer.state_dict()
    tensors, scalars = {}, {}
    for index, entries in state["state"].items():
        for key, value in entries.items():
            if hasattr(value, "shape"):
                tensors[f"{index}.{key}"] = value.detach().cpu().contiguous()
            else:
                scalars[f"{index}.{key}"] = value
    return tensors, {"param_groups": state["param_groups"], "scalars": scalars}


def save(run_dir: Path, step: int, trainable: dict, optimizer: Any, state: dict, keep: int = 3, rng: Any = None) -> Path:
    """Write checkpoint ``step`` atomically and drop all but the newest ``keep``.

    ``rng`` is the torch RNG state to record (default: the current one); an interrupted step
    records the state from its start, so the resumed run redraws exactly what it would have.
    """
    import torch
    from safetensors.torch import save_file

    root = Path(run_dir) / "checkpoints"
    root.mkdir(parents=True, exist_ok=True)
    target = root / f"step-{step}"
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-step-{step}-", dir=root))
    try:
        save_file({k: v.detach().cpu().contiguous() for k, v in trainable.items()}, str(tmp / "adapter.safetensors"))
        tensors, optimizer_meta = _optimizer_tensors(optimizer)
        save_file(tensors, str(tmp / "optimizer.safetensors"))
        rng = {"torch": (torch.get_rng_state() if rng is None else rng).tolist()}
        (tmp / STATE).write_text(json.dumps({**state, "step": step, "optimizer": optimizer_meta, "rng": rng}))
        fsync_tree(tmp)
        if target.exists():  # a torn leftover of the same step from a crash
            shutil.rmtree(target)
        tmp.rename(target)
        fsync_dir(root)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    for old in checkpoint_dirs(run_dir)[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    for torn in root.glob(".tmp-step-*"):  # left by a process killed mid-write
        shutil.rmtree(torn, ignore_errors=True)
    return target


def load(path: Path, model: Any, optimizer: Any) -> dict:
    """Restore trainable weights, optimizer state and RNG from checkpoint ``path``; return its state."""
    import torch
    from safetensors.torch import load_file

    state = json.loads((Path(path) / STATE).read_text())
    weights = load_file(str(Path(path) / "adapter.safetensors"))
    named = dict(model.named_parameters())
    missing = [k for k in weights if k not in named]
    if missing:
        from aeth.errors import AethError

        raise AethError(f"checkpoint {path} does not fit this model (e.g. {missing[0]}); resume with the same base and adapter spec")
    with torch.no_grad():
        for key, value in weights.items():
            named[key].copy_(value)
    tensors = load_file(str(Path(path) / "optimizer.safetensors"))
    meta = state["optimizer"]
    per_param: dict[int, dict] = {}
    for key, value in tensors.items():
        index, name = key.split(".", 1)
        per_param.setdefault(int(index), {})[name] = value
    for key, value in meta["scalars"].items():
        index, name = key.split(".", 1)
        per_param.setdefault(int(index), {})[name] = value
    optimizer.load_state_dict({"state": per_param, "param_groups": meta["param_groups"]})
    torch.set_rng_state(torch.tensor(state["rng"]["torch"], dtype=torch.uint8))
    return state
