"""Learning from feedback and from self-practice, end to end: does ``aeth learn`` make answers better?

Part 1, **simulated users** (issue 13). A ``format`` specialist on the offline default model
(SmolLM2-135M-Instruct, converted once) is asked short questions whose users want one thing the
base model does not do: *an answer of exactly one line that starts with "Answer:"* (e.g.
``Answer: 56``). The rule is checkable, so :func:`follows_rule` plays the user. Three disjoint,
seeded pools of questions (arithmetic, capitals, opposites, legs of animals, each with its true
answer): the users' pool (served and judged every round), the specialist's eval suite (the gate's
suite score: the same rule on other questions) and the held-out set, which is only ever answered,
greedily, to report the score; it never reaches a feedback row. Each round, per seed:

1. **serve**: ``--users`` fresh questions from the users' pool, answered by the engine ``aeth serve``
   uses (:class:`aeth.serving.batching.BatchingEngine`, in this process: all questions submitted at
   once, the active adapter resolved at submission, sampled at ``--temperature``) and logged as
   the server logs them (an :class:`~aeth.store.Interaction` with source ``serve``);
2. **feedback**, by objective, all from :func:`follows_rule` (the "fixed" answer is
   ``Answer: <true answer>``, what a user who wants the format would type):
   - ``sft``: a failing answer gets a *correction* (the fixed answer), a passing one a thumbs up;
   - ``dpo``: two sampled answers per question; when exactly one passes, a *preference* for it;
     when neither does, a correction of the first (a correction is a pair: the fix chosen, the
     answer rejected); when both do, a thumbs up (which DPO does not use);
   - ``kto``: a thumbs up or down on each answer, alone. The base almost never passes, and KTO
     needs both labels, so each failing answer is followed by the user's own fixed answer to the
     same question, logged as a second answer (an edit-and-resend) and given a thumbs up;
3. **learn**: :func:`aeth.learning.run.learn` with that objective forced, ``verify=False`` (the
   specialist has no verifier: the user is the only judge), the plan settings below;
4. **gate**: learn's own gate (suite + held-out feedback agreement) promotes or keeps the version.

The held-out score is measured before round 1 (the base) and after every round (whatever is active).
Per objective: the mean over seeds, the delta against round 0, a two-sided exact **sign test** on
the paired (seed, held-out question) outcomes of round r vs round 0, the gate's suite score and
whether the round was promoted. Goal: +0.20 after ``--rounds`` (3) with p < 0.05, and no promoted
round whose suite score is below the one before it.

**trl beside it**: for ``dpo``, after round 1 of each seed, trl 1.16's ``DPOTrainer`` trains the
same DPO pairs (``dpo.jsonl`` of that round's learn dataset: the same train split) from the same
start (a fresh LoRA of the specialist's config on the base; reference = base) with the same lr,
batch size, steps, beta and sequence length; its adapter is stored as a (not active) version and
answers the held-out set through the same engine. Wall time: aeth's training call inside learn
(model setup, reference log-probabilities and steps; not the gate) vs trl's trainer construction
(tokenization) and ``train()``. Goal: trl's score within noise of aeth's (|diff| <= 2 standard
errors of aeth's per-seed scores, at least 1/n) at a wall-time ratio aeth/trl <= 1.

Part 2, **self-improvement**: the ``reasoning`` specialist (aetherial-reasoning) restricted to one
reasoning-gym task (``--self-task``, syllogism by default). Held-out: the task's eval items (seeded
apart from every practice seed); gate suite: practice problems of a seed training never uses. Two
``aeth learn --self`` rounds (``practice=``: sample, verify, SFT on the accepted answers, or DPO
best against worst with ``--self-objective``), ``--seeds`` seeds. Goal: +0.10 absolute.

Both sides pin torch to ``--threads`` threads. Everything lives under ``--out`` (its own
``AETH_HOME`` per objective and seed, and one JSON per finished part and seed, so a killed run
keeps what finished; ``--resume`` skips them). ``--quick`` is the smallest end-to-end run.

    python bench/bench_learn.py [--seeds 3] [--rounds 3] [--users 32] [--objectives sft,dpo,kto] [--threads 2]
    python bench/bench_learn.py --quick --out /tmp/bench-learn
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import statistics
import sys
import time
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

GOAL_GAIN, GOAL_P, GOAL_SELF = 0.20, 0.05, 0.10
NAME = "format"
SYSTEM_PROMPT = "You are a helpful assistant. Answer the user's question."

# ---- the task: questions with a true short answer, and the users' rule ----------------------------

CAPITALS = {"France": "Paris", "Japan": "Tokyo", "Italy": "Rome", "Spain": "Madrid", "Germany": "Berlin",
            "Egypt": "Cairo", "Canada": "Ottawa", "Kenya": "Nairobi", "Peru": "Lima", "Norway": "Oslo",
            "Greece": "Athens", "Russia": "Moscow", "China": "Beijing", "India": "New Delhi", "Cuba": "Havana",
            "Chile": "Santiago", "Ireland": "Dublin", "Poland": "Warsaw", "Portugal": "Lisbon", "Austria": "Vienna",
            "Sweden": "Stockholm", "Finland": "Helsinki", "Thailand": "Bangkok", "Turkey": "Ankara",
            "Argentina": "Buenos Aires", "Belgium": "Brussels", "Hungary": "Budapest", "Denmark": "Copenhagen"}
OPPOSITES = {"hot": "cold", "big": "small", "fast": "slow", "happy": "sad", "light": "dark", "early": "late",
             "open": "closed", "full": "empty", "hard": "soft", "high": "low", "old": "young", "rich": "poor",
             "strong": "weak", "wet": "dry", "loud": "quiet", "near": "far", "thick": "thin", "true": "false",
             "clean": "dirty", "heavy": "light", "long": "short", "up": "down", "win": "lose", "buy": "sell"}
LEGS = {"spider": 8, "dog": 4, "chicken": 2, "ant": 6, "horse": 4, "duck": 2, "beetle": 6, "cat": 4, "octopus": 8,
        "cow": 4, "bee": 6, "penguin": 2, "goat": 4, "butterfly": 6, "owl": 2, "scorpion": 8}


def questions(seed: int = 1234) -> list[tuple[str, str]]:
    """Every (question, true short answer), in a fixed shuffled order (the pools are slices of it)."""
    out = [(f"What is the capital of {c}?", a) for c, a in CAPITALS.items()]
    out += [(f"What is the opposite of '{w}'?", a) for w, a in OPPOSITES.items()]
    out += [(f"How many legs does a {x} have?", str(n)) for x, n in LEGS.items()]
    for a in range(2, 40):
        for b in range(2, 13):
            out.append((f"What is {a} plus {b}?", str(a + b)))
            out.append((f"What is {a} times {b}?", str(a * b)))
            if a > b:
                out.append((f"What is {a} minus {b}?", str(a - b)))
    random.Random(seed).shuffle(out)
    return out


def pools(n_suite: int, n_heldout: int) -> tuple[list, list, list]:
    """(users, suite, held-out): disjoint slices of :func:`questions`."""
    qs = questions()
    return qs[n_suite + n_heldout:], qs[:n_suite], qs[n_suite:n_suite + n_heldout]


def follows_rule(answer: str) -> bool:
    """The users' wish: exactly one non-empty line, starting with "Answer:" and saying something after it."""
    lines = [line for line in (answer or "").strip().splitlines() if line.strip()]
    return len(lines) == 1 and lines[0].startswith("Answer:") and len(lines[0]) > len("Answer:")


