"""A vision-language model: found through aeth's model resolution, loaded once, decoded as a stream.

The model reference is resolved by :func:`aeth.models.resolve.resolve_model`, so it is a local
directory or a hub id (``org/name[@revision]``, downloaded once into the Hugging Face cache when
online, safetensors only), and the directory passes aeth's safety check before anything is read.
transformers then loads it with ``AutoModelForImageTextToText`` and ``AutoProcessor``; the
model's own Python code runs only when ``model.trust_remote_code`` is set. The device follows
aeth's ``model.device``, the dtype ``model.dtype`` (see :func:`choose_dtype` for ``auto`` on a
CPU) and torch's threads ``model.threads``.

Loaded models are kept per process (one per reference, device and dtype). A reference that failed
to load is remembered too, so an offline process does not retry the hub on every request; call
:func:`clear` to forget both.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aeth.errors import ModelError

#: Tokens that end a turn in the chat formats of common small VLMs (SmolVLM / Idefics3 first).
END_OF_TURN = ("<end_of_utterance>", "<|im_end|>", "<|eot_id|>", "<end_of_turn>")

_cache: dict[tuple[str, str, str], Any] = {}
_lock = threading.Lock()


@dataclass
class LoadedVLM:
    """A vision-language model in memory with its processor, and how it was loaded."""

    model: Any
    processor: Any
    name: str
    path: Path
    device: str
    dtype: str
    n_params: int


def clear() -> None:
    """Forget every loaded (or failed) VLM of this process."""
    with _lock:
        _cache.clear()


def load_vlm(ref: str, config: Any) -> LoadedVLM:
    """The VLM named ``ref`` (hub id or local directory), loaded once per process.

    Raises :class:`ModelError` when it cannot be found or loaded (the same error again on later
    calls, without retrying).
    """
    from aeth.models.loading import resolve_device

    device = resolve_device(config.get("model.device", "auto"))
    dtype = choose_dtype(config.get("model.dtype", "auto"), device)
    key = (ref, device, dtype)
    with _lock:
        cached = _cache.get(key)
        if cached is None:
            try:
                cached = _load(ref, config, device, dtype)
            except ModelError as e:
                cached = e
            _cache[key] = cached
    if isinstance(cached, ModelError):
        raise cached
    from aeth.models.threads import apply_threads, choose_threads

    apply_threads(choose_threads(cached.n_params, config.get("model.threads", "auto")))
    return cached


def choose_dtype(setting: str, device: str) -> str:
    """The VLM's dtype: ``model.dtype`` when set; under ``auto``, bfloat16 only where the device
    computes it natively (:func:`aeth.models.loading.resolve_dtype`), else float32: without native
    support it is emulated, and a SmolVLM-256M-sized model answering one easy-VQA question (one
    tile, 8 tokens, one thread) took 7.6 s in bfloat16 and 2.4 s in float32 on this project's
    2-core Xeon (AVX-512, no BF16).
    """
    from aeth.models.loading import resolve_dtype

    return resolve_dtype(setting, device)


def _load(ref: str, config: Any, device: str, dtype: str) -> LoadedVLM:
    from aeth.models.resolve import resolve_model

    path = resolve_model(ref, config)  # local dir or hub snapshot, safety-checked (safetensors only)
    trust = bool(config.get("model.trust_remote_code", False))
    import torch
    from transformers import AutoModelForImageTextToText, AutoProcessor

    kwargs: dict[str, Any] = {"dtype": getattr(torch, dtype), "use_safetensors": True, "trust_remote_code": trust}
    if device == "cuda":
        kwargs["device_map"] = {"": "cuda"}
    try:
        with _quiet():
            model = AutoModelForImageTextToText.from_pretrained(path, **kwargs)
            processor = AutoProcessor.from_pretrained(path, trust_remote_code=trust)
    except Exception as e:  # transformers raises many kinds; the user needs the path and the cause
        hint = " (it needs its own code: set model.trust_remote_code=true if you trust it)" \
            if "trust_remote_code" in str(e) else ""
        raise ModelError(f"could not load the vision-language model in {path}: {type(e).__name__}: {e}{hint}") from e
    model.eval()
    return LoadedVLM(model, processor, ref, Path(path), device, dtype, int(model.num_parameters()))


@contextmanager
def _quiet() -> Iterator[None]:
    """Silence transformers' loading bars and advisory warnings (a library must not chatter on stderr)."""
    from transformers.utils import logging as hf_logging

    bars, verbosity = hf_logging.is_progress_bar_enabled(), hf_logging.get_verbosity()
    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()
    try:
        yield
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()


# ---- prompting and decoding -----------------------------------------------------------------


def chat_messages(system: str, history: tuple[dict, ...], prompt: str, n_images: int) -> list[dict]:
    """Messages in the processor's multimodal format: the images go first in the last user turn.

    Every content is a list of typed parts, the form VLM chat templates expect.
    """
    messages = []
    if system:
        messages.append({"role": "system", "content": [{"type": "text", "text": system}]})
    for turn in history:
        messages.append({"role": turn["role"], "content": [{"type": "text", "text": turn["content"]}]})
    parts = [{"type": "image"} for _ in range(n_images)] + [{"type": "text", "text": prompt}]
    messages.append({"role": "user", "content": parts})
    return messages


