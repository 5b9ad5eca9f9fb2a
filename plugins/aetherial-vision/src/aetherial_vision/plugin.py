"""Entry point of the ``vision`` plugin: hook implementations only.

aeth imports this module for ``aeth plugins`` and ``aeth --help``, so it imports nothing heavy:
torch, transformers and RapidOCR are imported only when a vision request is answered.
"""

from __future__ import annotations

from aeth import hookimpl

SPECIALIST = "vision"


@hookimpl
def register_specialists(register, app):
    """Register the ``vision`` specialist (its eval images go under ``app``'s home)."""
    from aetherial_vision.specialist import build_specialist

    register(build_specialist(app.config.home))


@hookimpl
def generate(specialist, request, context):
    """Answer requests for ``vision`` (a VLM, or OCR offline); ``None`` for every other specialist."""
    if specialist.name != SPECIALIST:
        return None
    from aetherial_vision.generator import generate as answer

    return answer(specialist, request, context)
