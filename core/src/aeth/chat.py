"""Conversations: multi-turn chats at constant memory, saved as they go, resumable by id.

Two pieces, used by ``aeth chat`` and open to applications:

- :class:`Conversation` is the transcript on disk: ``$AETH_HOME/chats/<id>.jsonl``, one JSON line
  per message, appended and fsynced as each turn ends, so a crash loses at most the turn in flight.
- :class:`ChatMemory` holds, for each (specialist, adapter) that answered, a rolling attention-sink
  KV cache that persists between turns. A turn feeds only its new text (the close of the previous
  reply, the user's message, the opening of the next reply), so a turn costs the same at turn 2 and
  at turn 2,000, and memory stays at the cache's capacity however long the conversation runs.
  What has rolled out of the window is forgotten, except the first tokens (the sinks).

    from aeth.app import Aeth
    from aeth.chat import ChatMemory, Conversation
    from aeth.request import Request

    app, memory = Aeth(), ChatMemory()
    convo = Conversation.new(app.config.home)
    for prompt in ("Hi, I am Ada.", "What is my name?"):
        answer = app.stream(Request(prompt, history=convo.history()), chat=memory)
        convo.add("user", prompt)
        convo.add("assistant", answer.text(), specialist=answer.specialist.name)
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aeth.errors import AethError
from aeth.request import Sampling

CHATS = "chats"
FORMAT = 1


class ConversationError(AethError):
    """A saved conversation is missing or unreadable."""


@dataclass
class Conversation:
    """A transcript: messages (``role``, ``content``, and who answered) in an append-only file."""

    id: str
    path: Path
    created: float
    specialist: str | None = None  #: answers every turn; ``None``: routed per turn
    messages: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def new(cls, home: Path, specialist: str | None = None) -> Conversation:
        """Start a conversation (its file is written at once, so its id is valid from the start)."""
        cid = f"{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:4]}"
        convo = cls(cid, Path(home) / CHATS / f"{cid}.jsonl", time.time(), specialist)
        convo.path.parent.mkdir(parents=True, exist_ok=True)
        convo._append({"aeth_chat": FORMAT, "id": cid, "created": convo.created, "specialist": specialist})
        return convo

    @classmethod
    def load(cls, home: Path, ref: str) -> Conversation:
        """The conversation whose id is ``ref``, starts with ``ref``, or the newest for ``last``."""
        path = find(home, ref)
        lines = path.read_text(encoding="utf-8").splitlines()
        records = []
        for n, line in enumerate(lines, 1):
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                if n == len(lines):  # the line a crash cut short: the turn in flight, dropped
                    break
                raise ConversationError(f"{path}: line {n} is not JSON; the file was edited or damaged") from None
        if not records or records[0].get("aeth_chat") != FORMAT:
            raise ConversationError(f"{path} is not an aeth conversation (format {FORMAT})")
        head = records[0]
        convo = cls(head["id"], path, head.get("created", 0.0), head.get("specialist"))
        for record in records[1:]:
            if "set" in record:
                convo.specialist = record["set"].get("specialist", convo.specialist)
            elif record.get("role") in ("user", "assistant"):
                convo.messages.append(record)
        return convo

    def add(self, role: str, content: str, **extra: Any) -> None:
        """Append a message and write it to disk before returning."""
        message = {"role": role, "content": content, **{k: v for k, v in extra.items() if v is not None}}
        self._append(message)
        self.messages.append(message)

    def pin(self, specialist: str | None) -> None:
        """Answer every later turn with ``specialist`` (``None``: route each turn); recorded in the file."""
        self._append({"set": {"specialist": specialist}})
        self.specialist = specialist

    def history(self) -> tuple[dict[str, str], ...]:
        """The answered turns as chat messages; a question left without an answer (a crash) is skipped."""
        out: list[dict[str, str]] = []
        for i, m in enumerate(self.messages):
            if m["role"] == "user" and i + 1 < len(self.messages) and self.messages[i + 1]["role"] == "assistant":
                out += [{"role": "user", "content": m["content"]},
                        {"role": "assistant", "content": self.messages[i + 1]["content"]}]
        return tuple(out)

    @property
    def turns(self) -> int:
        """Questions answered (an interrupted answer counts)."""
        return len(self.history()) // 2

    def markdown(self) -> str:
        """The transcript as Markdown."""
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(self.created))
        parts = [f"# Conversation {self.id}\n\nstarted {when}\n"]
        for m in self.messages:
            who = "You" if m["role"] == "user" else f"aeth ({m.get('specialist', '?')})"
            note = " *(interrupted)*" if m.get("interrupted") else ""
            parts.append(f"**{who}**{note}\n\n{m['content']}\n")
        return "\n".join(parts)

    def _append(self, record: dict[str, Any]) -> None:
        line = json.dumps(record, ensure_ascii=False) + "\n"
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(line)
            f.flush()
            os.fsync(f.fileno())


def saved(home: Path) -> list[Path]:
    """Every saved conversation's file, newest first."""
    folder = Path(home) / CHATS
    files = folder.glob("*.jsonl") if folder.is_dir() else []
    return sorted(files, key=lambda p: (p.stat().st_mtime, p.name), reverse=True)


