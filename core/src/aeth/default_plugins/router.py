"""The default router: bids by embedding similarity between the prompt and routing examples.

Settings come from the active configuration: ``router.threshold``, ``router.fallback``,
``router.top_k`` and ``home`` (where example embeddings are cached). Another plugin can add its
own ``route`` bids next to these; core picks the highest bid of all. Nothing heavy is imported
here: the embedding model loads on the first routed prompt.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from aeth.hookspecs import hookimpl

if TYPE_CHECKING:
    from aeth.routing.router import EmbeddingRouter

PLUGIN = "aeth.router"

_router: EmbeddingRouter | None = None
_settings: tuple | None = None
_lock = threading.Lock()


def get_router() -> EmbeddingRouter:
    """The router for the active configuration, rebuilt when its settings change."""
    global _router, _settings
    from aeth import runtime
    from aeth.routing.embedder import get_embedder
    from aeth.routing.router import EmbeddingRouter

    cfg = runtime.config()
    settings = (str(cfg.home), cfg["router.threshold"], cfg["router.fallback"], cfg["router.top_k"])
    with _lock:
        if _router is None or settings != _settings:
            _router = EmbeddingRouter(get_embedder(), cfg.home, threshold=settings[1], fallback=settings[2],
                                      top_k=settings[3], plugin=PLUGIN)
            _settings = settings
        return _router


@hookimpl
def route(request, specialists):
    """Bid for every specialist with routing examples; abstain on an empty prompt."""
    if not request.prompt or not request.prompt.strip():
        return None
    return get_router().rank(request.prompt, specialists)
