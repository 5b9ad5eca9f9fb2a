"""Learn datasets: a specialist's new feedback as a dataset version, with a held-out share.

:func:`build_dataset` takes the feedback on one specialist's answers that no earlier learn
dataset of that specialist used, turns it into records (the rules are in
:mod:`aeth.learning.feedback`), drops duplicates, splits off a held-out share by prompt, and
writes one version, whole or not at all::

    $AETH_HOME/datasets/<specialist>/learn-<NNNN>/
      sft.jsonl      {"messages": [...prompt..., {"role": "assistant", "content": ANSWER}]}
      dpo.jsonl      {"messages": [...prompt..., {"role": "assistant", "content": CHOSEN}], "rejected": "REJECTED"}
      kto.jsonl      {"messages": [...prompt..., {"role": "assistant", "content": ANSWER}], "label": true | false}
      heldout.jsonl  held-out records of all three kinds, each with "objective": "sft" | "dpo" | "kto"
      card.json      what went in: counts, feedback and interaction ids, prompts per side, hashes
      README.md      the card for people

The prompt messages leave out the specialist's own system prompt (training puts it first). The
files are not named ``records.jsonl``, so ``aeth train`` never mixes them into a recipe's data;
the held-out records are never trained on: the gate judges a new adapter version by them.

**Watermark**: each card lists the ids of the feedback rows it consumed (every new row seen,
comments and neutral ratings included); a row is new when no earlier learn card of the
specialist lists it. One learn run per specialist at a time (the scheduler's lock) keeps two
builds from taking the same rows.

**Held-out**: the unit is a prompt (:func:`aeth.learning.feedback.prompt_key`), so two answers
to one prompt always land on the same side. A prompt an earlier version put on a side stays
there; a new prompt is held out when its hash falls below ``heldout`` (0.2: about a fifth). When
a version has two or more prompts and none landed in the held-out share, the new prompt with the
lowest hash is held out (and when all landed there, the new prompt with the highest hash trains),
and the card records it, so later versions keep it there.

``choose_objective`` is what ``--objective auto`` picks: DPO when there are pairs, else KTO
when there are labelled answers of both signs, else SFT.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aeth.datasets import DatasetError
from aeth.learning.feedback import DROP_REASONS, Item, dedupe, is_reward, pair_ids, records_from_feedback

__all__ = ["OBJECTIVES", "Draft", "LearnDataset", "build_dataset", "choose_objective", "collect", "draft_from_items", "list_datasets",
           "load", "objectives_supported", "split_heldout", "training_data", "used_feedback",
           "write"]

#: the training objectives a learn dataset feeds, and their train files' names (``<objective>.jsonl``)
OBJECTIVES = ("sft", "dpo", "kto")
HELDOUT = "heldout.jsonl"
CARD = "card.json"
FORMAT = "aeth-learn-dataset/1"
PREFIX = "learn-"
_NAME = re.compile(r"learn-(\d{4,})$")


@dataclass
class LearnDataset:
    """One written learn dataset version: ``<home>/datasets/<specialist>/<version>/`` and its card."""

    specialist: str
    version: str
    path: Path
    card: dict[str, Any]

    @property
    def number(self) -> int:
        """The version's sequence number (``learn-0003`` is 3)."""
        return int(_NAME.match(self.version).group(1))

    def records(self, objective: str, split: str = "train") -> list[dict[str, Any]]:
        """The ``objective``'s records of ``split`` ("train" or "heldout"; held-out ones lose their
        ``objective`` field), in the formats of the module docstring."""
        if objective not in OBJECTIVES or split not in ("train", "heldout"):
            raise ValueError(f"objective is one of {OBJECTIVES} and split 'train' or 'heldout', got {objective!r}, {split!r}")
        if split == "train":
            return _read_jsonl(self.path / f"{objective}.jsonl")
        return [{k: v for k, v in r.items() if k != "objective"} for r in _read_jsonl(self.path / HELDOUT)
                if r.get("objective") == objective]

    @property
    def feedback_ids(self) -> list[str]:
        """The feedback rows this version consumed."""
        return list(self.card.get("feedback", []))


@dataclass
class Draft:
    """A learn dataset built in memory, not yet written (:func:`collect`; :func:`write` stores it)."""

    specialist: str
    train: dict[str, list[dict[str, Any]]]
    heldout: list[dict[str, Any]]
    card: dict[str, Any] = field(default_factory=dict)


# ---- reading ---------------------------------------------------------------------------------


def datasets_dir(home: Path | str, specialist: str) -> Path:
    """``<home>/datasets/<specialist>``: where a specialist's dataset versions live."""
    return Path(home) / "datasets" / specialist


