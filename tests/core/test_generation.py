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
    from aeth import runtime
    from aeth.config import load_config
    from aeth.generation.decode import default_cache, stream_tokens

    runtime.set_config(load_config(["cache.sinks=2", "cache.window=30"]))
    cache = default_cache(tiny.model)
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
    from aeth import runtime
    from aeth.config import load_config
    from aeth.errors import ConfigError
    from aeth.generation.decode import default_cache

    runtime.set_config(load_config(["cache.window=1000"]))
    with pytest.raises(ConfigError, match=r"4 \+ 1000 exceeds the model's context of 512 tokens; set cache.window to at most 508"):
        default_cache(tiny.model)
    with pytest.raises(ConfigError, match="cache.window must be >= 16"):
        load_config(["cache.window=3"])
