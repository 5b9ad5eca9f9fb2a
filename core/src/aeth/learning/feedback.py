"""Feedback rows -> training records: which signal becomes which SFT, DPO or KTO record.

Pure data work (no database, no files): :func:`records_from_feedback` takes the feedback rows of
one learn dataset and the interactions they are about, and returns :class:`Item` records tagged
with their objective and prompt. The rules (DESIGN.md §3 "learn"; docs/learning.md):

- **latest wins**: on one interaction, the newest of its thumbs and user ratings is its verdict,
  the newest correction its correction, the newest verifier rating its reward; of two preferences
  between the same two answers, the newest. Older ones are counted as ``superseded``.
- **correction** -> SFT of the corrected answer, and a DPO pair (correction chosen, the original
  answer rejected) when they differ. A corrected answer gives no other SFT or KTO record.
- **thumbs up / rating >= 4** -> SFT of the answer; **thumbs down / rating <= 2** -> no SFT;
  a rating of 3 is ``neutral``: nothing.
- **lone verdicts** (an answer with a verdict but no correction and in no preference) -> KTO,
  label true for good, false for bad.
- **preference** ``{"chosen", "rejected"}`` -> a DPO pair of the two answers.
- **verifier rewards** (kind ``rating``, source ``verifier``, 0 to 1): an answer whose reward is at
  least ``min_reward`` -> SFT ("accepted sample"); among the rewarded answers to one prompt, the
  best against the worst, when their rewards differ -> a DPO pair.
- **unfinished answers** (finish reason ``length``, ``cancelled`` or ``content_filter``) are never a
  target to imitate (SFT, KTO true, DPO chosen): a cut answer would teach stopping mid-sentence.
  They may still be the rejected side or a KTO false; a correction of one is used as usual.
- **comments** (kind ``comment``, or any row's ``comment``) only go to the dataset's card.

A record's prompt is the interaction's messages without the specialist's own system prompt: a
leading system message equal to it (or empty) is dropped, since training puts the specialist's
current prompt first (:func:`aeth.training.data.encode_record`). A leading system message that
differs (a client's own system message merged after the specialist's, or a prompt the
specialist has since changed) is kept as sent: it is what the answer responded to.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from aeth.specialist import record_problems
from aeth.store.rows import Feedback, Interaction

#: finish reasons of an answer that did not end by itself
UNFINISHED = frozenset({"length", "cancelled", "content_filter"})
#: why a feedback row or record gave nothing (the keys of a card's ``dropped`` counts)
DROP_REASONS = {
    "superseded": "a newer verdict, correction, reward or preference on the same answer (or pair) replaced it",
    "neutral": "a rating of 3: neither good nor bad",
    "unfinished": "the answer to imitate was cut off (length, cancelled, content filter)",
    "same_answer": "the two sides of a pair were the same text",
    "invalid": "a value that is not what its kind takes, or a message with no text",
    "duplicate": "the same prompt and target (or pair) as another record",
}


@dataclass
class Item:
    """One training record and where it came from.

    ``objective`` is ``sft``, ``dpo`` or ``kto``; ``record`` is in that objective's format;
    ``prompt_key`` hashes the prompt messages (held-out split, dedupe); ``when`` is the time of the
    newest feedback behind it (a later duplicate replaces an earlier one).
    """

    objective: str
    record: dict[str, Any]
    prompt_key: str
    when: Any
    feedback: list[str] = field(default_factory=list)

    @property
    def key(self) -> str:
        """Content hash for dedupe: the same prompt and the same target (or pair). A KTO record's
        label is left out, so a newer opposite verdict on the same answer replaces the older."""
        parts = [self.objective, [(m["role"], _norm(m["content"])) for m in self.record["messages"]]]
        if self.objective == "dpo":
            parts.append(_norm(self.record["rejected"]))
        return _hash(parts)


@dataclass
class Collected:
    """What :func:`records_from_feedback` made: the items, what was dropped and why, and the comments."""

    items: list[Item]
    dropped: dict[str, int]
    comments: list[dict[str, Any]]


def prompt_messages(messages: list[dict[str, Any]], system_prompt: str) -> list[dict[str, str]]:
    """The prompt a record trains on: ``messages`` without a leading system message that is the
    specialist's own ``system_prompt`` (or empty); see the module docstring."""
    out = [{"role": m["role"], "content": m["content"]} for m in messages]
    if out and out[0]["role"] == "system" and (not out[0]["content"].strip() or out[0]["content"] == system_prompt):
        out = out[1:]
    return out