def list_datasets(home: Path | str, specialist: str) -> list[LearnDataset]:
    """The specialist's learn datasets, oldest first (unfinished temporary directories are skipped)."""
    base = datasets_dir(home, specialist)
    if not base.is_dir():
        return []
    found = []
    for d in base.iterdir():
        if d.is_dir() and _NAME.match(d.name) and (d / CARD).is_file():
            try:
                card = json.loads((d / CARD).read_text(encoding="utf-8"))
            except json.JSONDecodeError as e:
                raise DatasetError(f"{d / CARD}: not valid JSON ({e.msg}); restore it or move {d} away") from None
            found.append(LearnDataset(specialist, d.name, d, card))
    return sorted(found, key=lambda x: x.number)


def load(home: Path | str, specialist: str, version: str | None = None) -> LearnDataset:
    """The learn dataset ``version`` of ``specialist`` (``learn-0002``, or its number ``2``); the
    newest when ``version`` is None."""
    found = list_datasets(home, specialist)
    if version is None and found:
        return found[-1]
    wanted = [d for d in found if version is not None and (d.version == version or version.isdigit() and d.number == int(version))]
    if not wanted:
        known = ", ".join(d.version for d in found) or "none yet"
        raise DatasetError(f"no learn dataset {version or ''} of {specialist!r} in {datasets_dir(home, specialist)} "
                           f"(versions: {known}); feedback becomes one with build_dataset / the learn command")
    return wanted[0]


def training_data(path: Path | str, objective: str) -> Any:
    """What a run with ``plan.dataset`` trains on (a :class:`aeth.datasets.TrainingData`): the learn
    dataset at ``path``'s ``<objective>.jsonl`` as train, its held-out records of that objective as
    validation (the loop's validation loss; they are never trained on)."""
    from aeth.datasets import TrainingData

    path = Path(path)
    if not (path / CARD).is_file():
        raise DatasetError(f"{path}: not a learn dataset (no {CARD}); was it moved or deleted? Start a new learn run")
    ds = LearnDataset(path.parent.name, path.name, path, json.loads((path / CARD).read_text(encoding="utf-8")))
    train, validation = ds.records(objective), ds.records(objective, "heldout")
    return TrainingData(train, validation, {f"learn dataset {ds.specialist}/{ds.version} ({objective})": len(train)})


def used_feedback(home: Path | str, specialist: str) -> set[str]:
    """Ids of the feedback rows earlier learn datasets of ``specialist`` consumed (the watermark)."""
    return {fid for d in list_datasets(home, specialist) for fid in d.card.get("feedback", [])}


def _sides(home: Path | str, specialist: str) -> dict[str, str]:
    """prompt key -> "train" or "heldout", as earlier versions placed them (later versions win)."""
    out: dict[str, str] = {}
    for d in list_datasets(home, specialist):
        for side in ("train", "heldout"):
            out.update(dict.fromkeys(d.card.get("prompts", {}).get(side, []), side))
    return out


# ---- building --------------------------------------------------------------------------------


def collect(app: Any, specialist: str, *, heldout: float = 0.2, min_reward: float = 1.0) -> Draft | None:
    """The next learn dataset of ``specialist`` from its new feedback, in memory; ``None`` when no
    new feedback gives a record (rows that give none, such as comments, wait for a later version).

    ``heldout`` is the share of prompts held out (0 to below 1); ``min_reward`` the verifier reward
    from which an answer is an accepted sample (SFT). ``app`` is an :class:`aeth.app.Aeth`.
    """
    if not 0 <= heldout < 1:
        raise DatasetError(f"the held-out share is from 0 to below 1 (0.2 holds out about a fifth), got {heldout!r}")
    if not 0 <= min_reward <= 1:
        raise DatasetError(f"min_reward is a verifier reward from 0 to 1, got {min_reward!r}")
    system_prompt = app.specialist(specialist).system_prompt  # an unknown name lists the installed ones
    home = app.config.home
    used = used_feedback(home, specialist)
    rows = [f for f in app.store.feedback(specialist=specialist) if f.id not in used]
    if not rows:
        return None
    wanted = {f.interaction_id for f in rows}
    wanted |= {i for f in rows if f.kind == "preference" for i in pair_ids(f) or ()}
    interactions = app.store.get_many(wanted)
    got = records_from_feedback(rows, interactions, system_prompt=system_prompt, min_reward=min_reward)
    kinds: dict[str, int] = {}
    for f in rows:
        kind = "reward" if is_reward(f) else f.kind
        kinds[kind] = kinds.get(kind, 0) + 1
    return draft_from_items(home, specialist, got.items, heldout=heldout, dropped=got.dropped, card={
        "source": "feedback", "settings": {"heldout": heldout, "min_reward": min_reward},
        "feedback_kinds": dict(sorted(kinds.items())), "feedback": [f.id for f in rows],
        "interactions": sorted(interactions), "comments": got.comments})


