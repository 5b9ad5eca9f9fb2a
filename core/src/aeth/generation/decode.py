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


#: the most tokens the default cache holds in all (sinks + window) when ``cache.window`` is unset
DEFAULT_CAPACITY = 4096


def default_cache(model: Any, sinks: int | None = None, window: int | None = None) -> Any:
    """A :class:`~aeth.generation.sink_cache.SinkCache` with ``sinks`` attention sinks and a rolling
    ``window``, so a prompt, answer or conversation longer than that rolls instead of failing; a
    plain ``DynamicCache`` for a model a sink cache cannot serve. Within its capacity a sink cache
    computes exactly what a DynamicCache does.

    Unset sizes come from the ``cache.sinks`` and ``cache.window`` config keys; an unset window
    fills the model's context (at most ``DEFAULT_CAPACITY`` tokens). A capacity beyond the model's
    context is refused, since positions past what it was trained on degrade every answer.
    """
    from transformers import DynamicCache

    from aeth import runtime
    from aeth.errors import ConfigError, ModelError
    from aeth.generation.sink_cache import sink_cache_for

    config = runtime.config()
    sinks = config.get("cache.sinks", 4) if sinks is None else sinks
    window = config.get("cache.window") if window is None else window
    context = getattr(model.config, "max_position_embeddings", None)
    if window is None:
        window = max(1, min(context or DEFAULT_CAPACITY, DEFAULT_CAPACITY) - sinks)
    elif context and sinks + window > context:
        raise ConfigError([f"cache.sinks + cache.window = {sinks} + {window} exceeds the model's context of {context} "
                           f"tokens; set cache.window to at most {context - sinks}"])
    try:
        return sink_cache_for(model, sinks=sinks, window=window)
    except ModelError:
        return DynamicCache(config=model.config)


def stream_tokens(model: Any, prompt_ids: list[int], sampling: Sampling, stop: set[int],
                  stats: dict[str, Any], cache: Any = None, cancel: Callable[[], bool] | None = None) -> Iterator[int]:
    """Yield generated token ids until a stop id, ``sampling.max_tokens`` or ``cancel()``; fill ``stats``.

    ``cache`` defaults to :func:`default_cache`; it may already hold earlier text (a conversation),
    which ``prompt_ids`` then continue. With a sink cache the prompt is prefilled in chunks that fit
    its window, and room is made before every forward, so positions stay inside the cache (no
    absolute positions are passed). ``cancel`` is polled before every forward; when it returns true
    the stream ends with ``finish_reason`` "cancelled" and the cache still consistent.

    ``stats["unfed"]`` ends up holding the ids that belong to the text but are not in the cache yet
    (the last token generated, or prompt ids a cancel cut off); a stop id is never kept. A caller
    continuing the same text in the same cache feeds them first. ``stats["cache_busy"]`` left true
    means an exception hit inside a forward, so the cache may be half-updated and must be dropped.
    """
    import torch

    generator = torch.Generator().manual_seed(sampling.seed if sampling.seed is not None else random.randrange(2**63))
    device = next(model.parameters()).device
    cache = default_cache(model) if cache is None else cache
    make_room = getattr(cache, "make_room", None)
    cancelled = cancel or (lambda: False)
    generated = torch.empty(0, dtype=torch.long)
    stats.update(tokens_in=len(prompt_ids), tokens_out=0, finish_reason="length", unfed=list(prompt_ids),
                 cache_busy=False)

    def forward(ids: list[int]) -> Any:
        stats["cache_busy"] = True  # stays set if an exception cuts the update of the cache short
        if make_room is not None:
            make_room(len(ids))
        logits = model(input_ids=torch.tensor([ids], device=device), cache=cache, use_cache=True, logits_to_keep=1).logits
        del stats["unfed"][:len(ids)]
        stats["cache_busy"] = False
        return logits[0, -1]

    with torch.inference_mode():
        chunk = cache.layers[0].window if make_room is not None else max(1, len(prompt_ids))
        for start in range(0, len(prompt_ids) - 1, chunk):  # all but the last prompt token
            if cancelled():
                stats["finish_reason"] = "cancelled"
                return
            forward(prompt_ids[start:min(start + chunk, len(prompt_ids) - 1)])
        ids = prompt_ids[-1:]
        for _ in range(sampling.max_tokens):
            if cancelled():
                stats["finish_reason"] = "cancelled"
                return
            token = next_token(forward(ids).cpu(), sampling, generator, generated)
            if token in stop:
                stats["finish_reason"] = "stop"
                return
            generated = torch.cat([generated, torch.tensor([token])])
            stats["tokens_out"] += 1
            stats["unfed"].append(token)
            yield token
            ids = [token]


def stream_text(loaded: Any, messages: list[dict[str, str]], sampling: Sampling, stats: dict[str, Any],
                cancel: Callable[[], bool] | None = None) -> Iterator[str]:
    """Yield the answer to ``messages`` as text increments, as soon as each is complete."""
    yield from detokenize(loaded, encode_chat(loaded.tokenizer, messages), sampling, stats, cancel=cancel)


def detokenize(loaded: Any, prompt_ids: list[int], sampling: Sampling, stats: dict[str, Any], cache: Any = None,
               cancel: Callable[[], bool] | None = None) -> Iterator[str]:
    """:func:`stream_tokens` on ``loaded``'s model, as text increments."""
    detok = Detokenizer(loaded.tokenizer)
    stop = stop_ids(loaded.model, loaded.tokenizer)
    for token in stream_tokens(loaded.model, prompt_ids, sampling, stop, stats, cache=cache, cancel=cancel):
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