def fixed(truth: str) -> str:
    """The answer a user who wants the format writes."""
    return f"Answer: {truth}"


def sign_test(before: list[bool], after: list[bool]) -> tuple[int, int, float]:
    """(improved, worsened, two-sided exact sign-test p) on paired outcomes; ties drop out."""
    from aeth.evals.sweep import sign_test as p_value

    up = sum(a and not b for b, a in zip(before, after, strict=True))
    down = sum(b and not a for b, a in zip(before, after, strict=True))
    return up, down, p_value([float(a) for a in after], [float(b) for b in before])


# ---- the application, the specialist and the engine ------------------------------------------------


def make_app(home: Path, args):
    from aeth.app import Aeth
    from aeth.config import load_config

    home.mkdir(parents=True, exist_ok=True)
    return Aeth(load_config([f"home={home}", f"model.threads={args.threads}", "model.dtype=float32"]))


def base_model_dir(args) -> Path:
    """The offline default model, converted once under --out (every home then names the directory)."""
    from aeth.models.resolve import resolve_model

    app = make_app(args.out / "models-home", args)
    return Path(resolve_model("smollm2-135m-instruct", app.config))


def format_specialist(base: Path, suite_qs: list, args):
    from aeth import EvalCase, EvalSuite, Specialist

    cases = [EvalCase(f"q{i:03d}", q, reference=t) for i, (q, t) in enumerate(suite_qs)]
    suite = EvalSuite("format-rule", "1", lambda: cases, lambda case, answer: float(follows_rule(answer)),
                      description="one line starting with 'Answer:'", max_tokens=args.max_tokens)
    return Specialist(name=NAME, description="answers short questions in the users' format", base_model=str(base),
                      quantization="none", system_prompt=SYSTEM_PROMPT, suite=suite)


