""":class:`Store`: the database of answers (interactions), feedback on them, and API keys.

SQLite at ``$AETH_HOME/aeth.db`` by default, PostgreSQL when ``store.url`` names one; opening
migrates the schema to the newest revision. One store is shared by every thread of a server: each
call takes a pooled connection for one transaction and gives it back.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable, Iterator
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from aeth.store import feedback as _feedback
from aeth.store import keys as _keys
from aeth.store.engine import WRITE, create, translated
from aeth.store.errors import StoreError, UnknownInteraction
from aeth.store.rows import SOURCES, ApiKey, Feedback, Interaction, as_utc, new_id, utcnow
from aeth.store.url import redact, resolve


class Store:
    """The database behind the interaction log, feedback and API keys.

    Open it with :meth:`open`; every method commits before it returns, so a row that
    :meth:`record` returned the id of survives a crash of this process or the machine
    (SQLite WAL with ``synchronous=FULL``; PostgreSQL's commit). Safe to share between threads.
    """

    def __init__(self, engine: Any, url: str):
        self.engine = engine  #: the SQLAlchemy engine (for queries this class does not offer)
        self.url = url  #: the resolved SQLAlchemy URL
        self._write = engine.execution_options(**{WRITE: True})

    @classmethod
    def open(cls, url: str | None = None, home: Path | str | None = None) -> Store:
        """Open the database ``url`` (``None``: SQLite at ``home/aeth.db``) and migrate it to the newest schema.

        Several processes may open the same new database at once: one migrates, the others wait
        and find it done. A bad URL raises :class:`StoreError` naming ``store.url``; an unreachable
        server or a locked file, :class:`StoreUnavailable`.
        """
        from aeth.store.migrate import upgrade

        resolved = resolve(url, home)
        engine = create(resolved)
        try:
            with translated(resolved):
                upgrade(engine)
        except BaseException:
            engine.dispose()
            raise
        return cls(engine, resolved)

    @property
    def dialect(self) -> str:
        """``sqlite`` or ``postgresql``."""
        return self.engine.dialect.name

    def __repr__(self) -> str:
        return f"Store({redact(self.url)!r})"

    def close(self) -> None:
        """Close every pooled connection (the store can still be used; it reconnects)."""
        self.engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # ---- interactions ----------------------------------------------------------------------------

    def record(self, interaction: Interaction) -> str:
        """Store ``interaction`` and return its id (``interaction.id``, or a new one); committed durably on return."""
        return self.record_many([interaction])[0]

    def record_many(self, interactions: Iterable[Interaction]) -> list[str]:
        """Store several interactions in one transaction (the ``n`` alternatives of one request); their ids."""
        from sqlalchemy import insert
        from sqlalchemy.exc import IntegrityError

        from aeth.store.schema import interactions as table

        rows = [_interaction_row(i) for i in interactions]
        if not rows:
            return []
        try:
            with translated(self.url), self._write.begin() as conn:
                conn.execute(insert(table), rows)
        except IntegrityError:
            raise StoreError(f"an interaction with one of the ids {[r['id'] for r in rows]} is already stored: "
                             "leave Interaction.id unset and the store picks a new one") from None
        return [r["id"] for r in rows]

    def get(self, interaction_id: str) -> Interaction | None:
        """The interaction with exactly this id, or ``None``."""
        from sqlalchemy import select

        from aeth.store.schema import interactions as table

        with translated(self.url), self.engine.connect() as conn:
            row = conn.execute(select(table).where(table.c.id == interaction_id)).mappings().first()
        return None if row is None else _interaction(row)

    def get_many(self, ids: Iterable[str]) -> dict[str, Interaction]:
        """The stored interactions among ``ids``, by id (unknown ids are left out)."""
        from sqlalchemy import select

        from aeth.store.schema import interactions as table

        wanted, out = sorted(set(ids)), {}
        with translated(self.url), self.engine.connect() as conn:
            for start in range(0, len(wanted), 500):  # bounded IN lists
                query = select(table).where(table.c.id.in_(wanted[start:start + 500]))
                out.update((r["id"], _interaction(r)) for r in conn.execute(query).mappings())
        return out

    def find(self, id_or_prefix: str) -> Interaction:
        """The interaction whose id is ``id_or_prefix`` or, failing that, the one id starting with it.

        Raises :class:`UnknownInteraction` when none matches or the prefix is ambiguous.
        """
        from sqlalchemy import select

        from aeth.store.schema import interactions as table

        found = self.get(id_or_prefix)
        if found is not None:
            return found
        prefix = id_or_prefix.strip().lower()
        if not prefix or any(c not in "0123456789abcdef" for c in prefix):
            raise UnknownInteraction(f"no interaction {id_or_prefix!r}: ids are hex, e.g. from `aeth log list`")
        with translated(self.url), self.engine.connect() as conn:
            ids = conn.execute(select(table.c.id).where(table.c.id.startswith(prefix)).limit(6)).scalars().all()
        if not ids:
            raise UnknownInteraction(f"no interaction {id_or_prefix!r} (see `aeth log list`)")
        if len(ids) > 1:
            shown = ", ".join(ids[:5]) + (", ..." if len(ids) > 5 else "")
            raise UnknownInteraction(f"{id_or_prefix!r} is the start of several interaction ids ({shown}): give more of it")
        return self.get(ids[0])

    def list(self, limit: int | None = 20, specialist: str | None = None, source: str | None = None,
             since: datetime | None = None) -> list[Interaction]:
        """Interactions, newest first, optionally only one specialist's or one source's, or since a time."""
        with translated(self.url), self.engine.connect() as conn:
            return [_interaction(r) for r in conn.execute(_select(limit, specialist, source, since)).mappings()]

    def iter(self, since: datetime | None = None, specialist: str | None = None, source: str | None = None,
             batch: int = 500) -> Iterator[Interaction]:
        """Every matching interaction, oldest first, read in batches (for exports of any size)."""
        with translated(self.url), self.engine.connect() as conn:
            result = conn.execution_options(yield_per=batch).execute(
                _select(None, specialist, source, since, newest_first=False)).mappings()
            for row in result:
                yield _interaction(row)

    def export(self, out: str | os.PathLike | IO[str], since: datetime | None = None, specialist: str | None = None,
               source: str | None = None) -> int:
        """Write matching interactions, oldest first, one JSON object a line, to the path or text stream
        ``out``; return how many. A file appears whole or not at all (written beside it, then renamed)."""
        if hasattr(out, "write"):
            return _write_jsonl(out, self.iter(since, specialist, source))
        path = Path(out)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                n = _write_jsonl(f, self.iter(since, specialist, source))
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return n

    def stats(self, since: datetime | None = None, specialist: str | None = None, source: str | None = None,
              pricing: Any = None) -> dict[str, Any]:
        """Counts, tokens, latency and time-to-first-token percentiles, machine time and cost, in total and
        per specialist and adapter. ``pricing`` (:class:`aeth.store.cost.Pricing`) prices the cost; the
        default is :meth:`Pricing.default`. See :func:`aeth.store.stats.stats`."""
        from aeth.store.stats import stats

        with translated(self.url), self.engine.connect() as conn:
            return stats(conn, since=since, specialist=specialist, source=source, pricing=pricing)

    # ---- API keys ---------------------------------------------------------------------------------

    def create_key(self, name: str, rpm: int | None = None, tpm: int | None = None,
                   specialists: Iterable[str] | str | None = None) -> tuple[ApiKey, str]:
        """A new API key called ``name`` and its secret. Only the secret's SHA-256 is stored: show the
        secret to its owner now, it cannot be recovered. Raises :class:`KeyNameTaken` if an active key
        has that name."""
        with translated(self.url):
            return _keys.create(self._write, name, rpm, tpm, specialists)

    def keys(self, include_revoked: bool = False) -> list[ApiKey]:
        """API keys, oldest first; revoked ones too with ``include_revoked``."""
        with translated(self.url):
            return _keys.listing(self.engine, include_revoked)

    def revoke_key(self, name_or_id: str) -> ApiKey:
        """Revoke the active key with this name (or id); it fails verification from now on. Raises
        :class:`UnknownKey` when there is none."""
        with translated(self.url):
            return _keys.revoke(self._write, name_or_id)

    def verify_key(self, secret: str) -> ApiKey | None:
        """The active key whose secret is ``secret``, else ``None`` (unknown or revoked). Compared in constant time."""
        with translated(self.url):
            return _keys.verify(self.engine, self._write, secret)

    def has_keys(self) -> bool:
        """Whether any active key exists (then every request to a server needs one)."""
        with translated(self.url):
            return _keys.any_active(self.engine)

    # ---- feedback ---------------------------------------------------------------------------------

    def record_feedback(self, interaction_id: str, kind: str, value: Any, comment: str | None = None,
                        feedback_id: str | None = None, source: str = "user") -> str:
        """Store feedback on an interaction and return its id; committed durably on return.

        ``feedback_id`` makes it idempotent: the same id again returns it without a second row
        (a client retrying after a lost reply). Raises :class:`UnknownInteraction` when no
        interaction has ``interaction_id``.
        """
        with translated(self.url):
            return _feedback.record(self._write, interaction_id, kind, value, comment, feedback_id, source)

    def feedback(self, interaction_id: str | None = None, limit: int | None = None,
                 specialist: str | None = None) -> list[Feedback]:
        """Feedback, oldest first: on one interaction, on one specialist's answers, or all."""
        with translated(self.url):
            return _feedback.listing(self.engine, interaction_id, limit, specialist)

    def feedback_counts(self) -> dict[tuple[str, str, str], int]:
        """How many feedback rows there are per ``(specialist, kind, source)`` (counted by the database)."""
        with translated(self.url):
            return _feedback.counts(self.engine)


# ---- rows ------------------------------------------------------------------------------------------


def _select(limit: int | None, specialist: str | None, source: str | None, since: datetime | None,
            newest_first: bool = True) -> Any:
    from sqlalchemy import select

    from aeth.store.schema import interactions as table

    query = select(table)
    if specialist:
        query = query.where(table.c.specialist == specialist)
    if source:
        query = query.where(table.c.source == source)
    if since is not None:
        query = query.where(table.c.created >= as_utc(since))
    order = (table.c.created.desc(), table.c.id.desc()) if newest_first else (table.c.created, table.c.id)
    query = query.order_by(*order)
    return query if limit is None else query.limit(limit)


def _interaction_row(i: Interaction) -> dict[str, Any]:
    if i.source not in SOURCES:
        raise StoreError(f"interaction source {i.source!r} is not one of {', '.join(SOURCES)}")
    if i.id is not None and (not isinstance(i.id, str) or not 0 < len(i.id) <= 32):
        raise StoreError(f"interaction id {i.id!r} must be a string of 1 to 32 characters (or unset)")
    return {
        "id": i.id or new_id(), "created": as_utc(i.created) or utcnow(), "source": i.source,
        "messages": _clean([{"role": m["role"], "content": m["content"]} for m in i.messages]),
        "answer": _clean(i.answer), "specialist": i.specialist, "adapter": i.adapter, "model": i.model,
        "sampling": _clean(dict(i.sampling)), "tokens_in": int(i.tokens_in), "tokens_out": int(i.tokens_out),
        "latency_s": float(i.latency_s), "ttft_s": None if i.ttft_s is None else float(i.ttft_s),
        "machine_seconds": float(i.machine_seconds), "finish_reason": i.finish_reason or "", "key_id": i.key_id,
        "route": _clean(dict(i.route)), "group_id": i.group_id, "choice_index": int(i.choice_index),
        "metadata": _clean(dict(i.metadata)),
    }


def _interaction(row: Any) -> Interaction:
    return Interaction(
        id=row["id"], created=as_utc(row["created"]), source=row["source"], messages=row["messages"],
        answer=row["answer"], specialist=row["specialist"], adapter=row["adapter"], model=row["model"],
        sampling=row["sampling"] or {}, tokens_in=row["tokens_in"], tokens_out=row["tokens_out"],
        latency_s=row["latency_s"], ttft_s=row["ttft_s"], machine_seconds=row["machine_seconds"],
        finish_reason=row["finish_reason"], key_id=row["key_id"], route=row["route"] or {}, group_id=row["group_id"],
        choice_index=row["choice_index"], metadata=row["metadata"] or {},
    )


def _clean(value: Any) -> Any:
    """``value`` with NUL characters replaced (U+FFFD): PostgreSQL's text and JSON cannot hold them,
    and both databases should keep the same thing."""
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd")
    if isinstance(value, dict):
        return {str(k).replace("\x00", "\ufffd"): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


def _write_jsonl(out: IO[str], rows: Iterable[Interaction]) -> int:
    n = 0
    for interaction in rows:
        out.write(json.dumps(interaction.to_dict(), ensure_ascii=False) + "\n")
        n += 1
    out.flush()
    return n
