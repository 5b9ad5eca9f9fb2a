"""Sampling, detokenising and the streaming decode loop, on the tiny model."""

import pytest
import torch

from aeth import Request, Specialist
from aeth.generation import answerer, build_messages, stream_text
from aeth.generation.decode import Detokenizer, stop_ids
from aeth.generation.sampling import next_token
from aeth.request import Sampling


def sampling(**kw):
    base = dict(temperature=1.0, top_p=1.0, top_k=0, max_tokens=16, repetition_penalty=1.0, seed=0)
    return Sampling(**{**base, **kw})


@pytest.fixture(scope="module")
def tiny(tiny_model_dir):
    from aeth.models.loading import load_model

    return load_model(tiny_model_dir, quantization="none", dtype="float32", device="cpu")


def test_greedy_and_degenerate_filters_pick_the_argmax():
    logits = torch.tensor([0.1, 3.0, 2.9, -1.0])
    g = torch.Generator().manual_seed(0)
    assert next_token(logits.clone(), sampling(temperature=0), g) == 1
    assert all(next_token(logits.clone(), sampling(top_k=1), g) == 1 for _ in range(20))
    assert all(next_token(logits.clone(), sampling(top_p=0.01), g) == 1 for _ in range(20))
    # a temperature so small that logits / temperature overflows: its limit (greedy), not an error
    for tiny_temperature in (5e-324, 1e-40):
        assert next_token(logits.clone() * 50, sampling(temperature=tiny_temperature, top_p=1.0, top_k=0), g) == 1


def test_top_k_never_samples_outside_the_k_best():
    logits = torch.tensor([5.0, 4.0, 0.0, 0.0, 0.0])
    g = torch.Generator().manual_seed(1)
    picks = {next_token(logits.clone(), sampling(top_k=2, temperature=5.0), g) for _ in range(200)}
    assert picks == {0, 1}


def test_top_p_keeps_the_smallest_set_reaching_p():
    logits = torch.log(torch.tensor([0.5, 0.3, 0.15, 0.05]))
    g = torch.Generator().manual_seed(2)
    picks = {next_token(logits.clone(), sampling(top_p=0.75), g) for _ in range(300)}
    assert picks == {0, 1}


def test_repetition_penalty_steers_away_from_seen_tokens():
    logits = torch.tensor([2.0, 1.9])
    assert next_token(logits.clone(), sampling(temperature=0, repetition_penalty=1.5), None, torch.tensor([0])) == 1


def test_seed_makes_sampling_reproducible():
    logits = torch.randn(50)
    a = [next_token(logits.clone(), sampling(), torch.Generator().manual_seed(7)) for _ in range(5)]
    b = [next_token(logits.clone(), sampling(), torch.Generator().manual_seed(7)) for _ in range(5)]
    assert a == b


def test_detokenizer_pieces_add_up_to_the_full_decode(tiny):
    tok = tiny.tokenizer
    ids = tok("Héllo wörld, def f(x): return x * 2  # done", add_special_tokens=False)["input_ids"]
    detok = Detokenizer(tok)
    pieces = [detok.push(i) for i in ids]
    assert "".join(pieces) == tok.decode(ids, skip_special_tokens=True)
    assert not any("\ufffd" in p for p in pieces)


def test_stream_respects_max_tokens_seed_and_fills_stats(tiny):
    spec = Specialist(name="t", description="tiny")
    messages = build_messages(spec, Request("hello"))
    stats = {}
    pieces = list(stream_text(tiny, messages, sampling(max_tokens=12, seed=3), stats))
    assert stats["tokens_out"] <= 12 and stats["tokens_in"] > 5
    assert stats["finish_reason"] in {"stop", "length"}
    assert stats["finish_reason"] == "stop" or stats["tokens_out"] == 12
    again = list(stream_text(tiny, messages, sampling(max_tokens=12, seed=3), {}))
    assert pieces == again


def test_stream_stops_at_the_end_of_turn_token(tiny):
    stops = stop_ids(tiny.model, tiny.tokenizer)
    assert tiny.tokenizer.convert_tokens_to_ids("<|im_end|>") in stops
    # make the end-of-turn token overwhelmingly likely: generation must stop at once
    end = tiny.tokenizer.convert_tokens_to_ids("<|im_end|>")

    def favour_end(module, inputs, logits):
        logits[..., end] += 1e4
        return logits

    handle = tiny.model.lm_head.register_forward_hook(favour_end)
    try:
        stats = {}
        assert list(stream_text(tiny, [{"role": "user", "content": "hi"}], sampling(temperature=0), stats)) == []
        assert stats == {"tokens_in": stats["tokens_in"], "tokens_out": 0, "finish_reason": "stop", "unfed": [],
                         "cache_busy": False}  # the end token is not fed: a conversation's template closes the turn
    finally:
        handle.remove()


