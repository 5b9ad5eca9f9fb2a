"""SinkCache with left-padded batches: each row computes what it would alone (pads never become sinks,
positions count real tokens only), before and after evictions; generate_batch equals the single-sequence
loop per prompt; memory stays within sinks + window."""

import pytest
import torch
from transformers import DynamicCache, LlamaConfig, LlamaForCausalLM

from aeth.generation.batch import generate_batch
from aeth.generation.decode import stream_tokens
from aeth.generation.sink_cache import sink_cache_for
from aeth.request import Sampling

PROMPT_LENGTHS = (5, 13, 22)


def llama(layers=2):
    config = LlamaConfig(vocab_size=97, hidden_size=32, intermediate_size=64, num_hidden_layers=layers,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=4096)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return LlamaForCausalLM(config).eval()


def prompts(lengths=PROMPT_LENGTHS, seed=1):
    g = torch.Generator().manual_seed(seed)
    return [torch.randint(1, 97, (n,), generator=g).tolist() for n in lengths]


def left_pad(rows, pad_id=0):
    width = max(map(len, rows))
    ids = torch.tensor([[pad_id] * (width - len(r)) + r for r in rows])
    mask = torch.tensor([[0] * (width - len(r)) + [1] * len(r) for r in rows])
    return ids, mask


def greedy(max_tokens, **extra):
    return Sampling(**{"temperature": 0.0, "top_p": 1.0, "top_k": 0, "max_tokens": max_tokens,
                       "repetition_penalty": 1.0, "seed": 0, **extra})


def run_batch(model, cache, ids, mask, chunk, decode):
    """Left-padded prefill in column chunks, then ``decode`` [B, steps] ids one column at a time.
    Returns, per forward, (ids [B, q], mask [B, q] of the new tokens, logits [B, q, V])."""
    out = []
    steps = [(ids[:, s:s + chunk], mask[:, s:s + chunk]) for s in range(0, ids.shape[1], chunk)]
    steps += [(decode[:, t:t + 1], torch.ones(ids.shape[0], 1, dtype=torch.long)) for t in range(decode.shape[1])]
    for chunk_ids, chunk_mask in steps:
        cache.make_room(chunk_ids.shape[1], attention_mask=chunk_mask)
        logits = model(input_ids=chunk_ids, cache=cache, use_cache=True, **cache.forward_inputs(chunk_ids.shape[1])).logits
        assert cache.get_seq_length() <= cache.capacity
        out.append((chunk_ids, chunk_mask.bool(), logits))
    return out


