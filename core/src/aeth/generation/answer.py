"""What a ``generate`` hook returns: the input checked, a cache made from the app's settings, the stream.

:func:`stream_answer` is the tail every generator on a local model shares (aeth's default
generator, the vision plugin's): whatever built the prompt, the answer is decoded the same way,
with the answering application's limits, cache settings, cancellation and progress.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, nullcontext
from typing import Any

from aeth.errors import InputTooLong


def check_input_tokens(count: int, config: Any) -> None:
    """Raise :class:`~aeth.errors.InputTooLong` when ``count`` tokens exceed ``config``'s
    ``generation.max_input_tokens`` (checked before any work, so a huge input fails at once)."""
    limit = config["generation.max_input_tokens"]
    if count > limit:
        raise InputTooLong(count, limit)


def stream_answer(context: Any, loaded: Any, prompt_ids: list[int], *, inputs: dict[str, Any] | None = None,
                  scope: AbstractContextManager | None = None, label: str = "reading the input") -> Iterator[str]:
    """The answer to ``prompt_ids`` on ``loaded`` (a :class:`~aeth.models.LoadedModel`), as a
    ``generate`` hook returns it, for the request ``context`` (a :class:`~aeth.request.GenerationContext`).

    Done at once, so a problem surfaces before the stream is returned: the input's size is checked
    against ``generation.max_input_tokens``, and the KV cache is made from the application's
    ``cache.*`` settings (:func:`~aeth.generation.decode.default_cache`). The stream then runs inside
    ``scope`` (e.g. the context :meth:`~aeth.models.ModelPool.with_adapter` returns), feeds ``inputs``
    (images' pixel values...) with the prompt, stops when ``context.cancel()`` says so, fills
    ``context.stats`` and shows progress, labelled ``label``, while a long input is read.
    """
    from aeth.generation.decode import cache_settings, default_cache, detokenize
    from aeth.generation.prefill import PrefillProgress

    check_input_tokens(len(prompt_ids), context.config)
    cache = default_cache(loaded.model, **cache_settings(context.config))

    def stream() -> Iterator[str]:
        with scope or nullcontext():
            yield from detokenize(loaded, prompt_ids, context.sampling, context.stats, cache=cache,
                                  cancel=context.cancel, inputs=inputs, progress=PrefillProgress(label))

    return stream()
