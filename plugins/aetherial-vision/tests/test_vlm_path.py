"""The VLM path on a tiny random Idefics3 model: loading, image inputs, streaming, stats."""

import pytest

from aeth import Request
from aeth.config import load_config
from aeth.request import GenerationContext, Sampling

GREEDY = Sampling(temperature=0.0, top_p=1.0, top_k=0, max_tokens=12, repetition_penalty=1.0, seed=0)


def _solid(colour, size=(48, 40)):
    from PIL import Image

    return Image.new("RGB", size, colour)


def _png(tmp_path, name, colour):
    path = tmp_path / name
    _solid(colour).save(path)
    return str(path)


@pytest.fixture
def config(aeth_home, tiny_vlm_dir):
    return load_config([f"plugins.vision.model={tiny_vlm_dir}"])


@pytest.fixture
def vision(config):
    from aeth.app import Aeth

    return Aeth(config).specialist("vision")


def _context(config, sampling=GREEDY):
    from aeth import runtime

    return GenerationContext(config=config, sampling=sampling, models=runtime.models())


def test_the_hook_streams_from_the_vlm_and_fills_the_stats(config, vision, tmp_path):
    from aetherial_vision import plugin

    context = _context(config)
    stream = plugin.generate(vision, Request("What colour is this?", images=(_png(tmp_path, "red.png", "red"),)), context)
    chunks = list(stream)
    assert len(chunks) >= 2  # streamed piece by piece, not returned whole
    assert context.stats["path"] == "vlm"
    assert context.stats["tokens_out"] >= 1 and context.stats["finish_reason"] in {"stop", "length"}
    assert context.stats["tokens_out"] == 12 or context.stats["finish_reason"] == "stop"
    # the prompt holds the image: 2 x 2 tiles + a global view, 4 tokens each, plus the text
    assert context.stats["tokens_in"] > 20


def test_the_hook_answers_only_for_vision(config, vision):
    from dataclasses import replace

    from aetherial_vision import plugin

    other = replace(vision, name="coding")
    assert plugin.generate(other, Request("hi"), _context(config)) is None


def test_the_app_streams_an_image_request_end_to_end(config, tmp_path):
    from aeth.app import Aeth

    answer = Aeth(config).stream(Request("Describe this image.", specialist="vision", max_tokens=6, temperature=0,
                                         images=(_png(tmp_path, "blue.png", "blue"),)))
    text = "".join(answer)
    assert answer.response.specialist == "vision"
    assert answer.response.tokens_out == 6 or answer.response.finish_reason == "stop"
    assert answer.response.tokens_in > 20
    assert text.strip() == answer.response.text


def test_different_images_give_different_logits_and_the_same_image_the_same(config, tiny_vlm_dir):
    import torch

    from aetherial_vision import vlm

    loaded = vlm.load_vlm(str(tiny_vlm_dir), config)
    messages = vlm.chat_messages("", (), "What is this?", 1)

    def logits(image):
        inputs = vlm.encode(loaded, messages, [image], 1024)
        with torch.inference_mode():
            return loaded.model(**inputs).logits[0, -1].float()

    red, blue = logits(_solid("red")), logits(_solid("blue"))
    assert not torch.allclose(red, blue)
    assert torch.equal(red, logits(_solid("red")))


def test_an_image_adds_its_tokens_to_the_prompt(config, tiny_vlm_dir):
    from aetherial_vision import vlm

    loaded = vlm.load_vlm(str(tiny_vlm_dir), config)
    text_only = vlm.encode(loaded, vlm.chat_messages("", (), "Hi", 0), [], 1024)
    one = vlm.encode(loaded, vlm.chat_messages("", (), "Hi", 1), [_solid("red", (20, 20))], 1024)
    big = vlm.encode(loaded, vlm.chat_messages("", (), "Hi", 1), [_solid("red", (64, 64))], 1024)
    assert "pixel_values" not in text_only and "pixel_values" in one
    # a small image is one 32-px tile (4 tokens) with its markers; a 64-px one is 2 x 2 tiles + global
    assert one["input_ids"].shape[1] > text_only["input_ids"].shape[1]
    assert big["pixel_values"].shape[1] == 5 and one["pixel_values"].shape[1] == 1
    assert big["input_ids"].shape[1] - one["input_ids"].shape[1] >= 4 * 4


def test_the_decode_loop_matches_transformers_generate(config, tiny_vlm_dir):
    from aetherial_vision import vlm

    loaded = vlm.load_vlm(str(tiny_vlm_dir), config)
    inputs = vlm.encode(loaded, vlm.chat_messages("Be brief.", (), "Colour?", 1), [_solid("green")], 1024)
    stats = {}
    ours = list(vlm.generate_ids(loaded, inputs, GREEDY, stats))
    out = loaded.model.generate(**inputs, max_new_tokens=12, do_sample=False, eos_token_id=sorted(vlm.stop_ids(loaded)))
    theirs = [t for t in out[0, inputs["input_ids"].shape[1]:].tolist() if t not in vlm.stop_ids(loaded)]
    assert ours == theirs
    assert stats["tokens_out"] == len(ours)
    text = "".join(vlm.stream_answer(loaded, inputs, GREEDY, {}))
    assert text and loaded.processor.tokenizer.decode(ours, skip_special_tokens=True).startswith(text)


def test_a_loaded_vlm_is_cached_and_a_failure_remembered(config, tiny_vlm_dir, tmp_path):
    from aeth.errors import ModelError
    from aetherial_vision import vlm

    assert vlm.load_vlm(str(tiny_vlm_dir), config) is vlm.load_vlm(str(tiny_vlm_dir), config)
    missing = tmp_path / "not-a-model"
    missing.mkdir()
    with pytest.raises(ModelError) as first:
        vlm.load_vlm(str(missing), config)
    (missing / "config.json").write_text("{}")  # fixing it later does not help this process...
    with pytest.raises(ModelError) as second:
        vlm.load_vlm(str(missing), config)
    assert second.value is first.value
    vlm.clear()  # ...until the cache is cleared
    with pytest.raises(ModelError) as third:
        vlm.load_vlm(str(missing), config)
    assert third.value is not first.value


def test_pickle_weights_are_refused_before_loading(config, tmp_path):
    from aeth.errors import ModelError
    from aetherial_vision import vlm

    bad = tmp_path / "pickled"
    bad.mkdir()
    (bad / "config.json").write_text("{}")
    (bad / "pytorch_model.bin").write_bytes(b"not even opened")
    with pytest.raises(ModelError, match="pickle"):
        vlm.load_vlm(str(bad), config)


def test_the_dtype_follows_the_config_and_avoids_emulated_bf16(aeth_home, tiny_vlm_dir):
    import torch

    from aetherial_vision import vlm

    native = torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported()
    auto = vlm.load_vlm(str(tiny_vlm_dir), load_config([]))
    assert auto.dtype == ("bfloat16" if native else "float32")
    assert next(auto.model.parameters()).dtype == getattr(torch, auto.dtype)
    forced = vlm.load_vlm(str(tiny_vlm_dir), load_config(["model.dtype=float16"]))
    assert forced is not auto and next(forced.model.parameters()).dtype == torch.float16
