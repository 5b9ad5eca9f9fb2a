"""The VLM path on a tiny random Idefics3 model: loading through aeth's pool, image inputs, aeth's
decode loop (sink cache, cancellation, the input limit), streaming, stats."""

import pytest

from aeth import GenerationContext, Request, Sampling
from aeth.config import load_config
from aeth.errors import InputTooLong, ModelError

GREEDY = Sampling(temperature=0.0, top_p=1.0, top_k=0, max_tokens=12, repetition_penalty=1.0, seed=0)


def _solid(colour, size=(48, 40)):
    from PIL import Image

    return Image.new("RGB", size, colour)


def _png(tmp_path, name, colour):
    path = tmp_path / name
    _solid(colour).save(path)
    return str(path)


def _app(tiny_vlm_dir, *overrides):
    from aeth import Aeth

    return Aeth(load_config([f"plugins.vision.model={tiny_vlm_dir}", *overrides]))


@pytest.fixture
def app(aeth_home, tiny_vlm_dir):
    return _app(tiny_vlm_dir)


def _forwards(model):
    """Record the number of tokens of every forward of ``model``; returns (list, hook handle)."""
    seen = []
    handle = model.register_forward_pre_hook(lambda m, a, k: seen.append(k["input_ids"].shape[1]), with_kwargs=True)
    return seen, handle


def test_the_hook_streams_from_the_vlm_and_fills_the_stats(app, tmp_path):
    from aetherial_vision import plugin

    context = GenerationContext(app, GREEDY)
    stream = plugin.generate(app.specialist("vision"), Request("What colour is this?", images=(_png(tmp_path, "red.png", "red"),)),
                             context)
    chunks = list(stream)
    assert len(chunks) >= 2  # streamed piece by piece, not returned whole
    assert context.stats["path"] == "vlm"
    assert context.stats["tokens_out"] >= 1 and context.stats["finish_reason"] in {"stop", "length"}
    assert context.stats["tokens_out"] == 12 or context.stats["finish_reason"] == "stop"
    # the prompt holds the image: 2 x 2 tiles + a global view, 4 tokens each, plus the text
    assert context.stats["tokens_in"] > 20


def test_the_hook_answers_only_for_vision(app):
    from dataclasses import replace

    from aetherial_vision import plugin

    other = replace(app.specialist("vision"), name="coding")
    assert plugin.generate(other, Request("hi"), GenerationContext(app, GREEDY)) is None


def test_the_app_streams_an_image_request_end_to_end(app, tmp_path):
    answer = app.stream(Request("Describe this image.", specialist="vision", max_tokens=6, temperature=0,
                                images=(_png(tmp_path, "blue.png", "blue"),)))
    text = "".join(answer)
    assert answer.response.specialist == "vision"
    assert answer.response.tokens_out == 6 or answer.response.finish_reason == "stop"
    assert answer.response.tokens_in > 20
    assert text.strip() == answer.response.text


def test_the_vlm_comes_from_the_apps_model_pool(app, tiny_vlm_dir, tmp_path):
    from aetherial_vision import plugin, vlm

    loaded = vlm.load(app, str(tiny_vlm_dir))
    assert loaded.kind == "image-text" and loaded.processor is not None
    assert loaded.tokenizer is loaded.processor.tokenizer
    assert loaded in app.models.loaded and vlm.load(app, str(tiny_vlm_dir)) is loaded
    list(plugin.generate(app.specialist("vision"), Request("Colour?", images=(_png(tmp_path, "a.png", "red"),)),
                         GenerationContext(app, GREEDY)))
    assert app.models.loaded == [loaded]  # answering loaded nothing else


def test_different_images_give_different_logits_and_the_same_image_the_same(app, tiny_vlm_dir):
    import torch

    from aetherial_vision import vlm

    loaded = vlm.load(app, str(tiny_vlm_dir))
    messages = vlm.chat_messages("", (), "What is this?", 1)

    def logits(image):
        inputs = vlm.encode(loaded, messages, [image], 1024)
        with torch.inference_mode():
            return loaded.model(**inputs).logits[0, -1].float()

    red, blue = logits(_solid("red")), logits(_solid("blue"))
    assert not torch.allclose(red, blue)
    assert torch.equal(red, logits(_solid("red")))


def test_an_image_adds_its_tokens_to_the_prompt(app, tiny_vlm_dir):
    from aetherial_vision import vlm

    loaded = vlm.load(app, str(tiny_vlm_dir))
    text_only = vlm.encode(loaded, vlm.chat_messages("", (), "Hi", 0), [], 1024)
    one = vlm.encode(loaded, vlm.chat_messages("", (), "Hi", 1), [_solid("red", (20, 20))], 1024)
    big = vlm.encode(loaded, vlm.chat_messages("", (), "Hi", 1), [_solid("red", (64, 64))], 1024)
    assert "pixel_values" not in text_only and "pixel_values" in one
    # a small image is one 32-px tile (4 tokens) with its markers; a 64-px one is 2 x 2 tiles + global
    assert one["input_ids"].shape[1] > text_only["input_ids"].shape[1]
    assert big["pixel_values"].shape[1] == 5 and one["pixel_values"].shape[1] == 1
    assert big["input_ids"].shape[1] - one["input_ids"].shape[1] >= 4 * 4


