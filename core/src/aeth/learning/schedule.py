"""When a specialist learns on its own: the trigger rule of ``aeth learn --watch``.

A specialist is **due** when a learn run of it is unfinished (killed or interrupted: it is
resumed, since its dataset already holds the feedback), or when feedback waits and either

- at least ``learn.every_feedback`` rows wait (N), or
- ``learn.every_hours`` (T) have passed since its last learn run ended (since its oldest waiting
  row when it never learnt),

and nobody holds its learn lock. Nothing waiting is never due: a learn from nothing would only
say so. With self-practice (``aeth learn --watch --self``), a specialist that declares ``practice``
and ``verifier`` is also due for a ``--self`` learn when nothing waits but T hours have passed since
its last learn ended (at once when it never learnt): it needs no feedback to learn.
``specialists.<name>.learn_every_feedback`` / ``learn_every_hours`` override the two for one
specialist; null turns a trigger off (both off: it never learns on its own).

:func:`decide` is a pure function of a rule, an :func:`aeth.learning.run.status` entry and the
time, so the rule tests without training; :func:`due` and :func:`next_trigger` apply it to an app.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from aeth.errors import ConfigError

__all__ = ["Decision", "Rule", "can_practise", "decide", "due", "next_trigger", "rule", "rules"]

#: the config key each field of :class:`Rule` defaults to, and its per-specialist override field
RULE_KEYS = {"every_feedback": ("learn.every_feedback", "learn_every_feedback"),
             "every_hours": ("learn.every_hours", "learn_every_hours")}


@dataclass(frozen=True)
class Rule:
    """One specialist's trigger: learn after ``every_feedback`` waiting rows, or ``every_hours``
    after its last learn; None turns that trigger off."""

    every_feedback: int | None
    every_hours: float | None


@dataclass(frozen=True)
class Decision:
    """What the schedule says about one specialist now. ``action``: ``learn`` (due: new feedback),
    ``resume`` (due: an unfinished learn run), ``running`` (another process holds its lock),
    ``practice`` (due: a ``--self`` learn, T hours after the last one), ``wait`` or ``off``;
    ``reason`` says why in words, ``at`` is when the time trigger fires (UTC)."""

    specialist: str
    action: str
    reason: str
    at: datetime | None = None

    @property
    def due(self) -> bool:
        """Whether the watcher should learn (or resume) this specialist now."""
        return self.action in ("learn", "resume", "practice")


def rule(config: Any, specialist: str) -> Rule:
    """``specialist``'s rule: the ``learn.*`` keys, less what its ``specialists.<name>`` entry overrides."""
    entry = config.subtrees("specialists").get(specialist) or {}
    return Rule(**{field: entry[own] if own in entry else config[key] for field, (key, own) in RULE_KEYS.items()})


def rules(app: Any, names: list[str] | None = None) -> dict[str, Rule]:
    """The rule of each of ``names`` (default: every registered specialist).

    Raises :class:`~aeth.errors.ConfigError` when a ``specialists.<name>`` entry sets a schedule for a
    specialist nobody registers: a misspelt name must not read as "never learns on its own".
    """
    known = app.specialists()
    problems = []
    for name, entry in app.config.subtrees("specialists").items():
        own = [f for _, f in RULE_KEYS.values() if isinstance(entry, dict) and f in entry]
        if own and name not in known:
            near = difflib.get_close_matches(name, list(known), n=1)
            problems.append(f"specialists.{name}.{own[0]}: no specialist {name!r} is registered"
                            + (f" (did you mean {near[0]!r}?)" if near else f" (registered: {', '.join(sorted(known))})"))
    if problems:
        raise ConfigError(problems)
    return {name: rule(app.config, name) for name in (names if names is not None else sorted(known))}


