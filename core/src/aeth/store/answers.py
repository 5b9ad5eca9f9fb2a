"""An :class:`~aeth.app.Answer` that has finished, as the :class:`Interaction` the store records."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from aeth.store.rows import Interaction


def interaction_from_answer(answer: Any, source: str, *, key_id: str | None = None,
                            metadata: dict[str, Any] | None = None) -> Interaction:
    """The interaction for ``answer`` (its ``response`` must be set: the stream was read to the end).

    ``messages`` are what the model was sent (the specialist's system prompt, earlier turns, the
    prompt); ``machine_seconds`` is the generation's time, model loading excluded; ``latency_s``
    includes it. ``metadata`` is the request's (JSON-friendly, as :class:`~aeth.request.Request`
    asks), updated with the caller's ``metadata``.
    """
    from aeth.generation.prompt import build_messages

    response, request = answer.response, answer.request
    if response is None:
        raise ValueError("the answer has not finished: read it to the end before logging it")
    context = getattr(answer, "context", None)
    sampling = context.sampling if context is not None else answer.app.sampling(answer.specialist, request)
    stats = context.stats if context is not None else {}
    # the request's own metadata (what a verifier checks the answer against), then the caller's
    meta = {**(request.metadata or {}), **(metadata or {})}
    if request.images:
        meta["images"] = len(request.images)
    if response.quality:
        meta["quality"] = response.quality
    messages = build_messages(answer.specialist, request)
    if response.contributors:  # a composed reply: the user's turns (each contributor had its own system prompt)
        meta["contributors"] = response.contributors
        messages = [m for m in messages if m["role"] != "system"]
    return Interaction(
        messages=messages, answer=response.text, specialist=response.specialist,
        source=source, model=stats.get("model"), adapter=response.adapter, sampling=asdict(sampling),
        tokens_in=response.tokens_in, tokens_out=response.tokens_out, latency_s=response.seconds,
        ttft_s=getattr(answer, "ttft_s", None), machine_seconds=max(response.seconds - response.load_seconds, 0.0),
        finish_reason=response.finish_reason, key_id=key_id, route=route_of(answer.bid, answer.bids), metadata=meta,
    )


def route_of(bid: Any, bids: list[Any]) -> dict[str, Any]:
    """The routing decision as JSON: the winner, its reason, and every bid."""
    return {"specialist": bid.specialist, "reason": bid.reason, "score": bid.score, "plugin": bid.plugin,
            "bids": [{"specialist": b.specialist, "score": round(float(b.score), 4), "plugin": b.plugin, "reason": b.reason}
                     for b in bids]}
