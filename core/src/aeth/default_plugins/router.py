"""The default router: bids by embedding similarity between the prompt and routing examples.

Settings come from the answering application's config: ``router.threshold``, ``router.fallback``,
``router.top_k`` and ``home`` (where example embeddings are cached); each application keeps its
own router. Another plugin can add its own ``route`` bids next to these; core picks the highest bid
of all. Nothing heavy is imported here: the embedding model loads on the first routed prompt.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aeth.hookspecs import hookimpl

if TYPE_CHECKING:
    from aeth.routing.router import EmbeddingRouter

PLUGIN = "aeth.router"


def get_router(app) -> EmbeddingRouter:
    """``app``'s router, built from its settings on first use."""
    def build() -> EmbeddingRouter:
        from aeth.routing.embedder import get_embedder
        from aeth.routing.router import EmbeddingRouter

        cfg = app.config
        return EmbeddingRouter(get_embedder(), cfg.home, threshold=cfg["router.threshold"],
                               fallback=cfg["router.fallback"], top_k=cfg["router.top_k"], plugin=PLUGIN)

    return app.state(f"{PLUGIN}.router", build)


@hookimpl
def route(request, specialists, app):
    """Bid for every specialist with routing examples; abstain on an empty prompt."""
    if not request.prompt or not request.prompt.strip():
        return None
    return get_router(app).rank(request.prompt, specialists)
