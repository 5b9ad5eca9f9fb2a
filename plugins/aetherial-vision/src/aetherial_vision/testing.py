"""A tiny random vision-language model for tests, built in-process (no network, no model hub).

:func:`build_tiny_vlm` makes an Idefics3 model (the architecture of SmolVLM-256M-Instruct, the
specialist's real base model) of about 70 K parameters, with its processor, and saves both with
``save_pretrained`` as safetensors. Loading it then exercises exactly the code a real VLM goes
through: aeth's model resolution and safety check, ``AutoModelForImageTextToText``,
``AutoProcessor``, the chat template, image tiling and the decode loop. Its answers are noise.

Nothing heavy is imported until the function runs.
"""

from __future__ import annotations

from pathlib import Path

#: SmolVLM-256M-Instruct's chat template (Idefics3 format: images as ``<image>`` placeholders).
CHAT_TEMPLATE = (
    "<|im_start|>{% for message in messages %}{{message['role'] | capitalize}}"
    "{% if message['content'][0]['type'] == 'image' %}{{':'}}{% else %}{{': '}}{% endif %}"
    "{% for line in message['content'] %}{% if line['type'] == 'text' %}{{line['text']}}"
    "{% elif line['type'] == 'image' %}{{ '<image>' }}{% endif %}{% endfor %}<end_of_utterance>\n{% endfor %}"
    "{% if add_generation_prompt %}{{ 'Assistant:' }}{% endif %}"
)
IMAGE_TOKENS = ["<fake_token_around_image>", "<image>", "<global-img>", "<end_of_utterance>"] + [
    f"<row_{r}_col_{c}>" for r in range(1, 7) for c in range(1, 7)]


def build_tiny_vlm(directory: Path, tokenizer_dir: Path, *, seed: int = 0) -> Path:
    """Build a tiny Idefics3 VLM and its processor into ``directory``; return the directory.

    ``tokenizer_dir`` holds a text tokenizer (aeth's ``tiny_model_dir`` fixture); the image
    tokens are added to it. Images are tiled into 32-pixel tiles (up to 2 x 2 plus a global view),
    each 4 tokens long; weights are initialised from ``seed`` without touching the global RNG.
    """
    import torch
    from transformers import AutoTokenizer, Idefics3Config, Idefics3ForConditionalGeneration, Idefics3Processor
    from transformers.models.idefics3.image_processing_pil_idefics3 import Idefics3ImageProcessorPil
    from transformers.utils import logging as hf_logging

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    tokenizer.add_tokens(IMAGE_TOKENS, special_tokens=True)
    image_processor = Idefics3ImageProcessorPil(do_image_splitting=True, size={"longest_edge": 64},
                                                max_image_size={"longest_edge": 32})
    processor = Idefics3Processor(image_processor=image_processor, tokenizer=tokenizer, image_seq_len=4,
                                  chat_template=CHAT_TEMPLATE)
    end = tokenizer.convert_tokens_to_ids("<end_of_utterance>")
    config = Idefics3Config(
        # image_seq_len = (image_size / patch_size)^2 / scale_factor^2 = (32 / 8)^2 / 2^2 = 4
        vision_config={"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1, "num_attention_heads": 2,
                       "image_size": 32, "patch_size": 8},
        text_config={"model_type": "llama", "vocab_size": len(tokenizer), "hidden_size": 32, "intermediate_size": 64,
                     "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
                     "max_position_embeddings": 512, "bos_token_id": None, "eos_token_id": end,
                     "pad_token_id": tokenizer.pad_token_id},
        scale_factor=2,
        image_token_id=tokenizer.convert_tokens_to_ids("<image>"),
        pad_token_id=tokenizer.pad_token_id,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = Idefics3ForConditionalGeneration(config)
    model.generation_config.eos_token_id = end
    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        model.save_pretrained(directory, safe_serialization=True)
    finally:
        if bars:
            hf_logging.enable_progress_bar()
    processor.save_pretrained(directory)
    return directory


_built: dict[Path, Path] = {}


def tiny_vlm_beside(tokenizer_dir: Path) -> Path:
    """A tiny VLM built once per process in ``<tokenizer_dir's parent>/tiny-vlm``, from that tokenizer.

    Tests pass aeth's session-scoped ``tiny_model_dir``; the contract's ``contract_model_dir`` and
    the package's own fixtures then share one build.
    """
    tokenizer_dir = Path(tokenizer_dir)
    if tokenizer_dir not in _built:
        _built[tokenizer_dir] = build_tiny_vlm(tokenizer_dir.parent / "tiny-vlm", tokenizer_dir)
    return _built[tokenizer_dir]


def render_text(path: Path, *lines: str, size: int = 32) -> Path:
    """Write a PNG of ``lines`` (dark on white, Pillow's bundled font, ``size`` px) to ``path``."""
    from aetherial_vision.synth import TextScene, png_bytes, render

    Path(path).write_bytes(png_bytes(render(TextScene("test", tuple(lines), size))))
    return Path(path)
