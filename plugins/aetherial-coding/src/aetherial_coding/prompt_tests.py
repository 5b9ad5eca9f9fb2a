"""Tests found in a text: what the ``coding`` verifier runs when a prompt carries its own tests.

A user who writes "make these pass" or pastes doctest examples has told us how to check the
answer. :func:`find_tests` recognises, in this order:

1. **assert blocks**: a fenced code block that may be Python (untagged, ``python``, ``py``, ...),
   parses, and has at least one top-level ``assert``. Its top-level statements are the test,
   except function and class definitions (the code under test, which the answer supplies) and
   ``if __name__ == "__main__":`` blocks; so imports and setup lines (``s = Stack()``) stay.
2. **doctest examples**: ``>>> expr`` lines (``...`` continues them) followed by the expected
   output, anywhere: in a docstring of a fenced Python block (a stub's), in a fenced session
   (``pycon``), or in plain text. Each runs like doctest runs it (an expression prints its
   ``repr``) and its output must equal the expected lines, whitespace normalised; an expected
   ``Traceback (most recent call last):`` passes when the example raises the exception named on
   its last line. ``<BLANKLINE>`` is an empty line; doctest directives and ``...`` wildcards are
   not understood. Examples without expected output (``>>> x = f(2)``) run as setup, but alone
   are no test.
3. **assert lines**: outside fenced blocks, a line that starts with ``assert `` and parses alone.

Only fences that begin a line count: a prompt's sentence may mention a fence in passing.

Everything here parses text and writes Python source for the sandbox; nothing is run here.
"""

from __future__ import annotations

import ast
import doctest
from dataclasses import dataclass

from aetherial_coding.evals import python_blocks, unfenced

#: run by the checks before the examples: one doctest example, judged the way doctest judges it
EXAMPLE_RUNNER = '''\
def _aeth_example(source, want, exception):
    import contextlib, io
    out = io.StringIO()
    try:
        with contextlib.redirect_stdout(out):
            exec(compile(source, "<example>", "single"), globals())  # "single": an expression prints its repr
    except Exception as e:
        if exception is None or type(e).__name__ != exception:
            raise
        return
    if exception is not None:
        raise AssertionError(f"{source.strip()} should raise {exception}")
    got, expected = " ".join(out.getvalue().split()), " ".join(want.replace("<BLANKLINE>", "").split())
    if got != expected:
        raise AssertionError(f"{source.strip()}: expected {expected!r}, got {got!r}")

'''


@dataclass(frozen=True)
class Example:
    """One doctest example: its source, the output it must print, or the exception it must raise."""

    source: str
    want: str = ""
    exception: str | None = None  #: the exception's class name when a traceback is expected

    @property
    def checks(self) -> bool:
        """Whether the example checks something (an expected output or exception), not only sets up."""
        return bool(self.want.strip()) or self.exception is not None

    def shown(self) -> str:
        """The example as doctest text (``>>> `` and ``... `` lines, then the expected output)."""
        lines = self.source.rstrip("\n").split("\n")
        text = [f">>> {lines[0]}", *(f"... {line}" for line in lines[1:])]
        if self.exception is not None:
            text += ["Traceback (most recent call last):", "    ...", f"{self.exception}"]
        elif self.want.strip():
            text += self.want.rstrip("\n").split("\n")
        return "\n".join(text)