def prompt_key(prompt: list[dict[str, str]]) -> str:
    """A stable hash of prompt messages: the unit of the held-out split (one prompt, one side)."""
    return _hash([(m["role"], _norm(m["content"])) for m in prompt])


def is_reward(row: Feedback) -> bool:
    """Whether ``row`` is a verifier's reward (a ``rating`` from 0 to 1 by source ``verifier``)."""
    return row.kind == "rating" and row.source == "verifier"


def pair_ids(row: Feedback) -> tuple[str, str] | None:
    """``(chosen, rejected)`` of a preference row, or None when its value is not such a pair."""
    v = row.value
    if isinstance(v, dict) and isinstance(v.get("chosen"), str) and isinstance(v.get("rejected"), str):
        return v["chosen"], v["rejected"]
    return None


def records_from_feedback(rows: Iterable[Feedback], interactions: dict[str, Interaction], *, system_prompt: str = "",
                          min_reward: float = 1.0) -> Collected:
    """The training records that ``rows`` (oldest first) give, by the rules of the module docstring.

    ``interactions`` holds every interaction the rows are on or name in a preference.
    Duplicates are not removed here (see :func:`dedupe`).
    """
    dropped: dict[str, int] = {}
    comments: list[dict[str, Any]] = []
    verdicts: dict[str, Feedback] = {}
    corrections: dict[str, Feedback] = {}
    rewards: dict[str, Feedback] = {}
    pairs: dict[frozenset, Feedback] = {}

    def keep_latest(table: dict, key: Any, row: Feedback) -> None:
        if key in table:
            _count(dropped, "superseded")
        table[key] = row

    for row in sorted(rows, key=lambda r: (r.created, r.id)):
        if row.comment:
            comments.append({"feedback": row.id, "interaction": row.interaction_id, "text": row.comment})
        if row.kind == "comment":
            if isinstance(row.value, str) and row.value.strip():
                comments.append({"feedback": row.id, "interaction": row.interaction_id, "text": row.value})
        elif is_reward(row):
            if _number(row.value) and 0 <= row.value <= 1:
                keep_latest(rewards, row.interaction_id, row)
            else:  # stored before rewards were checked
                _count(dropped, "invalid")
        elif row.kind == "thumbs" and isinstance(row.value, bool) or row.kind == "rating" and _number(row.value):
            keep_latest(verdicts, row.interaction_id, row)
        elif row.kind == "correction" and isinstance(row.value, str) and row.value.strip():
            keep_latest(corrections, row.interaction_id, row)
        elif row.kind in ("thumbs", "rating", "correction"):
            _count(dropped, "invalid")
        elif row.kind == "preference":
            if pair_ids(row) and all(i in interactions for i in pair_ids(row)):
                keep_latest(pairs, frozenset(pair_ids(row)), row)
            else:  # stored before preferences were checked
                _count(dropped, "invalid")

    items: list[Item] = []
    paired = {i for pair in pairs for i in pair}

    def prompt_of(i: Interaction) -> list[dict[str, str]]:
        return prompt_messages(i.messages, system_prompt)

    def add(objective: str, i: Interaction, record: dict[str, Any], *rows: Feedback) -> None:
        messages = record["messages"]
        if record_problems({"messages": messages}) or (objective == "dpo" and not record["rejected"].strip()):
            _count(dropped, "invalid")  # e.g. an empty message the model was sent
            return
        items.append(Item(objective, record, prompt_key(messages[:-1]), max(r.created for r in rows),
                          [r.id for r in rows]))

    for iid, row in corrections.items():
        i = interactions[iid]
        better = row.value.strip()
        add("sft", i, {"messages": [*prompt_of(i), _assistant(better)]}, row)
        if _norm(better) != _norm(i.answer):
            add("dpo", i, {"messages": [*prompt_of(i), _assistant(better)], "rejected": i.answer.strip()}, row)

    for iid, row in verdicts.items():
        i = interactions[iid]
        good = _verdict(row)
        if iid in corrections:  # the correction says what the answer should have been
            _count(dropped, "superseded")
            continue
        if good is None:
            _count(dropped, "neutral")
            continue
        if good and _unfinished(i):
            _count(dropped, "unfinished")
            continue
        if good:
            add("sft", i, {"messages": [*prompt_of(i), _assistant(i.answer)]}, row)
        if iid not in paired:
            add("kto", i, {"messages": [*prompt_of(i), _assistant(i.answer)], "label": good}, row)

    for row in pairs.values():
        chosen, rejected = (interactions[i] for i in pair_ids(row))
        if _unfinished(chosen):
            _count(dropped, "unfinished")
        elif _norm(chosen.answer) == _norm(rejected.answer):
            _count(dropped, "same_answer")
        else:
            add("dpo", chosen, {"messages": [*prompt_of(chosen), _assistant(chosen.answer)],
                                "rejected": rejected.answer.strip()}, row)

    by_prompt: dict[str, list[tuple[Interaction, Feedback]]] = {}
    for iid, row in rewards.items():
        i = interactions[iid]
        by_prompt.setdefault(prompt_key(prompt_of(i)), []).append((i, row))
        if float(row.value) < min_reward or iid in corrections:
            continue
        if _unfinished(i):
            _count(dropped, "unfinished")
        else:
            add("sft", i, {"messages": [*prompt_of(i), _assistant(i.answer)]}, row)
    for answers in by_prompt.values():
        # best: highest reward, then the earliest answer; worst: lowest reward, then the earliest
        best = min(answers, key=lambda a: (-float(a[1].value), a[0].created, a[0].id))
        worst = min(answers, key=lambda a: (float(a[1].value), a[0].created, a[0].id))
        if float(best[1].value) <= float(worst[1].value):
            continue
        if _unfinished(best[0]):
            _count(dropped, "unfinished")
        elif _norm(best[0].answer) == _norm(worst[0].answer):
            _count(dropped, "same_answer")
        else:
            add("dpo", best[0], {"messages": [*prompt_of(best[0]), _assistant(best[0].answer)],
                                 "rejected": worst[0].answer.strip()}, best[1], worst[1])
    return Collected(items, dropped, comments)


def dedupe(items: list[Item]) -> tuple[list[Item], int]:
    """``items`` with one per content key (the newest feedback's, in place of older ones), oldest
    first; and how many were dropped."""
    kept: dict[str, Item] = {}
    for item in sorted(items, key=lambda it: it.when):
        earlier = kept.pop(item.key, None)
        if earlier is not None:
            item.feedback = sorted(set(earlier.feedback) | set(item.feedback))
        kept[item.key] = item
    return list(kept.values()), len(items) - len(kept)


def _verdict(row: Feedback) -> bool | None:
    """True (good), False (bad) or None (neutral) for thumbs or a user's 1-5 rating."""
    if row.kind == "thumbs":
        return bool(row.value)
    return True if row.value >= 4 else False if row.value <= 2 else None


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _unfinished(i: Interaction) -> bool:
    return i.finish_reason in UNFINISHED


def _assistant(text: str) -> dict[str, str]:
    return {"role": "assistant", "content": text.strip()}


def _norm(text: str) -> str:
    return " ".join(text.split())


def _hash(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()).hexdigest()


def _count(table: dict[str, int], reason: str) -> None:
    table[reason] = table.get(reason, 0) + 1
