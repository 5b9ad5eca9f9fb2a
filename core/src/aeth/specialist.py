"""What a specialist is: plain dataclasses a plugin fills in and core validates.

A specialist is a base model plus a LoRA adapter spec, a system prompt, routing examples, generation
defaults, a dataset recipe and an eval suite. Plugins build these objects and hand them to the
``register`` callback of the ``register_specialists`` hook; core validates them and reports every
problem with the plugin's name and the field.

Rewards. A specialist may also say how to check an answer without a person: its ``verifier``,
``verify(request, answer) -> float | None``. The convention every verifier follows:

- a reward is a number in [0, 1]: 1.0 the answer is right (the tests pass, the scorer gives
  full credit), 0.0 it is wrong (a failing test, no code or no final answer where one was due);
  values between are partial credit where a checker has a meaningful one;
- ``None`` means "cannot check this one": the request carries nothing to check against (a coding
  prompt with no tests, a reasoning prompt that is not a generated problem). ``None`` is never
  a judgement of the answer, and nothing is stored for it;
- what a verifier checks against travels with the request, JSON-serialisable, under
  ``request.metadata["verify"]`` (each specialist documents its own shape), or in the prompt
  itself (the coding specialist runs tests it finds in the prompt's text); the interaction log keeps
  the metadata it is given (``aeth serve`` logs the request's), so logged answers can be checked later;
- a verifier is deterministic for one (request, answer) and runs untrusted code only in
  :mod:`aeth.evals.sandbox`.

Stored rewards are feedback of kind ``rating`` with source ``verifier`` (see
:mod:`aeth.learning.verify`); ``practice(n, seed) -> list[Request]`` produces prompts a verifier
can check, for self-improvement (``aeth learn SPECIALIST --self``).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import TYPE_CHECKING, Any

from aeth.config import QUANTIZATIONS
from aeth.quality import Quality
from aeth.safety.policy import Policy

if TYPE_CHECKING:
    from aeth.request import Request

#: ``verify(request, answer) -> reward``: a number in [0, 1], or None when the request cannot be checked
Verifier = Callable[["Request", str], "float | None"]
#: ``practice(n, seed) -> requests``: up to ``n`` prompts its verifier can check, the same for the same seed
Practice = Callable[[int, int], "list[Request]"]

ROLES = ("system", "user", "assistant")
_NAME = re.compile(r"^[a-z][a-z0-9-]{0,39}$")
DEFAULT_BASE_MODEL = "smollm2-135m-instruct"
DEFAULT_TARGET_MODULES = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


@dataclass(frozen=True)
class AdapterSpec:
    """The LoRA adapter a specialist trains on top of its base model."""

    r: int = 16
    alpha: int = 32
    dropout: float = 0.05
    target_modules: tuple[str, ...] = DEFAULT_TARGET_MODULES

    def problems(self) -> list[tuple[str, str]]:
        """(field, message) pairs for every invalid value."""
        out = []
        if not isinstance(self.r, int) or isinstance(self.r, bool) or self.r < 1:
            out.append(("adapter.r", f"must be a positive integer, got {self.r!r}"))
        if not isinstance(self.alpha, (int, float)) or isinstance(self.alpha, bool) or self.alpha <= 0:
            out.append(("adapter.alpha", f"must be a positive number, got {self.alpha!r}"))
        if not isinstance(self.dropout, (int, float)) or not 0 <= self.dropout < 1:
            out.append(("adapter.dropout", f"must be in [0, 1), got {self.dropout!r}"))
        tm = self.target_modules
        if isinstance(tm, str) or not tm or not all(isinstance(m, str) and m for m in tm):
            out.append(("adapter.target_modules", f"must be a non-empty tuple of module names, got {tm!r}"))
        return out


@dataclass(frozen=True)
class GenerationDefaults:
    """Sampling defaults a specialist prefers; request options and user config override them."""

    temperature: float = 0.7
    top_p: float = 0.9
    top_k: int = 50
    max_tokens: int = 256
    repetition_penalty: float = 1.0

    def problems(self) -> list[tuple[str, str]]:
        """(field, message) pairs for every invalid value."""
        checks = [
            ("temperature", self.temperature >= 0, ">= 0"),
            ("top_p", 0 < self.top_p <= 1, "in (0, 1]"),
            ("top_k", isinstance(self.top_k, int) and self.top_k >= 0, "an integer >= 0 (0 = off)"),
            ("max_tokens", isinstance(self.max_tokens, int) and self.max_tokens >= 1, "an integer >= 1"),
            ("repetition_penalty", self.repetition_penalty > 0, "> 0"),
        ]
        return [(f"generation.{n}", f"must be {want}, got {getattr(self, n)!r}") for n, ok, want in checks if not ok]


def record_problems(record: Any) -> list[tuple[str, str]]:
    """(field, message) pairs that make ``record`` an invalid chat record.

    A chat record is ``{"messages": [{"role": ..., "content": ...}, ...]}`` whose roles are
    system/user/assistant, with at least one user turn and an assistant turn last (the answer
    the model learns).
    """
    if not isinstance(record, Mapping):
        return [("record", f"must be a mapping with a 'messages' list, got {type(record).__name__}")]
    msgs = record.get("messages")
    if not isinstance(msgs, list) or not msgs:
        return [("messages", "must be a non-empty list of {role, content} objects")]
    out = []
    for i, m in enumerate(msgs):
        if not isinstance(m, Mapping):
            out.append((f"messages[{i}]", "must be an object with 'role' and 'content'"))
            continue
        if m.get("role") not in ROLES:
            out.append((f"messages[{i}].role", f"must be one of {', '.join(ROLES)}, got {m.get('role')!r}"))
        if not isinstance(m.get("content"), str) or not m["content"].strip():
            out.append((f"messages[{i}].content", "must be a non-empty string"))
    roles = [m.get("role") for m in msgs if isinstance(m, Mapping)]
    if "user" not in roles:
        out.append(("messages", "needs at least one user message"))
    if roles and roles[-1] != "assistant":
        out.append(("messages", "must end with an assistant message (the answer to learn)"))
    return out


def record_key(record: Mapping) -> str:
    """A stable content hash of a record (used for splits, dedup and overlap checks)."""
    blob = json.dumps(record["messages"], sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(blob.encode()).hexdigest()


def split_records(records: Iterable[dict], validation_fraction: float = 0.1) -> tuple[list[dict], list[dict]]:
    """``(train, validation)`` by content hash: a record's side never depends on the others, so
    adding records never moves existing ones across the split."""
    train, val = [], []
    for record in records:
        bucket = int(record_key(record)[:8], 16) / 0xFFFFFFFF
        (val if bucket < validation_fraction else train).append(record)
    return train, val


@dataclass(frozen=True)
class DatasetRecipe:
    """How to build a specialist's training data.

    ``load`` returns an iterable of chat records (see :func:`record_problems`). The train /
    validation split is deterministic: a record's side depends only on its content hash, so adding
    records never moves existing ones across the split.
    """

    name: str
    version: str
    load: Callable[[], Iterable[Mapping]]
    description: str = ""
    validation_fraction: float = 0.1

    def records(self) -> list[dict]:
        """All records, validated; a bad one raises naming the recipe, its index and the field."""
        from aeth.errors import SpecialistError

        out = []
        for i, rec in enumerate(self.load()):
            probs = record_problems(rec)
            if probs:
                where, msg = probs[0]
                raise SpecialistError(f"recipe {self.name!r} record {i}: {where} {msg}")
            out.append(dict(rec))
        return out

    def split(self) -> tuple[list[dict], list[dict]]:
        """``(train, validation)``: deterministic by content hash, about ``validation_fraction`` held out."""
        return split_records(self.records(), self.validation_fraction)


@dataclass(frozen=True)
class EvalCase:
    """One eval item: a prompt and whatever the scorer needs to judge an answer.

    ``group`` names the benchmark or task the case belongs to (reports break scores down by it);
    ``images`` are image paths for specialists that see; ``max_tokens`` overrides the suite's
    answer length for this case.
    """

    id: str
    prompt: str
    reference: Any = None
    group: str = ""
    images: tuple[str, ...] = ()
    max_tokens: int | None = None


@dataclass(frozen=True)
class EvalSuite:
    """A specialist's eval suite: cases plus a scorer returning a number in [0, 1] per answer.

    ``samples`` answers are drawn per case (sampling at ``temperature``); with more than one,
    reports add the unbiased pass@k for each k in ``pass_at`` (a case "passes" when it scores 1).
    ``max_tokens`` bounds each answer unless a case says otherwise. ``source`` says where the
    benchmark data comes from and under which licence.
    """

    name: str
    version: str
    cases: Callable[[], Iterable[EvalCase]]
    score: Callable[[EvalCase, str], float]
    description: str = ""
    metric: str = "score"
    samples: int = 1
    temperature: float = 0.0
    pass_at: tuple[int, ...] = (1,)
    max_tokens: int = 256
    source: str = ""


def reward_problem(value: Any) -> str | None:
    """Why ``value`` is not a verifier's reward (a number in [0, 1], or None), or None when it is one."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return f"a reward is a number in [0, 1] or None, got {type(value).__name__} {value!r}"
    if not 0.0 <= value <= 1.0:  # also false for NaN
        return f"a reward is a number in [0, 1], got {value!r}"
    return None


