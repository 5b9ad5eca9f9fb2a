"""Batched decoding: several prompts through one left-padded cache, each row answered as if alone."""

from __future__ import annotations

import random
from typing import Any

from aeth.request import Sampling


def generate_batch(model: Any, prompts: list[list[int]], sampling: Sampling, stop: set[int], cache: Any = None,
                   pad_id: int = 0) -> list[list[int]]:
    """The generated ids for each prompt (stop ids left out), decoding all rows together.

    Prompts are left-padded with ``pad_id`` (masked, so its value does not matter) and prefilled in
    chunks that fit the cache's window, room made before every forward; then every row takes one
    token per step until it meets a stop id or ``sampling.max_tokens``. A finished row keeps being
    fed its last token, which changes nothing it returns. Each row samples with its own generator
    seeded from ``sampling.seed``, through the same :func:`~aeth.generation.sampling.next_token` as
    :func:`~aeth.generation.decode.stream_tokens`, so a row gets what that loop gives its prompt
    alone (exactly when greedy, up to float rounding between batch shapes). Where a prompt overflows
    the sink cache during prefill, its evictions follow this batch's chunk boundaries, not those of
    a lone run. ``cache`` (fresh) defaults to :func:`~aeth.generation.decode.default_cache`.
    """
    import torch

    from aeth.generation.decode import default_cache
    from aeth.generation.sampling import next_token
    from aeth.generation.sink_cache import SinkCache

    if not prompts or not all(prompts):
        raise ValueError("generate_batch needs at least one prompt, and every prompt at least one token")
    device = next(model.parameters()).device
    cache = default_cache(model) if cache is None else cache
    sink = isinstance(cache, SinkCache)
    rows, width = len(prompts), max(len(p) for p in prompts)
    ids = torch.tensor([[pad_id] * (width - len(p)) + list(p) for p in prompts], device=device)
    real = torch.arange(width, device=device)[None] >= torch.tensor([width - len(p) for p in prompts], device=device)[:, None]
    seen = torch.zeros(rows, 0, dtype=torch.bool, device=device)  # the whole mask, for a cache that is not a sink cache

    def forward(chunk: Any, mask: Any) -> Any:
        nonlocal seen
        if sink:
            cache.make_room(chunk.shape[1], attention_mask=mask)
            extra = cache.forward_inputs(chunk.shape[1])
        else:
            seen = torch.cat([seen, mask], dim=1)
            extra = {"attention_mask": seen, "position_ids": (seen.cumsum(dim=1) - 1).clamp(min=0)[:, -chunk.shape[1]:]}
        return model(input_ids=chunk, cache=cache, use_cache=True, logits_to_keep=1, **extra).logits[:, -1]

    generators = [torch.Generator().manual_seed(sampling.seed if sampling.seed is not None else random.randrange(2**63))
                  for _ in prompts]
    outputs: list[list[int]] = [[] for _ in prompts]
    done = [sampling.max_tokens <= 0] * rows
    with torch.inference_mode():
        size = cache.layers[0].window if sink else max(1, width - 1)
        for start in range(0, width - 1, size):  # all but the last column, as the single-sequence loop does
            end = min(start + size, width - 1)
            forward(ids[:, start:end], real[:, start:end])
        step, everyone = ids[:, -1:].clone(), torch.ones(rows, 1, dtype=torch.bool, device=device)
        while not all(done):
            logits = forward(step, everyone).cpu()
            for i in range(rows):
                if done[i]:
                    continue
                token = next_token(logits[i], sampling, generators[i], torch.tensor(outputs[i], dtype=torch.long))
                if token in stop:
                    done[i] = True
                    continue
                outputs[i].append(token)
                done[i] = len(outputs[i]) >= sampling.max_tokens
                step[i, 0] = token
    return outputs