@pytest.mark.parametrize("attention", ["eager", "sdpa"])
def test_each_row_of_a_padded_batch_computes_what_it_would_alone_through_evictions(attention):
    """Prompts of 5, 13 and 22 tokens, left-padded, in a cache of 2 sinks + 6: evictions drop pads
    first, then each row's own oldest window tokens; every real token's logits must equal those of
    the same row fed the same real tokens alone (batch of 1), in its own sink cache."""
    model = llama()
    model.config._attn_implementation = attention
    sinks, window = 2, 6
    rows = prompts()
    ids, mask = left_pad(rows)
    decode = torch.randint(1, 97, (len(rows), 12), generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        batch = run_batch(model, sink_cache_for(model, sinks=sinks, window=window), ids, mask, window, decode)
        for i in range(len(rows)):
            alone, evicted = sink_cache_for(model, sinks=sinks, window=window), 0
            for chunk_ids, new, logits in batch:
                piece = chunk_ids[i][new[i]]
                if not len(piece):
                    continue
                evicted += alone.make_room(len(piece))
                own = model(input_ids=piece[None], cache=alone, use_cache=True).logits[0]
                torch.testing.assert_close(logits[i][new[i]], own, atol=1e-5, rtol=0)
            assert evicted > 0  # every row rolled its window


@pytest.mark.parametrize("attention", ["eager", "sdpa"])
def test_before_any_eviction_each_padded_row_equals_a_dynamic_cache_alone(attention):
    model = llama()
    model.config._attn_implementation = attention
    rows = prompts()
    ids, mask = left_pad(rows)
    decode = torch.randint(1, 97, (len(rows), 8), generator=torch.Generator().manual_seed(6))
    cache = sink_cache_for(model, sinks=4, window=60)
    with torch.no_grad():
        batch = run_batch(model, cache, ids, mask, ids.shape[1], decode)
        assert cache.get_seq_length() == ids.shape[1] + decode.shape[1] < cache.capacity
        for i in range(len(rows)):
            dynamic = DynamicCache(config=model.config)
            for chunk_ids, new, logits in batch:
                own = model(input_ids=chunk_ids[i][new[i]][None], cache=dynamic, use_cache=True).logits[0]
                torch.testing.assert_close(logits[i][new[i]], own, atol=1e-5, rtol=0)


@pytest.mark.parametrize("attention", ["eager", "sdpa"])
def test_generate_batch_gives_each_prompt_what_the_single_sequence_loop_gives(attention):
    """Greedy, 2 sinks + 10: every prompt fits the cache, the answers do not (evictions in decode)."""
    model = llama()
    model.config._attn_implementation = attention
    rows = prompts((3, 9, 11))
    caches = []

    def cache():
        caches.append(sink_cache_for(model, sinks=2, window=10))
        return caches[-1]

    batched = generate_batch(model, rows, greedy(20), set(), cache=cache())
    alone = [list(stream_tokens(model, row, greedy(20), set(), {}, cache=cache())) for row in rows]
    assert batched == alone and all(len(out) == 20 for out in batched)
    assert caches[0].tokens_seen - (11 - 3) > caches[0].capacity  # even the shortest row outgrew the cache
    # a stop id one row meets halfway ends that row only; the others are untouched
    stop = {alone[1][8]}
    batched = generate_batch(model, rows, greedy(20), stop, cache=cache())
    alone = [list(stream_tokens(model, row, greedy(20), stop, {}, cache=cache())) for row in rows]
    assert batched == alone and len(batched[1]) <= 8


def test_generate_batch_samples_each_row_as_the_single_sequence_loop_does():
    model = llama()
    rows = prompts((4, 12, 7), seed=2)
    sampled = Sampling(temperature=0.9, top_p=0.9, top_k=30, max_tokens=15, repetition_penalty=1.1, seed=11)
    batched = generate_batch(model, rows, sampled, set(), cache=sink_cache_for(model, sinks=2, window=8))
    alone = [list(stream_tokens(model, row, sampled, set(), {}, cache=sink_cache_for(model, sinks=2, window=8)))
             for row in rows]
    assert batched == alone


def test_a_padded_batch_never_holds_more_than_sinks_plus_window():
    model = llama(layers=1)
    cache = sink_cache_for(model, sinks=3, window=9)
    sizes = []
    hook = model.register_forward_hook(lambda *_: sizes.append((cache.get_seq_length(), cache.nbytes())))
    try:
        generate_batch(model, prompts((2, 30, 17)), greedy(200), set(), cache=cache)
    finally:
        hook.remove()
    assert max(length for length, _ in sizes) == 12 and sizes[-1] == sizes[-100]
    assert cache.pad.tolist() == [0, 0, 0]  # the pads went first


def test_padding_that_is_not_on_the_left_is_refused():
    model = llama(layers=1)
    cache = sink_cache_for(model, sinks=2, window=6)
    with pytest.raises(ValueError, match="left padding only"):
        cache.make_room(3, attention_mask=torch.tensor([[1, 0, 1]]))
    cache = sink_cache_for(model, sinks=2, window=6)
    with torch.no_grad():
        cache.make_room(2, attention_mask=torch.tensor([[0, 1], [1, 1]]))
        model(input_ids=torch.tensor([[0, 5], [6, 7]]), cache=cache, use_cache=True, **cache.forward_inputs(2))
    with pytest.raises(ValueError, match="left padding only"):  # a pad after a real token of row 0
        cache.make_room(1, attention_mask=torch.tensor([[0], [1]]))


def test_generate_batch_on_a_dynamic_cache_gives_what_the_single_sequence_loop_gives():
    """The fallback for models a sink cache cannot serve: the batch keeps the whole 2-D mask itself."""
    model = llama()
    rows = prompts()
    batched = generate_batch(model, rows, greedy(10), set(), cache=DynamicCache(config=model.config))
    alone = [list(stream_tokens(model, row, greedy(10), set(), {}, cache=DynamicCache(config=model.config)))
             for row in rows]
    assert batched == alone
