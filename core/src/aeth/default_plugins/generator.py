"""aeth's default generator: the specialist's base model from the shared pool, streamed."""

from __future__ import annotations

from aeth.errors import SpecialistError
from aeth.hookspecs import hookimpl


@hookimpl(trylast=True)
def generate(specialist, request, context):
    from aeth.generation import build_messages, stream_text

    if request.images:
        raise SpecialistError(f"specialist {specialist.name!r} answers text only and cannot look at images; "
                              "route image requests to a vision specialist (aeth run -s vision ...)")
    loaded = context.models.for_specialist(specialist)
    context.stats["model"] = loaded.name
    return stream_text(loaded, build_messages(specialist, request), context.sampling, context.stats)