_REGISTERED: dict = {}


def register(spec) -> None:
    """Register ``spec`` in this process's plugin host (what a plugin's ``register_specialists`` does)."""
    from aeth import hookimpl
    from aeth.plugins import default_host

    _REGISTERED[spec.name] = spec
    if "bench-learn" in default_host().infos:
        return

    class Plugin:
        @hookimpl
        def register_specialists(self, register):
            for s in _REGISTERED.values():
                register(s)

    default_host().register(Plugin(), "bench-learn")


def serve(app, engine, spec, requests: list, *, adapter: str | None = None, log: bool = True) -> list[tuple]:
    """Answer every request at once through the serving engine; (interaction id or None, text, finish) each."""
    from aeth.generation.prompt import build_messages
    from aeth.generation.sampling import eval_sampling
    from aeth.serving.batching import merge_system
    from aeth.serving.generation import Job
    from aeth.store import Interaction

    gens = []
    for req in requests:
        sampling = eval_sampling(spec, req.temperature or 0.0, req.max_tokens, req.seed or 0)
        gens.append(engine.submit(Job(spec, req, sampling, adapter=adapter)))
    out = []
    for req, gen in zip(requests, gens, strict=True):
        text = "".join(gen).strip()
        s = gen.stats
        iid = None
        if log:
            iid = app.store.record(Interaction(
                messages=merge_system(build_messages(spec, req)), answer=text, specialist=spec.name, source="serve",
                model=s.get("model"), adapter=s.get("adapter"), sampling=dict(gen.job.sampling.__dict__),
                tokens_in=s.get("tokens_in", 0), tokens_out=s.get("tokens_out", 0),
                finish_reason={"length": "length"}.get(s.get("finish_reason"), "stop")))
        out.append((iid, text, s.get("finish_reason")))
    return out


def ask(prompt: str, spec_name: str, max_tokens: int, temperature: float = 0.0, seed: int = 0):
    from aeth.request import Request

    return Request(prompt=prompt, specialist=spec_name, max_tokens=max_tokens, temperature=temperature, seed=seed)


def heldout_outcomes(app, engine, spec, heldout_qs: list, args, adapter: str | None = None) -> list[bool]:
    answers = serve(app, engine, spec, [ask(q, spec.name, args.max_tokens) for q, _ in heldout_qs], adapter=adapter,
                    log=False)
    return [follows_rule(text) for _, text, _ in answers]


@contextmanager
def timed_training(box: list):
    """Time aeth's training call inside ``learn`` (``aeth.training.run``: setup, reference, steps; not the gate)."""
    import aeth.training as training

    original = training.run

    def run(*a, **k):
        started = time.perf_counter()
        try:
            return original(*a, **k)
        finally:
            box.append(time.perf_counter() - started)

    training.run = run
    try:
        yield
    finally:
        training.run = original


def plan_settings(args, seed: int, rnd: int) -> dict:
    s = {"lr": args.lr, "batch_size": args.batch_size, "seq_len": args.seq_len, "seed": seed * 100 + rnd,
         "gate_limit": args.suite, "beta": args.beta}
    if args.max_steps:
        s["max_steps"] = args.max_steps
    else:
        s["epochs"] = args.epochs
    return s


# ---- part 1: simulated users -----------------------------------------------------------------------


