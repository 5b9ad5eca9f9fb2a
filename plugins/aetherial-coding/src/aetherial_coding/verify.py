"""The ``coding`` verifier: run the answer's code against the request's tests, in the sandbox.

``verify(request, answer)`` returns 1.0 when every test passes, 0.0 when one fails (or the answer
has no code to test), and None when the request carries no tests or the code needs a library the
sandbox lacks (it has Python's standard library only). The tests are, in order:

- ``request.metadata["verify"]["tests"]``: Python source run after the answer's code, raising
  when the code is wrong (``assert add(2, 3) == 5``); how :func:`aetherial_coding.recipe.practice`
  and any caller with hidden tests pass them; JSON-friendly, so the interaction log keeps it;
- else the tests written in the prompt itself (:mod:`aetherial_coding.prompt_tests`: fenced
  blocks of asserts, doctest examples, ``assert`` lines).

The program under test is the imports of the prompt's own code (a stub's ``from typing import
List``), then the definitions of the answer's Python code blocks: imports, functions, classes and
assignments, but not its demo calls, prints, own asserts or ``if __name__ == "__main__":`` block
(the answer's own demos are not what is judged, and one that reads input would fail a correct
answer). An answer without fenced code is searched for an unfenced ``def`` of a name the tests
use, as the HumanEval eval does. The code runs only in :mod:`aeth.evals.sandbox`, under the
eval's limits.
"""

from __future__ import annotations

import ast
import re
import sys
import textwrap
from collections.abc import Mapping

from aeth import Request
from aetherial_coding.evals import extract_function, python_blocks, sandbox_run
from aetherial_coding.prompt_tests import find_tests, is_main_guard, parse, source_of

#: the answer's top-level statements that make up its code (the rest are demos)
DEFINITIONS = (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Assign, ast.AnnAssign)
_MISSING = re.compile(r"ModuleNotFoundError: No module named '([\w.]+)'")


def request_tests(request: Request) -> tuple[str, set[str]] | None:
    """The checks to run for ``request`` and the names they use, or None when it carries no tests."""
    given = request.metadata.get("verify") if isinstance(request.metadata, Mapping) else None
    tests = given.get("tests") if isinstance(given, Mapping) else None
    if isinstance(tests, str) and tests.strip():
        tree = parse(tests)
        names = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)} if tree is not None else set()
        return tests, names
    found = find_tests(request.prompt or "")
    return (found.code(), found.names()) if found else None


def _top_level(source: str, keep: tuple[type, ...]) -> list[tuple[ast.stmt, str]]:
    """``source``'s top-level statements of the kinds ``keep`` (never a main guard), with their text."""
    tree = parse(source)
    if tree is None:
        return []
    found = ((n, source_of(source, n)) for n in tree.body if isinstance(n, keep) and not is_main_guard(n))
    return [(n, text) for n, text in found if text]


def program(answer: str, prompt: str = "", names: set[str] = frozenset()) -> str | None:
    """The program to test for ``answer`` (see the module's docstring); None when it has no code."""
    # the prompt's imports are a convenience for stubs; one the sandbox lacks (the prompt's flask app) is left out
    prelude = [f"try:\n{textwrap.indent(text, '    ')}\nexcept ImportError:\n    pass"
               for block in python_blocks(prompt, line_start=True) for _, text in _top_level(block, (ast.Import, ast.ImportFrom))]
    found = [pair for block in python_blocks(answer) for pair in _top_level(block, DEFINITIONS)]
    code = [text for _, text in found]
    if not any(isinstance(n, DEFINITIONS[2:]) for n, _ in found):
        # no fenced definition: an unfenced `def name(` of a name the tests call
        code = [c for c in (extract_function(answer, n) for n in sorted(names)) if c]
    if not code:
        return None
    return "\n\n".join([*prelude, *code]) + "\n"


def verify(request: Request, answer: str) -> float | None:
    """1.0 when ``answer``'s code passes the request's tests in the sandbox, 0.0 when it fails or has
    no code, None when the request carries no tests or the code needs a library outside Python's
    standard library (the sandbox has only that, so the answer cannot be judged)."""
    found = request_tests(request)
    if found is None:
        return None
    tests, names = found
    source = program(answer or "", request.prompt or "", names)
    if source is None:
        return 0.0
    result = sandbox_run(source, tests)
    if result.ok:
        return 1.0
    missing = _MISSING.search(result.stderr)
    if missing and missing.group(1).split(".")[0] not in sys.stdlib_module_names:
        return None  # the code needs a library the sandbox does not have (numpy...): no verdict either way
    return 0.0