def find(home: Path, ref: str) -> Path:
    """The file of the conversation ``ref`` names (an id, its unique start, or ``last``)."""
    files = saved(home)
    if not files:
        raise ConversationError(f"no saved conversations in {Path(home) / CHATS}; start one with `aeth chat`")
    if ref == "last":
        return files[0]
    matches = [p for p in files if p.stem == ref] or [p for p in files if p.stem.startswith(ref)]
    if len(matches) == 1:
        return matches[0]
    recent = ", ".join(p.stem for p in files[:5])
    if matches:
        raise ConversationError(f"{ref!r} matches {len(matches)} conversations; give more of the id (recent: {recent})")
    raise ConversationError(f"no conversation {ref!r}; recent ones: {recent} (all: `aeth chat --list`)")


# ---- the KV caches of a conversation -------------------------------------------------------


@dataclass
class Lane:
    """One model's view of the conversation: its cache, and how much of the transcript is in it."""

    cache: Any
    fed: int = 0  #: messages (system prompt included) whose text is in the cache; the last is a reply
    unfed: list[int] = field(default_factory=list)  #: ids of that text the cache has not seen yet


class ChatMemory:
    """The KV caches of one conversation, one per (specialist, adapter) that answers in it.

    At most ``lanes`` are kept (the least recently used goes); a lane that comes back, or a
    conversation resumed from disk, is rebuilt from the latest turns that fit in its window.
    """

    def __init__(self, lanes: int = 2):
        self.max_lanes = lanes
        self.lanes: OrderedDict[Hashable, Lane] = OrderedDict()
        self.last: Hashable | None = None

    def reset(self) -> None:
        """Forget every cache (a new conversation)."""
        self.lanes.clear()
        self.last = None

    def stream(self, loaded: Any, key: Hashable, messages: list[dict[str, str]], sampling: Sampling,
               stats: dict[str, Any], cancel: Callable[[], bool] | None = None,
               new_cache: Callable[[Any], Any] | None = None,
               progress: Callable[[int, int], Any] | None = None) -> Iterator[str]:
        """Answer the last of ``messages`` (system prompt, the conversation, the new question) with
        ``loaded``, continuing lane ``key``'s cache; yield text increments. ``new_cache(model)`` makes
        a lane's cache when one starts (default: :func:`~aeth.generation.decode.default_cache`);
        ``progress(done, total)`` hears how far a long turn's text is read (e.g. a
        :class:`~aeth.generation.prefill.PrefillProgress`)."""
        from aeth.generation.decode import detokenize
        from aeth.generation.prompt import encode_chat

        lane = self.lanes.pop(key, None)
        tokenizer = loaded.tokenizer
        increment = None if lane is None else _increment(tokenizer, messages, lane.fed)
        if increment is not None:
            ids = lane.unfed + tokenizer(increment, add_special_tokens=False)["input_ids"]
        else:  # a new lane, or a chat format that does not extend: start over from the recent turns
            from aeth.generation.decode import default_cache

            lane = Lane((new_cache or default_cache)(loaded.model))
            ids = encode_chat(tokenizer, _recent(tokenizer, messages, _window(lane.cache)))
        self.last = key
        try:
            yield from detokenize(loaded, ids, sampling, stats, cache=lane.cache, cancel=cancel, progress=progress)
        finally:  # kept unless a forward was cut short (a hard Ctrl-C, an error): then it is half-written
            if not stats.get("cache_busy"):
                lane.fed, lane.unfed = len(messages) + 1, list(stats["unfed"])
                self.lanes[key] = lane
                while len(self.lanes) > self.max_lanes:
                    self.lanes.popitem(last=False)
        stats.update(self.stats(key))

    def stats(self, key: Hashable | None = None) -> dict[str, Any]:
        """For lane ``key`` (default: the one that answered last): tokens seen, held, capacity, bytes."""
        lane = self.lanes.get(self.last if key is None else key)
        if lane is None:
            return {}
        cache = lane.cache
        held = cache.get_seq_length()
        return {"cache_tokens": held, "cache_capacity": getattr(cache, "capacity", None),
                "cache_bytes": _nbytes(cache), "tokens_seen": getattr(cache, "tokens_seen", held),
                "cache_sinks": getattr(cache.layers[0], "sinks", None)}