def give_feedback(app, engine, spec, objective: str, batch: list, seed: int, rnd: int, args) -> dict:
    """Serve ``batch`` and let the simulated user react as ``objective`` needs; counts of what was given."""
    from aeth.store import Interaction

    k = 2 if objective == "dpo" else 1
    requests = [ask(q, spec.name, args.max_tokens, args.temperature, seed * 1_000_000 + rnd * 10_000 + j * 10 + i)
                for j, (q, _) in enumerate(batch) for i in range(k)]
    answers = serve(app, engine, spec, requests)
    counts = {"answers": len(answers), "passing": sum(follows_rule(t) for _, t, _ in answers)}

    def add(kind: str) -> None:
        counts[kind] = counts.get(kind, 0) + 1

    for j, (_, truth) in enumerate(batch):
        group = answers[j * k:(j + 1) * k]
        ok = [follows_rule(t) for _, t, _ in group]
        iid = group[0][0]
        if objective == "sft":
            app.feedback(iid, "thumbs", True) if ok[0] else app.feedback(iid, "correction", fixed(truth))
            add("thumbs_up" if ok[0] else "corrections")
        elif objective == "dpo" and sum(ok) == 1:
            good, bad = (group[0][0], group[1][0]) if ok[0] else (group[1][0], group[0][0])
            app.feedback(bad, "preference", {"chosen": good, "rejected": bad})
            add("preferences")
        elif objective == "dpo" and all(ok):  # both as wished: the user is content
            app.feedback(iid, "thumbs", True)
            add("thumbs_up")
        elif objective == "dpo":
            app.feedback(iid, "correction", fixed(truth))
            add("corrections")
        else:  # kto: lone verdicts
            app.feedback(iid, "thumbs", ok[0])
            add("thumbs_up" if ok[0] else "thumbs_down")
            if not ok[0]:  # the user's own fixed answer, resent and liked
                row = app.store.get_many({iid})[iid]
                again = app.store.record(Interaction(messages=row.messages, answer=fixed(truth), specialist=spec.name,
                                                     source="serve", finish_reason="stop"))
                app.feedback(again, "thumbs", True)
                add("thumbs_up_on_fix")
    return counts


def run_users(objective: str, seed: int, base: Path, args, trl_box: dict | None) -> dict:
    """One objective, one seed: round 0, then ``--rounds`` of serve -> feedback -> learn -> gate."""
    from aeth.errors import AethError
    from aeth.learning.run import LearnResult, learn
    from aeth.serving.batching import BatchingEngine

    users_qs, suite_qs, heldout_qs = pools(args.suite, args.prompts)
    rng = random.Random(seed)
    order = users_qs[:]
    rng.shuffle(order)
    spec = format_specialist(base, suite_qs, args)
    register(spec)
    app = make_app(args.out / "homes" / f"{objective}-s{seed}", args)
    engine = BatchingEngine(app, max_batch=args.max_batch)
    spec = app.specialist(NAME)
    rounds = []
    try:
        outcomes = heldout_outcomes(app, engine, spec, heldout_qs, args)
        rounds.append({"round": 0, "heldout": outcomes, "score": statistics.mean(outcomes), "promoted": None,
                       "suite": None, "suite_baseline": None})
        print(f"  [{objective} seed {seed}] round 0 (base): held-out {rounds[0]['score']:.3f}", flush=True)
        for rnd in range(1, args.rounds + 1):
            batch = order[(rnd - 1) * args.users:rnd * args.users]
            counts = give_feedback(app, engine, spec, objective, batch, seed, rnd, args)
            box: list = []
            started = time.perf_counter()
            with timed_training(box):
                try:
                    result = learn(app, spec, objective=objective, verify=False, progress=False,
                                   **plan_settings(args, seed, rnd))
                except AethError as e:  # nothing of that objective to learn from this round (e.g. every answer liked)
                    result = LearnResult(spec.name, "nothing", str(e))
            learn_s = time.perf_counter() - started
            d = result.decision
            outcomes = heldout_outcomes(app, engine, spec, heldout_qs, args)
            trained = None
            if result.version is not None and (d is None or not d.promoted):
                trained = statistics.mean(heldout_outcomes(app, engine, spec, heldout_qs, args, result.version.version))
            entry = {"round": rnd, "feedback": counts, "outcome": result.outcome, "message": result.message,
                     "heldout": outcomes, "score": statistics.mean(outcomes),
                     "trained_score": trained if trained is not None else statistics.mean(outcomes),
                     "promoted": bool(d and d.promoted), "suite": d.score if d else None,
                     "suite_baseline": d.baseline if d else None,
                     "agreement": {k: list(v) for k, v in (d.heldout or {}).items()} if d else None,
                     "train_s": box[0] if box else None, "learn_s": learn_s,
                     "version": result.version.version if result.version else None}
            rounds.append(entry)
            print(f"  [{objective} seed {seed}] round {rnd}: feedback {counts}; {result.outcome}; held-out "
                  f"{entry['score']:.3f} (trained version {entry['trained_score']:.3f}); suite {entry['suite']}; train "
                  f"{entry['train_s'] or 0:.1f} s, learn {learn_s:.1f} s", flush=True)
            if trl_box is not None and rnd == 1 and result.dataset is not None and result.version is not None:
                trl_box.update(run_trl(app, engine, spec, result, heldout_qs, seed, args))
                trl_box["aeth_score"], trl_box["aeth_train_s"] = entry["trained_score"], entry["train_s"]
                print(f"  [trl seed {seed}] DPOTrainer on the same {trl_box['pairs']} pairs: held-out "
                      f"{trl_box['score']:.3f} in {trl_box['train_s']:.1f} s (aeth {entry['trained_score']:.3f} in "
                      f"{entry['train_s'] or 0:.1f} s)", flush=True)
    finally:
        engine.close()
        app.close()
    return {"objective": objective, "seed": seed, "rounds": rounds}


