"""A learn run as one library call: :func:`learn` (what ``aeth learn`` does), :func:`status`.

::

    from aeth.app import Aeth
    from aeth.learning.run import learn

    result = learn(Aeth(), "coding", max_steps=20)
    print(result.outcome, result.message)

It reads top to bottom: the specialist's learn lock (:mod:`aeth.learning.lock`); its verifier over
new answers (when it declares one); its new feedback as a learn dataset version
(:mod:`aeth.learning.dataset`); the objective; a training run through :func:`aeth.training.run` on
that dataset (``plan.dataset``), starting from the active adapter; then learning's own gate
(:mod:`aeth.learning.gate`: eval suite and held-out feedback). Each run directory holds
``learn.json``: the dataset version it trains on, the gate's settings and, once it ends, its
outcome. A run killed before its outcome is *unfinished*: ``resume`` continues it on the same
dataset version from its newest checkpoint (or, when the adapter version was already stored,
runs only the gate), and a new learn refuses to start while one is unfinished, since its dataset
already consumed the feedback.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from aeth.atomic import write_text
from aeth.errors import AethError
from aeth.learning.plan import LearnPlan

__all__ = ["LEARN_JSON", "LearnResult", "learn", "learn_runs", "status", "waiting_feedback"]

#: a learn run's own file in its run directory
LEARN_JSON = "learn.json"
#: what each objective needs in the feedback, for the error an unsupported one gets
NEEDS = {
    "sft": "answers to imitate: corrections (aeth feedback ID --correct TEXT), thumbs up / ratings of 4 or 5, or "
           "answers a verifier accepted",
    "dpo": "preference pairs: aeth feedback ID --prefer OTHER_ID, corrections that differ from the answer, or "
           "verifier rewards that differ between answers to one prompt",
    "kto": "answers judged alone, both good ones (thumbs up, ratings of 4 or 5) and bad ones (thumbs down, ratings of "
           "1 or 2)",
}
#: the gate's settings: learn runs its own gate, so the training run gets gate=False and these live in learn.json
GATE_SETTINGS = ("gate", "force", "gate_limit")


@dataclass
class LearnResult:
    """How a learn run ended. ``outcome`` is ``nothing`` (no usable new feedback: no run),
    ``promoted``, ``kept`` (the gate kept it inactive), ``stored`` (no gate) or ``interrupted``;
    ``message`` says so in a sentence."""

    specialist: str
    outcome: str
    message: str
    objective: str | None = None
    dataset: Any = None
    run_dir: Path | None = None
    train: Any = None
    decision: Any = None
    version: Any = None


def learn(app: Any, specialist: Any, *, objective: str = "auto", heldout: float = 0.2, min_reward: float = 1.0,
          verify: bool = True, resume: str | None = None, wait: bool = False, progress: bool = True,
          echo: Callable[[str], None] | None = None, practice: dict[str, Any] | None = None,
          **settings: Any) -> LearnResult:
    """Learn ``specialist`` (a name or :class:`~aeth.specialist.Specialist`) from its new feedback,
    or, given ``practice`` (``{}`` for the defaults, else :class:`aeth.learning.practice.PracticeSettings`
    fields), from self-practice: answers it samples to its practice prompts, judged by its verifier
    (:func:`aeth.learning.practice.self_draft`; no feedback is consumed, no logged answer verified).

    ``objective`` is ``auto`` (:func:`aeth.learning.dataset.choose_objective`), ``sft``, ``dpo`` or
    ``kto``; ``heldout`` and ``min_reward`` shape the dataset (:func:`aeth.learning.dataset.collect`);
    ``verify=False`` skips the verifier. ``settings`` are :class:`LearnPlan` fields (``max_steps``,
    ``lr``, ``reference``, ``gate``, ``force``, ``gate_limit``...). ``resume`` (``"latest"`` or a
    run name's start) continues an unfinished learn run instead; only the settings a checkpoint
    does not depend on (``nproc``, the gate's) apply then. ``wait`` waits for another learn of the
    specialist to end instead of refusing. ``echo`` receives progress lines.
    """
    from aeth.learning.lock import learn_lock

    spec = app.specialist(specialist) if isinstance(specialist, str) else specialist
    say = echo or (lambda line: None)
    unknown = set(settings) - {f.name for f in fields(LearnPlan)}
    if unknown:
        raise AethError(f"unknown learn settings: {', '.join(sorted(unknown))} (see aeth.learning.plan.LearnPlan)")
    if objective not in ("auto", *NEEDS):
        raise AethError(f"objective {objective!r}: choose auto, sft, dpo or kto")
    home = app.config.home
    with learn_lock(home, spec.name, wait=wait):
        if resume:
            return _resume(app, spec, resume, settings, progress, say)
        unfinished = [d for d in learn_runs(home, spec.name) if _unfinished(d)]
        if unfinished:
            info = _read(unfinished[-1])
            raise AethError(f"learn run {unfinished[-1].name} of {spec.name} (on {info.get('dataset')}) did not finish, "
                            f"and its dataset holds the feedback since: continue it with: aeth learn {spec.name} --resume")
        if practice is None and verify and getattr(spec, "verifier", None) is not None:
            from aeth.learning.verify import verify_interactions

            counts = verify_interactions(app, spec.name, progress=progress)
            say(f"verifier: {counts.checked} new answers checked, {counts.skipped} it cannot check")
        return _start(app, spec, objective, heldout, min_reward, settings, progress, say, practice)


def _start(app: Any, spec: Any, objective: str, heldout: float, min_reward: float, settings: dict, progress: bool,
           say: Callable[[str], None], practice: dict[str, Any] | None = None) -> LearnResult:
    """Build the dataset (only when it can train), the plan and the run directory, then train and judge."""
    from aeth.learning.dataset import collect, objectives_supported, write
    from aeth.training.plan import write_plan
    from aeth.training.runs import new_run_dir

    home = app.config.home
    if practice is not None:  # self-practice: a draft with its own card (aeth.learning.practice)
        from aeth.learning.practice import self_draft

        draft = self_draft(app, spec, heldout=heldout, min_reward=min_reward, progress=progress, **practice)
    else:
        draft = collect(app, spec.name, heldout=heldout, min_reward=min_reward)
    if draft is None:
        return LearnResult(spec.name, "nothing", _nothing_message(app, spec, min_reward))
    supported = objectives_supported(draft)
    chosen = next((o for o in ("dpo", "kto", "sft") if o in supported), None) if objective == "auto" else objective
    if objective != "auto" and objective not in supported:
        raise AethError(f"--objective {objective}: the new feedback of {spec.name} gives no {objective.upper()} records "
                        f"(it supports: {', '.join(supported) or 'none'}); {objective.upper()} needs {NEEDS[objective]}")
    if chosen is None and practice is not None:
        return LearnResult(spec.name, "nothing", _practice_message(draft.card["practice"], draft.card["dropped"]))
    if chosen is None:  # nothing written: the rows wait for feedback that completes them
        counts = draft.card["records"]["train"]
        return LearnResult(spec.name, "nothing", f"nothing to learn from: {len(draft.card['feedback'])} feedback rows "
                           f"waiting, none usable yet (train records: {_counts(counts)}; KTO labels "
                           f"{draft.card['kto_labels']['train']}): KTO needs both good and bad answers, SFT answers to "
                           "imitate, DPO pairs")
    dataset = write(home, draft)
    p = dataset.card.get("practice")
    origin = (f"self-practice, {p['accepted']} of {p['samples']} sampled answers accepted" if p else
              f"{len(dataset.feedback_ids)} feedback rows")
    say(f"dataset {dataset.version}: {origin} -> train {_counts(dataset.card['records']['train'])}, "
        f"held out {_counts(dataset.card['records']['heldout'])}; objective {chosen}"
        + (" (auto)" if objective == "auto" else ""))
    active = app.adapters.active(spec.name)
    values = {"base_model": spec.base_model, "quantization": spec.quantization, **settings}
    if active is None:  # a fresh LoRA starts at zero: its reference is the bare base whatever was asked
        values["reference"] = "base"
    gate = {k: values.pop(k) for k in GATE_SETTINGS if k in values}
    plan = LearnPlan(**{**values, "objective": chosen, "dataset": str(dataset.path),
                        "init_adapter": str(active.path) if active else None, "gate": False})
    plan = replace(plan, run_dir=new_run_dir(home, spec.name))
    write_plan(plan)  # before learn.json: a run found by --resume always has its plan
    defaults = LearnPlan(base_model="")
    _write(plan.run_dir, {"format": 1, "specialist": spec.name, "dataset": dataset.version,
                          "source": dataset.card.get("source", "feedback"), "objective": chosen,
                          "objective_asked": objective, "started": _now(),
                          "parent": active.version if active else None,
                          **{k: gate.get(k, getattr(defaults, k)) for k in GATE_SETTINGS}})
    return _train_and_judge(app, spec, plan, dataset, progress, say)


def _train_and_judge(app: Any, spec: Any, plan: LearnPlan, dataset: Any, progress: bool,
                     say: Callable[[str], None]) -> LearnResult:
    """Train (or continue) ``plan``'s run through :func:`aeth.training.run`, then the gate."""
    from aeth.training import run

    result = run(app, spec, plan, progress=progress, echo=say)
    run_dir = Path(plan.run_dir)
    if result.interrupted:
        _update(run_dir, outcome={"interrupted": True, "steps": result.steps, "at": _now()})
        return LearnResult(spec.name, "interrupted", f"interrupted at step {result.steps}; checkpoint saved. Continue "
                           f"with: aeth learn {spec.name} --resume", plan.objective, dataset, run_dir, result)
    out = _judge(app, spec, result.version, dataset, plan, run_dir, say)
    out.train = result
    return out


def _judge(app: Any, spec: Any, version: Any, dataset: Any, plan: LearnPlan, run_dir: Path,
           say: Callable[[str], None]) -> LearnResult:
    """Learning's gate on ``version`` (unless learn.json says no gate); the outcome into learn.json."""
    from aeth.learning.gate import learn_gate, learning_record

    info = _read(run_dir)
    decision = None
    if info.get("gate", True):
        say(f"gate: {spec.name}'s eval suite ({info.get('gate_limit', 20)} cases) and {dataset.version}'s held-out "
            f"feedback, on {version.version} and on what answers now")
        decision = learn_gate(app, spec, version, dataset, plan.objective, limit=info.get("gate_limit", 20),
                              force=info.get("force", False), seq_len=plan.seq_len)
        outcome, message = ("promoted" if decision.promoted else "kept"), f"stored adapter {version.version}; {decision.reason}"
    else:
        app.adapters.annotate(spec.name, version.version, learning=learning_record(version, dataset, plan.objective))
        outcome, message = "stored", (f"stored adapter {version.version} (not active); serve it with: aeth adapters "
                                      f"activate {spec.name} {version.version}")
    _update(run_dir, outcome={"result": outcome, "version": version.version, "at": _now(),
                              "reason": decision.reason if decision else None,
                              "eval": [decision.score, decision.baseline] if decision else None,
                              "heldout": {k: list(v) for k, v in (decision.heldout or {}).items()} if decision else None})
    say(message)
    return LearnResult(spec.name, outcome, message, plan.objective, dataset, run_dir, decision=decision, version=version)


def _resume(app: Any, spec: Any, which: str, settings: dict, progress: bool, say: Callable[[str], None]) -> LearnResult:
    """Continue the unfinished learn run ``which`` names on its own dataset version."""
    from aeth.learning.dataset import load
    from aeth.training.plan import FINISHED, read_plan
    from aeth.training.plan import settings as declared

    home = app.config.home
    runs = [d for d in learn_runs(home, spec.name) if _unfinished(d)]
    chosen = runs[-1:] if which == "latest" else [d for d in runs if d.name.startswith(which)]
    if len(chosen) != 1:
        raise AethError(f"no unfinished learn run of {spec.name!r} matches {which!r} to resume (unfinished: "
                        f"{', '.join(d.name for d in runs) or 'none'}); start one with: aeth learn {spec.name}")
    run_dir = chosen[0]
    info = _read(run_dir)
    gate = {k: v for k, v in settings.items() if k in GATE_SETTINGS}
    if gate:
        _update(run_dir, **gate)
    dataset = load(home, spec.name, info["dataset"])
    plan = read_plan(run_dir, LearnPlan)
    say(f"resuming learn run {run_dir.name} on {dataset.version} ({plan.objective})")
    if (run_dir / FINISHED).is_file():  # trained and stored; the gate had not decided yet
        version = json.loads((run_dir / FINISHED).read_text())["version"]
        return _judge(app, spec, app.adapters.get(spec.name, version), dataset, plan, run_dir, say)
    changed = {d.name: settings[d.name] for d in declared(LearnPlan) if d.setting.on_resume and d.name in settings
               and d.name not in GATE_SETTINGS}
    return _train_and_judge(app, spec, replace(plan, resume=True, **changed), dataset, progress, say)


# ---- what is there ------------------------------------------------------------------------------


def learn_runs(home: Path | str, specialist: str) -> list[Path]:
    """The learn runs of ``specialist`` (run directories holding ``learn.json``), oldest first."""
    runs = Path(home) / "runs" / specialist
    return sorted(d for d in runs.glob("*") if (d / LEARN_JSON).is_file()) if runs.is_dir() else []


def waiting_feedback(app: Any, specialist: str) -> list[Any]:
    """``specialist``'s feedback rows no learn dataset consumed yet, oldest first."""
    from aeth.learning.dataset import used_feedback

    used = used_feedback(app.config.home, specialist)
    return [f for f in app.store.feedback(specialist=specialist) if f.id not in used]


def status(app: Any, specialist: str | None = None, *, schedule: bool = True) -> list[dict]:
    """Per specialist (one, or every registered one): its last learn run and outcome, the feedback
    rows waiting (and when the oldest arrived), the holder of its learn lock (None: no learn
    running) and its active version; with ``schedule``, also ``next`` (when
    :mod:`aeth.learning.schedule` learns it next, in words) and ``due``."""
    from aeth.learning.lock import holder

    home = app.config.home
    names = [app.specialist(specialist).name] if specialist else sorted(app.specialists())
    out = []
    for name in names:
        runs = learn_runs(home, name)
        last = {"run": runs[-1].name, **_read(runs[-1])} if runs else None
        active = app.adapters.active(name)
        waiting = waiting_feedback(app, name)
        oldest = waiting[0].created if waiting else None
        out.append({"specialist": name, "last": last, "waiting": len(waiting),
                    "waiting_since": oldest.isoformat() if oldest else None,
                    "running": holder(home, name), "active": active.version if active else None})
    if schedule:
        from datetime import datetime, timezone

        from aeth.learning.schedule import decide, rules

        now, chosen = datetime.now(timezone.utc), rules(app, names)
        for entry in out:
            decision = decide(entry["specialist"], chosen[entry["specialist"]], entry, now)
            entry.update(next=decision.reason, due=decision.due)
    return out


def _nothing_message(app: Any, spec: Any, min_reward: float) -> str:
    """Why the new feedback gives no record: none waiting, or what each waiting row became."""
    from aeth.learning.feedback import pair_ids, records_from_feedback

    rows = waiting_feedback(app, spec.name)
    if not rows:
        return (f"nothing to learn from: no new feedback on {spec.name}'s answers (give some with aeth feedback ID "
                "--up / --down / --correct TEXT / --prefer OTHER_ID)")
    wanted = {f.interaction_id for f in rows} | {i for f in rows if f.kind == "preference" for i in pair_ids(f) or ()}
    got = records_from_feedback(rows, app.store.get_many(wanted), system_prompt=spec.system_prompt, min_reward=min_reward)
    why = {**got.dropped, **({"comments": len(got.comments)} if got.comments else {})}
    return (f"nothing to learn from: {len(rows)} feedback rows waiting, none usable ("
            + (", ".join(f"{k} {v}" for k, v in sorted(why.items())) or "no record") + ")")


def _practice_message(practice: dict, dropped: dict) -> str:
    """Why self-practice gave nothing to train on, and what to change."""
    cut = dropped.get("unfinished", 0)
    return (f"nothing to learn from: of {practice['samples']} answers sampled to {practice['prompts']} practice prompts, "
            f"the verifier accepted {practice['accepted']} and checked {practice['checked']}"
            + (f"; {cut} accepted answers were cut at the length limit and are not imitated (raise it with "
               "--max-tokens, or --imitate-cut)" if cut else "")
            + "; no prompt's answers differed in reward (try more --prompts, a larger --k or --temperature)")


def _unfinished(run_dir: Path) -> bool:
    outcome = _read(run_dir).get("outcome")
    return outcome is None or bool(outcome.get("interrupted"))


def _counts(counts: dict) -> str:
    return ", ".join(f"{k.upper()} {v}" for k, v in counts.items() if v) or "none"


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _read(run_dir: Path) -> dict:
    try:
        return json.loads((Path(run_dir) / LEARN_JSON).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def _write(run_dir: Path, data: dict) -> None:
    write_text(Path(run_dir) / LEARN_JSON, json.dumps(data, indent=2) + "\n")


def _update(run_dir: Path, **values: Any) -> None:
    _write(run_dir, {**_read(run_dir), **values})
