"""The ``coding-format`` eval suite: does the answer hold a parseable Python function of the right name?

This is a *format* check, not a correctness check: the scorer parses the answer with
:func:`ast.parse` and never executes it (running model-written code needs a sandbox). A later
version of this suite replaces it with HumanEval pass@k, run in aeth's code sandbox.
"""

from __future__ import annotations

import ast
import re
import textwrap

from aeth import EvalCase, EvalSuite

# (id, function name, prompt). Small, unambiguous tasks that name the function to write.
CASES: tuple[tuple[str, str, str], ...] = (
    ("add", "add", "Write a Python function `add(a, b)` that returns the sum of two numbers."),
    ("is-palindrome", "is_palindrome",
     ("Write a Python function `is_palindrome(s)` that returns True if the string reads the same forwards "
      "and backwards, ignoring case and non-alphanumeric characters.")),
    ("fizzbuzz", "fizzbuzz",
     ("Write a Python function `fizzbuzz(n)` that returns a list of strings for 1..n, using 'Fizz' for "
      "multiples of 3, 'Buzz' for multiples of 5 and 'FizzBuzz' for multiples of both.")),
    ("count-vowels", "count_vowels", "Write a Python function `count_vowels(text)` that returns how many vowels the text contains."),
    ("flatten", "flatten", "Write a Python function `flatten(nested)` that flattens a list of lists into a single list."),
    ("factorial", "factorial", "Write a Python function `factorial(n)` that returns n! and raises ValueError for negative n."),
    ("word-count", "word_count",
     ("Write a Python function `word_count(text)` that returns a dict mapping each lowercase word to how "
      "many times it appears.")),
    ("fibonacci", "fibonacci", "Write a Python function `fibonacci(n)` that returns the first n Fibonacci numbers as a list."),
    ("chunk", "chunk", "Write a Python function `chunk(items, size)` that splits a list into consecutive chunks of at most `size` items."),
    ("celsius", "celsius_to_fahrenheit",
     "Write a Python function `celsius_to_fahrenheit(c)` that converts a temperature from Celsius to Fahrenheit."),
)

_FENCE = re.compile(r"```[ \t]*([\w+#.-]*)[^\n]*\n(.*?)(?:```|\Z)", re.DOTALL)
_NON_PYTHON = {"js", "javascript", "ts", "typescript", "java", "c", "cpp", "c++", "go", "rust", "rs", "sh",
               "bash", "shell", "sql", "ruby", "rb", "php", "kotlin", "swift", "cs", "csharp", "c#"}


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


def score_answer(answer: str, function_name: str) -> float:
    """1.0 if ``answer`` contains a Python ``def function_name(`` that parses, else 0.0.

    Fenced code blocks (untagged or tagged python) are tried first, each as a whole; then an
    unfenced ``def`` with its indented body. The code is parsed, never run.
    """
    for lang, body in _FENCE.findall(answer):
        # dedent: a block inside a markdown list item is indented as a whole
        if lang.lower() not in _NON_PYTHON and _defines(textwrap.dedent(body), function_name):
            return 1.0
    block = _function_block(_FENCE.sub("", answer), function_name)
    return 1.0 if block is not None and _defines(block, function_name) else 0.0


def _cases() -> list[EvalCase]:
    return [EvalCase(id=cid, prompt=prompt, reference=name) for cid, name, prompt in CASES]


def _score(case: EvalCase, answer: str) -> float:
    return score_answer(answer, case.reference)


def build_suite() -> EvalSuite:
    """The ``coding-format`` suite the ``coding`` specialist is judged by for now."""
    return EvalSuite(
        name="coding-format",
        version="0.1",
        cases=_cases,
        score=_score,
        metric="format",
        description="Format check only: the share of answers holding a Python function with the requested "
                    "name that parses (ast.parse; the code is never executed, so correctness is not measured). "
                    "To be replaced by HumanEval pass@k run in a sandbox.",
    )
