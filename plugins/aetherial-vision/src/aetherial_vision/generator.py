"""How the ``vision`` specialist answers: a VLM when one loads, else OCR and a text model.

The rule (``plugins.vision.backend``, default ``auto``):

1. ``auto`` / ``vlm``: load the VLM (``plugins.vision.model``, else the specialist's
   ``base_model``; a local directory, a cached hub snapshot, or a download when online). If it
   loads, it answers every request: it sees the images, the system prompt and the history.
   With ``vlm``, failing to load is an error.
2. ``auto`` when no VLM can be loaded, or ``ocr``: the offline path. The prompt is sorted by
   :func:`aetherial_vision.tasks.classify`:

   - ``transcribe`` -> RapidOCR reads each image and its text is the answer;
   - ``look`` (colours, shapes, counting, describing, classifying...) -> a :class:`ModelError`
     that names the VLM to download once online, or how to point at a local one;
   - ``read`` (anything else) -> RapidOCR reads the images, and aeth's text model
     (``plugins.vision.text_model``, else ``model.default``) answers the question from that
     text, streamed; when OCR finds no text, the same error as ``look``.

   A request without images, offline, goes to the text model with the vision system prompt.

Every path that runs a model decodes with aeth's own loop (:func:`aeth.generation.stream_answer`):
the attention-sink cache where the model allows one, ``context.cancel`` polled before every
forward, ``generation.max_input_tokens`` enforced, progress shown while a long input is read, and
the model taken from the application's pool under its per-base lock. Everything that can fail
(decoding the images, loading models, an input over the limit) happens before the stream is
returned, so an error surfaces before any output.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from aeth.errors import ModelError
from aeth.images import load_image
from aetherial_vision import tasks
from aetherial_vision.settings import VisionSettings

READ_SYSTEM_PROMPT = (
    "You answer questions about an image using only the text that OCR read from it. The OCR text may contain small "
    "mistakes. If the answer is not in the text, say so. Answer briefly."
)


def generate(specialist: Any, request: Any, context: Any) -> Iterator[str]:
    """The answer stream for ``request`` (see the module docstring for which path answers)."""
    settings = VisionSettings.of(context.app)
    images = [load_image(ref, i) for i, ref in enumerate(request.images)]
    reference = settings.model or specialist.base_model
    reason: ModelError | None = None
    if settings.backend != "ocr":
        from aetherial_vision import vlm

        try:
            loaded = vlm.load(context.app, reference, specialist.quantization)
        except ModelError as e:
            if settings.backend == "vlm":
                raise ModelError(need_vlm_message(reference, e, settings.backend)) from e
            reason = e
        else:
            return _vlm_answer(specialist, request, context, loaded, images, settings)
    return offline(specialist, request, context, images, settings, reference, reason)


def _vlm_answer(specialist: Any, request: Any, context: Any, loaded: Any, images: list,
                settings: VisionSettings) -> Iterator[str]:
    from aeth.generation import stream_answer
    from aetherial_vision import vlm

    # no adapter: the bare VLM, selected under the pool's lock for this base if adapters ever sit on it
    served, scope = context.models.with_adapter(loaded, specialist.name, None)
    context.stats.update(model=loaded.name, path="vlm", adapter=None)
    messages = vlm.chat_messages(specialist.system_prompt, request.history, request.prompt, len(images))
    inputs = vlm.encode(loaded, messages, images, settings.image_longest_edge)
    prompt_ids = inputs.pop("input_ids")[0].tolist()
    return stream_answer(context, served, prompt_ids, inputs=inputs, scope=scope,
                         label=f"{specialist.name}: reading the input")


def offline(specialist: Any, request: Any, context: Any, images: list, settings: VisionSettings,
            reference: str, reason: ModelError | None) -> Iterator[str]:
    """The answer without a VLM: OCR, OCR + text model, or an error saying how to get a VLM."""
    if not images:
        return _text_model_answer(context, settings, specialist.system_prompt, request.history, request.prompt, "text")
    task = tasks.classify(request.prompt)
    if task == tasks.LOOK:
        raise ModelError(need_vlm_message(reference, reason, settings.backend))
    from aetherial_vision.ocr import ocr_for

    ocr = ocr_for(context.app)
    texts = [ocr.text(image) for image in images]
    if task == tasks.TRANSCRIBE:
        return _ocr_answer(texts, context.stats)
    if not any(texts):
        raise ModelError("OCR found no readable text in the image, so answering needs a vision-language model. "
                         + need_vlm_message(reference, reason, settings.backend))
    prompt = f"Text read from the image by OCR:\n\"\"\"\n{_labelled(texts)}\n\"\"\"\n\nQuestion: {request.prompt}"
    return _text_model_answer(context, settings, READ_SYSTEM_PROMPT, request.history, prompt, "ocr+text")


def _labelled(texts: list[str]) -> str:
    if len(texts) == 1:
        return texts[0]
    return "\n\n".join(f"Image {i}:\n{t or '(no text found)'}" for i, t in enumerate(texts, 1))


def _ocr_answer(texts: list[str], stats: dict) -> Iterator[str]:
    """The OCR'd text as the answer, one chunk per line; ``tokens_out`` counts words (no tokenizer here)."""
    answer = _labelled(texts) if any(texts) else "I could not find any readable text in the image."
    stats.update(path="ocr", model="rapidocr PP-OCRv4", tokens_in=0, tokens_out=len(answer.split()),
                 finish_reason="stop")
    lines = answer.split("\n")
    return iter([line + "\n" for line in lines[:-1]] + [lines[-1]])


def _text_model_answer(context: Any, settings: VisionSettings, system: str, history: tuple, prompt: str,
                       path: str) -> Iterator[str]:
    from aeth.generation import encode_chat, stream_answer

    reference = settings.text_model or context.config["model.default"]
    loaded = context.models.get(reference)
    # the text model may be another specialist's base with adapters on it: answer with none of them
    served, scope = context.models.with_adapter(loaded, "vision", None)
    context.stats.update(model=loaded.name, path=path, adapter=None)
    messages = ([{"role": "system", "content": system}] if system else []) + [
        {"role": m["role"], "content": m["content"]} for m in history] + [{"role": "user", "content": prompt}]
    return stream_answer(context, served, encode_chat(served.tokenizer, messages), scope=scope,
                         label="vision: reading the input")


def need_vlm_message(reference: str, reason: Exception | None, backend: str = "auto") -> str:
    """What to tell a user whose request needs a vision-language model that is not available."""
    from aeth.models import parse_hub_id

    if backend == "ocr":
        return ("This request needs a vision-language model to look at the image, but plugins.vision.backend is 'ocr', "
                "which only reads text. Fix: set plugins.vision.backend to auto (the default) or vlm, with a VLM "
                f"available ({reference}).")
    # core's own message ends with a fix for text models ("use smollm2..."), which cannot see
    why = f" ({str(reason).split(' Fix:')[0].rstrip('.')})" if reason else ""
    get = (f"run aeth once with a network connection so it downloads {reference} (safetensors only, into the "
           "Hugging Face cache; SmolVLM-256M-Instruct is about 0.5 GB)" if parse_hub_id(reference) else
           f"make {reference} a directory holding a transformers vision-language model in safetensors")
    return (f"This request needs a vision-language model to look at the image, and none could be loaded{why}. "
            f"Fix: {get}, or point at a local one with `-o plugins.vision.model=/path/to/vlm` (or "
            "`plugins: {vision: {model: ...}}` in aeth.yaml). Without one, the vision specialist can still read text: "
            "ask it to transcribe the text in the image, or ask a question about that text.")
