"""Quality control: an answer is checked, and regenerated or chosen among several, before it leaves.

A specialist's plugin declares how its answers are judged (:class:`Quality`): ``check(request,
answer)`` names what is wrong with an answer (code that does not parse or fails its own doctests,
a quiz that is not valid JSON) or returns ``None``; ``vote_key(request, answer)`` extracts the
final answer to vote on (a number, a letter). The config chooses the method and ``k`` per
specialist (``quality.<specialist>.method``, ``quality.<specialist>.k``; ``quality.default.*`` for
all), over the plugin's defaults:

- ``off``: the answer as generated;
- ``retry``: the answer, and while ``check`` finds a problem, a new sample (up to ``k`` answers in
  all); the first that passes leaves, else the first answer;
- ``best``: best-of-k: the answer and ``k - 1`` samples decoded together; the first that passes
  ``check`` leaves (the answer itself when it passes), else the first;
- ``vote``: self-consistency: the answer and ``k - 1`` samples decoded together; the one whose
  ``vote_key`` most of them share leaves (ties: the earliest), else the first (the answer itself:
  a greedy answer is never lost to samples that give no final answer).

Samples beyond the first use the specialist's temperature, or :data:`SAMPLE_TEMPERATURE` where it
answers greedily (greedy samples would all be the same), each with its own seed (derived from the
request's seed, so a seeded request is answered the same every time). Every answer of
one request is a job of one :class:`~aeth.serving.engine.Engine` (``aeth serve``'s own, or one made
for the answer), so they decode in one batch. The whole answer is chosen before any of it is
sent: a quality-controlled answer arrives in one piece. What was done is reported in the
response's ``quality`` (method, k, answers generated, which one left and why).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Hashable
from dataclasses import dataclass, replace
from typing import Any

from aeth.config import QUALITY_METHODS

__all__ = ["METHODS", "SAMPLE_TEMPERATURE", "Candidate", "Quality", "choose", "combined_stats", "controlled", "quality_for"]

METHODS = QUALITY_METHODS
#: the temperature of the extra samples when the specialist answers greedily
SAMPLE_TEMPERATURE = 0.7


@dataclass(frozen=True)
class Quality:
    """How a specialist's answers are judged before they leave (see the module docstring); the
    ``method`` and ``k`` here are the specialist's defaults, which ``quality.<name>.*`` overrides."""

    #: ``check(request, answer) -> str | None``: what is wrong with the answer, or None
    check: Callable[[Any, str], str | None] | None = None
    #: ``vote_key(request, answer) -> hashable | None``: the final answer to vote on (None: it has none)
    vote_key: Callable[[Any, str], Hashable | None] | None = None
    method: str = "off"
    k: int = 3

    def problems(self) -> list[str]:
        """What is wrong with this declaration (empty when valid)."""
        out = []
        for name in ("check", "vote_key"):
            if getattr(self, name) is not None and not callable(getattr(self, name)):
                out.append(f"{name} must be a callable or None, got {type(getattr(self, name)).__name__}")
        out += _setting_problems(self, self.method, self.k)
        return out


def _setting_problems(quality: Quality | None, method: Any, k: Any) -> list[str]:
    if method not in METHODS:
        return [f"method must be one of {', '.join(METHODS)}, got {method!r}"]
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        return [f"k must be an integer of at least 1, got {k!r}"]
    needs = {"retry": "check", "best": "check", "vote": "vote_key"}.get(method)
    if needs and (quality is None or getattr(quality, needs) is None):
        return [f"method {method!r} needs the specialist's Quality.{needs}, which it does not declare"]
    return []


def quality_for(app: Any, specialist: Any) -> tuple[str, int]:
    """The method and k for ``specialist``: its plugin's :class:`Quality`, then ``quality.default.*``
    and ``quality.<name>.*`` in the config. A method the specialist cannot use (``vote`` with no
    ``vote_key``) raises :class:`~aeth.errors.ConfigError` naming the key to change."""
    from aeth.errors import ConfigError

    declared = getattr(specialist, "quality", None)
    method, k = (declared.method, declared.k) if declared is not None else ("off", 3)
    entries = app.config.subtrees("quality")
    for entry in ("default", specialist.name):
        values = entries.get(entry) or {}
        method, k = values.get("method", method), values.get("k", k)
        if entry == "default" and method != "off" and _setting_problems(declared, method, k):
            method = "off"  # the operator's default for all: a specialist that cannot use it answers as it is
    problems = _setting_problems(declared, method, k)
    if problems:
        raise ConfigError([f"quality.{specialist.name}: {p}" for p in problems])
    return method, k


@dataclass
class Candidate:
    """One generated answer: its text and generation stats, and what the checks said of it."""

    text: str
    stats: dict
    problem: str | None = None
    key: Hashable | None = None


