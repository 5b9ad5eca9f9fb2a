"""A vision-language model: taken from the application's model pool, prompted with images.

The model reference (``plugins.vision.model``, else the specialist's ``base_model``) is a local
directory or a hub id (``org/name[@revision]``, downloaded once into the Hugging Face cache when
online, safetensors only). aeth's model pool loads it as an ``image-text`` model
(``AutoModelForImageTextToText`` and ``AutoProcessor``) after its safety check, with the
application's ``model.device``, ``model.dtype`` (``auto``: bfloat16 only where the device computes
it natively; emulated bf16 made a SmolVLM-256M answer 3x slower on this project's 2-core Xeon),
``model.threads`` and ``model.trust_remote_code``, once per application. Answers are decoded by
aeth's own loop (:func:`aeth.generation.stream_answer`): sink cache, cancellation, input limit.

A reference that failed to load is remembered per application, so an offline server does not
retry the hub on every request; a new application tries again.
"""

from __future__ import annotations

from typing import Any

from aeth.errors import ModelError
from aeth.models import LoadedModel

FAILED = "aetherial-vision.failed-models"  #: the app.state key of the references that failed to load


def load(app: Any, reference: str, quantization: str = "auto") -> LoadedModel:
    """The VLM ``reference`` from ``app``'s model pool (loaded on first use).

    ``model.quantization``, when set, overrides ``quantization``, as for every specialist. Raises
    :class:`ModelError` when it cannot be found or loaded: the same error again on later calls of
    the same application, without retrying.
    """
    failed = app.state(FAILED, dict)
    if reference in failed:
        raise failed[reference]
    try:
        return app.models.get(reference, app.config.get("model.quantization") or quantization, kind="image-text")
    except ModelError as e:
        failed[reference] = e
        raise


# ---- prompting ---------------------------------------------------------------------------------


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


def encode(loaded: LoadedModel, messages: list[dict], images: list[Any], longest_edge: int) -> dict:
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