def test_messages_carry_system_prompt_and_history():
    spec = Specialist(name="t", description="tiny", system_prompt="Be brief.")
    req = Request("and now?", history=({"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}))
    assert [m["role"] for m in build_messages(spec, req)] == ["system", "user", "assistant", "user"]


def test_answerer_is_greedy_and_deterministic(tiny):
    answer = answerer(tiny, Specialist(name="t", description="tiny"), max_tokens=8)
    assert answer("hello") == answer("hello")


def test_cancel_stops_between_forwards_and_says_what_the_cache_has_not_seen(tiny, aeth_home):
    from aeth.config import load_config
    from aeth.generation.decode import cache_settings, default_cache, stream_tokens

    cache = default_cache(tiny.model, **cache_settings(load_config(["cache.sinks=2", "cache.window=30"])))
    assert cache.capacity == 32
    prompt = list(range(5, 75))  # 70 tokens: prefilled in chunks of 30
    forwards = []
    handle = tiny.model.register_forward_pre_hook(lambda m, a, k: forwards.append(k["input_ids"].shape[1]), with_kwargs=True)
    try:
        stats = {}
        out = list(stream_tokens(tiny.model, prompt, sampling(), set(), stats, cache=cache, cancel=lambda: len(forwards) == 1))
    finally:
        handle.remove()
    assert out == [] and stats["finish_reason"] == "cancelled" and forwards == [30]
    assert stats["unfed"] == prompt[30:] and cache.tokens_seen == 30 and not stats["cache_busy"]
    more = list(stream_tokens(tiny.model, stats["unfed"], sampling(max_tokens=4), set(), stats, cache=cache))
    assert len(more) == 4 and cache.tokens_seen == 70 + 3 and stats["unfed"] == more[-1:]


def test_a_cache_larger_than_the_models_context_is_refused(tiny, aeth_home):
    from aeth.config import load_config
    from aeth.errors import ConfigError
    from aeth.generation.decode import cache_settings, default_cache

    with pytest.raises(ConfigError, match=r"4 \+ 1000 exceeds the model's context of 512 tokens; set cache.window to at most 508"):
        default_cache(tiny.model, **cache_settings(load_config(["cache.window=1000"])))
    with pytest.raises(ConfigError, match="cache.window must be >= 16"):
        load_config(["cache.window=3"])


# ---- extra model inputs, the input limit and prefill progress --------------------------------


def test_an_attention_mask_that_masks_nothing_changes_nothing_and_a_padded_one_is_refused(tiny):
    from aeth.generation.decode import stream_tokens

    prompt = tiny.tokenizer("The quick brown fox jumps over the lazy dog", add_special_tokens=False)["input_ids"]
    plain = list(stream_tokens(tiny.model, prompt, sampling(temperature=0, max_tokens=8), set(), {}))
    ones = {"attention_mask": torch.ones(1, len(prompt), dtype=torch.long)}
    assert list(stream_tokens(tiny.model, prompt, sampling(temperature=0, max_tokens=8), set(), {}, inputs=ones)) == plain
    padded = {"attention_mask": torch.tensor([[0] + [1] * (len(prompt) - 1)])}
    with pytest.raises(ValueError, match="must mask nothing"):
        list(stream_tokens(tiny.model, prompt, sampling(), set(), {}, inputs=padded))


def test_prompt_inputs_go_with_one_forward_over_the_whole_prompt(tiny):
    from aeth.errors import InputTooLong
    from aeth.generation.decode import default_cache, stream_tokens

    seen = []

    def record(module, args, kwargs):
        seen.append((kwargs["input_ids"].shape[1], "token_type_ids" in kwargs))

    prompt = list(range(5, 45))
    handle = tiny.model.register_forward_pre_hook(record, with_kwargs=True)
    try:
        # the tiny Llama takes (and ignores) token_type_ids: it stands for an image's pixel values here
        cache = default_cache(tiny.model, sinks=2, window=16)
        with pytest.raises(InputTooLong, match="40 tokens, more than the KV cache's window \\(16\\)"):
            list(stream_tokens(tiny.model, prompt, sampling(), set(), {}, cache=cache,
                               inputs={"token_type_ids": torch.zeros(1, 40, dtype=torch.long)}))
        assert seen == []  # refused before any forward
        stats = {}
        cache = default_cache(tiny.model, sinks=2, window=60)
        out = list(stream_tokens(tiny.model, prompt, sampling(temperature=0, max_tokens=3), set(), stats, cache=cache,
                                 inputs={"token_type_ids": torch.zeros(1, 40, dtype=torch.long)}))
    finally:
        handle.remove()
    assert seen == [(40, True), (1, False), (1, False)] and len(out) == 3
    assert stats["unfed"] == out[-1:] and cache.tokens_seen == 42


def _app(*overrides):
    from aeth.app import Aeth
    from aeth.config import load_config

    return Aeth(load_config(list(overrides)))


def _tiny_spec(tiny_model_dir):
    return Specialist(name="tiny", description="tiny", base_model=str(tiny_model_dir), quantization="none")


def test_an_input_over_max_input_tokens_is_refused_before_any_forward(tiny_model_dir, aeth_home):
    from aeth.chat import ChatMemory
    from aeth.default_plugins.generator import generate
    from aeth.errors import InputTooLong
    from aeth.request import GenerationContext

    app, spec = _app("generation.max_input_tokens=50", "model.threads=1"), _tiny_spec(tiny_model_dir)
    model = app.models.for_specialist(spec).model
    forwards = []
    handle = model.register_forward_pre_hook(lambda m, a, k: forwards.append(1), with_kwargs=True)
    long = "The quick brown fox jumps over the lazy dog. " * 20
    try:
        for chat in (None, ChatMemory()):  # a single answer, and a turn of a conversation
            with pytest.raises(InputTooLong) as info:
                generate(spec, Request(long), GenerationContext(app, sampling(), chat=chat))
            message = str(info.value)
            assert message.startswith("the input is ") and info.value.tokens > 50 and info.value.limit == 50
            assert message == (f"the input is {info.value.tokens:,} tokens, more than generation.max_input_tokens (50): "
                               "shorten it, or raise the limit with -o generation.max_input_tokens=N")
        assert forwards == []
        context = GenerationContext(app, sampling(max_tokens=2))
        assert len(list(generate(spec, Request("hello"), context))) <= 2 and context.stats["tokens_in"] <= 50
        assert forwards
    finally:
        handle.remove()


def test_big_numbers_in_the_limit_message_are_grouped():
    from aeth.errors import InputTooLong

    assert str(InputTooLong(2_612_345, 131_072)).startswith(
        "the input is 2,612,345 tokens, more than generation.max_input_tokens (131,072): shorten it")


def test_a_long_prefill_reports_its_progress(tiny):
    import io

    from aeth.generation import PrefillProgress, default_cache, stream_tokens

    out = io.StringIO()  # not a terminal: plain lines
    prompt = list(range(5, 306))  # 300 tokens prefilled (the last is fed by the first decoding step)
    stream_progress = PrefillProgress("reading", min_tokens=100, stream=out)
    list(stream_tokens(tiny.model, prompt, sampling(max_tokens=1), set(), {}, cache=default_cache(tiny.model, window=30),
                       progress=stream_progress))
    lines = out.getvalue().splitlines()
    # a line every ~10 % of the input: here after each of the 10 chunks of the cache's window
    assert [int(line.split(": ")[1].split("/")[0]) for line in lines] == list(range(30, 301, 30))
    assert all(line.startswith("reading: ") and "/300 tokens, " in line and " tok/s, " in line for line in lines)

    quiet = io.StringIO()
    list(stream_tokens(tiny.model, prompt[:90], sampling(max_tokens=1), set(), {},
                       cache=default_cache(tiny.model, window=30), progress=PrefillProgress(min_tokens=100, stream=quiet)))
    assert quiet.getvalue() == ""  # a short input says nothing


def test_on_a_terminal_the_bar_goes_away_when_the_prefill_ends_even_cancelled(tiny):
    import io

    from aeth.generation import PrefillProgress, default_cache, stream_tokens

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    screen = Terminal()
    progress = PrefillProgress("coding: reading the input", min_tokens=100, stream=screen)
    stats = {}
    forwards = []
    handle = tiny.model.register_forward_pre_hook(lambda m, a, k: forwards.append(1), with_kwargs=True)
    try:
        list(stream_tokens(tiny.model, list(range(5, 306)), sampling(), set(), stats,
                           cache=default_cache(tiny.model, window=30), cancel=lambda: len(forwards) == 2,
                           progress=progress))
    finally:
        handle.remove()
    assert stats["finish_reason"] == "cancelled"
    shown = screen.getvalue()
    assert "coding: reading the input" in shown and "60/300" in shown and "tok/s" in shown
    assert progress._bar is None and shown.endswith("\x1b[2K")  # the bar was stopped and erased


def test_the_default_generator_shows_a_long_inputs_progress_on_stderr(tiny_model_dir, aeth_home, capfd):
    from aeth.default_plugins.generator import generate
    from aeth.generation.prefill import PREFILL_PROGRESS_TOKENS
    from aeth.progress import quiet
    from aeth.request import GenerationContext

    app, spec = _app("model.threads=1"), _tiny_spec(tiny_model_dir)
    tokenizer = app.models.for_specialist(spec).tokenizer
    long = "The quick brown fox jumps over the lazy dog. " * (PREFILL_PROGRESS_TOKENS // 8)
    assert len(tokenizer(long, verbose=False)["input_ids"]) > PREFILL_PROGRESS_TOKENS > tokenizer.model_max_length
    capfd.readouterr()
    context = GenerationContext(app, sampling(max_tokens=1))
    list(generate(spec, Request(long), context))
    err = capfd.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("tiny: reading the input: ")]
    assert lines and lines[-1].startswith(f"tiny: reading the input: {context.stats['tokens_in'] - 1}/")
    assert "tok/s" in lines[-1]
    assert "indexing errors" not in err  # the tokenizer's warning about its context: the sink cache rolls
    with quiet():  # what `aeth run -q` asks for
        list(generate(spec, Request(long), GenerationContext(app, sampling(max_tokens=1))))
    assert "reading the input" not in capfd.readouterr().err


def test_aeth_run_refuses_a_long_input_with_one_line_that_says_how_to_raise_the_limit(tiny_model_dir, aeth_home):
    import os
    import subprocess
    import sys
    from pathlib import Path

    env = {**os.environ, "AETH_HOME": str(aeth_home), "AETH_LOAD_PLUGINS": ""}  # aeth's own plugins only
    aeth = str(Path(sys.executable).with_name("aeth"))
    done = subprocess.run([aeth, "-o", f"model.default={tiny_model_dir}", "-o", "generation.max_input_tokens=50",
                           "run", "-s", "general", "The quick brown fox jumps over the lazy dog. " * 20],
                          capture_output=True, text=True, env=env, timeout=300, stdin=subprocess.DEVNULL)
    assert done.returncode == 1 and done.stdout == ""
    assert "more than generation.max_input_tokens (50): shorten it, or raise the limit with " \
           "-o generation.max_input_tokens=N" in done.stderr
    assert "Traceback" not in done.stderr


def test_an_image_text_model_with_multimodal_rope_decodes_with_a_plain_cache_as_generate_does():
    """Qwen2-VL's inputs (pixel values, image_grid_thw, per-token mm_token_type_ids) through aeth's loop; its
    3-D positions (M-RoPE) are refused by the sink cache, so the default cache falls back to a DynamicCache."""
    from transformers import DynamicCache, Qwen2VLConfig, Qwen2VLForConditionalGeneration

    from aeth.errors import ModelError
    from aeth.generation import default_cache, stream_tokens
    from aeth.generation.sink_cache import sink_cache_for

    text = dict(vocab_size=300, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                num_key_value_heads=2, max_position_embeddings=512, eos_token_id=None,
                rope_parameters={"rope_type": "default", "mrope_section": [2, 1, 1], "rope_theta": 10000.0})
    vision = dict(depth=1, embed_dim=32, hidden_size=32, num_heads=2, mlp_ratio=2, patch_size=4, spatial_merge_size=2,
                  temporal_patch_size=2, in_channels=3)
    config = Qwen2VLConfig(text_config=text, vision_config=vision, image_token_id=290, vision_start_token_id=291,
                           vision_end_token_id=292, video_token_id=293)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = Qwen2VLForConditionalGeneration(config).eval()
        pixels = torch.randn(16, 3 * 2 * 4 * 4)  # one 16 x 16 image: 4 x 4 patches, merged 2 x 2 into 4 tokens
    grid = torch.tensor([[1, 4, 4]])
    prompt = [5, 6, 7, 291] + [290] * 4 + [292, 8, 9, 10]
    kinds = torch.tensor([[int(t == 290) for t in prompt]])
    with pytest.raises(ModelError, match="multimodal RoPE"):
        sink_cache_for(model)
    cache = default_cache(model)
    assert type(cache) is DynamicCache
    inputs = {"pixel_values": pixels, "image_grid_thw": grid, "mm_token_type_ids": kinds,
              "attention_mask": torch.ones(1, len(prompt), dtype=torch.long)}
    ours = list(stream_tokens(model, prompt, sampling(temperature=0, max_tokens=10), set(), {}, cache=cache, inputs=inputs))
    theirs = model.generate(input_ids=torch.tensor([prompt]), pixel_values=pixels, image_grid_thw=grid,
                            mm_token_type_ids=kinds, max_new_tokens=10, do_sample=False, pad_token_id=0)
    assert ours == theirs[0, len(prompt):].tolist() and len(ours) == 10
