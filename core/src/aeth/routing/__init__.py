"""Routing: pick the specialist that should answer a prompt.

``embedder`` (MiniLM sentence embeddings, loaded lazily), ``cache`` (example embeddings on disk),
``router`` (:class:`~aeth.routing.router.EmbeddingRouter`) and ``calibrate`` (accuracy and a
confusion matrix). Nothing is imported here, so ``import aeth.routing`` stays cheap.
"""
