"""Verifiers as automatic feedback: a specialist's ``verifier`` judges answers, no person needed.

:func:`verify_interactions` runs a specialist's verifier over its logged answers that have no
verifier reward yet and stores each reward as feedback of kind ``rating`` (a number in [0, 1]),
source ``verifier``, under the id ``verify:<interaction id>``: a second run (or two at once)
stores nothing twice. Answers the verifier cannot check (it returns None) are counted and left
alone. :func:`verify_answers` judges (request, answer) pairs that were never logged, for
self-improvement (sample answers to practice prompts, keep what the verifier accepts).

The request a verifier sees is rebuilt from the interaction: its last user message is the prompt,
the turns before it the history, and the logged ``metadata`` the request's metadata (where
``metadata["verify"]`` carries what to check against; see :mod:`aeth.specialist`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from aeth.errors import AethError, SpecialistError
from aeth.request import Request
from aeth.specialist import Specialist, reward_problem

#: the id of the verifier's feedback on an interaction (one per interaction: re-running stores nothing twice)
FEEDBACK_ID = "verify:{interaction_id}"


@dataclass
class VerifyCounts:
    """What a verification run did: ``checked`` answers got a reward (``total_reward`` is their
    sum), ``skipped`` could not be checked (the verifier said None), ``already`` had a reward from
    an earlier run, ``failed`` made the verifier raise or return something that is no reward
    (``error`` says what, the first time)."""

    checked: int = 0
    skipped: int = 0
    already: int = 0
    failed: int = 0
    total_reward: float = 0.0
    error: str | None = None

    @property
    def mean_reward(self) -> float | None:
        """The mean reward of the checked answers (None when none was checked)."""
        return self.total_reward / self.checked if self.checked else None

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form, with ``mean_reward``."""
        return {**asdict(self), "mean_reward": self.mean_reward}


def feedback_id(interaction_id: str) -> str:
    """The id the verifier's reward on ``interaction_id`` is stored under."""
    return FEEDBACK_ID.format(interaction_id=interaction_id)


def request_of(interaction: Any) -> Request:
    """The :class:`Request` an interaction answered, as its verifier needs it: the last user message
    as the prompt, the user and assistant turns before it as history, and its metadata."""
    messages = [m for m in interaction.messages if m.get("role") in ("user", "assistant")]
    last = max((i for i, m in enumerate(messages) if m["role"] == "user"), default=None)
    prompt = messages[last]["content"] if last is not None else ""
    history = tuple({"role": m["role"], "content": m["content"]} for m in messages[:last or 0])
    request = Request(prompt=prompt, specialist=interaction.specialist, history=history,
                      metadata=dict(interaction.metadata or {}))
    if interaction.id:
        request.id = interaction.id
    return request


def verified_ids(store: Any, specialist: str) -> set[str]:
    """Ids of ``specialist``'s interactions that already have feedback from a verifier."""
    from sqlalchemy import select

    from aeth.store.schema import feedback, interactions

    query = (select(feedback.c.interaction_id).distinct()
             .join(interactions, interactions.c.id == feedback.c.interaction_id)
             .where(feedback.c.source == "verifier", interactions.c.specialist == specialist))
    with store.engine.connect() as conn:
        return set(conn.execute(query).scalars())


def _verifier(specialist: Specialist) -> Any:
    if specialist.verifier is None:
        raise SpecialistError(f"specialist {specialist.name!r} declares no verifier, so its answers cannot be checked "
                              "automatically: its plugin sets Specialist(verifier=...) (see docs/learning.md, Verifiers)")
    return specialist.verifier


def _judge(specialist: Specialist, request: Request, answer: str, counts: VerifyCounts) -> float | None:
    """The verifier's reward, or None (cannot check, or it failed: ``counts`` says which)."""
    try:
        value = _verifier(specialist)(request, answer)
    except AethError:
        raise  # the system cannot verify at all (no sandbox, a missing package): the user must act
    except Exception as e:  # noqa: BLE001  (one odd answer must not stop a run over thousands)
        problem = f"{type(e).__name__}: {e}"
    else:
        problem = reward_problem(value)
        if problem is None:
            if value is None:
                counts.skipped += 1
                return None
            counts.checked += 1
            counts.total_reward += float(value)
            return float(value)
    counts.failed += 1
    counts.error = counts.error or problem
    return None


def _warn_failures(specialist: Specialist, counts: VerifyCounts) -> None:
    if counts.failed:
        from aeth.plugins import warn

        warn(f"the verifier of specialist {specialist.name!r} ({specialist.plugin or 'unknown plugin'}) failed on "
             f"{counts.failed} answer(s), which got no reward; the first: {counts.error}")


def verify_interactions(app: Any, specialist_name: str, since: datetime | None = None, limit: int | None = None,
                        *, progress: bool = True) -> VerifyCounts:
    """Judge ``specialist_name``'s logged answers that have no verifier reward yet, oldest first, and
    store each reward (feedback kind ``rating``, source ``verifier``, id :func:`feedback_id`).

    ``since`` keeps answers logged from then on; ``limit`` checks at most that many. Safe to
    re-run and to run twice at once: a reward is stored once per interaction. Raises
    :class:`SpecialistError` when the specialist has no verifier, and what the verifier raises
    as an :class:`AethError` (no sandbox on this system, say); any other failure is counted.
    """
    from aeth.progress import Progress

    specialist = app.specialist(specialist_name)
    _verifier(specialist)
    store = app.store
    done = verified_ids(store, specialist.name)
    counts, todo = VerifyCounts(), []
    for interaction in store.iter(since=since, specialist=specialist.name):
        if interaction.id in done:
            counts.already += 1
        elif limit is None or len(todo) < limit:
            todo.append(interaction)
    comment = f"automatic: the verifier of {specialist.name} ({specialist.plugin or 'unknown plugin'})"
    with Progress(f"verifying {specialist.name}", len(todo), unit="answers", show=progress) as bar:
        for interaction in todo:
            reward = _judge(specialist, request_of(interaction), interaction.answer, counts)
            if reward is not None:
                store.record_feedback(interaction.id, "rating", reward, comment=comment,
                                      feedback_id=feedback_id(interaction.id), source="verifier")
            mean = counts.mean_reward
            bar.advance(info=f"mean reward {mean:.2f}" if mean is not None else "")
    _warn_failures(specialist, counts)
    return counts


def verify_answers(specialist: Specialist, pairs: Iterable[tuple[Request, str]], *,
                   progress: bool = True) -> list[float | None]:
    """The verifier's reward for each ``(request, answer)``, in order; None where it cannot check (or
    failed: one warning says why). Nothing is stored (self-improvement judges sampled answers here)."""
    from aeth.progress import Progress

    _verifier(specialist)
    pairs = list(pairs)
    counts, out = VerifyCounts(), []
    with Progress(f"verifying {specialist.name}", len(pairs), unit="answers", show=progress) as bar:
        for request, answer in pairs:
            out.append(_judge(specialist, request, answer, counts))
            bar.advance()
    _warn_failures(specialist, counts)
    return out