@dataclass(frozen=True)
class Tests:
    """Tests found in a text: assert code and doctest examples."""

    asserts: tuple[str, ...] = ()  #: Python sources whose asserts raise when the code is wrong
    examples: tuple[Example, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.asserts) or any(e.checks for e in self.examples)

    def code(self) -> str:
        """The checks as one Python program run after the answer's code (raises when it is wrong)."""
        parts = [*self.asserts]
        if self.examples:
            calls = "".join(f"_aeth_example({e.source!r}, {e.want!r}, {e.exception!r})\n" for e in self.examples)
            parts.append(EXAMPLE_RUNNER + calls)
        return "\n\n".join(p.rstrip("\n") for p in parts) + "\n"

    def markdown(self) -> str:
        """The tests as a person writes them in a prompt: a fenced block of the assert code, a
        ``pycon`` block of the examples (both found again by :func:`find_tests`)."""
        parts = []
        if self.asserts:
            parts.append("```python\n" + "\n\n".join(a.rstrip("\n") for a in self.asserts) + "\n```")
        if self.examples:
            parts.append("```pycon\n" + "\n".join(e.shown() for e in self.examples) + "\n```")
        return "\n\n".join(parts)

    def names(self) -> set[str]:
        """Every name the tests read (the functions and classes they call, among others)."""
        out: set[str] = set()
        for source in (*self.asserts, *(e.source for e in self.examples)):
            try:
                tree = ast.parse(source)
            except (SyntaxError, ValueError):
                continue
            out |= {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
        return out


def is_main_guard(node: ast.stmt) -> bool:
    """Whether ``node`` is ``if __name__ == "__main__":`` (code meant to run as a script, not as a test)."""
    test = getattr(node, "test", None)
    return (isinstance(node, ast.If) and isinstance(test, ast.Compare) and isinstance(test.left, ast.Name)
            and test.left.id == "__name__")


def parse(source: str) -> ast.Module | None:
    """``source`` parsed, or None when it is not Python."""
    try:
        return ast.parse(source)
    except (SyntaxError, ValueError):  # ValueError: NUL bytes
        return None


def source_of(source: str, node: ast.stmt) -> str:
    """The text of the top-level statement ``node`` in ``source``, decorators included (Python's own
    segment of a decorated definition starts at ``def``)."""
    text = ast.get_source_segment(source, node) or ""
    decorators = [ast.get_source_segment(source, d) for d in getattr(node, "decorator_list", ())]
    return "".join(f"@{d}\n" for d in decorators if d) + text


def assert_block(block: str) -> str | None:
    """The test in a fenced block with top-level asserts: its statements less definitions and the
    main guard; None when the block is not Python or asserts nothing at top level."""
    tree = parse(block)
    if tree is None or not any(isinstance(n, ast.Assert) for n in tree.body):
        return None
    kept = [source_of(block, n) for n in tree.body
            if not isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and not is_main_guard(n)]
    return "\n".join(k for k in kept if k)


def examples(text: str) -> list[Example]:
    """The doctest examples in ``text`` (none when doctest cannot parse it, e.g. ragged indentation)."""
    try:
        found = doctest.DocTestParser().get_examples(text)
    except ValueError:
        return []
    out = []
    for e in found:
        exception = None
        if e.exc_msg is not None:  # "ValueError: bad input" or "mod.ValueError" -> "ValueError"
            exception = e.exc_msg.strip().split(":", 1)[0].strip().rsplit(".", 1)[-1] or None
        out.append(Example(e.source, e.want, exception))
    return out


def block_examples(block: str) -> list[Example]:
    """The doctest examples of a fenced block: from its docstrings when it is Python (a stub's
    ``>>>`` lines end where its docstring ends), else from its text (a ``pycon`` session)."""
    tree = parse(block)
    if tree is None:
        return examples(block)
    docs = (ast.get_docstring(n) for n in ast.walk(tree)
            if isinstance(n, (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)))
    return [e for doc in docs if doc for e in examples(doc)]


def assert_lines(text: str) -> list[str]:
    """Lines of ``text`` that start with ``assert `` and parse on their own."""
    lines = (line.strip() for line in text.splitlines())
    return [line for line in lines if line.startswith("assert ") and parse(line) is not None]


def find_tests(text: str) -> Tests:
    """The tests ``text`` carries (see the module's docstring); falsy when it carries none."""
    blocks = python_blocks(text, line_start=True)
    rest = unfenced(text, line_start=True)
    asserts = [a for a in (assert_block(b) for b in blocks) if a]
    loose = assert_lines(rest)
    if loose:
        asserts.append("\n".join(loose))
    found = [e for block in blocks for e in block_examples(block)] + examples(rest)
    return Tests(tuple(asserts), tuple(found))