def _window(cache: Any) -> int:
    return getattr(cache.layers[0], "window", None) or 4096


def _nbytes(cache: Any) -> int:
    if hasattr(cache, "nbytes"):
        return cache.nbytes()
    return sum(layer.keys.nbytes + layer.values.nbytes for layer in cache.layers if getattr(layer, "keys", None) is not None)


def _render(tokenizer: Any, messages: list[dict[str, str]], open_reply: bool) -> str:
    return tokenizer.apply_chat_template(messages, add_generation_prompt=open_reply, tokenize=False)


def _increment(tokenizer: Any, messages: list[dict[str, str]], fed: int) -> str | None:
    """The text that takes a cache holding ``messages[:fed]`` (its last, a reply as generated, not yet
    closed) to all of ``messages`` with the next reply opened; ``None`` where the chat template does
    not extend a conversation by appending (then the caller starts over).

    Only the system prompt and the last exchange are rendered, so the cost does not grow with the
    conversation: the template's text for [system, question, reply] must be a prefix of its text
    for [system, question, reply, new messages...], and the reply must sit in it right after the
    opened turn.
    """
    if not getattr(tokenizer, "chat_template", None) or fed < 2 or fed > len(messages):
        return None
    if messages[fed - 1]["role"] != "assistant":
        return None
    anchor = messages[:1] if messages[0]["role"] == "system" else []
    start = max(len(anchor), fed - 2)
    try:
        opened = _render(tokenizer, anchor + messages[start:fed - 1], True)
        before = _render(tokenizer, anchor + messages[start:fed], False)
        after = _render(tokenizer, anchor + messages[start:], True)
    except Exception:  # a template that refuses this shape of conversation  # noqa: BLE001
        return None
    reply = messages[fed - 1]["content"]
    if not before.startswith(opened) or not after.startswith(before):
        return None
    tail = before[len(opened):]
    at = tail.find(reply) if reply else 0
    if at < 0:
        return None
    return tail[at + len(reply):] + after[len(before):]


def _recent(tokenizer: Any, messages: list[dict[str, str]], budget: int) -> list[dict[str, str]]:
    """The system prompt and the latest whole exchanges whose text fits ``budget`` tokens (the new
    question always): what a fresh cache is filled with. Older turns would roll out anyway."""
    anchor = messages[:1] if messages[0]["role"] == "system" else []
    body = messages[len(anchor):]
    used = sum(len(tokenizer(m["content"], add_special_tokens=False)["input_ids"]) + 8 for m in anchor)
    start = len(body) - 1
    used += len(tokenizer(body[start]["content"], add_special_tokens=False)["input_ids"]) + 8
    i = start - 1
    while i >= 1:  # whole (question, reply) pairs, newest first
        pair = sum(len(tokenizer(m["content"], add_special_tokens=False)["input_ids"]) + 8 for m in body[i - 1:i + 1])
        if used + pair > budget or body[i - 1]["role"] != "user":
            break
        used += pair
        start, i = i - 1, i - 2
    return anchor + body[start:]