def decide(specialist: str, rule: Rule, entry: dict, now: datetime, practice: bool = False) -> Decision:
    """The schedule's decision for one :func:`aeth.learning.run.status` ``entry`` at ``now`` (aware, UTC);
    ``practice``: the specialist may learn by self-practice when no feedback makes it due.

    Reads ``running``, ``last`` (its ``outcome``), ``waiting`` and ``waiting_since`` (ISO time of
    the oldest waiting row) and nothing else, so tests build entries by hand.
    """
    running, last, waiting = entry.get("running"), entry.get("last"), entry.get("waiting", 0)
    if running is not None:
        return Decision(specialist, "running", f"a learn is running (pid {running.get('pid', '?')})")
    outcome = (last or {}).get("outcome")
    if last is not None and (not outcome or outcome.get("interrupted")):
        return Decision(specialist, "resume", f"continue the unfinished learn run {last['run']}")
    if rule.every_feedback is None and rule.every_hours is None:
        return Decision(specialist, "off", "never on its own (learn.every_feedback and learn.every_hours are off)")
    start = _parse(outcome.get("at")) if outcome else None  # the clock runs from the last learn's end ...
    if start is None:
        start = _parse(entry.get("waiting_since"))  # ... or, never learnt, from the oldest waiting row
    at = start + timedelta(hours=rule.every_hours) if rule.every_hours is not None and start is not None else None
    rows = f"{waiting} feedback row{'s' if waiting != 1 else ''} waiting"
    if waiting and rule.every_feedback is not None and waiting >= rule.every_feedback:
        return Decision(specialist, "learn", f"{rows} (every {rule.every_feedback})", at)
    if waiting and at is not None and now >= at:
        return Decision(specialist, "learn", f"{rows}, {_hours(rule.every_hours)} since "
                        + ("its last learn ended" if outcome else "the oldest one arrived"), at)
    practice_at = None
    if practice and rule.every_hours is not None:  # self-practice needs no rows: its clock runs from the last learn only
        last_end = _parse(outcome.get("at")) if outcome else None
        if last_end is None:
            return Decision(specialist, "practice", "self-practice: it never learnt")
        practice_at = last_end + timedelta(hours=rule.every_hours)
        if now >= practice_at:
            return Decision(specialist, "practice", f"self-practice: {_hours(rule.every_hours)} since its last learn ended",
                            practice_at)
    parts = []
    if rule.every_feedback is not None:
        more = rule.every_feedback - waiting
        parts.append(f"after {more} more feedback row{'s' if more != 1 else ''}")
    if rule.every_hours is not None:
        if at is None:  # never learnt and nothing waits: the clock starts with the first row
            parts.append(f"{_hours(rule.every_hours)} after the first new feedback row")
        elif waiting:
            parts.append(f"at {_show(at)}")
        elif practice_at is not None:  # the same clock (the last learn's end), and it needs no row
            parts.append(f"self-practice at {_show(practice_at)}")
        else:
            parts.append(f"at {_show(at)} if a row waits by then" if now < at else "with the next feedback row")
    return Decision(specialist, "wait", " or ".join(parts), at)


def due(app: Any, names: list[str] | None = None, now: datetime | None = None, practice: bool = False) -> list[Decision]:
    """The decision for each of ``names`` (default: every registered specialist), due ones and not;
    ``practice``: those that can practise (:func:`can_practise`) may be due for a ``--self`` learn."""
    from aeth.learning.run import status

    now = now or datetime.now(timezone.utc)
    chosen = rules(app, names)
    entries = [e for name in chosen for e in status(app, name, schedule=False)]
    return [decide(e["specialist"], chosen[e["specialist"]], e, now,
                   practice and can_practise(app.specialist(e["specialist"]))) for e in entries]


def can_practise(spec: Any) -> bool:
    """Whether ``spec`` declares both ``practice`` (prompts) and ``verifier`` (their judge): what ``--self`` needs."""
    return getattr(spec, "practice", None) is not None and getattr(spec, "verifier", None) is not None


def next_trigger(app: Any, specialist: str, now: datetime | None = None) -> str:
    """When ``specialist`` learns next, in words, e.g. "after 12 more feedback rows or at 2026-12-03 18:00 UTC"."""
    return due(app, [specialist], now)[0].reason


def _parse(stamp: Any) -> datetime | None:
    """An ISO time (``...Z`` as learn.json writes it, or with an offset) as an aware UTC datetime."""
    if not stamp:
        return None
    try:
        value = datetime.fromisoformat(str(stamp).replace("Z", "+00:00"))
    except ValueError:
        return None
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


def _show(at: datetime) -> str:
    return at.strftime("%Y-%m-%d %H:%M UTC")


def _hours(hours: float) -> str:
    return f"{hours:g} h"
