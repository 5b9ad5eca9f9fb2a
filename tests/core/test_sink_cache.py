"""SinkCache: equal to DynamicCache before the first eviction; after evictions equal to a fresh forward
over the kept tokens at in-cache positions (1-layer model); flat memory; unsupported models refused."""

import pytest
import torch
from transformers import DynamicCache, LlamaConfig, LlamaForCausalLM

from aeth.errors import ModelError
from aeth.generation.sink_cache import sink_cache_for


def llama(layers=2, **extra):
    config = LlamaConfig(vocab_size=97, hidden_size=32, intermediate_size=64, num_hidden_layers=layers,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=4096, **extra)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return LlamaForCausalLM(config).eval()


@pytest.mark.parametrize("attention", ["eager", "sdpa"])
def test_before_any_eviction_it_equals_dynamic_cache(attention):
    model = llama()
    model.config._attn_implementation = attention
    ids = torch.randint(0, 97, (2, 12), generator=torch.Generator().manual_seed(1))
    sink, dynamic = sink_cache_for(model, sinks=4, window=60), DynamicCache(config=model.config)
    with torch.no_grad():
        sink.make_room(ids.shape[1])
        a = model(input_ids=ids, cache=sink, use_cache=True).logits
        b = model(input_ids=ids, cache=dynamic, use_cache=True).logits
        torch.testing.assert_close(a, b, atol=1e-5, rtol=0)
        token = a[:, -1].argmax(-1, keepdim=True)
        for _ in range(20):  # decode, greedy, batch of 2
            sink.make_room(1)
            a = model(input_ids=token, cache=sink, use_cache=True).logits
            b = model(input_ids=token, cache=dynamic, use_cache=True).logits
            torch.testing.assert_close(a, b, atol=1e-5, rtol=0)
            token = a[:, -1].argmax(-1, keepdim=True)


@pytest.mark.parametrize("attention", ["eager", "sdpa"])
def test_after_evictions_it_equals_a_fresh_forward_over_the_kept_tokens(attention):
    """With one layer, keys and values depend only on a token and its position, so the sink cache's
    answer must be that of the kept tokens (sinks + window) run afresh at positions 0..n-1."""
    model = llama(layers=1)
    model.config._attn_implementation = attention
    sinks, window = 2, 6
    cache = sink_cache_for(model, sinks=sinks, window=window)
    ids = torch.randint(0, 97, (1, 30), generator=torch.Generator().manual_seed(2)).tolist()[0]
    with torch.no_grad():
        for i, token in enumerate(ids):
            evicted = cache.make_room(1)
            logits = model(input_ids=torch.tensor([[token]]), cache=cache, use_cache=True).logits[0, -1]
            seen = ids[:i + 1]
            kept = seen if len(seen) <= sinks + window else seen[:sinks] + seen[-window:]
            fresh = model(input_ids=torch.tensor([kept])).logits[0, -1]
            torch.testing.assert_close(logits, fresh, atol=1e-5, rtol=0)
            assert cache.get_seq_length() == len(kept) and evicted == (1 if i >= sinks + window else 0)
    assert cache.tokens_seen == 30


def test_memory_stays_flat_over_ten_thousand_tokens():
    model = llama(layers=1)
    cache = sink_cache_for(model, sinks=4, window=60)
    token = torch.tensor([[3]])
    sizes = {}
    with torch.no_grad():
        for i in range(1, 10_001):
            cache.make_room(1)
            token = model(input_ids=token, cache=cache, use_cache=True).logits[:, -1].argmax(-1, keepdim=True)
            if i in (64, 1000, 10_000):
                sizes[i] = (cache.nbytes(), cache.get_seq_length())
    assert sizes[64] == sizes[1000] == sizes[10_000] and sizes[10_000][1] == 64
    assert cache.tokens_seen == 10_000


def test_models_it_cannot_serve_are_refused():
    from transformers import GPT2Config, GPT2LMHeadModel, PhiConfig, PhiForCausalLM

    gpt2 = GPT2LMHeadModel(GPT2Config(vocab_size=50, n_embd=16, n_layer=1, n_head=2, n_positions=64))
    with pytest.raises(ModelError, match="no rotary position embedding"):
        sink_cache_for(gpt2)
    phi = PhiForCausalLM(PhiConfig(vocab_size=50, hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                                   num_attention_heads=4, partial_rotary_factor=0.5))
    with pytest.raises(ModelError, match="partial RoPE"):
        sink_cache_for(phi)
    scaled = llama(layers=1, rope_scaling={"rope_type": "dynamic", "factor": 2.0})
    with pytest.raises(ModelError, match="'dynamic' RoPE scaling"):
        sink_cache_for(scaled)
    with pytest.raises(ValueError, match="prefill in chunks"):
        sink_cache_for(llama(layers=1), sinks=2, window=4).make_room(5)


def test_the_decode_loop_rolls_a_long_prompt_through_a_small_sink_cache():
    """aeth's decode loop with a sink cache: prompt prefilled in window-sized chunks, room made
    before every forward. On a 1-layer model each greedy token must be the argmax of a fresh
    forward over the kept tokens; memory never exceeds the capacity."""
    from aeth.generation.decode import stream_tokens
    from aeth.request import Sampling

    model = llama(layers=1)
    sinks, window = 2, 8
    cache = sink_cache_for(model, sinks=sinks, window=window)
    prompt = torch.randint(0, 97, (30,), generator=torch.Generator().manual_seed(3)).tolist()
    greedy = Sampling(temperature=0.0, top_p=1.0, top_k=0, max_tokens=12, repetition_penalty=1.0, seed=0)
    stats = {}
    out = list(stream_tokens(model, prompt, greedy, set(), stats, cache=cache))
    assert len(out) == 12 and stats["tokens_in"] == 30 and cache.get_seq_length() <= sinks + window
    seen = list(prompt)
    with torch.no_grad():
        for token in out:
            kept = seen if len(seen) <= sinks + window else seen[:sinks] + seen[-window:]
            assert token == int(model(input_ids=torch.tensor([kept])).logits[0, -1].argmax())
            seen.append(token)


def test_the_default_cache_gives_what_a_dynamic_cache_gives():
    from transformers import DynamicCache

    from aeth.generation.decode import default_cache, stream_tokens
    from aeth.generation.sink_cache import SinkCache
    from aeth.request import Sampling

    model = llama()
    assert isinstance(default_cache(model), SinkCache) and default_cache(model).capacity == 4096
    prompt = torch.randint(0, 97, (40,), generator=torch.Generator().manual_seed(4)).tolist()
    sampled = Sampling(temperature=0.8, top_p=0.9, top_k=20, max_tokens=25, repetition_penalty=1.1, seed=7)
    with_sinks = list(stream_tokens(model, prompt, sampled, set(), {}))
    dynamic = list(stream_tokens(model, prompt, sampled, set(), {}, cache=DynamicCache(config=model.config)))
    assert with_sinks == dynamic
