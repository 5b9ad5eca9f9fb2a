"""Refuse model directories that are not safe to load: aeth loads safetensors weights only.

Pickle-based checkpoints (``pytorch_model.bin``, ``*.pt``, ``*.pkl``, ...) can run arbitrary code
when they are unpickled, so aeth never opens them, whatever their origin. This module only looks at
file *names* (and the JSON index of a sharded checkpoint); it never reads a weight file.
"""

from __future__ import annotations

import json
from pathlib import Path

from aeth.errors import ModelError

#: Suffixes of weight formats that are (or may be) Python pickles.
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt")
SAFETENSORS_INDEX = "model.safetensors.index.json"

_HOW_TO_CONVERT = (
    "convert it to safetensors once, in an environment you trust, e.g. "
    "`AutoModelForCausalLM.from_pretrained(src).save_pretrained(dst, safe_serialization=True)`, "
    "or use a hub revision that ships *.safetensors files"
)


def check_model_dir(path: Path) -> None:
    """Raise :class:`ModelError` unless ``path`` is a model directory aeth may load.

    It must hold ``config.json`` and safetensors weights: ``*.safetensors`` files, or the shards
    named by ``model.safetensors.index.json``. A directory with only pickle-based weights is
    refused with an explanation; those files are never opened.
    """
    path = Path(path)
    if not path.is_dir():
        raise ModelError(f"model directory {path} does not exist or is not a directory")

    names = sorted(p.name for p in path.iterdir() if p.is_file())
    safetensors = [n for n in names if n.endswith(".safetensors")]
    pickles = [n for n in names if n.lower().endswith(PICKLE_SUFFIXES)]

    if not safetensors:
        if pickles:
            found = ", ".join(pickles)
            raise ModelError(
                f"refusing to load {path}: its weights are pickle files ({found}) and no *.safetensors. "
                "Unpickling a file can run arbitrary code, so aeth loads safetensors only and never opens "
                f"these files. To use this model, {_HOW_TO_CONVERT}."
            )
        raise ModelError(
            f"{path} holds no model weights: expected *.safetensors files (or shards listed in "
            f"{SAFETENSORS_INDEX}). Point at a directory written by `save_pretrained`, a hub id, or a "
            "built-in model such as smollm2-135m-instruct."
        )

    index = path / SAFETENSORS_INDEX
    if index.is_file():
        try:
            shards = set(json.loads(index.read_text())["weight_map"].values())
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
            raise ModelError(f"{index} is not a valid safetensors index ({e}); re-save or re-download the model") from e
        missing = sorted(s for s in shards if not (path / s).is_file())
        if missing:
            raise ModelError(
                f"{path} is incomplete: {SAFETENSORS_INDEX} lists {len(missing)} shard(s) that are missing "
                f"({', '.join(missing[:3])}{', ...' if len(missing) > 3 else ''}); re-download or re-save the model"
            )

    if "config.json" not in names:
        raise ModelError(
            f"{path} has weights but no config.json, so the architecture is unknown. Save the model with "
            "`save_pretrained` (which writes config.json), or point at the directory that contains it."
        )
