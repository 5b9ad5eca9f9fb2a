"""The store's rows as plain dataclasses: an answer (:class:`Interaction`), an :class:`ApiKey`, a
piece of :class:`Feedback`."""

from __future__ import annotations

import uuid
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Any

#: where an interaction came from
SOURCES = ("serve", "run", "chat")
#: what a piece of feedback is
FEEDBACK_KINDS = ("thumbs", "rating", "correction", "preference", "comment")
#: who gave a piece of feedback
FEEDBACK_SOURCES = ("user", "verifier")


def new_id() -> str:
    """A fresh row id: 24 hex characters (96 random bits)."""
    return uuid.uuid4().hex[:24]


def utcnow() -> datetime:
    """Now, in UTC, timezone-aware."""
    return datetime.now(timezone.utc)


def as_utc(value: datetime | None) -> datetime | None:
    """``value`` as an aware UTC datetime (SQLite hands back naive ones, which are UTC here)."""
    if value is None:
        return None
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


@dataclass
class Interaction:
    """One answer: what the model was sent, what it said, who answered and what it cost.

    ``messages`` is the full list of ``{"role", "content"}`` the model was sent, system prompt
    included. ``machine_seconds`` is this answer's share of the machine's time (the whole
    generation when answers run one at a time; a batch's steps divided among its answers), the
    basis of its cost. ``group_id`` and ``choice_index`` tie together the ``n`` alternatives of one
    request. ``id`` and ``created`` are filled in by :meth:`Store.record` when left ``None``.
    """

    messages: list[dict[str, Any]]
    answer: str
    specialist: str
    source: str = "run"
    model: str | None = None
    adapter: str | None = None
    sampling: dict[str, Any] = field(default_factory=dict)
    tokens_in: int = 0
    tokens_out: int = 0
    latency_s: float = 0.0
    ttft_s: float | None = None
    machine_seconds: float = 0.0
    finish_reason: str = ""
    key_id: str | None = None
    route: dict[str, Any] = field(default_factory=dict)
    group_id: str | None = None
    choice_index: int = 0
    metadata: dict[str, Any] = field(default_factory=dict)
    id: str | None = None
    created: datetime | None = None

    @property
    def prompt(self) -> str:
        """The last user message (what was asked this time)."""
        return next((m.get("content", "") for m in reversed(self.messages) if m.get("role") == "user"), "")

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form (``created`` as ISO 8601 UTC); one line of ``aeth log export``."""
        out = asdict(self)
        created = self.created.isoformat() if self.created else None
        return {"id": out.pop("id"), "created": created, **{k: v for k, v in out.items() if k != "created"}}


@dataclass
class ApiKey:
    """An API key, without its secret: only the SHA-256 of the secret is stored, and a short
    ``prefix`` of it so a person can tell keys apart. ``rpm``/``tpm`` limit requests and tokens per
    minute (``None``: unlimited); ``specialists`` restricts which ones it may use (``None``: all)."""

    id: str
    name: str
    prefix: str
    rpm: int | None = None
    tpm: int | None = None
    specialists: list[str] | None = None
    created: datetime | None = None
    revoked: datetime | None = None
    last_used: datetime | None = None

    @property
    def active(self) -> bool:
        """True until the key is revoked."""
        return self.revoked is None

    def allows(self, specialist: str) -> bool:
        """Whether this key may ask ``specialist``."""
        return self.specialists is None or specialist in self.specialists

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form (times as ISO 8601 UTC)."""
        out = asdict(self)
        for k in ("created", "revoked", "last_used"):
            out[k] = out[k].isoformat() if out[k] else None
        return out


@dataclass
class Feedback:
    """What someone (a ``user``, or a ``verifier`` such as a test run) said about an interaction.

    ``kind`` is one of :data:`FEEDBACK_KINDS`; ``value`` is its JSON payload (``thumbs``: true or
    false; ``rating``: 1 to 5 from a user, a reward from 0 to 1 from a verifier; ``correction``: the
    better answer; ``preference``: ``{"chosen": ID, "rejected": ID}``, two answers to the same
    prompt, one of them this interaction; ``comment``: free text). See :mod:`aeth.store.feedback`.
    """

    id: str
    interaction_id: str
    kind: str
    value: Any
    comment: str | None = None
    source: str = "user"
    created: datetime | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form."""
        out = asdict(self)
        out["created"] = self.created.isoformat() if self.created else None
        return out
