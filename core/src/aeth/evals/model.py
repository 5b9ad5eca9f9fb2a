"""The model an eval runs against: a specialist answering through the ``generate`` hook.

Evals go through the same path as ``aeth run`` (minus routing and content policies), so a
specialist with its own ``generate`` (a vision model, a remote backend) is judged by its suite
exactly as it answers users.
"""

from __future__ import annotations

from collections.abc import Callable

from aeth.errors import PluginError
from aeth.generation.sampling import eval_sampling
from aeth.request import GenerationContext, Request
from aeth.specialist import Specialist


def specialist_model(app, specialist: Specialist, *, temperature: float = 0.0, max_tokens: int = 256,
                     seed: int = 0, adapter: str | None = None) -> Callable[..., str]:
    """``model(prompt, *, images=(), sample=0, max_tokens=None) -> str`` for ``specialist``.

    Sample ``i`` uses seed ``seed + i``: samples differ from each other, and a rerun repeats them.
    ``adapter`` picks the adapter version that answers (``None``: the active one; ``"base"``:
    none), so a version can be judged before it is promoted. The returned function's ``answered_by``
    set collects the adapter versions that actually answered (``None`` for the bare base), which a
    report records.
    """
    def answer(prompt: str, *, images: tuple = (), sample: int = 0, max_tokens: int | None = None) -> str:
        request = Request(prompt=prompt, specialist=specialist.name, images=tuple(images))
        sampling = eval_sampling(specialist, temperature, max_tokens or default_tokens, seed + sample)
        context = GenerationContext(app, sampling, adapter=adapter)
        stream = app.hook.generate(specialist=specialist, request=request, context=context)
        if stream is None:
            raise PluginError("no plugin implements the generate hook (aeth's default generator was disabled?)")
        text = "".join(stream).strip()
        answer.answered_by.add(context.stats.get("adapter"))
        return text

    default_tokens = max_tokens
    answer.answered_by = set()
    return answer
