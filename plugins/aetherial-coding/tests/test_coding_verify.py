"""The coding verifier: tests found in a prompt (or its metadata) run against the answer's code in
the real sandbox; practice prompts come from the seed recipe, never from HumanEval."""

import sys

import pytest

from aeth import Request
from aetherial_coding.evals import PROMPT, problems
from aetherial_coding.prompt_tests import find_tests
from aetherial_coding.recipe import build_recipe, practice, practice_candidates
from aetherial_coding.specialist import build_specialist
from aetherial_coding.verify import program, verify

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the code sandbox is Linux-only")

DOCTEST_PROMPT = '''Write `clamp(x, lo, hi)` that limits x to the range [lo, hi].

>>> clamp(5, 0, 3)
3
>>> clamp(-2, 0, 3)
0
>>> clamp(2, 0, 3)
2
'''
RIGHT = '''Here it is:

```python
def clamp(x, lo, hi):
    """Limit x to [lo, hi]."""
    return max(lo, min(x, hi))


print(clamp(5, 0, 3))
assert clamp(1, 0, 3) == 99  # the answer's own demo, not what is judged

if __name__ == "__main__":
    print(clamp(int(input()), 0, 3))  # would fail on empty stdin if it ran
```'''
WRONG = "```python\ndef clamp(x, lo, hi):\n    return min(lo, max(x, hi))\n```"


@linux_only
def test_doctest_examples_in_the_prompt_judge_the_answer():
    request = Request(DOCTEST_PROMPT)
    assert verify(request, RIGHT) == 1.0
    assert verify(request, WRONG) == 0.0
    assert verify(request, "Use max and min.") == 0.0  # tests, but no code: wrong, not uncheckable


def test_a_prompt_without_tests_cannot_be_checked():
    assert verify(Request("Write a function that clamps a number to a range."), RIGHT) is None
    assert verify(Request("Explain what `yield` does in Python."), "It makes a generator.") is None
    assert not find_tests("```js\nconsole.assert(f(1) === 2)\n```")  # only Python tests count


@linux_only
@pytest.mark.parametrize("prompt", [
    # a fenced block of asserts, with the setup line it needs
    "Write is_even(n).\n\n```python\nfrom math import inf\nn = 4\nassert is_even(n)\nassert not is_even(3)\n```",
    # assert lines in plain text
    "Write is_even(n) so that these hold:\nassert is_even(2)\nassert not is_even(7)",
    # a stub whose docstring has examples
    "Complete:\n\n```python\ndef is_even(n: int) -> bool:\n    \"\"\"True for even n.\n\n    >>> is_even(10)\n    True\n"
    "    >>> is_even(1)\n    False\n    \"\"\"\n```",
    # a buggy version to fix: its definition is replaced by the answer's, its asserts kept
    "This is wrong, fix it:\n```python\ndef is_even(n):\n    return n % 2 == 1\n\nassert is_even(0)\n```",
])
def test_each_kind_of_prompt_test_is_recognised(prompt):
    right = "```python\ndef is_even(n):\n    return n % 2 == 0\n```"
    wrong = "```python\ndef is_even(n):\n    return n % 2 == 1\n```"
    request = Request(prompt)
    assert verify(request, right) == 1.0
    assert verify(request, wrong) == 0.0


@linux_only
def test_an_expected_exception_is_checked():
    prompt = ("Write safe_div(a, b).\n```pycon\n>>> safe_div(4, 2)\n2.0\n>>> safe_div(1, 0)\n"
              "Traceback (most recent call last):\n  ...\nValueError: division by zero\n```")
    raises = "```python\ndef safe_div(a, b):\n    if b == 0:\n        raise ValueError('division by zero')\n    return a / b\n```"
    assert verify(Request(prompt), raises) == 1.0
    assert verify(Request(prompt), "```python\ndef safe_div(a, b):\n    return a / b\n```") == 0.0  # ZeroDivisionError


@linux_only
def test_tests_in_metadata_win_and_unfenced_code_is_found():
    request = Request("Write add(a, b).", metadata={"verify": {"tests": "assert add(2, 3) == 5\n"}})
    assert verify(request, "Sure:\n\ndef add(a, b):\n    return a + b\n\nThat is all.") == 1.0
    assert verify(request, "def add(a, b):\n    return a * b") == 0.0


@linux_only
def test_a_library_the_sandbox_lacks_gives_no_verdict():
    request = Request("Write mean(xs).\nassert mean([1, 2, 3]) == 2")
    numpy = "```python\nimport numpy as np\n\ndef mean(xs):\n    return float(np.mean(xs))\n```"
    assert verify(request, numpy) is None


@linux_only
@pytest.mark.parametrize("index", [0, 2, 53])
def test_humaneval_prompts_carry_their_examples(index):
    """A real HumanEval prompt (its docstring's examples): the canonical solution passes, a
    wrong one does not."""
    problem = problems()[index]
    request = Request(PROMPT.format(prompt=problem["prompt"]))
    assert find_tests(request.prompt)
    canonical = f"```python\n{problem['prompt']}{problem['canonical_solution']}```"
    assert verify(request, canonical) == 1.0
    broken = f"```python\ndef {problem['entry_point']}(*args, **kwargs):\n    return None\n```"
    assert verify(request, broken) == 0.0


def test_the_program_keeps_definitions_and_drops_demos():
    source = program(RIGHT, "```python\nfrom typing import List\n\ndef clamp(x, lo, hi): ...\n```", {"clamp"})
    assert "def clamp" in source and "from typing import List" in source
    assert "print(" not in source and "input()" not in source and "== 99" not in source


# ---- practice prompts -----------------------------------------------------------------------------


@linux_only
def test_practice_prompts_are_checkable_seed_prompts_never_humaneval():
    requests = practice(6, seed=0)
    assert len(requests) == 6
    assert [r.prompt for r in practice(6, seed=0)] == [r.prompt for r in requests]
    assert [r.prompt for r in practice(6, seed=1)] != [r.prompt for r in requests]
    _train, validation = build_recipe().split()
    held_out = {m["content"] for r in validation for m in r["messages"] if m["role"] == "user"}
    humaneval = [p["prompt"].strip() for p in problems()]
    for r in requests:
        assert r.specialist == "coding" and r.metadata["verify"]["tests"].strip()
        assert not any(r.prompt.startswith(v) for v in held_out)  # the recipe's validation side stays out
        assert not any(h in r.prompt for h in humaneval)
        assert verify(r, "I would rather not write code.") == 0.0


@linux_only
def test_every_practice_prompt_is_solved_by_its_reference_answer():
    """The seed's own answer passes its tests for all but a few candidates (those that read files
    or test documentation only), so the verifier judges real solutions as right."""
    candidates = practice_candidates()
    kept = practice(len(candidates), seed=0)
    assert len(candidates) >= 30 and len(kept) >= len(candidates) - 6
    by_record = {c[0][:16]: c for c in candidates}
    for r in kept:
        _key, _prompt, reference, _tests = by_record[r.metadata["practice"]["record"]]
        assert verify(r, reference) == 1.0


def test_the_specialist_declares_verifier_and_practice():
    spec = build_specialist()
    assert spec.verifier is verify and spec.practice is practice and spec.problems() == []
