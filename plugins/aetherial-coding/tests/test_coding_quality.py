"""The coding quality check: code that does not parse, or fails its own doctests or the prompt's tests
(run in the real sandbox), is named; explanations and other languages pass unjudged."""

import sys

import pytest

from aeth import Request
from aetherial_coding.evals import PROMPT, problems
from aetherial_coding.quality import check, python_code
from aetherial_coding.specialist import build_specialist

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the code sandbox is Linux-only")

ASK = Request("Write a Python function that clamps a number to a range.")
DOCTESTED = '''```python
def clamp(x, lo, hi):
    """Limit x to [lo, hi].

    >>> clamp(5, 0, 3)
    3
    >>> clamp(-2, 0, 3)
    0
    """
    return {body}
```'''
RIGHT = DOCTESTED.format(body="max(lo, min(x, hi))")
WRONG = DOCTESTED.format(body="min(lo, max(x, hi))")


def test_code_that_does_not_parse_is_named_with_its_line():
    broken = "Here you go:\n\n```python\ndef clamp(x, lo, hi)\n    return max(lo, min(x, hi))\n```"
    problem = check(ASK, broken)
    assert problem is not None and problem.startswith("the code does not parse: SyntaxError")
    assert "(line 1)" in problem
    truncated = "```python\ndef clamp(x, lo, hi):\n    return max(lo, min(x,"  # cut off at max_tokens
    assert "does not parse" in check(ASK, truncated)
    two = "```python\nimport math\n```\n\nthen\n\n```python\nx = [1, 2\ny = 3\n```"
    assert "code block 2" in check(ASK, two)


@linux_only
def test_its_own_failing_doctest_is_run_in_the_sandbox_and_named():
    problem = check(ASK, WRONG)
    assert problem is not None and problem.startswith("its own doctest fails:")
    assert "clamp(5, 0, 3)" in problem and "expected '3'" in problem


@linux_only
def test_a_passing_doctest_and_plain_code_pass():
    assert check(ASK, RIGHT) is None
    assert check(ASK, "```python\ndef clamp(x, lo, hi):\n    return max(lo, min(x, hi))\n```") is None
    # a doctest that expects an exception, as doctest writes it
    raising = ('```python\ndef inv(x):\n    """\n    >>> inv(0)\n    Traceback (most recent call last):\n    ...\n'
               '    ZeroDivisionError: division by zero\n    """\n    return 1 / x\n```')
    assert check(ASK, raising) is None


@linux_only
def test_the_prompts_own_tests_judge_an_answer_without_doctests():
    problem = problems()[0]  # HumanEval/0: its stub's docstring carries two examples
    request = Request(PROMPT.format(prompt=problem["prompt"]))
    bare = "```python\nfrom typing import List\n\ndef has_close_elements(numbers: List[float], threshold: float) -> bool:\n{}\n```"
    assert check(request, bare.format(problem["canonical_solution"].rstrip())) is None
    failing = check(request, bare.format("    return False"))
    assert failing is not None and failing.startswith("it fails the prompt's tests:")
    # repeating the stub (its docstring examples) and getting it wrong is the answer's own doctest failing
    repeated = f"```python\n{problem['prompt']}    return False\n```"
    assert check(request, repeated).startswith("its own doctest fails:")
    assert check(request, "Sort the numbers and compare neighbours.") == "it gives no code for the prompt's tests"


@linux_only
def test_unfenced_code_is_checked_too():
    answer = 'Sure:\n\ndef double(x):\n    """\n    >>> double(2)\n    5\n    """\n    return x * 2\n\nThat is all.'
    assert check(ASK, answer).startswith("its own doctest fails:")


@linux_only
def test_code_needing_a_library_the_sandbox_lacks_cannot_be_judged():
    answer = '```python\nimport numpy as np\n\ndef total(xs):\n    """\n    >>> total([1, 2])\n    3\n    """\n    return int(np.sum(xs))\n```'
    assert check(ASK, answer) is None


@pytest.mark.parametrize("answer", [
    "A list comprehension builds a new list; a generator expression yields items lazily.",  # an explanation
    "```javascript\nfunction clamp(x, lo, hi) { return Math max(lo, x) }\n```",             # JavaScript, even broken
    "```\nfunction clamp(x, lo, hi) {\n  return Math.min(Math.max(x, lo), hi);\n```",        # untagged, not Python
    "```bash\npip install requests\n```",                                                    # shell
    "```\n$ python -m venv .venv && source .venv/bin/activate\n```",                         # untagged shell
    "```pycon\n>>> clamp(5, 0, 3)\n3\n```",                                                  # a session, not a program
    "```python\n>>> [x * 2 for x in range(3)]\n[0, 2, 4]\n```",                              # a session tagged python
])
def test_answers_with_no_python_program_pass_unjudged(answer):
    assert check(ASK, answer) is None


def test_untagged_blocks_count_as_python_only_when_they_look_like_it():
    assert python_code("```\ndef f(x):\n    return x +\n```") == ["def f(x):\n    return x +\n"]
    assert python_code("```\nimport os, sys\nprint(os.sep\n```")  # a Python import line
    assert python_code("```\nimport React from 'react';\nconst x = <div/>;\n```") == []  # JavaScript's import
    assert python_code("```\ndef greet(name)\n  puts name\nend\n```") == []  # Ruby
    assert python_code("```\nclass Stack {\n  push(x) {}\n}\n```") == []  # a C-family class


def test_the_specialist_declares_the_check_with_retry():
    quality = build_specialist().quality
    assert quality.check is check
    assert (quality.method, quality.k) == ("retry", 3)
    assert quality.problems() == []
