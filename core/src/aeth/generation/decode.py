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


#: tokens that close a turn in common chat formats (ChatML, Llama 3, Gemma, and SmolVLM / Idefics3)
END_OF_TURN = ("<|im_end|>", "<|eot_id|>", "<end_of_turn>", "<end_of_utterance>")


def stop_ids(model: Any, tokenizer: Any) -> set[int]:
    """Token ids that end an answer: the model's EOS ids plus the chat end-of-turn token if any."""
    found: set[int] = set()
    for source in (getattr(model, "generation_config", None), model.config, tokenizer):
        eos = getattr(source, "eos_token_id", None)
        found.update(eos if isinstance(eos, (list, tuple)) else [eos] if eos is not None else [])
    for marker in END_OF_TURN:
        tid = tokenizer.convert_tokens_to_ids(marker) if marker in tokenizer.get_vocab() else None
        if tid is not None:
            found.add(tid)
    return found


#: the most tokens the default cache holds in all (sinks + window) when ``cache.window`` is unset
DEFAULT_CAPACITY = 4096


def cache_settings(config: Any) -> dict[str, Any]:
    """``sinks`` and ``window`` for :func:`default_cache` from ``config`` (keys ``cache.sinks``, ``cache.window``)."""
    return {"sinks": config["cache.sinks"], "window": config["cache.window"]}


def default_cache(model: Any, sinks: int = 4, window: int | None = None) -> Any:
    """A :class:`~aeth.generation.sink_cache.SinkCache` with ``sinks`` attention sinks and a rolling
    ``window``, so a prompt, answer or conversation longer than that rolls instead of failing; a
    plain ``DynamicCache`` for a model a sink cache cannot serve. Within its capacity a sink cache
    computes exactly what a DynamicCache does.

    An application passes its ``cache.sinks`` and ``cache.window`` (:func:`cache_settings`); an
    unset window fills the model's context (at most ``DEFAULT_CAPACITY`` tokens). A capacity beyond
    the model's context is refused, since positions past what it was trained on degrade every answer.
    """
    from transformers import DynamicCache

    from aeth.errors import ConfigError, ModelError
    from aeth.generation.sink_cache import sink_cache_for

    context = getattr(text_config(model), "max_position_embeddings", None)
    if window is None:
        window = max(1, min(context or DEFAULT_CAPACITY, DEFAULT_CAPACITY) - sinks)
    elif context and sinks + window > context:
        raise ConfigError([f"cache.sinks + cache.window = {sinks} + {window} exceeds the model's context of {context} "
                           f"tokens; set cache.window to at most {context - sinks}"])
    try:
        return sink_cache_for(model, sinks=sinks, window=window)
    except ModelError:
        return DynamicCache(config=text_config(model))


def text_config(model: Any) -> Any:
    """The configuration of ``model``'s language model: its own for a text model, the text part of
    an image-text model's composite configuration (where layers, heads and context are given)."""
    config = model.config
    return config.get_text_config() if hasattr(config, "get_text_config") else config


