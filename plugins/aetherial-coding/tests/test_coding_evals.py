"""The ``coding-format`` scorer: parseable functions of the right name score 1, anything else 0."""

import pytest

from aetherial_coding.evals import CASES, build_suite, score_answer

FENCED = '''Here is the function:

```python
def add(a, b):
    """Return a + b."""
    return a + b
```

It works for ints and floats.'''

PLAIN = '''Sure. def add(a, b) is simple:

def add(a, b):
    return a + b

This returns the sum.'''


@pytest.mark.parametrize("answer", [
    FENCED,
    PLAIN,
    "```\ndef add(a, b):\n    return a + b\n```",                       # untagged fence
    "```py\nimport math\n\nasync def add(a, b):\n    return a + b\n```",   # async def, other tag
    "```python\nclass M:\n    def add(self, a, b):\n        return a + b\n```",  # method
    "1. Write it:\n\n   ```python\n   def add(a, b):\n       return a + b\n   ```",  # indented fence
    "```python\ndef add(a, b):\n    return a + b",                       # unterminated fence
])
def test_parseable_function_scores_one(answer):
    assert score_answer(answer, "add") == 1.0


@pytest.mark.parametrize("answer", [
    "To add two numbers, return a plus b.",                                # prose
    "",                                                                     # nothing
    "```python\ndef add(a, b)\n    return a + b\n```",                     # missing colon
    "```python\ndef add(a, b):\n    x = 1\n    return a + * b\n```",       # error deep in the body
    "def add(a, b):\n    x = 1\n    return a + * b\n\nThat's it.",         # same, unfenced
    "```python\ndef plus(a, b):\n    return a + b\n```",                   # wrong name
    "```javascript\nfunction add(a, b) { return a + b; }\n```",            # wrong language
    "```python\nprint('def add(a, b): pass')\n```",                         # name only inside a string
])
def test_anything_else_scores_zero(answer):
    assert score_answer(answer, "add") == 0.0


def test_broken_fence_is_not_rescued_by_the_same_code_unfenced():
    # The unfenced fallback must not find the broken fenced def and parse a prefix of it.
    answer = "```python\ndef add(a, b):\n    return a +\n```\ndone"
    assert score_answer(answer, "add") == 0.0


def test_suite_cases_and_scorer():
    suite = build_suite()
    cases = list(suite.cases())
    assert len(cases) == len(CASES) >= 10
    assert len({c.id for c in cases}) == len(cases)
    case = next(c for c in cases if c.reference == "is_palindrome")
    good = "```python\ndef is_palindrome(s):\n    t = [c.lower() for c in s if c.isalnum()]\n    return t == t[::-1]\n```"
    assert suite.score(case, good) == 1.0
    assert suite.score(case, "A palindrome reads the same both ways.") == 0.0
    assert "never executed" in suite.description
