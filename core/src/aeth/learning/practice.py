"""Self-practice: a learn dataset with no teacher and no users (rejection sampling, STaR).

A specialist that declares ``practice(n, seed)`` (prompts its verifier can check) and
``verifier(request, answer)`` can improve on its own: :func:`self_dataset` draws practice
prompts, samples ``k`` answers to each with the version that answers now (the active adapter, or
the bare base), lets the verifier score every answer, and writes a learn dataset version
(:mod:`aeth.learning.dataset`, the same files and held-out split as a feedback dataset):

- **SFT**: every accepted answer (reward >= ``min_reward``), once per distinct text;
- **DPO**: per prompt, the best answer against the worst when their rewards differ.

As with feedback (:mod:`aeth.learning.feedback`), an answer cut off at ``max_tokens`` is never a
target to imitate (SFT, DPO chosen): it would teach stopping mid-sentence; it may still be the
rejected side (``imitate_cut=True`` lifts this, for a model that rarely stops by itself, such
as the tiny test models). Answers the verifier cannot check (None) give nothing. Sample ``i`` of prompt
``j`` uses its own seed (:func:`sample_seed`), so one seed repeats a dataset exactly. The card's
``practice`` entry says how it was made: prompts, k, temperature, seed, the adapter version that
sampled, the acceptance rate and the mean reward. ``aeth learn SPECIALIST --self`` trains on it
(:func:`aeth.learning.run.learn` with ``practice=``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from aeth.errors import SpecialistError
from aeth.learning.dataset import Draft, LearnDataset, draft_from_items, write
from aeth.learning.feedback import UNFINISHED, Item, prompt_key, prompt_messages

__all__ = ["PracticeSettings", "sample_seed", "self_dataset", "self_draft"]


@dataclass(frozen=True)
class PracticeSettings:
    """How self-practice samples (the defaults of ``aeth learn --self``)."""

    #: practice prompts to draw (the specialist's ``practice(prompts, seed)``)
    prompts: int = 32
    #: answers sampled per prompt
    k: int = 4
    #: sampling temperature (above 0: the k answers must differ to be worth comparing)
    temperature: float = 0.8
    #: the seed of the prompts and of every sample: one seed repeats the dataset
    seed: int = 0
    #: the longest answer; None: the specialist's generation.max_tokens
    max_tokens: int | None = None
    #: also imitate accepted answers cut at ``max_tokens`` (a model that rarely stops by itself)
    imitate_cut: bool = False


def sample_seed(seed: int, prompt: int, sample: int, k: int) -> int:
    """The sampling seed of answer ``sample`` to prompt number ``prompt``: distinct for every answer
    of one run, and the same on a rerun with ``seed``."""
    return seed * 1_000_003 + prompt * k + sample


def self_dataset(app: Any, specialist: Any, *, prompts: int = 32, k: int = 4, temperature: float = 0.8, seed: int = 0,
                 min_reward: float = 1.0, heldout: float = 0.2, max_tokens: int | None = None,
                 imitate_cut: bool = False, progress: bool = True) -> LearnDataset | None:
    """Sample, score and write the next learn dataset of ``specialist`` (a name or a
    :class:`~aeth.specialist.Specialist`) from self-practice (see the module docstring); ``None``,
    writing nothing, when no answer was accepted and no prompt's answers differed in reward::

        from aeth.app import Aeth
        from aeth.learning.practice import self_dataset

        ds = self_dataset(Aeth(), "coding", prompts=16, k=4)
        if ds is not None:
            print(ds.version, ds.card["practice"]["acceptance_rate"], ds.card["records"]["train"])
    """
    draft = self_draft(app, specialist, prompts=prompts, k=k, temperature=temperature, seed=seed,
                       min_reward=min_reward, heldout=heldout, max_tokens=max_tokens, imitate_cut=imitate_cut,
                       progress=progress)
    if draft is None or not draft.card["objectives"]:
        return None
    return write(app.config.home, draft)


def self_draft(app: Any, specialist: Any, *, prompts: int = 32, k: int = 4, temperature: float = 0.8, seed: int = 0,
               min_reward: float = 1.0, heldout: float = 0.2, max_tokens: int | None = None,
               imitate_cut: bool = False, progress: bool = True) -> Draft:
    """:func:`self_dataset` in memory, not written: a :class:`~aeth.learning.dataset.Draft` whose
    card has the ``practice`` entry, even when it holds no record (its card then says why)."""
    spec = app.specialist(specialist) if isinstance(specialist, str) else specialist
    missing = [name for name in ("practice", "verifier") if getattr(spec, name, None) is None]
    if missing:
        raise SpecialistError(
            f"specialist {spec.name!r} cannot practise on its own: it declares no {' and no '.join(missing)}. Its plugin "
            "sets Specialist(practice=..., verifier=...): practice(n, seed) -> list[Request] returns prompts whose "
            "metadata['verify'] says what is right, verifier(request, answer) -> reward in [0, 1] or None checks an "
            "answer (see docs/learning.md, Self-practice)")
    if prompts < 1 or k < 1 or temperature <= 0:
        raise SpecialistError(f"self-practice needs prompts >= 1, k >= 1 and a temperature above 0 (so the k answers "
                              f"differ), got prompts={prompts}, k={k}, temperature={temperature}")
    requests = list(spec.practice(prompts, seed))[:prompts]
    answers, adapter = _sample(app, spec, requests, k, temperature, seed, max_tokens, progress)
    from aeth.learning.verify import verify_answers

    pairs = [(requests[j], text) for j, group in enumerate(answers) for text, _ in group]
    rewards = iter(verify_answers(spec, pairs, progress=progress))
    scored = [[(text, finish, next(rewards)) for text, finish in group] for group in answers]
    cut = frozenset() if imitate_cut else UNFINISHED
    items, dropped = _items(spec, requests, scored, min_reward, cut)
    values = [r for group in scored for _, _, r in group if r is not None]
    accepted = sum(r >= min_reward for r in values)
    practice = {**asdict(PracticeSettings(len(requests), k, temperature, seed, max_tokens, imitate_cut)),
                "adapter": adapter, "samples": len(pairs), "checked": len(values), "accepted": accepted,
                "cut": sum(finish in UNFINISHED for group in scored for _, finish, _ in group),
                "acceptance_rate": accepted / len(pairs) if pairs else 0.0,
                "mean_reward": sum(values) / len(values) if values else None}
    card = {"source": "self-practice", "settings": {"heldout": heldout, "min_reward": min_reward}, "practice": practice}
    draft = draft_from_items(app.config.home, spec.name, items, heldout=heldout, dropped=dropped, card=card)
    return draft or _empty(spec.name, dropped, card)  # an empty draft still says what practice found


def _sample(app: Any, spec: Any, requests: list[Any], k: int, temperature: float, seed: int, max_tokens: int | None,
            progress: bool) -> tuple[list[list[tuple[str, str]]], str | None]:
    """``k`` (answer, finish reason) per request, and the adapter that answered.

    Every answer is a job of one :class:`~aeth.serving.batching.BatchingEngine`, so the answers
    are decoded together (up to its ``max_batch`` rows at a time) as ``aeth serve`` decodes
    concurrent requests: each row with its own seed (:func:`sample_seed`), the request itself (so
    its history reaches the model), and what ``aeth run`` answers it with alone up to float
    rounding between batch shapes. A plugin that generates for the specialist itself answers
    through the ``generate`` hook instead (the engine hands it over)."""
    from aeth.generation.sampling import eval_sampling
    from aeth.progress import Progress
    from aeth.serving.batching import BatchingEngine
    from aeth.serving.generation import Job

    limit = max_tokens or spec.generation.max_tokens
    engine = BatchingEngine(app)
    try:
        gens = [[engine.submit(Job(spec, request, eval_sampling(spec, temperature, limit, sample_seed(seed, j, i, k))))
                 for i in range(k)] for j, request in enumerate(requests)]
        out, adapters = [], set()
        with Progress(f"{spec.name}: practising", len(requests) * k, unit="answers", show=progress) as bar:
            for group in gens:
                answers = []
                for gen in group:
                    answers.append(("".join(gen).strip(), gen.stats.get("finish_reason") or "stop"))
                    adapters.add(gen.stats.get("adapter"))
                    bar.advance()
                out.append(answers)
    finally:
        engine.close()
    # one version answers a whole run (nothing promotes meanwhile: learn holds the specialist's lock)
    return out, next(iter(adapters), None) if len(adapters) == 1 else ", ".join(sorted(map(str, adapters)))


def _items(spec: Any, requests: list[Any], scored: list[list[tuple[str, str, float | None]]],
           min_reward: float, cut: frozenset[str]) -> tuple[list[Item], dict[str, int]]:
    """The SFT and DPO items of the scored answers, and what was dropped (the rules of the module
    docstring); answers whose finish reason is in ``cut`` are never imitated."""
    items: list[Item] = []
    dropped: dict[str, int] = {}
    for j, (request, group) in enumerate(zip(requests, scored, strict=True)):
        turns = [*request.history, {"role": "user", "content": request.prompt}]
        prompt = prompt_messages(turns, spec.system_prompt)
        key = prompt_key(prompt)
        checked = [(i, text, finish, r) for i, (text, finish, r) in enumerate(group) if r is not None and text]
        for i, text, finish, reward in checked:
            if reward < min_reward:
                continue
            if finish in cut:
                dropped["unfinished"] = dropped.get("unfinished", 0) + 1
            else:
                items.append(Item("sft", {"messages": [*prompt, _assistant(text)]}, key, j * len(group) + i))
        # best: the highest reward among answers that ended by themselves, then the earliest; worst: the lowest
        finished = [c for c in checked if c[2] not in cut]
        if not finished:
            continue
        best = min(finished, key=lambda c: (-c[3], c[0]))
        worst = min(checked, key=lambda c: (c[3], c[0]))
        if best[3] > worst[3] and " ".join(best[1].split()) != " ".join(worst[1].split()):
            items.append(Item("dpo", {"messages": [*prompt, _assistant(best[1])], "rejected": worst[1]}, key,
                              j * len(group)))
    return items, dropped


def _assistant(text: str) -> dict[str, str]:
    return {"role": "assistant", "content": text}


def _empty(specialist: str, dropped: dict[str, int], card: dict) -> Draft:
    """A draft with no record whose card has the counts a card has (so callers can say why it is empty)."""
    from aeth.learning.dataset import DROP_REASONS, FORMAT, OBJECTIVES

    zero = {o: 0 for o in OBJECTIVES}
    return Draft(specialist, {o: [] for o in OBJECTIVES}, [], {
        "format": FORMAT, "specialist": specialist, **card, "records": {"train": zero, "heldout": dict(zero)},
        "kto_labels": {"train": {"true": 0, "false": 0}, "heldout": {"true": 0, "false": 0}},
        "dropped": dict(sorted(dropped.items())), "drop_reasons": DROP_REASONS,
        "prompts": {"train": [], "heldout": []}, "feedback": [], "interactions": [], "objectives": [],
        "objective_auto": None})