@dataclass(frozen=True)
class Specialist:
    """A narrow specialist: a base model plus adapter spec, prompt, routing examples, data and evals.

    ``routing_examples`` teach the router; ``routing_heldout`` are other prompts for this
    specialist that the router never sees, used only to measure routing accuracy
    (``aeth route --evaluate``). Requests carrying images are routed only to specialists with
    ``accepts_images``, and requests without images only to the others (``--specialist``
    reaches any). ``plugin`` is filled in by core with the name of the plugin
    that registered it.

    ``verifier`` checks an answer without a person: ``verify(request, answer)`` returns a reward
    in [0, 1], or None when the request carries nothing to check against (see the module's
    docstring for the convention and ``request.metadata["verify"]``). Its rewards are stored as
    automatic feedback (:func:`aeth.learning.verify.verify_interactions`) and drive
    self-improvement. ``practice(n, seed)`` returns up to ``n`` requests the verifier can check
    (never an eval case: held-out data stays held out), the same ones for the same seed.
    ``policy`` is its content policy (:class:`~aeth.safety.policy.Policy`: what it refuses, masks
    or blocks; ``None``: aeth's defaults); the config's ``policy.<name>.*`` overrides it.
    ``quality`` says how its answers are judged before they leave (:class:`~aeth.quality.Quality`:
    a check, a vote key, the default method); ``quality.<name>.*`` chooses the method and k.
    These are fields, not hooks, because they belong to the specialist the way its suite does:
    they travel with it (``dataclasses.replace`` keeps them), and a plugin that registers two
    specialists gives each its own without dispatching on a name.
    """

    name: str
    description: str
    base_model: str = DEFAULT_BASE_MODEL
    adapter: AdapterSpec = field(default_factory=AdapterSpec)
    quantization: str = "auto"
    system_prompt: str = ""
    routing_examples: tuple[str, ...] = ()
    routing_heldout: tuple[str, ...] = ()
    generation: GenerationDefaults = field(default_factory=GenerationDefaults)
    recipe: DatasetRecipe | None = None
    suite: EvalSuite | None = None
    version: str = "0.1"
    accepts_images: bool = False
    verifier: Verifier | None = None
    practice: Practice | None = None
    policy: Policy | None = None
    quality: Quality | None = None
    plugin: str = ""

    def problems(self) -> list[tuple[str, str]]:
        """(field, message) pairs for every invalid value; empty when the specialist is valid."""
        out = []
        if not isinstance(self.name, str) or not _NAME.match(self.name):
            out.append(("name", f"must be lowercase letters, digits and '-', starting with a letter, at most 40 chars; got {self.name!r}"))
        if not isinstance(self.description, str) or not self.description.strip():
            out.append(("description", "must be a non-empty string (it is shown in `aeth specialists`)"))
        if not isinstance(self.base_model, str) or not self.base_model.strip():
            out.append(("base_model", "must name a model: a hub id, a local directory or a built-in name"))
        if self.quantization not in QUANTIZATIONS:
            out.append(("quantization", f"must be one of {', '.join(QUANTIZATIONS)}, got {self.quantization!r}"))
        if not isinstance(self.system_prompt, str):
            out.append(("system_prompt", "must be a string"))
        prompt_lists_ok = True
        for name in ("routing_examples", "routing_heldout"):
            ex = getattr(self, name)
            if isinstance(ex, str) or not all(isinstance(e, str) and e.strip() for e in ex):
                out.append((name, "must be a tuple of non-empty prompt strings"))
                prompt_lists_ok = False
        repeated = sorted(set(self.routing_examples) & set(self.routing_heldout)) if prompt_lists_ok else []
        if repeated:
            out.append(("routing_heldout", f"must not repeat a routing example (it measures unseen prompts): {repeated[0]!r}"))
        if isinstance(self.adapter, AdapterSpec):
            out += self.adapter.problems()
        else:
            out.append(("adapter", f"must be an AdapterSpec, got {type(self.adapter).__name__}"))
        if isinstance(self.generation, GenerationDefaults):
            out += self.generation.problems()
        else:
            out.append(("generation", f"must be a GenerationDefaults, got {type(self.generation).__name__}"))
        if self.recipe is not None and not isinstance(self.recipe, DatasetRecipe):
            out.append(("recipe", f"must be a DatasetRecipe or None, got {type(self.recipe).__name__}"))
        if self.suite is not None and not isinstance(self.suite, EvalSuite):
            out.append(("suite", f"must be an EvalSuite or None, got {type(self.suite).__name__}"))
        for name, shape in (("verifier", "verify(request, answer) -> float | None"),
                            ("practice", "practice(n, seed) -> list[Request]")):
            if getattr(self, name) is not None and not callable(getattr(self, name)):
                out.append((name, f"must be a callable {shape} or None, got {type(getattr(self, name)).__name__}"))
        if self.policy is not None:
            if isinstance(self.policy, Policy):
                out += [("policy", problem) for problem in self.policy.problems()]
            else:
                out.append(("policy", f"must be an aeth.safety.policy.Policy or None, got {type(self.policy).__name__}"))
        if self.quality is not None:
            if isinstance(self.quality, Quality):
                out += [("quality", problem) for problem in self.quality.problems()]
            else:
                out.append(("quality", f"must be an aeth.quality.Quality or None, got {type(self.quality).__name__}"))
        return out

    def summary(self) -> dict:
        """A JSON-friendly description (no callables)."""
        return {
            "name": self.name,
            "description": self.description,
            "plugin": self.plugin,
            "version": self.version,
            "base_model": self.base_model,
            "quantization": self.quantization,
            "adapter": {f.name: getattr(self.adapter, f.name) for f in fields(self.adapter)},
            "routing_examples": len(self.routing_examples),
            "routing_heldout": len(self.routing_heldout),
            "recipe": self.recipe.name if self.recipe else None,
            "suite": self.suite.name if self.suite else None,
            "accepts_images": self.accepts_images,
            "verifier": self.verifier is not None,
            "practice": self.practice is not None,
            "policy": asdict(self.policy) if self.policy is not None else None,
            "quality": None if self.quality is None else {"method": self.quality.method, "k": self.quality.k,
                                                          "check": self.quality.check is not None,
                                                          "vote_key": self.quality.vote_key is not None},
        }
