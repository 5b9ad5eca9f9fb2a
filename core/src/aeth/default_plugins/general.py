"""The ``general`` specialist: the base model with a plain assistant prompt.

It is the router's fallback when no specialist is confident, so ``aeth run`` answers something
sensible with no specialist installed at all.
"""

from __future__ import annotations

from aeth.hookspecs import hookimpl
from aeth.specialist import GenerationDefaults, Specialist


@hookimpl
def register_specialists(register):
    from aeth import runtime

    register(Specialist(
        name="general",
        description="General assistant on the base model; answers when no specialist is confident.",
        base_model=runtime.config()["model.default"],
        system_prompt="You are a helpful assistant. Answer accurately and concisely, in complete sentences.",
        generation=GenerationDefaults(temperature=0.3, top_p=0.9, top_k=50, max_tokens=256, repetition_penalty=1.1),
    ))
