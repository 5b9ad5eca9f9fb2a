"""How a server listens and what it admits, declared once (:class:`ServeSettings`).

``aeth serve``'s options and their ``--help`` come from these fields (:func:`options`), so a
setting added here is a flag there.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

LOOPBACK = {"127.0.0.1", "::1", "localhost"}


def _help(text: str, **extra: Any) -> dict[str, Any]:
    return {"help": text, **extra}


@dataclass(frozen=True)
class ServeSettings:
    """What one ``aeth serve`` process does besides answering."""

    host: str = field(default="127.0.0.1", metadata=_help(
        "Address to listen on. Beyond loopback, API keys are required (create one with `aeth keys create`)."))
    port: int = field(default=8000, metadata=_help("TCP port (0: any free port, printed at start).", min=0, max=65535))
    max_concurrent: int = field(default=16, metadata=_help(
        "Answers generated at once (one batch per base model); more wait in the queue.", min=1))
    max_queue: int = field(default=64, metadata=_help(
        "Requests that may wait for a slot; beyond it a request gets 503 with Retry-After.", min=0))
    max_body_kb: int = field(default=8192, metadata=_help(
        "Largest request body in KiB (images come as data URLs); larger gets 413.", min=1))
    insecure_no_auth: bool = field(default=False, metadata=_help(
        "Listen beyond loopback without API keys. Anyone who can reach the port can use the models.", flag=True))

    @property
    def max_body_bytes(self) -> int:
        return self.max_body_kb * 1024

    @property
    def loopback(self) -> bool:
        """True when only this machine can connect."""
        return self.host in LOOPBACK or self.host.startswith("127.")


def options() -> list[tuple[str, Any, dict[str, Any]]]:
    """``(name, default, metadata)`` for each setting, in declaration order (for the CLI)."""
    return [(f.name, f.default, dict(f.metadata)) for f in fields(ServeSettings)]
