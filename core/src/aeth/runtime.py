"""Process-wide state: the active configuration and the shared model pool.

The CLI (or an application through :class:`aeth.app.Aeth`) sets the configuration once; plugins
read it with :func:`config`. Models are loaded once per process and shared by every specialist on
the same base (:func:`models`).
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from aeth.config import Config, load_config

if TYPE_CHECKING:
    from aeth.models.pool import ModelPool

_config: Config | None = None
_models: ModelPool | None = None
_lock = threading.RLock()  # worker threads (teachers, servers) may ask for the pool at once


def config() -> Config:
    """The active configuration (loaded from the usual sources on first use)."""
    global _config
    with _lock:
        if _config is None:
            _config = load_config()
        return _config


def set_config(cfg: Config) -> None:
    """Make ``cfg`` the active configuration; a model pool built for another one is dropped."""
    global _config, _models
    if _config is not cfg:
        _models = None
        # plugins may register differently under another config (the general specialist's base
        # model is model.default), so registries are rebuilt on next use
        from aeth.plugins import invalidate_registries

        invalidate_registries()
    _config = cfg


def models() -> ModelPool:
    """The process-wide model pool for the active configuration (one, whichever thread asks first)."""
    global _models
    with _lock:
        if _models is None:
            from aeth.models.pool import ModelPool

            _models = ModelPool(config())
        return _models


def reset() -> None:
    """Forget configuration and loaded models (tests use this between cases)."""
    global _config, _models
    _config = _models = None
    from aeth.plugins import invalidate_registries

    invalidate_registries()  # specialists and teachers registered under the old config