def run_trl(app, engine, spec, result, heldout_qs: list, seed: int, args) -> dict:
    """trl's DPOTrainer on the round's DPO train records, from the same start; scored through the engine."""
    import datasets
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import DPOConfig, DPOTrainer

    from aeth.learning.dataset import training_data

    records = training_data(result.dataset.path, "dpo").train
    rows = [{"prompt": [{"role": "system", "content": spec.system_prompt}, *r["messages"][:-1]],
             "chosen": [r["messages"][-1]], "rejected": [{"role": "assistant", "content": r["rejected"]}]}
            for r in records]
    torch.set_num_threads(args.threads)
    torch.manual_seed(seed * 100 + 1)
    out_dir = args.out / "trl" / f"s{seed}"
    a = spec.adapter
    steps = {"max_steps": args.max_steps} if args.max_steps else {"num_train_epochs": args.epochs}
    config = DPOConfig(output_dir=str(out_dir), bf16=False, gradient_checkpointing=False, use_cpu=True,
                       report_to="none", per_device_train_batch_size=args.batch_size, learning_rate=args.lr,
                       beta=args.beta, max_length=args.seq_len, save_strategy="no", logging_steps=10**6,
                       seed=seed * 100 + 1, disable_tqdm=True, **steps)
    started = time.perf_counter()
    model = AutoModelForCausalLM.from_pretrained(spec.base_model, dtype=torch.float32)
    model = get_peft_model(model, LoraConfig(r=a.r, lora_alpha=a.alpha, lora_dropout=a.dropout,
                                             target_modules=list(a.target_modules), task_type="CAUSAL_LM"))
    trainer = DPOTrainer(model=model, args=config, train_dataset=datasets.Dataset.from_list(rows),
                         processing_class=AutoTokenizer.from_pretrained(spec.base_model))
    trainer.train()
    seconds = time.perf_counter() - started
    model.save_pretrained(out_dir / "adapter", safe_serialization=True)
    version = app.adapters.add(spec.name, out_dir / "adapter", {"source": "trl DPOTrainer (bench_learn)"})
    score = statistics.mean(heldout_outcomes(app, engine, spec, heldout_qs, args, version.version))
    return {"pairs": len(rows), "score": score, "train_s": seconds, "version": version.version}


# ---- part 2: self-improvement ----------------------------------------------------------------------


