"""The ``coding`` quality check: what is wrong with an answer's Python code, found before it leaves.

:func:`check` is the specialist's ``Quality.check`` (see :mod:`aeth.quality`; ``retry`` by
default). It names the first of these problems, or returns None:

1. a Python code block that does not parse: ``the code does not parse: SyntaxError: ... (line N)``.
   A block is Python when it is tagged ``python``/``py``/``python3``, or untagged and either
   parses or has a line only Python writes (``def f(...):``, ``class C:``, ``import x``,
   ``from x import y``). Blocks in other languages, untagged prose or shell, and ``>>>`` sessions
   are not judged: only Python is checked;
2. the examples in the code's own docstrings (``>>> f(2)`` then ``4``) fail:
   ``its own doctest fails: ...``;
3. the tests the prompt itself shows (a stub's doctest examples, a fenced block of asserts,
   ``assert`` lines; :func:`aetherial_coding.prompt_tests.find_tests`) fail:
   ``it fails the prompt's tests: ...``; tests given only in ``request.metadata`` are the
   verifier's hidden tests and are not used here;
4. the prompt shows tests and asks for code (write, complete, implement, fix...), and the
   answer has no Python code: ``it gives no code for the prompt's tests``.

An answer without code (an explanation) is otherwise fine, and code that needs a library the
sandbox lacks, or a system without the sandbox (not Linux), cannot be judged (None). Examples and tests run as the verifier runs them
(:mod:`aetherial_coding.verify`): the answer's definitions only, then the checks, in
:mod:`aeth.evals.sandbox` under the eval's limits; generated code runs nowhere else.
"""

from __future__ import annotations

import ast
import re
import sys

from aeth import Request
from aetherial_coding.evals import _NON_PYTHON, code_blocks, extract_function, sandbox_run, unfenced
from aetherial_coding.prompt_tests import Example, Tests, block_examples, find_tests
from aetherial_coding.verify import program

__all__ = ["check", "python_code"]

PYTHON_TAGS = {"python", "py", "python3", "py3"}
#: tags of sessions and output (``>>>`` transcripts, tracebacks, a terminal), not programs
SESSION_TAGS = {"pycon", "pytb", "console", "text", "txt", "output", "plaintext", "shell-session"}
# a line only Python writes: a def or class header ending in ':' (or a def whose arguments go on),
# an import; JavaScript's `import x from "y"`, Ruby's `def f(x)` and Java's `class C {` do not match
_PYTHON_LINE = re.compile(
    r"^[ \t]*(?:(?:async[ \t]+)?def[ \t]+\w+[ \t]*\((?:[^)]*$|.*\)[ \t]*(?:->[^:]*)?:[ \t]*(?:#.*)?$)"
    r"|class[ \t]+\w+[ \t]*(?:\([^)]*\))?[ \t]*:[ \t]*(?:#.*)?$"
    r"|import[ \t]+[\w.]+(?:[ \t]+as[ \t]+\w+)?(?:[ \t]*,[ \t]*[\w.]+(?:[ \t]+as[ \t]+\w+)?)*[ \t]*(?:#.*)?$"
    r"|from[ \t]+\.*[\w.]*[ \t]+import[ \t]+[\w*(])", re.MULTILINE)
_ASKS_FOR_CODE = re.compile(r"\b(?:write|implement|complete|fix|create|define|code|finish|make)\b", re.IGNORECASE)
_UNFENCED_DEF = re.compile(r"^[ \t]*(?:async[ \t]+)?def[ \t]+(\w+)[ \t]*\(", re.MULTILINE)
_MISSING = re.compile(r"ModuleNotFoundError: No module named '([\w.]+)'")
_FAILED = "aeth-sandbox: the checks did not complete: "


def _parses(code: str) -> bool:
    try:
        ast.parse(code)
    except (SyntaxError, ValueError):
        return False
    return True