@pytest.mark.parametrize("cache_kind", ["sink", "dynamic"])
def test_aeths_decode_loop_with_images_matches_transformers_generate(app, tiny_vlm_dir, cache_kind):
    from transformers import DynamicCache

    from aeth.generation import default_cache, stop_ids, stream_tokens
    from aeth.generation.sink_cache import SinkCache
    from aetherial_vision import vlm

    loaded = vlm.load(app, str(tiny_vlm_dir))
    inputs = vlm.encode(loaded, vlm.chat_messages("Be brief.", (), "Colour?", 1), [_solid("green", (64, 64))], 1024)
    prompt = inputs["input_ids"][0].tolist()
    stop = stop_ids(loaded.model, loaded.tokenizer)
    assert loaded.tokenizer.convert_tokens_to_ids("<end_of_utterance>") in stop  # SmolVLM's end of turn
    # a VLM whose language model uses plain RoPE gets the sink cache, like a text model
    cache = default_cache(loaded.model) if cache_kind == "sink" else DynamicCache(config=loaded.model.config.get_text_config())
    assert isinstance(cache, SinkCache) == (cache_kind == "sink")
    stats = {}
    extra = {k: v for k, v in inputs.items() if k != "input_ids"}
    ours = list(stream_tokens(loaded.model, prompt, GREEDY, stop, stats, cache=cache, inputs=extra))
    out = loaded.model.generate(**inputs, max_new_tokens=12, do_sample=False, eos_token_id=sorted(stop))
    theirs = [t for t in out[0, len(prompt):].tolist() if t not in stop]
    assert ours == theirs and len(ours) >= 1
    assert stats["tokens_in"] == len(prompt) and stats["tokens_out"] == len(ours)


def test_the_prompt_and_its_images_go_in_one_forward(app, tiny_vlm_dir, tmp_path):
    from aetherial_vision import plugin, vlm

    loaded = vlm.load(app, str(tiny_vlm_dir))
    context = GenerationContext(app, GREEDY)
    seen, handle = _forwards(loaded.model)
    try:
        list(plugin.generate(app.specialist("vision"), Request("Colour?", images=(_png(tmp_path, "a.png", "red"),)),
                             context))
    finally:
        handle.remove()
    assert seen[0] == context.stats["tokens_in"] and set(seen[1:]) <= {1}  # then one token per step


def test_cancel_stops_the_vlm_between_tokens(app, tiny_vlm_dir, tmp_path):
    from aetherial_vision import plugin, vlm

    loaded = vlm.load(app, str(tiny_vlm_dir))
    seen, handle = _forwards(loaded.model)
    context = GenerationContext(app, GREEDY, cancel=lambda: len(seen) >= 3)
    try:
        chunks = list(plugin.generate(app.specialist("vision"),
                                      Request("Describe it.", images=(_png(tmp_path, "b.png", "blue"),)), context))
    finally:
        handle.remove()
    # the prompt, then two steps: the third token came from the second step's logits, then it stopped
    assert context.stats["finish_reason"] == "cancelled" and context.stats["tokens_out"] == 3
    assert seen == [context.stats["tokens_in"], 1, 1] and 1 <= len(chunks) <= 3


def test_an_input_over_the_limit_is_refused_before_any_forward(aeth_home, tiny_vlm_dir, tmp_path):
    from aetherial_vision import plugin, vlm

    app = _app(tiny_vlm_dir, "generation.max_input_tokens=10")
    loaded = vlm.load(app, str(tiny_vlm_dir))
    seen, handle = _forwards(loaded.model)
    try:
        with pytest.raises(InputTooLong, match=r"more than generation.max_input_tokens \(10\).*-o generation.max_input_tokens=N"):
            plugin.generate(app.specialist("vision"), Request("Colour?", images=(_png(tmp_path, "c.png", "red"),)),
                            GenerationContext(app, GREEDY))
    finally:
        handle.remove()
    assert seen == []


def test_a_prompt_with_images_must_fit_the_cache_window(aeth_home, tiny_vlm_dir, tmp_path):
    from aetherial_vision import plugin

    app = _app(tiny_vlm_dir, "cache.window=16")
    stream = plugin.generate(app.specialist("vision"), Request("Colour?", images=(_png(tmp_path, "d.png", "red"),)),
                             GenerationContext(app, GREEDY))
    with pytest.raises(InputTooLong, match=r"more than the KV cache's window \(16\).*raise cache.window"):
        next(stream)


def test_a_failure_to_load_is_remembered_per_application(aeth_home, tmp_path):
    from aeth import Aeth
    from aetherial_vision import vlm

    app = Aeth(load_config([]))
    missing = tmp_path / "not-a-model"
    missing.mkdir()
    with pytest.raises(ModelError) as first:
        vlm.load(app, str(missing))
    (missing / "config.json").write_text("{}")  # fixing it later does not help this application...
    with pytest.raises(ModelError) as second:
        vlm.load(app, str(missing))
    assert second.value is first.value
    with pytest.raises(ModelError) as third:  # ...a new one tries again
        vlm.load(Aeth(load_config([])), str(missing))
    assert third.value is not first.value


def test_pickle_weights_are_refused_before_loading(aeth_home, tmp_path):
    from aeth import Aeth
    from aetherial_vision import vlm

    bad = tmp_path / "pickled"
    bad.mkdir()
    (bad / "config.json").write_text("{}")
    (bad / "pytorch_model.bin").write_bytes(b"not even opened")
    with pytest.raises(ModelError, match="pickle"):
        vlm.load(Aeth(load_config([])), str(bad))


def test_the_dtype_follows_the_config_and_avoids_emulated_bf16(aeth_home, tiny_vlm_dir):
    import torch

    from aeth import Aeth
    from aetherial_vision import vlm

    native = torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported()
    auto = vlm.load(Aeth(load_config([])), str(tiny_vlm_dir))
    assert auto.dtype == ("bfloat16" if native else "float32")
    assert next(auto.model.parameters()).dtype == getattr(torch, auto.dtype)
    forced = vlm.load(Aeth(load_config(["model.dtype=float16"])), str(tiny_vlm_dir))
    assert forced is not auto and next(forced.model.parameters()).dtype == torch.float16
