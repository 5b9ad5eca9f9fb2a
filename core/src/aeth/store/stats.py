"""The numbers behind ``aeth log stats``: counts, tokens, latency, machine time and cost."""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

from aeth.store.rows import as_utc


def stats(conn: Any, since: datetime | None = None, specialist: str | None = None, source: str | None = None,
          pricing: Any = None) -> dict[str, Any]:
    """Summary of the matching interactions.

    ``interactions``, ``tokens_in``, ``tokens_out``, ``machine_seconds``, ``tokens_per_machine_second``
    (output tokens per second of machine time), ``first``/``last`` (ISO times), ``latency_s`` and
    ``ttft_s`` (``p50``, ``p95``, ``mean``; nearest-rank percentiles), ``by_source``, ``by_specialist``
    and ``by_adapter`` (each with counts, tokens, machine seconds and ``aeth_usd``), and ``cost``
    (:meth:`aeth.store.cost.Pricing.report` of the totals).
    """
    from sqlalchemy import func, select

    from aeth.store.cost import Pricing
    from aeth.store.schema import interactions as t

    pricing = pricing or Pricing.default()
    where = []
    if since is not None:
        where.append(t.c.created >= as_utc(since))
    if specialist:
        where.append(t.c.specialist == specialist)
    if source:
        where.append(t.c.source == source)

    sums = (func.count().label("interactions"), func.coalesce(func.sum(t.c.tokens_in), 0).label("tokens_in"),
            func.coalesce(func.sum(t.c.tokens_out), 0).label("tokens_out"),
            func.coalesce(func.sum(t.c.machine_seconds), 0.0).label("machine_seconds"))

    def grouped(*keys: Any) -> list[dict[str, Any]]:
        rows = conn.execute(select(*keys, *sums).where(*where).group_by(*keys).order_by(*keys)).mappings()
        return [_with_cost(dict(r), pricing) for r in rows]

    total = dict(conn.execute(select(*sums, func.min(t.c.created).label("first"), func.max(t.c.created).label("last"))
                              .where(*where)).mappings().one())
    out: dict[str, Any] = {
        "interactions": int(total["interactions"]), "tokens_in": int(total["tokens_in"]),
        "tokens_out": int(total["tokens_out"]), "machine_seconds": float(total["machine_seconds"]),
        "first": _iso(total["first"]), "last": _iso(total["last"]),
        "since": _iso(since),
    }
    out["tokens_per_machine_second"] = (out["tokens_out"] / out["machine_seconds"]) if out["machine_seconds"] > 0 else None
    out["latency_s"] = _spread(conn, t.c.latency_s, where)
    out["ttft_s"] = _spread(conn, t.c.ttft_s, [*where, t.c.ttft_s.is_not(None)])
    out["by_source"] = {r["source"]: r["interactions"] for r in grouped(t.c.source)}
    out["by_specialist"] = grouped(t.c.specialist)
    out["by_adapter"] = grouped(t.c.specialist, t.c.adapter)
    out["cost"] = pricing.report(out["tokens_in"], out["tokens_out"], out["machine_seconds"])
    return out


def _with_cost(row: dict[str, Any], pricing: Any) -> dict[str, Any]:
    row["interactions"] = int(row["interactions"])
    row["tokens_in"], row["tokens_out"] = int(row["tokens_in"]), int(row["tokens_out"])
    row["machine_seconds"] = float(row["machine_seconds"])
    row["aeth_usd"] = pricing.aeth_usd(row["machine_seconds"])
    return row


def _spread(conn: Any, column: Any, where: list[Any]) -> dict[str, float | None]:
    """p50, p95 (nearest rank) and mean of ``column`` over the matching rows, in SQL on either database."""
    from sqlalchemy import func, select

    n, mean = conn.execute(select(func.count(column), func.avg(column)).where(*where)).one()
    out: dict[str, float | None] = {"p50": None, "p95": None, "mean": None if mean is None else float(mean)}
    if not n:
        return out
    for name, q in (("p50", 0.50), ("p95", 0.95)):
        rank = max(math.ceil(q * n) - 1, 0)
        out[name] = float(conn.execute(select(column).where(*where).order_by(column).offset(rank).limit(1)).scalar())
    return out


def _iso(value: datetime | None) -> str | None:
    return None if value is None else as_utc(value).isoformat()
