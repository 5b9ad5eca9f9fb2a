"""``aeth distill collect``: teacher answers to a specialist's prompts, as a training set.

Prompts come from the specialist's recipe (its *train* split only, so no validation prompt leaks
into training) plus systematic variations of them. Requests go out concurrently under a rate
limit, are retried with backoff when the teacher says to (429, 5xx, timeouts, malformed replies),
and every answer is stored in a response cache keyed by (teacher, model, messages, parameters)
before anything else happens to it, so no answer is ever paid for twice.

A collection lives in ``$AETH_HOME/distill/<specialist>/<run>/``: ``plan.json`` (what is being
collected) and ``results.jsonl`` (one fsynced line per prompt answered). Run the same command
again after a crash or Ctrl-C and it resumes: prompts already recorded are skipped, answers
received but not recorded come from the cache. When every prompt is answered the kept answers
become a versioned dataset, ``$AETH_HOME/datasets/<specialist>/<version>/records.jsonl`` with a
``card.json`` (teacher, counts, tokens, cost, filters), which ``aeth train`` reads.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from aeth.distill.teachers import Completion, TeacherError
from aeth.errors import AethError

#: how a seed prompt is varied once the seed prompts themselves are used up
VARIATIONS = (
    "{p}",
    "{p}\n\nExplain your reasoning briefly.",
    "{p}\n\nKeep the answer short.",
    "Please help with this: {p}",
    "{p}\n\nGive a complete, careful answer.",
    "Here is a task for you.\n\n{p}",
    "{p}\n\nAnswer for a beginner.",
    "{p}\n\nBe precise.",
)

#: answers that refuse rather than answer (checked on the first 200 characters)
REFUSALS = re.compile(
    r"^\s*(i'?m sorry|i am sorry|sorry,? but|i can(?:'|no)t (?:help|assist|do|provide|comply)|i'?m (?:not able|unable)|"
    r"i am (?:not able|unable)|as an ai(?: language model)?)", re.IGNORECASE)


class CollectError(AethError):
    """A collection cannot start or go on (bad plan, a teacher that refuses every request)."""


@dataclass(frozen=True)
class CollectPlan:
    """What to collect; a run resumes only under the identical plan."""

    specialist: str
    teacher: str
    model: str
    n: int
    max_tokens: int = 512
    temperature: float = 0.7
    seed: int = 0
    max_answer_chars: int = 8000

    def key(self) -> str:
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()[:12]


@dataclass
class Options:
    """How to collect (does not change what is collected)."""

    concurrency: int = 4
    rpm: float = 0.0  #: requests per minute to the teacher; 0 = no limit
    retries: int = 5
    backoff: float = 1.0  #: first retry waits about this long (seconds), doubling each time
    timeout: float = 60.0
    progress: Callable[[dict[str, Any]], None] | None = None  #: called after each prompt with the totals


# ---- prompts ------------------------------------------------------------------------------


def prompts_for(specialist: Any, n: int, seed: int = 0) -> list[list[dict[str, str]]]:
    """``n`` distinct prompts (chat messages, the specialist's system prompt first) from the recipe's
    train split, then variations of them; fewer when the recipe runs out of distinct ones."""
    if specialist.recipe is None:
        raise CollectError(f"specialist {specialist.name!r} has no dataset recipe to draw prompts from")
    train, _ = specialist.recipe.split()
    seeds: list[str] = []
    for record in train:
        question = next((m["content"] for m in record["messages"] if m["role"] == "user"), None)
        if question and question not in seeds:
            seeds.append(question)
    if not seeds:
        raise CollectError(f"the recipe of {specialist.name!r} has no user prompts in its train split")
    rng = random.Random(seed)
    order = list(seeds)
    rng.shuffle(order)
    out: list[str] = []
    for template in VARIATIONS:
        for question in order:
            if len(out) >= n:
                break
            text = template.format(p=question)
            if text not in out:
                out.append(text)
    system = [{"role": "system", "content": specialist.system_prompt}] if specialist.system_prompt else []
    return [system + [{"role": "user", "content": p}] for p in out]


# ---- the response cache -------------------------------------------------------------------


class ResponseCache:
    """Teacher answers by (teacher, model, messages, parameters), in SQLite: safe across threads and
    processes, and a crash never leaves a half-written entry."""

    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, check_same_thread=False, timeout=30)
        self._lock = threading.Lock()
        with self._lock:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("CREATE TABLE IF NOT EXISTS answers (key TEXT PRIMARY KEY, value TEXT NOT NULL, "
                             "created REAL NOT NULL)")
            self._db.commit()

    @staticmethod
    def key(teacher: str, model: str, messages: list[dict[str, str]], params: dict[str, Any]) -> str:
        blob = json.dumps([teacher, model, messages, params], sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(blob.encode()).hexdigest()

    def get(self, key: str) -> Completion | None:
        with self._lock:
            row = self._db.execute("SELECT value FROM answers WHERE key = ?", (key,)).fetchone()
        return Completion(**json.loads(row[0])) if row else None

    def put(self, key: str, completion: Completion) -> None:
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO answers VALUES (?, ?, ?)",
                             (key, json.dumps(asdict(completion), ensure_ascii=False), time.time()))
            self._db.commit()

    def close(self) -> None:
        with self._lock:
            self._db.close()


# ---- prices -------------------------------------------------------------------------------

#: USD per million tokens (input, output) for common teacher models; edit $AETH_HOME/prices.yaml
DEFAULT_PRICES: dict[str, tuple[float, float]] = {
    "gpt-4o": (2.50, 10.00),
    "gpt-4o-mini": (0.15, 0.60),
    "gpt-4.1": (2.00, 8.00),
    "gpt-4.1-mini": (0.40, 1.60),
    "claude-3-5-haiku-latest": (0.80, 4.00),
    "claude-3-5-sonnet-latest": (3.00, 15.00),
    "claude-sonnet-4-0": (3.00, 15.00),
}
PRICES_FILE = "prices.yaml"


def prices(home: Path) -> tuple[dict[str, tuple[float, float]], Path]:
    """The price table (defaults, then the user's ``$AETH_HOME/prices.yaml`` on top) and that file's path.

    The file maps a model id to ``{input: USD per 1M tokens, output: USD per 1M tokens}``.
    """
    import yaml

    path = Path(home) / PRICES_FILE
    table = dict(DEFAULT_PRICES)
    if path.exists():
        try:
            user = yaml.safe_load(path.read_text()) or {}
            for model, entry in user.items():
                table[str(model)] = (float(entry["input"]), float(entry["output"]))
        except (yaml.YAMLError, AttributeError, KeyError, TypeError, ValueError) as e:
            raise CollectError(f"{path}: expected `model: {{input: USD per 1M tokens, output: USD per 1M tokens}}` "
                               f"entries ({e.__class__.__name__}: {e})") from None
    return table, path


def cost(table: dict[str, tuple[float, float]], model: str, tokens_in: int, tokens_out: int) -> float | None:
    """USD for one request, or ``None`` when the model has no price (a local model costs 0)."""
    if model not in table:
        return None
    price_in, price_out = table[model]
    return (tokens_in * price_in + tokens_out * price_out) / 1e6


# ---- filters ------------------------------------------------------------------------------


def verdict(completion: Completion, max_chars: int) -> str | None:
    """Why an answer is dropped (``empty``, ``refused``, ``truncated``, ``too_long``), or ``None`` to keep it."""
    text = completion.text.strip()
    if not text:
        return "empty"
    if completion.finish_reason == "length":
        return "truncated"
    if REFUSALS.search(text[:200]):
        return "refused"
    if len(text) > max_chars:
        return "too_long"
    return None


# ---- the run ------------------------------------------------------------------------------


@dataclass
class Totals:
    """What a collection has done so far (the progress bar and the card show it)."""

    target: int = 0
    done: int = 0
    requests: int = 0  #: requests sent to the teacher in this process (cache hits excluded)
    cached: int = 0  #: answers served by the cache in this process
    retries: int = 0
    failed: int = 0  #: prompts given up on after the retries
    tokens_in: int = 0
    tokens_out: int = 0
    cost: float = 0.0  #: USD, every recorded answer the teacher was paid for (in any process)
    priced: bool = True  #: every paid answer had a price
    dropped: dict[str, int] = field(default_factory=dict)


class RateLimiter:
    """At most ``rpm`` acquisitions a minute, spaced evenly, shared by every worker thread."""

    def __init__(self, rpm: float):
        self.interval = 60.0 / rpm if rpm > 0 else 0.0
        self._next = time.monotonic()
        self._lock = threading.Lock()

    def acquire(self, stop: threading.Event) -> None:
        if not self.interval:
            return
        with self._lock:
            now = time.monotonic()
            slot = max(now, self._next)
            self._next = slot + self.interval
        stop.wait(max(0.0, slot - now))


def run_dir(home: Path, plan: CollectPlan) -> Path:
    return Path(home) / "distill" / plan.specialist / f"{plan.teacher.replace(':', '-')}-{plan.key()}"


def read_results(path: Path) -> list[dict[str, Any]]:
    """The recorded lines; a last line a crash cut short is removed from the file."""
    if not path.exists():
        return []
    raw = path.read_bytes()
    lines = raw.split(b"\n")
    records, good = [], 0
    for line in lines:
        if not line.strip():
            good += len(line) + 1
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            break
        good += len(line) + 1
    if good < len(raw):  # a torn last line: cut it so the next append starts clean
        with open(path, "r+b") as f:
            f.truncate(min(good, len(raw)))
    return records


def collect(teacher: Any, specialist: Any, plan: CollectPlan, home: Path, options: Options | None = None,
            stop: threading.Event | None = None) -> tuple[Path, Totals]:
    """Collect (or resume collecting) ``plan``; return the run directory and the totals.

    ``stop`` set (Ctrl-C) makes the run finish the requests in flight, record them and return
    early; the same call later resumes.
    """
    job = _Collection(teacher, specialist, plan, Path(home), options or Options(), stop or threading.Event())
    try:
        failures, fatal = job.drive()
    finally:
        job.cache.close()
    totals, folder = job.totals, job.folder
    where = f"{totals.done}/{totals.target} are recorded in {folder}; run the same command to go on"
    if fatal is not None:
        raise CollectError(f"the teacher refused a request: {fatal}. {where}")
    if failures and not job.stop.is_set():
        raise CollectError(f"{len(failures)} prompt(s) failed after {job.options.retries} retries, e.g. {failures[0]}. {where}")
    return folder, totals


class _Collection:
    """One collection under way: its prompts, what is already recorded, the totals, the response cache."""

    def __init__(self, teacher: Any, specialist: Any, plan: CollectPlan, home: Path, options: Options,
                 stop: threading.Event):
        self.teacher, self.plan, self.options, self.stop = teacher, plan, options, stop
        self.folder = run_dir(home, plan)
        self.folder.mkdir(parents=True, exist_ok=True)
        if not (self.folder / "plan.json").exists():
            _write_atomic(self.folder / "plan.json", json.dumps(asdict(plan), indent=2))
        self.prompts = prompts_for(specialist, plan.n, plan.seed)
        recorded = read_results(self.folder / "results.jsonl")
        self.done = {r["index"] for r in recorded}
        self.table, _ = prices(home)
        if getattr(teacher, "local", False):  # a local model costs nothing per token
            self.table[plan.model] = (0.0, 0.0)
        self.totals = Totals(target=len(self.prompts), done=len(self.done))
        for r in recorded:
            _count(self.totals, r)
        self.cache = ResponseCache(home / "cache" / "teachers.sqlite")
        self.params = {"max_tokens": plan.max_tokens, "temperature": plan.temperature}
        self.limiter, self.lock = RateLimiter(options.rpm), threading.Lock()

    def ask(self, index: int) -> dict[str, Any]:
        """The result line of prompt ``index``: from the cache, else from the teacher (then cached)."""
        messages, plan = self.prompts[index], self.plan
        key = ResponseCache.key(plan.teacher, plan.model, messages, self.params)
        hit = self.cache.get(key)
        if hit is not None:
            with self.lock:
                self.totals.cached += 1
            return _result(index, messages, hit, cached=True, table=self.table, plan=plan)
        completion = _with_retries(self.teacher, messages, plan, self.options, self.limiter, self.stop, self.totals,
                                   self.lock)
        self.cache.put(key, completion)  # paid for: never again
        return _result(index, messages, completion, cached=False, table=self.table, plan=plan)

    def drive(self) -> tuple[list[str], TeacherError | None]:
        """Ask for every prompt not yet recorded, ``concurrency`` at a time, recording each answer
        (fsynced) as it comes; return the failures, and the error that stopped the run, if any."""
        todo: Iterator[int] = (i for i in range(len(self.prompts)) if i not in self.done)
        failures: list[str] = []
        fatal: TeacherError | None = None
        concurrency = self.options.concurrency
        with open(self.folder / "results.jsonl", "a", encoding="utf-8") as out, ThreadPoolExecutor(concurrency) as pool:
            running: dict[Future, int] = {}
            while True:
                while not self.stop.is_set() and len(running) < concurrency:
                    index = next(todo, None)
                    if index is None:
                        break
                    running[pool.submit(self.ask, index)] = index
                if not running:
                    return failures, fatal
                finished, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in finished:
                    index = running.pop(future)
                    try:
                        self._record(out, future.result())
                    except TeacherError as e:
                        self.totals.failed += 1
                        failures.append(f"prompt {index}: {e}")
                        if not e.retryable and fatal is None:  # the same error would meet every other prompt
                            fatal = e
                            self.stop.set()

    def _record(self, out: Any, result: dict[str, Any]) -> None:
        out.write(json.dumps(result, ensure_ascii=False) + "\n")
        out.flush()
        os.fsync(out.fileno())
        self.totals.done += 1
        _count(self.totals, result)
        if self.options.progress:
            self.options.progress(asdict(self.totals))


def _with_retries(teacher: Any, messages: list[dict[str, str]], plan: CollectPlan, options: Options,
                  limiter: RateLimiter, stop: threading.Event, totals: Totals, lock: threading.Lock) -> Completion:
    attempt = 0
    while True:
        limiter.acquire(stop)
        with lock:
            totals.requests += 1
        try:
            return teacher.complete(messages, max_tokens=plan.max_tokens, temperature=plan.temperature,
                                    timeout=options.timeout)
        except TeacherError as e:
            if not e.retryable or attempt >= options.retries or stop.is_set():
                raise
            with lock:
                totals.retries += 1
            delay = options.backoff * 2 ** attempt * (0.5 + random.random())  # jitter spreads a thundering herd
            if e.retry_after is not None:
                delay = max(delay, e.retry_after)
            attempt += 1
            if stop.wait(min(delay, 120.0)):
                raise


def _result(index: int, messages: list[dict[str, str]], completion: Completion, *, cached: bool,
            table: dict[str, tuple[float, float]], plan: CollectPlan) -> dict[str, Any]:
    price = None if cached else cost(table, plan.model, completion.tokens_in, completion.tokens_out)
    return {"index": index, "messages": messages, "answer": completion.text, "finish_reason": completion.finish_reason,
            "tokens_in": completion.tokens_in, "tokens_out": completion.tokens_out, "cached": cached,
            "cost": 0.0 if cached else price, "dropped": verdict(completion, plan.max_answer_chars)}


def _count(totals: Totals, result: dict[str, Any]) -> None:
    if result.get("cached"):
        return
    totals.tokens_in += result["tokens_in"]
    totals.tokens_out += result["tokens_out"]
    if result["cost"] is None:
        totals.priced = False
    else:
        totals.cost += result["cost"]


# ---- the dataset --------------------------------------------------------------------------


def write_dataset(folder: Path, home: Path, plan: CollectPlan, teacher: Any) -> tuple[Path, dict[str, Any]]:
    """Turn a finished run into ``$AETH_HOME/datasets/<specialist>/<version>/`` (records + card)."""
    results = sorted(read_results(folder / "results.jsonl"), key=lambda r: r["index"])
    dropped: dict[str, int] = {}
    records, seen = [], set()
    for r in results:
        reason = r["dropped"]
        if reason is None:
            norm = " ".join(r["answer"].split()).lower()
            prompt = r["messages"][-1]["content"]
            if (prompt, norm) in seen or (len(norm) >= 200 and norm in seen):  # boilerplate given to many prompts
                reason = "duplicate"
            seen.update({(prompt, norm), norm})
        if reason:
            dropped[reason] = dropped.get(reason, 0) + 1
            continue
        records.append({"messages": [*r["messages"], {"role": "assistant", "content": r["answer"].strip()}]})
    root = Path(home) / "datasets" / plan.specialist
    root.mkdir(parents=True, exist_ok=True)
    number = 1 + max((int(p.name[1:5]) for p in root.iterdir() if re.match(r"v\d{4}-", p.name)), default=0)
    version = f"v{number:04d}-{_slug(plan.teacher)}"
    paid = [r for r in results if not r["cached"]]
    card = {
        "version": version, "specialist": plan.specialist, "teacher": plan.teacher, "model": plan.model,
        "kind": type(teacher).__name__, "created": time.strftime("%Y-%m-%dT%H:%M:%S"), "plan": asdict(plan),
        "prompts": len(results), "records": len(records), "dropped": dropped,
        "filters": {"empty": "no text", "refused": "starts like a refusal", "truncated": "cut by max_tokens",
                    "too_long": f"over {plan.max_answer_chars} characters",
                    "duplicate": "the same answer to the same prompt, or the same long answer (200+ characters) to another"},
        "tokens_in": sum(r["tokens_in"] for r in paid), "tokens_out": sum(r["tokens_out"] for r in paid),
        "cost_usd": None if any(r["cost"] is None for r in paid) else round(sum(r["cost"] for r in paid), 6),
        "answers_from_cache": len(results) - len(paid), "run": str(folder),
    }
    staging = root / f".{version}.tmp"
    staging.mkdir()
    (staging / "records.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records),
                                           encoding="utf-8")
    (staging / "card.json").write_text(json.dumps(card, indent=2, ensure_ascii=False), encoding="utf-8")
    from aeth.atomic import fsync_dir, fsync_tree

    fsync_tree(staging)
    os.replace(staging, root / version)
    fsync_dir(root)
    _write_atomic(folder / "dataset", version)
    return root / version, card


def finished_dataset(folder: Path, home: Path, specialist: str) -> Path | None:
    """The dataset a finished run already became, if any."""
    marker = folder / "dataset"
    if not marker.exists():
        return None
    path = Path(home) / "datasets" / specialist / marker.read_text().strip()
    return path if path.exists() else None


def _slug(text: str) -> str:
    return re.sub(r"[^a-zA-Z0-9]+", "-", text).strip("-").lower()[:40] or "teacher"


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
