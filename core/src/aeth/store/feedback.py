"""Feedback on interactions: thumbs, ratings, corrections, preferences, comments; idempotent by id."""

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
    if kind == "correction" and (not isinstance(value, str) or not value.strip()):
        raise StoreError("correction feedback is the better answer, as non-empty text")


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


def listing(engine: Any, interaction_id: str | None, limit: int | None) -> list[Feedback]:
    """Feedback, oldest first; on one interaction when ``interaction_id`` is given."""
    from sqlalchemy import select

    from aeth.store.schema import feedback

    query = select(feedback).order_by(feedback.c.created, feedback.c.id)
    if interaction_id is not None:
        query = query.where(feedback.c.interaction_id == interaction_id)
    if limit is not None:
        query = query.limit(limit)
    with engine.connect() as conn:
        return [Feedback(id=r["id"], interaction_id=r["interaction_id"], kind=r["kind"], value=r["value"],
                         comment=r["comment"], source=r["source"], created=as_utc(r["created"]))
                for r in conn.execute(query).mappings()]
