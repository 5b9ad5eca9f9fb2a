"""Pick the next token from logits: repetition penalty, temperature, top-k, top-p."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aeth.request import Sampling

if TYPE_CHECKING:
    import torch

    from aeth.specialist import Specialist


def eval_sampling(specialist: Specialist, temperature: float, max_tokens: int, seed: int) -> Sampling:
    """Sampling for judging ``specialist``: the given temperature, length and seed, its own
    top-p, top-k and repetition penalty (what evals and eval-style answerers use)."""
    d = specialist.generation
    return Sampling(temperature=temperature, top_p=d.top_p, top_k=d.top_k, max_tokens=max_tokens,
                    repetition_penalty=d.repetition_penalty, seed=seed)


def next_token(logits: torch.Tensor, sampling: Sampling, generator: torch.Generator | None,
               previous: torch.Tensor | None = None) -> int:
    """Choose one token id from a 1-D logits vector.

    ``previous`` holds the ids generated so far (for the repetition penalty, applied CTRL-style:
    positive logits divided, negative multiplied). Temperature 0 means greedy.
    """
    import torch

    logits = logits.float()
    if sampling.repetition_penalty != 1.0 and previous is not None and previous.numel():
        seen = previous.unique()
        scores = logits[seen]
        logits[seen] = torch.where(scores > 0, scores / sampling.repetition_penalty, scores * sampling.repetition_penalty)
    if sampling.temperature == 0:
        return int(torch.argmax(logits))
    scaled = logits / sampling.temperature
    if torch.isinf(scaled[torch.isfinite(logits)]).any():  # a temperature so small it overflows: the limit is greedy
        return int(torch.argmax(logits))
    logits = scaled
    candidates = None  # the ids top-k kept (None: every id)
    if sampling.top_k and sampling.top_k < logits.numel():
        kth = torch.topk(logits, sampling.top_k).values[-1]
        kept = logits >= kth
        logits = logits.masked_fill(~kept, float("-inf"))
        candidates = kept.nonzero().squeeze(1)
    if sampling.top_p < 1.0:
        # sort only what top-k kept (a vocabulary of 50k costs ~3 ms a token to sort): the others
        # are -inf, so they would sort last and add nothing to the mass
        pool = logits if candidates is None else logits[candidates]
        sorted_logits, order = torch.sort(pool, descending=True)
        if candidates is not None:
            order = candidates[order]
        probs = torch.softmax(sorted_logits, dim=-1)
        # drop a token once the mass before it already reaches top_p (the first token always stays)
        drop = (probs.cumsum(dim=-1) - probs) >= sampling.top_p
        logits = logits.index_fill(0, order[drop], float("-inf"))
    probs = torch.softmax(logits, dim=-1)
    return int(torch.multinomial(probs, 1, generator=generator))