def run_self(seed: int, base: Path, args) -> dict:
    """The reasoning specialist on one reasoning-gym task: held-out before and after two --self rounds."""
    from aeth import EvalCase, EvalSuite
    from aeth.errors import AethError
    from aeth.learning.run import LearnResult, learn
    from aeth.serving.batching import BatchingEngine
    from aetherial_reasoning.evals import GYM_TASKS, gym_items, score_gym
    from aetherial_reasoning.recipe import practice
    from aetherial_reasoning.specialist import build_specialist
    from aetherial_reasoning.verify import gym_problem, verify

    task = GYM_TASKS[args.self_task]
    name = f"gym-{args.self_task.replace('_', '-')}"

    def task_practice(n: int, s: int = 0) -> list:
        got = [r for r in practice(n * len(GYM_TASKS), s) if gym_problem(r)[0] == args.self_task][:n]
        return [replace(r, specialist=name, max_tokens=args.self_max_tokens or r.max_tokens) for r in got]

    gate_requests = task_practice(args.self_suite, 999)  # a practice seed no round trains on
    cases = [EvalCase(f"g{i:03d}", r.prompt, reference=r) for i, r in enumerate(gate_requests)]
    suite = EvalSuite(f"{name}-gate", "1", lambda: cases, lambda case, answer: float(verify(case.reference, answer) or 0),
                      max_tokens=args.self_max_tokens or task.max_tokens)
    spec = replace(build_specialist(), name=name, base_model=str(base), quantization="none", suite=suite,
                   practice=task_practice, routing_examples=(), routing_heldout=())
    register(spec)
    items = list(gym_items(args.self_task))[:args.self_heldout]
    prompts = [f"{item['question']}\n\n{task.instruction}" for item in items]
    app = make_app(args.out / "homes" / f"self-s{seed}", args)
    engine = BatchingEngine(app, max_batch=args.max_batch)
    spec = app.specialist(name)
    limit = args.self_max_tokens or task.max_tokens

    def score() -> list[bool]:
        answers = serve(app, engine, spec, [ask(p, name, limit) for p in prompts], log=False)
        return [score_gym(args.self_task, item, text) >= 1.0 for item, (_, text, _) in zip(items, answers, strict=True)]

    rounds = []
    try:
        outcomes = score()
        rounds.append({"round": 0, "heldout": outcomes, "score": statistics.mean(outcomes)})
        print(f"  [self seed {seed}] round 0 (base): held-out {rounds[0]['score']:.3f}", flush=True)
        for rnd in range(1, args.self_rounds + 1):
            practice_settings = {"prompts": args.self_prompts, "k": args.self_k, "temperature": 0.8,
                                 "seed": seed * 10 + rnd, "max_tokens": args.self_max_tokens}
            started = time.perf_counter()
            try:
                result = learn(app, spec, objective=args.self_objective, practice=practice_settings, progress=False,
                               **{**plan_settings(args, seed, rnd), "gate_limit": args.self_suite})
            except AethError as e:  # the practice gave no record of that objective: nothing trained this round
                result = LearnResult(name, "nothing", str(e))
            seconds = time.perf_counter() - started
            d = result.decision
            outcomes = score() if result.version is not None else rounds[-1]["heldout"]  # nothing new answers
            p = (result.dataset.card.get("practice") if result.dataset is not None else None) or {}
            rounds.append({"round": rnd, "outcome": result.outcome, "message": result.message, "heldout": outcomes,
                           "score": statistics.mean(outcomes), "promoted": bool(d and d.promoted),
                           "suite": d.score if d else None, "acceptance": p.get("acceptance_rate"), "learn_s": seconds})
            print(f"  [self seed {seed}] round {rnd}: {result.outcome} ({result.message[:100]}); held-out "
                  f"{rounds[-1]['score']:.3f}; learn {seconds:.1f} s", flush=True)
    finally:
        engine.close()
        app.close()
    return {"seed": seed, "task": args.self_task, "rounds": rounds}


# ---- reporting -------------------------------------------------------------------------------------


def report_users(objective: str, runs: list[dict], args) -> tuple[bool, bool]:
    """Print the per-round table; (gain goal met, no promoted round lowered the suite)."""
    print(f"\n{objective.upper()}: held-out score ({args.prompts} questions), mean of {len(runs)} seeds")
    print("  round  score   delta   improved/worsened  sign-test p  suite (new/old)  promoted")
    base = [o for r in runs for o in r["rounds"][0]["heldout"]]
    base_mean = statistics.mean(r["rounds"][0]["score"] for r in runs)
    met_gain, suite_ok = False, True
    n_rounds = min(len(r["rounds"]) for r in runs)
    for rnd in range(n_rounds):
        now = [o for r in runs for o in r["rounds"][rnd]["heldout"]]
        mean = statistics.mean(r["rounds"][rnd]["score"] for r in runs)
        up, down, p = sign_test(base, now)
        entries = [r["rounds"][rnd] for r in runs]
        suites = [e for e in entries if e.get("suite") is not None]
        suite = (f"{statistics.mean(e['suite'] for e in suites):.3f}/{statistics.mean(e['suite_baseline'] for e in suites):.3f}"
                 if suites else "-")
        promoted = "-" if rnd == 0 else f"{sum(bool(e['promoted']) for e in entries)}/{len(entries)}"
        print(f"  {rnd:>5}  {mean:.3f}  {mean - base_mean:+.3f}  {up:>8}/{down:<8}  {p:>11.4f}  {suite:>15}  {promoted:>8}")
        for e in entries:
            if e.get("promoted") and e.get("suite") is not None and e["suite"] < e["suite_baseline"]:
                suite_ok = False
        if rnd == args.rounds:
            met_gain = mean - base_mean >= GOAL_GAIN and p < GOAL_P and up > down
    return met_gain, suite_ok


