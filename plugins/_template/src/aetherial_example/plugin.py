"""Entry point of the plugin: hook implementations only.

aeth imports this module whenever it lists plugins, so keep it light: no torch, transformers or
other heavy imports at module level. Build the specialist inside the hook.
"""

from __future__ import annotations

from aeth import hookimpl


@hookimpl
def register_specialists(register):
    """Register this package's specialist(s)."""
    from aetherial_example.specialist import build_specialist

    register(build_specialist())
