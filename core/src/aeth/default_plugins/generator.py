"""aeth's default generator: the specialist's base model from the shared pool, with its active
adapter version switched on (if it has one), streamed."""

from __future__ import annotations

from aeth.errors import SpecialistError
from aeth.hookspecs import hookimpl


@hookimpl(trylast=True)
def generate(specialist, request, context):
    from aeth.generation import build_messages, stream_text

    if request.images:
        raise SpecialistError(f"specialist {specialist.name!r} answers text only and cannot look at images; "
                              "route image requests to a vision specialist (aeth run -s vision ...)")
    from aeth.models.adapters import AdapterStore

    loaded = context.models.for_specialist(specialist)
    store = AdapterStore(context.config.home)
    chosen = getattr(context, "adapter", None)
    adapter = store.active(specialist.name) if chosen is None else None if chosen == "base" else store.get(specialist.name, chosen)
    if adapter is not None and adapter.manifest.get("base_model") not in (None, specialist.base_model, loaded.name):
        from aeth.plugins import warn

        warn(f"the active adapter {adapter.version} of {specialist.name!r} was trained on {adapter.manifest['base_model']!r}, "
             f"not {specialist.base_model!r}; answering without it (activate another with `aeth adapters`)")
        adapter = None
    served, scope = context.models.with_adapter(loaded, specialist.name, adapter)
    context.stats.update(model=loaded.name, adapter=adapter.version if adapter else None)

    def stream():
        with scope:  # the whole stream runs with this specialist's adapter (or none) selected
            messages = build_messages(specialist, request)
            if context.chat is not None:  # a conversation: this model's cache persists between turns
                lane = (specialist.name, adapter.version if adapter else None)
                yield from context.chat.stream(served, lane, messages, context.sampling, context.stats, context.cancel)
            else:
                yield from stream_text(served, messages, context.sampling, context.stats, cancel=context.cancel)

    return stream()