def choose(method: str, k: int, quality: Quality | None, request: Any, sampling: Any,
           submit: Callable[[Any], Any], cancel: Callable[[], bool] | None = None) -> tuple[Candidate, list[Candidate], dict]:
    """Generate and choose one answer to ``request`` by ``method`` (see the module docstring).

    ``sampling`` is the answer's own :class:`~aeth.request.Sampling`; ``submit(sampling)`` starts
    one answer and returns an iterable of text chunks with ``stats`` and ``cancel()`` (a
    :class:`~aeth.serving.generation.Generation`). ``cancel`` is polled between chunks: once it
    returns true every answer started is cancelled (a client that left). Returns the chosen
    candidate, every candidate generated, and the report for the response's ``quality``.
    """
    started: list[Any] = []

    def start(s: Any) -> Any:
        started.append(submit(s))
        return started[-1]

    def sample(i: int) -> Any:  # the i-th extra answer: sampled, with its own seed
        seed = None if sampling.seed is None else sampling.seed * 1_000_003 + i  # None: a fresh random one
        return start(replace(sampling, temperature=sampling.temperature or SAMPLE_TEMPERATURE, seed=seed))

    def finish(gen: Any) -> Candidate:
        parts = []
        for chunk in gen:
            parts.append(chunk)
            if cancel is not None and cancel():
                for g in started:
                    g.cancel()
        text = "".join(parts).strip()
        made = Candidate(text, dict(gen.stats))
        if quality is not None and quality.check is not None and method in ("retry", "best"):
            made.problem = quality.check(request, text)
        if quality is not None and quality.vote_key is not None and method == "vote":
            made.key = quality.vote_key(request, text)
        return made

    if method == "retry":
        candidates = [finish(start(sampling))]
        while candidates[-1].problem is not None and len(candidates) < k:
            candidates.append(finish(sample(len(candidates))))
        chosen = next((c for c in candidates if c.problem is None), candidates[0])
    elif method == "best":
        gens = [start(sampling), *(sample(i) for i in range(1, k))]  # all submitted first: one batch
        candidates = [finish(g) for g in gens]
        chosen = next((c for c in candidates if c.problem is None), candidates[0])
    elif method == "vote":
        gens = [start(sampling), *(sample(i) for i in range(1, k))]  # the answer itself votes too
        candidates = [finish(g) for g in gens]
        votes = Counter(c.key for c in candidates if c.key is not None)
        top = max(votes.values(), default=0)
        winner = next((c.key for c in candidates if c.key is not None and votes[c.key] == top), None)
        chosen = next((c for c in candidates if winner is not None and c.key == winner), candidates[0])
    else:
        candidates = [finish(start(sampling))]
        chosen = candidates[0]
    index = candidates.index(chosen)
    report: dict[str, Any] = {"method": method, "k": k, "generated": len(candidates), "chosen": index}
    if method in ("retry", "best"):
        report["passed"] = chosen.problem is None
        report["problems"] = [c.problem for c in candidates]
    if method == "vote":
        report["votes"] = {str(key): n for key, n in Counter(c.key for c in candidates if c.key is not None).most_common()}
        report["answer"] = None if chosen.key is None else str(chosen.key)
    return chosen, candidates, report


def combined_stats(chosen: Candidate, candidates: list[Candidate], report: dict) -> dict:
    """The chosen answer's stats (its ``tokens_out``: what the client receives), with the
    ``machine_seconds`` of every answer generated for it (what the answer cost); the report gets
    ``tokens_generated``, all of them."""
    stats = dict(chosen.stats)
    stats["machine_seconds"] = round(sum(c.stats.get("machine_seconds", 0.0) for c in candidates), 6)
    report["tokens_generated"] = sum(c.stats.get("tokens_out", 0) for c in candidates)
    return stats


def controlled(engine: Any, method: str, k: int, specialist: Any, request: Any, sampling: Any, *,
               adapter: str | None = None, cancel: Callable[[], bool] | None = None) -> tuple[str, dict, dict]:
    """The answer to ``request`` that ``method`` chooses among candidates ``engine`` (an
    :class:`~aeth.serving.engine.Engine`) decodes for ``specialist`` with its ``adapter``
    (None: the active one): the chosen text, its stats (:func:`combined_stats`) and the report for
    the response's ``quality``. What ``aeth run`` and ``aeth serve`` both call."""
    from aeth.serving.generation import Job

    chosen, candidates, report = choose(method, k, specialist.quality, request, sampling,
                                        lambda s: engine.submit(Job(specialist, request, s, adapter=adapter)),
                                        cancel=cancel)
    return chosen.text, combined_stats(chosen, candidates, report), report