def _fit(image: Any, longest_edge: int) -> Any:
    """``image`` shrunk (never enlarged) so its longest side is at most ``longest_edge``."""
    if max(image.size) <= longest_edge:
        return image
    scale = longest_edge / max(image.size)
    from PIL import Image

    return image.resize((max(1, round(image.width * scale)), max(1, round(image.height * scale))),
                        Image.Resampling.LANCZOS)


def encode(loaded: LoadedVLM, messages: list[dict], images: list[Any], longest_edge: int) -> dict:
    """Model inputs (token ids, pixel values...) for ``messages`` and ``images``, on the model's device.

    The processor's own resize target is capped at ``longest_edge`` too: Idefics3-style processors
    enlarge every image to their configured size (2048 px for SmolVLM, 17 tiles of 64 tokens),
    which costs a CPU tens of seconds for a 64-pixel picture.
    """
    import torch

    processor = loaded.processor
    text = processor.apply_chat_template(messages, add_generation_prompt=True)
    images = [_fit(im, longest_edge) for im in images]
    kwargs = _size_kwargs(getattr(processor, "image_processor", None), images, longest_edge)
    inputs = processor(text=[text], images=[images] if images else None, return_tensors="pt", **kwargs)
    dtype = getattr(torch, loaded.dtype)
    device = loaded.device
    return {k: (v.to(device=device, dtype=dtype) if v.is_floating_point() else v.to(device))
            for k, v in inputs.items() if isinstance(v, torch.Tensor)}


def _longest_edge(size: Any) -> int | None:
    """``size["longest_edge"]`` of a dict or a transformers ``SizeDict``; None when absent."""
    edge = size.get("longest_edge") if isinstance(size, dict) else getattr(size, "longest_edge", None)
    return int(edge) if edge else None


def _size_kwargs(image_processor: Any, images: list[Any], longest_edge: int) -> dict:
    """``size=`` for processors that resize to a fixed longest edge and split into tiles.

    The target is the largest image rounded up to whole tiles, capped by ``longest_edge`` and the
    processor's own size: a 64-pixel picture becomes one tile, not sixteen.
    """
    size = _longest_edge(getattr(image_processor, "size", None))
    if not images or size is None:
        return {}
    target = min(size, longest_edge)
    tile = _longest_edge(getattr(image_processor, "max_image_size", None))
    if tile:
        needed = max(max(im.size) for im in images)
        target = min(target, max(tile, -(-needed // tile) * tile))
    return {"size": {"longest_edge": target}}


def stop_ids(loaded: LoadedVLM) -> set[int]:
    """Token ids that end the answer: the generation config's EOS ids and known end-of-turn tokens."""
    tokenizer = loaded.processor.tokenizer
    found: set[int] = set()
    for source in (getattr(loaded.model, "generation_config", None), tokenizer):
        eos = getattr(source, "eos_token_id", None)
        found.update(eos if isinstance(eos, (list, tuple)) else [eos] if eos is not None else [])
    vocab = tokenizer.get_vocab()
    found.update(vocab[t] for t in END_OF_TURN if t in vocab)
    return found


def generate_ids(loaded: LoadedVLM, inputs: dict, sampling: Any, stats: dict) -> Iterator[int]:
    """Yield answer token ids: one forward pass over prompt and images, then one token per step
    with the KV cache (aeth's sampler), until an end-of-turn token or ``sampling.max_tokens``.
    Fills ``stats``: ``tokens_in`` counts the image tokens too."""
    import torch
    from transformers import DynamicCache

    from aeth.generation.sampling import next_token

    model = loaded.model
    stop = stop_ids(loaded)
    seed = sampling.seed if sampling.seed is not None else random.randrange(2**63)
    generator = torch.Generator().manual_seed(seed)
    cache = DynamicCache(config=model.config.get_text_config())
    generated = torch.empty(0, dtype=torch.long)
    step = dict(inputs)
    stats.update(tokens_in=int(inputs["input_ids"].shape[1]), tokens_out=0, finish_reason="length")
    with torch.inference_mode():
        for _ in range(sampling.max_tokens):
            logits = model(**step, cache=cache, use_cache=True, logits_to_keep=1).logits[0, -1]
            token = next_token(logits.float().cpu(), sampling, generator, generated)
            if token in stop:
                stats["finish_reason"] = "stop"
                return
            generated = torch.cat([generated, torch.tensor([token])])
            stats["tokens_out"] += 1
            yield token
            # after the first pass the images live in the cache: later steps feed the new token only
            step = {"input_ids": torch.tensor([[token]], device=inputs["input_ids"].device)}


def stream_answer(loaded: LoadedVLM, inputs: dict, sampling: Any, stats: dict) -> Iterator[str]:
    """Yield the answer as text increments, each as soon as it is complete (see :func:`generate_ids`)."""
    from aeth.generation.decode import Detokenizer

    detok = Detokenizer(loaded.processor.tokenizer)
    for token in generate_ids(loaded, inputs, sampling, stats):
        piece = detok.push(token)
        if piece:
            yield piece
