"""The ``vision`` specialist: what it is for, which model sees, and how it is trained and judged."""

from __future__ import annotations

from pathlib import Path

from aeth import AdapterSpec, GenerationDefaults, Specialist
from aeth.datasets import package_file, read_prompts
from aetherial_vision.evals import build_suite
from aetherial_vision.recipe import build_recipe

#: The vision-language model the specialist answers with: 256 M parameters (SigLIP encoder +
#: SmolLM2-135M), Apache-2.0, loadable by transformers 5 as Idefics3 with safetensors weights.
BASE_MODEL = "HuggingFaceTB/SmolVLM-256M-Instruct"

SYSTEM_PROMPT = """\
You are a careful visual assistant. You describe images, answer questions about them, read the \
text in them and classify them. Say only what the image shows: name colours, shapes, objects, \
counts and positions precisely, quote text exactly as written, and say so when something is not \
visible or cannot be read. When asked for a single word or a category, answer with just that. Be concise."""


def routing_examples() -> tuple[str, ...]:
    """Prompts sent with an image that this specialist answers (``data/routing_examples.txt``)."""
    return read_prompts(package_file("aetherial_vision", "data/routing_examples.txt"))


def routing_heldout() -> tuple[str, ...]:
    """Other such prompts the router never sees, for measuring it (``data/routing_heldout.txt``)."""
    return read_prompts(package_file("aetherial_vision", "data/routing_heldout.txt"))


def build_specialist(home: Path) -> Specialist:
    """The ``vision`` specialist as registered by the plugin for an application whose ``home`` is
    given (its eval suite renders images there)."""
    return Specialist(
        name="vision",
        description="Looks at images: describes them, answers questions about them, reads their text (OCR) and classifies them.",
        base_model=BASE_MODEL,
        # LoRA on the language model's projections; q/k/v_proj also match the vision encoder's
        # attention, which is what adapting a VLM to new kinds of pictures needs.
        adapter=AdapterSpec(r=8, alpha=16, dropout=0.05),
        # never NF4 unless model.quantization asks: it would save little on a 256 M model and slow
        # (and coarsen) the vision encoder, on CUDA as on CPU
        quantization="none",
        system_prompt=SYSTEM_PROMPT,
        routing_examples=routing_examples(),
        routing_heldout=routing_heldout(),
        # Looking and reading want the likeliest answer: near-greedy, short.
        generation=GenerationDefaults(temperature=0.1, top_p=0.9, top_k=20, max_tokens=256, repetition_penalty=1.05),
        recipe=build_recipe(),
        suite=build_suite(home),
        version="0.1",
        accepts_images=True,
    )
