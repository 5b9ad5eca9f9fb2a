"""The plain data that flows through a request: what was asked, who bid, what was answered."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Request:
    """One prompt to answer.

    ``specialist`` set means routing is bypassed. Sampling fields left as ``None`` fall back to the
    user's config, then to the specialist's :class:`~aeth.specialist.GenerationDefaults`.
    ``history`` holds earlier turns as ``{"role", "content"}`` dicts; ``images`` holds images for
    specialists that see: file paths, raw bytes or base64 text (see :mod:`aeth.images`).
    ``metadata`` is the caller's JSON-friendly data about the request; the server logs it with the
    answer, and ``metadata["verify"]`` carries what the specialist's verifier checks the answer
    against (see :mod:`aeth.specialist`).
    """

    prompt: str
    specialist: str | None = None
    history: tuple[dict, ...] = ()
    images: tuple[str | bytes, ...] = ()
    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    max_tokens: int | None = None
    seed: int | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])


@dataclass(frozen=True)
class Bid:
    """A router's offer: this specialist should answer, with this confidence, for this reason."""

    specialist: str
    score: float
    reason: str
    plugin: str = ""


@dataclass(frozen=True)
class Sampling:
    """Resolved sampling parameters for one generation (no ``None`` left)."""

    temperature: float
    top_p: float
    top_k: int
    max_tokens: int
    repetition_penalty: float
    seed: int | None


@dataclass
class GenerationContext:
    """What a ``generate`` implementation gets besides the specialist and the request.

    ``app`` is the :class:`~aeth.app.Aeth` answering: its ``config``, its ``models`` (the
    :class:`~aeth.models.pool.ModelPool`) and its ``adapters`` are the ones to use, never a
    process-wide copy. ``stats`` is filled in by the generator (``tokens_in``, ``tokens_out``,
    ``finish_reason``, ``adapter``) and copied into the response.
    """

    app: Any
    sampling: Sampling
    stats: dict[str, Any] = field(default_factory=dict)
    #: which adapter version answers: ``None`` = the specialist's active one, ``"base"`` = none,
    #: else a version id (how an eval judges a version before it is promoted)
    adapter: str | None = None
    #: polled between tokens; when it returns true the generator stops early with
    #: ``finish_reason`` "cancelled" (``aeth chat``'s Ctrl-C, a client that went away)
    cancel: Callable[[], bool] | None = None
    #: an :class:`aeth.chat.ChatMemory` when the request is a turn of a conversation: the default
    #: generator keeps each model's KV cache in it across turns and feeds only the new text; a
    #: generator that cannot use it reads ``request.history`` instead
    chat: Any = None

    @property
    def config(self) -> Any:
        """The answering application's :class:`~aeth.config.Config`."""
        return self.app.config

    @property
    def models(self) -> Any:
        """The answering application's :class:`~aeth.models.pool.ModelPool`."""
        return self.app.models


@dataclass
class Response:
    """The answer to a request, and how it came about."""

    id: str
    specialist: str
    text: str
    reason: str
    score: float | None = None
    tokens_in: int = 0
    tokens_out: int = 0
    seconds: float = 0.0  #: from the generate call to the last token, model loading included
    load_seconds: float = 0.0  #: the part of ``seconds`` spent before generation began (loading the model)
    finish_reason: str = ""
    adapter: str | None = None  #: the adapter version that answered (None: the bare base model)
    #: what quality control did (:mod:`aeth.quality`): method, k, answers generated, which one left; None when off
    quality: dict | None = None
    #: the specialists whose answers make up a composed reply (:mod:`aeth.compose`), in order; None: one answered
    contributors: list[dict] | None = None

    @property
    def tokens_per_second(self) -> float:
        """Generation speed, model loading excluded (0 when nothing was generated)."""
        generating = self.seconds - self.load_seconds
        return self.tokens_out / generating if self.tokens_out and generating > 0 else 0.0

    def to_dict(self) -> dict:
        """JSON-friendly form (what ``aeth run --json`` prints)."""
        return {**self.__dict__, "tokens_per_second": round(self.tokens_per_second, 1)}