def draft_from_items(home: Path | str, specialist: str, items: list[Item], *, heldout: float, dropped: dict[str, int],
                     card: dict[str, Any]) -> Draft | None:
    """A :class:`Draft` of ``items`` (records from feedback or from self-practice): duplicates
    dropped, a held-out share split off by prompt (:func:`split_heldout`, keeping the sides earlier
    versions under ``home`` chose), counted; ``card`` adds what the source says about itself
    (``source``, ``settings``, ``feedback``...). ``None`` when no item is left."""
    items, duplicates = dedupe(items)
    if not items:
        return None
    held = split_heldout([it.prompt_key for it in items], heldout, _sides(home, specialist))
    train: dict[str, list[dict[str, Any]]] = {o: [] for o in OBJECTIVES}
    held_out: list[dict[str, Any]] = []
    for it in items:
        if it.prompt_key in held:
            held_out.append({"objective": it.objective, **it.record})
        else:
            train[it.objective].append(it.record)
    keys = sorted({it.prompt_key for it in items})
    card = {
        "format": FORMAT, "specialist": specialist, **card,
        "records": {"train": {o: len(train[o]) for o in OBJECTIVES},
                    "heldout": {o: sum(r["objective"] == o for r in held_out) for o in OBJECTIVES}},
        "kto_labels": {"train": _labels(train["kto"]), "heldout": _labels([r for r in held_out if r["objective"] == "kto"])},
        "dropped": dict(sorted({**dropped, **({"duplicate": duplicates} if duplicates else {})}.items())),
        "drop_reasons": DROP_REASONS,
        "prompts": {"train": [k for k in keys if k not in held], "heldout": [k for k in keys if k in held]},
        "feedback": card.get("feedback", []), "interactions": card.get("interactions", []),
    }
    draft = Draft(specialist, train, held_out, card)
    card["objectives"] = objectives_supported(draft)
    card["objective_auto"] = choose_objective(draft)
    return draft


def split_heldout(keys: list[str], fraction: float, sides: dict[str, str] | None = None) -> set[str]:
    """The prompt keys among ``keys`` to hold out (see "Held-out" in the module docstring).

    ``sides`` maps keys earlier versions placed to "train" or "heldout"; they stay there.
    """
    sides = sides or {}
    keys = sorted(set(keys))
    if fraction <= 0:
        return {k for k in keys if sides.get(k) == "heldout"}
    held = {k for k in keys if sides.get(k) == "heldout" or (k not in sides and _bucket(k) < fraction)}
    fresh = [k for k in keys if k not in sides]
    if len(keys) >= 2 and not held and fresh:
        held.add(min(fresh, key=_bucket))
    movable = [k for k in fresh if k in held]
    if len(keys) >= 2 and held == set(keys) and len(movable) > 0:
        held.discard(max(movable, key=_bucket))
    return held