def verdict(goal: str, met: bool) -> None:
    print(f"goal {goal}: {'met' if met else 'NOT met'}")


def save(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=1))
    os.replace(tmp, path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--users", type=int, default=32, help="Questions served (and judged) per round.")
    parser.add_argument("--objectives", default="sft,dpo,kto")
    parser.add_argument("--prompts", type=int, default=60, help="Held-out questions (never trained on).")
    parser.add_argument("--suite", type=int, default=20, help="The format specialist's suite (the gate's) size.")
    parser.add_argument("--max-tokens", type=int, default=48)
    parser.add_argument("--temperature", type=float, default=0.7, help="Sampling of the served answers.")
    parser.add_argument("--max-batch", type=int, default=16, help="The serving engine's rows per batch.")
    parser.add_argument("--lr", type=float, default=2e-4)
    parser.add_argument("--epochs", type=float, default=3.0)
    parser.add_argument("--max-steps", type=int, default=0, help="Steps per learn run (0: --epochs).")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--seq-len", type=int, default=192)
    parser.add_argument("--beta", type=float, default=0.1)
    parser.add_argument("--threads", type=int, default=2, help="torch threads, pinned for aeth and trl alike.")
    parser.add_argument("--self-task", default="syllogism")
    parser.add_argument("--self-rounds", type=int, default=2)
    parser.add_argument("--self-prompts", type=int, default=32, help="Practice problems per --self round.")
    parser.add_argument("--self-k", type=int, default=4)
    parser.add_argument("--self-heldout", type=int, default=30)
    parser.add_argument("--self-suite", type=int, default=10)
    parser.add_argument("--self-max-tokens", type=int, default=0, help="0: the task's own answer length.")
    parser.add_argument("--self-objective", default="sft", choices=["sft", "dpo", "auto"])
    parser.add_argument("--quick", action="store_true", help="Smallest end-to-end run (1 seed, 1 round, few prompts and steps).")
    parser.add_argument("--skip-trl", action="store_true")
    parser.add_argument("--skip-self", action="store_true")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent.parent / ".bench" / "learn")
    parser.add_argument("--resume", action="store_true", help="Skip parts whose results JSON is already in --out.")
    args = parser.parse_args()
    if args.quick:
        args.seeds, args.rounds, args.users, args.prompts, args.suite = 1, 1, 6, 6, 4
        args.max_steps, args.batch_size, args.lr, args.max_tokens, args.seq_len = 3, 2, 1e-3, 24, 128
        args.self_rounds, args.self_prompts, args.self_k, args.self_heldout, args.self_suite = 1, 2, 2, 3, 2
        args.self_max_tokens = 64
    args.out = args.out.resolve()
    os.environ["AETH_HOME"] = str(args.out / "aeth-home")  # nothing reads or writes the user's home

    import torch

    torch.set_num_threads(args.threads)
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    try:
        import datasets

        datasets.disable_progress_bars()  # trl's tokenizing bars
    except ImportError:
        pass
    started = time.perf_counter()
    base = base_model_dir(args)
    objectives = [o.strip() for o in args.objectives.split(",") if o.strip()]
    print(f"base {base.name}; objectives {', '.join(objectives)}; {args.seeds} seed(s) x {args.rounds} round(s) of "
          f"{args.users} users; {args.prompts} held-out questions, suite {args.suite}; {args.threads} thread(s); "
          "serving through BatchingEngine in-process", flush=True)

    results: dict[str, list] = {}
    trl_runs: list[dict] = []
    for seed in range(args.seeds):  # interleaved: every objective once per seed
        for objective in objectives:
            path = args.out / f"users-{objective}-s{seed}.json"
            if args.resume and path.is_file():
                data = json.loads(path.read_text())
            else:
                if (args.out / "homes" / f"{objective}-s{seed}").exists():
                    import shutil

                    shutil.rmtree(args.out / "homes" / f"{objective}-s{seed}")
                box = {} if objective == "dpo" and not args.skip_trl else None
                data = run_users(objective, seed, base, args, box)
                data["trl"] = box
                save(path, data)
            results.setdefault(objective, []).append(data)
            if data.get("trl"):
                trl_runs.append(data["trl"])

    self_runs = []
    if not args.skip_self:
        for seed in range(args.seeds):
            path = args.out / f"self-s{seed}.json"
            if args.resume and path.is_file():
                self_runs.append(json.loads(path.read_text()))
                continue
            if (args.out / "homes" / f"self-s{seed}").exists():
                import shutil

                shutil.rmtree(args.out / "homes" / f"self-s{seed}")
            data = run_self(seed, base, args)
            save(path, data)
            self_runs.append(data)

    verdicts = []
    for objective, runs in results.items():
        met_gain, suite_ok = report_users(objective, runs, args)
        verdicts += [(f"{objective}: held-out +{GOAL_GAIN:.2f} after {args.rounds} rounds with sign-test p < {GOAL_P}",
                      met_gain), (f"{objective}: no promoted round lowers the suite score", suite_ok)]
    if trl_runs:
        aeth_scores = [r["aeth_score"] for r in trl_runs]
        trl_scores = [r["score"] for r in trl_runs]
        aeth_s = sum(r["aeth_train_s"] or 0 for r in trl_runs)
        trl_s = sum(r["train_s"] for r in trl_runs)
        se = statistics.stdev(aeth_scores) / math.sqrt(len(aeth_scores)) if len(aeth_scores) > 1 else 0.0
        noise = max(2 * se, 1 / args.prompts)
        diff = statistics.mean(trl_scores) - statistics.mean(aeth_scores)
        print(f"\nDPO round 1, same pairs ({', '.join(str(r['pairs']) for r in trl_runs)} per seed), same start and settings:")
        print(f"  aeth learn (dpo)  held-out {statistics.mean(aeth_scores):.3f} [{' '.join(f'{s:.3f}' for s in aeth_scores)}]  "
              f"train {aeth_s:.1f} s")
        print(f"  trl DPOTrainer    held-out {statistics.mean(trl_scores):.3f} [{' '.join(f'{s:.3f}' for s in trl_scores)}]  "
              f"train {trl_s:.1f} s")
        print(f"  score diff trl - aeth {diff:+.3f} (noise {noise:.3f}); wall time aeth / trl = {aeth_s / trl_s:.2f}x")
        verdicts += [("aeth's DPO held-out score within noise of trl's", abs(diff) <= noise),
                     ("aeth's DPO wall time <= trl's", aeth_s <= trl_s)]
    if self_runs:
        n = min(len(r["rounds"]) for r in self_runs)
        task = self_runs[0]["task"]
        print(f"\nself-improvement: {task}, held-out {len(self_runs[0]['rounds'][0]['heldout'])} eval items, "
              f"mean of {len(self_runs)} seeds")
        print("  round  score   delta   improved/worsened  sign-test p  promoted  acceptance")
        base0 = [o for r in self_runs for o in r["rounds"][0]["heldout"]]
        m0 = statistics.mean(r["rounds"][0]["score"] for r in self_runs)
        gain = 0.0
        for rnd in range(n):
            entries = [r["rounds"][rnd] for r in self_runs]
            mean = statistics.mean(e["score"] for e in entries)
            up, down, p = sign_test(base0, [o for e in entries for o in e["heldout"]])
            acc = [e["acceptance"] for e in entries if e.get("acceptance") is not None]
            promoted = "-" if rnd == 0 else f"{sum(bool(e.get('promoted')) for e in entries)}/{len(entries)}"
            print(f"  {rnd:>5}  {mean:.3f}  {mean - m0:+.3f}  {up:>8}/{down:<8}  {p:>11.4f}  {promoted:>8}  "
                  f"{statistics.mean(acc) if acc else float('nan'):.3f}")
            gain = mean - m0
        print(f"  base score in (0, 0.5), as the goal's task needs: {'yes' if 0 < m0 < 0.5 else 'no'} ({m0:.3f})")
        verdicts.append((f"self-improvement +{GOAL_SELF:.2f} after {args.self_rounds} --self rounds",
                         gain >= GOAL_SELF and n > args.self_rounds))
    print()
    for goal, met in verdicts:
        verdict(goal, met)
    print(f"total {time.perf_counter() - started:.0f} s (this invocation; --out {args.out})")


if __name__ == "__main__":
    sys.exit(main())
