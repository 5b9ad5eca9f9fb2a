"""Entry point of the ``writing`` plugin: hook implementations only.

aeth imports this module for ``aeth plugins`` and ``aeth --help``, so it imports nothing heavy;
the specialist is built only when core asks for specialists.
"""

from __future__ import annotations

from aeth import hookimpl


@hookimpl
def register_specialists(register):
    """Register the ``writing`` specialist."""
    from aetherial_writing.specialist import build_specialist

    register(build_specialist())
