"""aeth's default generator: the specialist's base model from the shared pool, with its active
adapter version switched on (if it has one), streamed.

The prompt is tokenized before the stream is returned, so an input longer than
``generation.max_input_tokens`` is refused at once, before any forward; a long one shows its
prefill's progress on stderr (:mod:`aeth.generation.prefill`).
"""

from __future__ import annotations

from aeth.errors import SpecialistError
from aeth.hookspecs import hookimpl


@hookimpl(trylast=True)
def generate(specialist, request, context):
    from aeth.generation import build_messages, check_input_tokens, encode_chat, stream_answer
    from aeth.generation.decode import cache_settings, default_cache
    from aeth.generation.prefill import PrefillProgress

    if request.images:
        raise SpecialistError(f"specialist {specialist.name!r} answers text only and cannot look at images; "
                              "route image requests to a vision specialist (aeth run -s vision ...)")
    loaded = context.models.for_specialist(specialist)
    adapter = served_adapter(context.app, specialist, loaded, context.adapter)
    served, scope = context.models.with_adapter(loaded, specialist.name, adapter)
    context.stats.update(model=loaded.name, adapter=adapter.version if adapter else None)
    messages = build_messages(specialist, request)
    if context.chat is None:
        return stream_answer(context, served, encode_chat(served.tokenizer, messages), scope=scope,
                             label=f"{specialist.name}: reading the input")

    # A conversation feeds only its new text (earlier turns are in the lane's cache or roll out of
    # it), but the new message is fed whole: it alone must stay within the limit.
    new_ids = served.tokenizer(request.prompt, add_special_tokens=False, verbose=False)["input_ids"]
    check_input_tokens(len(new_ids), context.config)

    def new_cache(model):
        return default_cache(model, **cache_settings(context.config))

    def stream():
        with scope:  # the whole stream runs with this specialist's adapter (or none) selected
            lane = (specialist.name, adapter.version if adapter else None)
            yield from context.chat.stream(served, lane, messages, context.sampling, context.stats, context.cancel,
                                           new_cache=new_cache,
                                           progress=PrefillProgress(f"{specialist.name}: reading the input"))

    return stream()


def served_adapter(app, specialist, loaded, chosen):
    """The adapter version that answers for ``specialist`` on ``loaded`` (a LoadedModel), read from
    ``app.adapters`` now: ``chosen`` None = the active one, ``"base"`` = none, else that version.
    One trained on another base model is not served (one warning says so). aeth's batching engine
    resolves adapters the same way."""
    store = app.adapters
    adapter = store.active(specialist.name) if chosen is None else None if chosen == "base" else store.get(specialist.name, chosen)
    if adapter is not None and adapter.manifest.get("base_model") not in (None, specialist.base_model, loaded.name):
        from aeth.plugins import warn

        warn(f"the active adapter {adapter.version} of {specialist.name!r} was trained on {adapter.manifest['base_model']!r}, "
             f"not {specialist.base_model!r}; answering without it (activate another with `aeth adapters`)")
        adapter = None
    return adapter
