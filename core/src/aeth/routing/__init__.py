"""Routing: pick the specialist that should answer a prompt.

``embedder`` (MiniLM sentence embeddings, loaded lazily), ``cache`` (example embeddings on disk),
``index`` (those embeddings arranged to score a prompt against every specialist at once),
``router`` (:class:`~aeth.routing.router.EmbeddingRouter`) and ``calibrate`` (accuracy and a
confusion matrix). Nothing is imported here, so ``import aeth.routing`` stays cheap.
"""
