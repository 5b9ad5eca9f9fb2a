"""Entry point of the ``reasoning`` plugin: hook implementations only.

aeth imports this module for ``aeth plugins`` and ``aeth --help``, so it imports nothing heavy;
the specialist is built only when core asks for specialists.
"""

from __future__ import annotations

from aeth import hookimpl


@hookimpl
def register_specialists(register):
    """Register the ``reasoning`` specialist."""
    from aetherial_reasoning.specialist import build_specialist

    register(build_specialist())