def stream_tokens(model: Any, prompt_ids: list[int], sampling: Sampling, stop: set[int],
                  stats: dict[str, Any], cache: Any = None, cancel: Callable[[], bool] | None = None,
                  inputs: dict[str, Any] | None = None, progress: Callable[[int, int], Any] | None = None) -> Iterator[int]:
    """Yield generated token ids until a stop id, ``sampling.max_tokens`` or ``cancel()``; fill ``stats``.

    ``cache`` defaults to :func:`default_cache`; it may already hold earlier text (a conversation),
    which ``prompt_ids`` then continue. With a sink cache the prompt is prefilled in chunks that fit
    its window, and room is made before every forward, so positions stay inside the cache (no
    absolute positions are passed). ``cancel`` is polled before every forward; when it returns true
    the stream ends with ``finish_reason`` "cancelled" and the cache still consistent.

    ``inputs`` are further model inputs that belong to the prompt, such as the ``pixel_values``,
    ``image_grid_thw`` or ``pixel_attention_mask`` an image-text model's processor returns beside
    the token ids. They go with one forward over the whole prompt, since the model matches each
    image to its placeholder tokens within that forward: the prompt must then fit the cache's
    window (else :class:`~aeth.errors.InputTooLong` says so before any forward). Per-token inputs
    (``mm_token_type_ids``, ``token_type_ids``) go along as they are, since that forward covers the
    whole prompt; an ``attention_mask`` that masks nothing is dropped (one unpadded row needs none),
    and one that masks something is refused.

    ``progress(done, total)`` is called as the prompt is prefilled: once with 0 before the first
    forward, then after each forward with the prompt tokens in the cache so far; its ``close()``,
    if it has one, when the prefill ends, however it ends (see :class:`~aeth.generation.prefill.PrefillProgress`).

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
    window = cache.layers[0].window if make_room is not None else None
    extra = _prompt_inputs(inputs, device)
    if extra and window is not None and len(prompt_ids) > window:
        from aeth.errors import InputTooLong

        raise InputTooLong(len(prompt_ids), window, what="the prompt with its images", bound="the KV cache's window",
                           fix="one forward must hold it all, so raise cache.window (up to the model's context minus "
                               "cache.sinks) or send smaller images")
    cancelled = cancel or (lambda: False)
    generated = torch.empty(0, dtype=torch.long)
    stats.update(tokens_in=len(prompt_ids), tokens_out=0, finish_reason="length", unfed=list(prompt_ids),
                 cache_busy=False)

    def forward(ids: list[int], **more: Any) -> Any:
        stats["cache_busy"] = True  # stays set if an exception cuts the update of the cache short
        if make_room is not None:
            make_room(len(ids))
        logits = model(input_ids=torch.tensor([ids], device=device), cache=cache, use_cache=True, logits_to_keep=1,
                       **more).logits
        del stats["unfed"][:len(ids)]
        stats["cache_busy"] = False
        return logits[0, -1]

    with torch.inference_mode():
        logits = None
        # the prompt but its last token (which the first decoding step feeds), or all of it at once
        # when images come with it; the logits of that one forward then give the first token
        prefill = len(prompt_ids) if extra else len(prompt_ids) - 1
        chunk = max(1, prefill) if extra or window is None else window
        try:
            if progress is not None:
                progress(0, prefill)
            for start in range(0, prefill, chunk):
                if cancelled():
                    stats["finish_reason"] = "cancelled"
                    return
                logits = forward(prompt_ids[start:min(start + chunk, prefill)], **extra)
                if progress is not None:
                    progress(min(start + chunk, prefill), prefill)
        finally:
            if progress is not None and hasattr(progress, "close"):
                progress.close()
        ids = prompt_ids[prefill:]
        for _ in range(sampling.max_tokens):
            if cancelled():
                stats["finish_reason"] = "cancelled"
                return
            token = next_token((forward(ids) if ids else logits).cpu(), sampling, generator, generated)
            if token in stop:
                stats["finish_reason"] = "stop"
                return
            generated = torch.cat([generated, torch.tensor([token])])
            stats["tokens_out"] += 1
            stats["unfed"].append(token)
            yield token
            ids = [token]


def _prompt_inputs(inputs: dict[str, Any] | None, device: Any) -> dict[str, Any]:
    """``inputs`` ready for the prompt's forward: on ``device``, an all-ones attention mask dropped."""
    extra = {}
    for name, value in (inputs or {}).items():
        if name == "input_ids":
            continue
        if name == "attention_mask":
            if not bool(value.bool().all()):
                raise ValueError("stream_tokens decodes one unpadded row: an attention_mask must mask nothing")
            continue
        extra[name] = value.to(device) if hasattr(value, "to") else value
    return extra


def stream_text(loaded: Any, messages: list[dict[str, str]], sampling: Sampling, stats: dict[str, Any],
                cancel: Callable[[], bool] | None = None, cache: Any = None,
                progress: Callable[[int, int], Any] | None = None) -> Iterator[str]:
    """Yield the answer to ``messages`` as text increments, as soon as each is complete."""
    yield from detokenize(loaded, encode_chat(loaded.tokenizer, messages), sampling, stats, cache=cache, cancel=cancel,
                          progress=progress)


def detokenize(loaded: Any, prompt_ids: list[int], sampling: Sampling, stats: dict[str, Any], cache: Any = None,
               cancel: Callable[[], bool] | None = None, inputs: dict[str, Any] | None = None,
               progress: Callable[[int, int], Any] | None = None) -> Iterator[str]:
    """:func:`stream_tokens` on ``loaded``'s model (a :class:`~aeth.models.LoadedModel`), as text increments."""
    detok = Detokenizer(loaded.tokenizer)
    stop = stop_ids(loaded.model, loaded.tokenizer)
    for token in stream_tokens(loaded.model, prompt_ids, sampling, stop, stats, cache=cache, cancel=cancel,
                               inputs=inputs, progress=progress):
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