def python_code(answer: str) -> list[str]:
    """The answer's fenced code blocks that are Python (see the module docstring), in order."""
    out = []
    for tag, code in code_blocks(answer):
        if not code.strip() or tag in SESSION_TAGS or tag in _NON_PYTHON:
            continue
        if code.lstrip().startswith(">>>"):
            continue  # a session pasted into a block: its lines are not a program
        if tag in PYTHON_TAGS or (not tag and (_parses(code) or _PYTHON_LINE.search(code))):
            out.append(code)
    return out


def _parse_problem(blocks: list[str]) -> str | None:
    for i, code in enumerate(blocks):
        try:
            ast.parse(code)
        except SyntaxError as e:
            where = f"line {e.lineno}" if len(blocks) == 1 else f"code block {i + 1}, line {e.lineno}"
            return f"the code does not parse: SyntaxError: {e.msg} ({where})"
        except ValueError as e:  # NUL bytes
            return f"the code does not parse: {e}"
    return None


def _run(source: str, tests: Tests):
    """The tests run against ``source`` in the sandbox; None where this system has no sandbox (an
    answer that cannot be judged passes, rather than failing the request)."""
    from aeth.evals import SandboxUnavailable

    try:
        return sandbox_run(source, tests.code())
    except SandboxUnavailable:
        return None


def _failure(result) -> str | None:
    """Why a sandboxed run failed, in a line; None when the code needs a library the sandbox lacks."""
    missing = _MISSING.search(result.stderr)
    if missing and missing.group(1).split(".")[0] not in sys.stdlib_module_names:
        return None
    if result.status == "timeout":
        return "it did not finish within the sandbox's time limit"
    if result.status in ("killed", "output_limit"):
        return f"it was stopped by the sandbox ({result.status.replace('_', ' ')})"
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    reason = next((line[len(_FAILED):] for line in reversed(lines) if line.startswith(_FAILED)), lines[-1] if lines else "")
    reason = " ".join(reason.split())
    return reason[:300] + ("..." if len(reason) > 300 else "") or f"it exited with status {result.returncode}"


def _same(a: Example, b: Example) -> bool:
    return (" ".join(a.source.split()), " ".join(a.want.split()), a.exception) == \
        (" ".join(b.source.split()), " ".join(b.want.split()), b.exception)


def check(request: Request, answer: str) -> str | None:
    """What is wrong with ``answer``'s Python code (see the module docstring), or None."""
    answer = answer or ""
    prompt = request.prompt or ""
    blocks = python_code(answer)
    problem = _parse_problem(blocks)
    if problem:
        return problem
    tests = find_tests(prompt)
    if blocks:
        own = [e for code in blocks for e in block_examples(code)]
    else:  # no fenced Python: a function written in the text (only one that parses is found)
        text = unfenced(answer)
        found = (extract_function(answer, name) for name in dict.fromkeys(_UNFENCED_DEF.findall(text)))
        own = [e for code in found if code for e in block_examples(code)]
    names = tests.names() | set(_UNFENCED_DEF.findall(answer))
    source = program(answer, prompt, names)
    if source is None:
        other_code = bool(code_blocks(answer))  # code in another language, or not a program
        if tests and not other_code and _ASKS_FOR_CODE.search(unfenced(prompt, line_start=True)):
            return "it gives no code for the prompt's tests"
        return None
    own_tests = Tests(examples=tuple(own))
    if own_tests:
        result = _run(source, own_tests)
        if result is None:
            return None
        if not result.ok:
            reason = _failure(result)
            return None if reason is None else f"its own doctest fails: {reason}"
    # the prompt's examples are usually the answer's own (a stub's docstring, repeated): run once
    repeated = all(any(_same(e, o) for o in own) for e in tests.examples)
    rest = Tests(tests.asserts, () if repeated else tests.examples)
    if rest:
        result = _run(source, rest)
        if result is not None and not result.ok:
            reason = _failure(result)
            return None if reason is None else f"it fails the prompt's tests: {reason}"
    return None
