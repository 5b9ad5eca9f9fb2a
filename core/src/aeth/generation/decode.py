"""The streaming decode loop: prefill the prompt once, then one token per step, text out as it comes."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from typing import Any

from aeth.generation.prompt import build_messages, encode_chat
from aeth.generation.sampling import eval_sampling, next_token
from aeth.request import Request, Sampling
from aeth.specialist import Specialist


class Detokenizer:
    """Turns a growing list of token ids into text increments.

    Decoding token by token breaks multi-byte characters and word-initial spaces, so each step
    decodes a short window and emits only what is new and complete (no trailing U+FFFD).
    """

    def __init__(self, tokenizer: Any):
        self.tokenizer = tokenizer
        self.ids: list[int] = []
        self.prefix = 0  # window start
        self.read = 0  # ids already emitted

    def push(self, token_id: int) -> str:
        """Add one id; return the text it completes (possibly empty)."""
        self.ids.append(token_id)
        before = self.tokenizer.decode(self.ids[self.prefix:self.read], skip_special_tokens=True)
        after = self.tokenizer.decode(self.ids[self.prefix:], skip_special_tokens=True)
        if len(after) > len(before) and not after.endswith("\ufffd"):
            self.prefix, self.read = self.read, len(self.ids)
            return after[len(before):]
        return ""


def stop_ids(model: Any, tokenizer: Any) -> set[int]:
    """Token ids that end an answer: the model's EOS ids plus the chat end-of-turn token if any."""
    found: set[int] = set()
    for source in (getattr(model, "generation_config", None), model.config, tokenizer):
        eos = getattr(source, "eos_token_id", None)
        found.update(eos if isinstance(eos, (list, tuple)) else [eos] if eos is not None else [])
    for marker in ("<|im_end|>", "<|eot_id|>", "<end_of_turn>"):
        tid = tokenizer.convert_tokens_to_ids(marker) if marker in tokenizer.get_vocab() else None
        if tid is not None:
            found.add(tid)
    return found


#: attention sinks kept by the default cache, and the most it holds in all (sinks + window)
DEFAULT_SINKS, DEFAULT_CAPACITY = 4, 4096


def default_cache(model: Any) -> Any:
    """A :class:`~aeth.generation.sink_cache.SinkCache` holding the model's context (at most
    ``DEFAULT_CAPACITY`` tokens), so a prompt or answer longer than that rolls instead of failing;
    a plain ``DynamicCache`` for a model a sink cache cannot serve. Within its capacity a sink
    cache computes exactly what a DynamicCache does."""
    from transformers import DynamicCache

    from aeth.errors import ModelError
    from aeth.generation.sink_cache import sink_cache_for

    capacity = min(getattr(model.config, "max_position_embeddings", None) or DEFAULT_CAPACITY, DEFAULT_CAPACITY)
    try:
        return sink_cache_for(model, sinks=DEFAULT_SINKS, window=capacity - DEFAULT_SINKS)
    except ModelError:
        return DynamicCache(config=model.config)


def stream_tokens(model: Any, prompt_ids: list[int], sampling: Sampling, stop: set[int],
                  stats: dict[str, Any], cache: Any = None) -> Iterator[int]:
    """Yield generated token ids until a stop id or ``sampling.max_tokens``; fill ``stats``.

    ``cache`` defaults to :func:`default_cache`. With a sink cache the prompt is prefilled in
    chunks that fit its window, and room is made before every forward, so positions stay inside
    the cache (no absolute positions are passed).
    """
    import torch

    generator = torch.Generator().manual_seed(sampling.seed if sampling.seed is not None else random.randrange(2**63))
    device = next(model.parameters()).device
    cache = default_cache(model) if cache is None else cache
    make_room = getattr(cache, "make_room", None)
    generated = torch.empty(0, dtype=torch.long)
    stats.update(tokens_in=len(prompt_ids), tokens_out=0, finish_reason="length")
    with torch.inference_mode():
        chunk = cache.layers[0].window if make_room is not None else max(1, len(prompt_ids))
        for start in range(0, len(prompt_ids) - 1, chunk):  # all but the last prompt token
            piece = prompt_ids[start:min(start + chunk, len(prompt_ids) - 1)]
            if make_room is not None:
                make_room(len(piece))
            model(input_ids=torch.tensor([piece], device=device), cache=cache, use_cache=True, logits_to_keep=1)
        ids = torch.tensor([prompt_ids[-1:]], device=device)
        for _ in range(sampling.max_tokens):
            if make_room is not None:
                make_room(ids.shape[1])
            logits = model(input_ids=ids, cache=cache, use_cache=True, logits_to_keep=1).logits[0, -1]
            token = next_token(logits.cpu(), sampling, generator, generated)
            if token in stop:
                stats["finish_reason"] = "stop"
                return
            generated = torch.cat([generated, torch.tensor([token])])
            stats["tokens_out"] += 1
            yield token
            ids = torch.tensor([[token]], device=device)


def stream_text(loaded: Any, messages: list[dict[str, str]], sampling: Sampling, stats: dict[str, Any]) -> Iterator[str]:
    """Yield the answer to ``messages`` as text increments, as soon as each is complete."""
    tokenizer = loaded.tokenizer
    detok = Detokenizer(tokenizer)
    prompt_ids = encode_chat(tokenizer, messages)
    for token in stream_tokens(loaded.model, prompt_ids, sampling, stop_ids(loaded.model, tokenizer), stats):
        piece = detok.push(token)
        if piece:
            yield piece


def answerer(loaded: Any, specialist: Specialist, max_tokens: int = 64, temperature: float = 0.0,
             seed: int = 0) -> Callable[..., str]:
    """A ``model(prompt, *, sample=0, max_tokens=None, images=()) -> str`` on ``loaded`` with
    ``specialist``'s system prompt (greedy by default).

    Eval suites run against such functions, so the same suite can judge any backend. Sample
    ``i`` of a prompt is drawn with seed ``seed + i``, so every sample differs and every run of
    the same evaluation repeats exactly. This answerer reads text only.
    """
    def answer(prompt: str, *, sample: int = 0, max_tokens: int | None = None, images: tuple = ()) -> str:
        if images:
            from aeth.errors import SpecialistError

            raise SpecialistError(f"the model for {specialist.name!r} reads text only; this case has images")
        sampling = eval_sampling(specialist, temperature, max_tokens or default_tokens, seed + sample)
        messages = build_messages(specialist, Request(prompt=prompt))
        return "".join(stream_text(loaded, messages, sampling, {})).strip()

    default_tokens = max_tokens
    return answer
