"""Feedback on interactions: thumbs, ratings, corrections, preferences, comments; idempotent by id.

The value each kind takes (checked here, before anything is stored):

- ``thumbs``: ``true`` (up) or ``false`` (down);
- ``rating``: a number; from 1 to 5 when a user gives it, a reward from 0 to 1 when a verifier does;
- ``correction``: the better answer, as non-empty text;
- ``preference``: ``{"chosen": ID, "rejected": ID}``, two stored interactions that answered the same
  prompt (the same messages), one of them the interaction the feedback is on;
- ``comment``: free text.
"""

from __future__ import annotations

from typing import Any

from aeth.store.errors import StoreError, UnknownInteraction
from aeth.store.rows import FEEDBACK_KINDS, FEEDBACK_SOURCES, Feedback, as_utc, new_id, utcnow


def check(kind: str, value: Any, source: str) -> None:
    """Raise :class:`StoreError` when ``value`` does not fit ``kind`` (or ``kind``/``source`` are unknown)."""
    if kind not in FEEDBACK_KINDS:
        raise StoreError(f"feedback kind {kind!r} is not one of {', '.join(FEEDBACK_KINDS)}")
    if source not in FEEDBACK_SOURCES:
        raise StoreError(f"feedback source {source!r} is not one of {', '.join(FEEDBACK_SOURCES)}")
    if kind == "thumbs" and not isinstance(value, bool):
        raise StoreError(f"thumbs feedback is true (up) or false (down), got {value!r}")
    if kind == "rating" and (isinstance(value, bool) or not isinstance(value, (int, float))):
        raise StoreError(f"rating feedback is a number, got {value!r}")
    if kind == "rating" and source == "user" and not 1 <= value <= 5:
        raise StoreError(f"a user's rating is from 1 to 5, got {value!r}")
    if kind == "rating" and source == "verifier" and not 0 <= value <= 1:
        raise StoreError(f"a verifier's rating is a reward from 0 to 1, got {value!r}")
    if kind == "correction" and (not isinstance(value, str) or not value.strip()):
        raise StoreError("correction feedback is the better answer, as non-empty text")
    if kind == "preference":
        _check_pair_shape(value)


def _check_pair_shape(value: Any) -> None:
    shape = 'a preference is {"chosen": ID, "rejected": ID}: the ids of two answers to the same prompt'
    if not isinstance(value, dict) or set(value) != {"chosen", "rejected"}:
        raise StoreError(f"{shape}, got {value!r}")
    if not all(isinstance(value[k], str) and 0 < len(value[k]) <= 32 and "\x00" not in value[k] for k in ("chosen", "rejected")):
        raise StoreError(f"{shape}; both are interaction ids (1 to 32 characters), got {value!r}")
    if value["chosen"] == value["rejected"]:
        raise StoreError(f"{shape}; chosen and rejected are the same interaction {value['chosen']!r}")


def _check_pair(conn: Any, interaction_id: str, value: dict[str, str]) -> None:
    """A preference names the interaction it is on, and another stored answer to the same messages."""
    from sqlalchemy import select

    from aeth.store.schema import interactions

    if interaction_id not in (value["chosen"], value["rejected"]):
        raise StoreError(f"a preference on interaction {interaction_id!r} names it as chosen or rejected, got "
                         f"{value!r}: {{\"chosen\": \"OTHER_ID\", \"rejected\": \"{interaction_id}\"}} says another answer "
                         "to the same prompt is better than this one")
    other_side = "rejected" if value["chosen"] == interaction_id else "chosen"
    other = value[other_side]
    rows = dict(conn.execute(select(interactions.c.id, interactions.c.messages)
                             .where(interactions.c.id.in_([interaction_id, other]))).all())
    if other not in rows:
        raise StoreError(f"the preference names interaction {other!r} as {other_side}, but no interaction has that id: "
                         "give the full id of another answer to the same prompt (`aeth log list`)")
    if rows[other] != rows[interaction_id]:
        raise StoreError(f"interactions {interaction_id!r} and {other!r} answer different prompts (their messages "
                         "differ): a preference compares two answers to the same prompt")


def record(engine: Any, interaction_id: str, kind: str, value: Any, comment: str | None, feedback_id: str | None,
           source: str) -> str:
    """Insert one piece of feedback (or find the one already stored under ``feedback_id``); its id."""
    from sqlalchemy import insert, select
    from sqlalchemy.exc import IntegrityError

    from aeth.store.schema import feedback, interactions

    check(kind, value, source)
    if feedback_id is not None and (not isinstance(feedback_id, str) or not 0 < len(feedback_id) <= 128):
        raise StoreError(f"a feedback id is a string of 1 to 128 characters, got {feedback_id!r}")
    fid = feedback_id or new_id()
    for attempt in (1, 2):  # a concurrent insert of the same id (PostgreSQL) is found on the second pass
        try:
            with engine.begin() as conn:
                if feedback_id is not None:
                    earlier = conn.execute(select(feedback.c.interaction_id).where(feedback.c.id == fid)).first()
                    if earlier is not None:
                        return _same(fid, earlier[0], interaction_id)
                known = conn.execute(select(interactions.c.id).where(interactions.c.id == interaction_id)).first()
                if known is None:
                    raise UnknownInteraction(f"no interaction {interaction_id!r} to give feedback on: use the id an "
                                             "answer came with (x-aeth-interaction, `aeth run` on stderr, `aeth log list`)")
                if kind == "preference":
                    _check_pair(conn, interaction_id, value)
                conn.execute(insert(feedback).values(id=fid, interaction_id=interaction_id, kind=kind, value=value,
                                                     comment=comment, source=source, created=utcnow()))
            return fid
        except IntegrityError:
            if feedback_id is None or attempt == 2:
                raise
    raise AssertionError("unreachable")


def _same(fid: str, stored_for: str, asked_for: str) -> str:
    if stored_for != asked_for:
        raise StoreError(f"feedback id {fid!r} is already used for interaction {stored_for!r}: "
                         "a feedback id names one piece of feedback; use a new one")
    return fid


def listing(engine: Any, interaction_id: str | None, limit: int | None, specialist: str | None = None) -> list[Feedback]:
    """Feedback, oldest first; on one interaction when ``interaction_id`` is given, on one
    specialist's answers when ``specialist`` is."""
    from sqlalchemy import select

    from aeth.store.schema import feedback, interactions

    query = select(feedback).order_by(feedback.c.created, feedback.c.id)
    if interaction_id is not None:
        query = query.where(feedback.c.interaction_id == interaction_id)
    if specialist is not None:
        query = query.join(interactions, interactions.c.id == feedback.c.interaction_id).where(
            interactions.c.specialist == specialist)
    if limit is not None:
        query = query.limit(limit)
    with engine.connect() as conn:
        return [Feedback(id=r["id"], interaction_id=r["interaction_id"], kind=r["kind"], value=r["value"],
                         comment=r["comment"], source=r["source"], created=as_utc(r["created"]))
                for r in conn.execute(query).mappings()]


def counts(engine: Any) -> dict[tuple[str, str, str], int]:
    """Feedback rows per ``(specialist, kind, source)``: one grouped query, for the server's gauges."""
    from sqlalchemy import func, select

    from aeth.store.schema import feedback, interactions

    query = (select(interactions.c.specialist, feedback.c.kind, feedback.c.source, func.count())
             .join(interactions, interactions.c.id == feedback.c.interaction_id)
             .group_by(interactions.c.specialist, feedback.c.kind, feedback.c.source))
    with engine.connect() as conn:
        return {(specialist, kind, source): n for specialist, kind, source, n in conn.execute(query)}