def write(home: Path | str, draft: Draft) -> LearnDataset:
    """Store ``draft`` as the specialist's next learn dataset version, whole or not at all: built
    in a temporary directory beside the versions, fsynced, then renamed into place."""
    from aeth import __version__
    from aeth.atomic import fsync_dir, fsync_tree
    from aeth.store.rows import utcnow

    base = datasets_dir(home, draft.specialist)
    base.mkdir(parents=True, exist_ok=True)
    number = 1 + max((d.number for d in list_datasets(home, draft.specialist)), default=0)
    version = f"{PREFIX}{number:04d}"
    files = {f"{o}.jsonl": _jsonl(draft.train[o]) for o in OBJECTIVES}
    files[HELDOUT] = _jsonl(draft.heldout)
    digest = hashlib.sha256("".join(files[name] for name in sorted(files)).encode()).hexdigest()
    card = {"version": version, "created": utcnow().isoformat(), "aeth_version": __version__, **draft.card,
            "sha256": digest, "files": _FILES}
    tmp = Path(tempfile.mkdtemp(prefix=f".{version}.tmp-", dir=base))
    try:
        for name, text in files.items():
            (tmp / name).write_text(text, encoding="utf-8")
        (tmp / CARD).write_text(json.dumps(card, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        (tmp / "README.md").write_text(_readme(card), encoding="utf-8")
        fsync_tree(tmp)
        try:
            os.rename(tmp, base / version)
        except OSError:  # the name was taken meanwhile: another build of this specialist ran at the same time
            raise DatasetError(f"{base / version} appeared while this dataset was being written: another learn run of "
                               f"{draft.specialist!r} is building one; run one at a time, then try again") from None
        fsync_dir(base)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return LearnDataset(draft.specialist, version, base / version, card)


def build_dataset(app: Any, specialist: str, *, heldout: float = 0.2, min_reward: float = 1.0) -> LearnDataset | None:
    """Build and write the next learn dataset of ``specialist`` from its new feedback (:func:`collect`,
    then :func:`write` under ``app.config.home``); ``None``, writing nothing, when there is none::

        from aeth.app import Aeth
        from aeth.learning.dataset import build_dataset, choose_objective

        ds = build_dataset(Aeth(), "coding")
        if ds is not None:
            print(ds.version, ds.card["records"], choose_objective(ds))
            pairs = ds.records("dpo")
    """
    draft = collect(app, specialist, heldout=heldout, min_reward=min_reward)
    return None if draft is None else write(app.config.home, draft)


# ---- which objective ---------------------------------------------------------------------------


def objectives_supported(dataset: Any) -> list[str]:
    """Which of ``sft``, ``dpo``, ``kto`` the train records of ``dataset`` (a :class:`LearnDataset`,
    a :class:`Draft` or a card) can train: SFT with any SFT record, DPO with any pair, KTO with
    labelled answers of both signs (KTO's reference point needs both)."""
    card = getattr(dataset, "card", dataset)
    counts, labels = card["records"]["train"], card["kto_labels"]["train"]
    out = [o for o in ("sft", "dpo") if counts.get(o)]
    if labels.get("true") and labels.get("false"):
        out.append("kto")
    return sorted(out, key=OBJECTIVES.index)


def choose_objective(dataset: Any) -> str | None:
    """What ``--objective auto`` trains on ``dataset``: ``dpo`` when it has pairs, else ``kto`` when
    it has labelled answers of both signs, else ``sft``; ``None`` when it supports none (e.g. only
    thumbs down: nothing says what a better answer is)."""
    supported = objectives_supported(dataset)
    return next((o for o in ("dpo", "kto", "sft") if o in supported), None)


# ---- files -------------------------------------------------------------------------------------

_FILES = {
    "sft.jsonl": 'train, SFT: {"messages": [...prompt, {"role": "assistant", "content": answer}]}',
    "dpo.jsonl": 'train, DPO: {"messages": [...prompt, {"role": "assistant", "content": chosen}], "rejected": text}',
    "kto.jsonl": 'train, KTO: {"messages": [...prompt, {"role": "assistant", "content": answer}], "label": bool}',
    HELDOUT: 'held out (never trained on; the gate uses it): the records above, each with "objective"',
}


def _bucket(key: str) -> float:
    return int(key[:8], 16) / 0xFFFFFFFF


def _labels(records: list[dict[str, Any]]) -> dict[str, int]:
    return {"true": sum(bool(r["label"]) for r in records), "false": sum(not r["label"] for r in records)}


def _jsonl(records: list[dict[str, Any]]) -> str:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    with path.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def _readme(card: dict[str, Any]) -> str:
    train, held = card["records"]["train"], card["records"]["heldout"]
    rows = "\n".join(f"| {o.upper()} | {train[o]} | {held[o]} |" for o in OBJECTIVES)
    dropped = ", ".join(f"{k} {v}" for k, v in card["dropped"].items()) or "none"
    practice = card.get("practice")
    if practice:  # self-practice (aeth.learning.practice): sampled answers the verifier judged
        source = (f"self-practice: {practice['prompts']} practice prompts, {practice['k']} answers each sampled by "
                  f"{practice['adapter'] or 'the bare base model'} at temperature {practice['temperature']} (seed "
                  f"{practice['seed']}), judged by the verifier: {practice['accepted']} of {practice['samples']} accepted")
    else:
        kinds = ", ".join(f"{k} {v}" for k, v in card["feedback_kinds"].items())
        source = f"{len(card['feedback'])} new feedback rows ({kinds}) on {len(card['interactions'])} answers"
    return (f"# {card['specialist']} {card['version']}: a learn dataset from {'self-practice' if practice else 'feedback'}\n\n"
            f"Built {card['created']} by aeth {card['aeth_version']} from {source}.\n\n"
            f"| objective | train | held out |\n|---|---|---|\n{rows}\n\n"
            f"Prompts: {len(card['prompts']['train'])} train, {len(card['prompts']['heldout'])} held out "
            f"(share {card['settings']['heldout']}). Dropped: {dropped}. Objectives it supports: "
            f"{', '.join(card['objectives']) or 'none'}; `--objective auto` picks {card['objective_auto']}.\n\n"
            "Files: " + "; ".join(f"`{k}`: {v}" for k, v in card["files"].items()) + ".\n\n"
            "The held-out records are never trained on: a new adapter version is judged by how well it agrees with "
            "them. Every feedback row listed in card.json is consumed: the next learn dataset of this specialist "
            "takes only newer rows. Comments are in card.json.\n")
