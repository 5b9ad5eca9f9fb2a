"""Text generation: sampling, the streaming decode loop, and the prompt format.

- :mod:`aeth.generation.prompt`      chat messages and their token ids in the model's format
- :mod:`aeth.generation.decode`      the decode loop: prefill, then one token per step, streamed
- :mod:`aeth.generation.answer`      what a ``generate`` hook returns: input checked, cache made, stream
- :mod:`aeth.generation.prefill`     progress of a long prefill on stderr
- :mod:`aeth.generation.sink_cache`  the attention-sink rolling KV cache (constant memory)
- :mod:`aeth.generation.batch`       several prompts decoded together
- :mod:`aeth.generation.sampling`    the next token from logits

The names below are the public ones plugins use. Nothing here imports torch at module level; the
functions do, when they run.
"""

from aeth.generation.answer import check_input_tokens, stream_answer
from aeth.generation.decode import answerer, cache_settings, default_cache, detokenize, stop_ids, stream_text, stream_tokens
from aeth.generation.prefill import PrefillProgress
from aeth.generation.prompt import build_messages, encode_chat

__all__ = [
    "PrefillProgress",
    "answerer",
    "build_messages",
    "cache_settings",
    "check_input_tokens",
    "default_cache",
    "detokenize",
    "encode_chat",
    "stop_ids",
    "stream_answer",
    "stream_text",
    "stream_tokens",
]
