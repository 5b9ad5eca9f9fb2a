"""The HumanEval suite: finding the function in an answer, and the real tests run in the sandbox."""

import sys

import pytest

from aetherial_coding.evals import build_suite, extract_function, passes, problems, program

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
linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the code sandbox is Linux-only")


@pytest.mark.parametrize("answer", [
    FENCED,
    PLAIN,
    "```\ndef add(a, b):\n    return a + b\n```",                       # untagged fence
    "```py\nimport math\n\nasync def add(a, b):\n    return a + b\n```",   # async def, other tag
    "```python\nclass M:\n    def add(self, a, b):\n        return a + b\n```",  # method
    "1. Write it:\n\n   ```python\n   def add(a, b):\n       return a + b\n   ```",  # indented fence
    "```python\ndef add(a, b):\n    return a + b",                       # unterminated fence
])
def test_a_parseable_function_is_found(answer):
    assert "def add(" in extract_function(answer, "add")


@pytest.mark.parametrize("answer", [
    "To add two numbers, return a plus b.",                                # prose
    "",                                                                     # nothing
    "```python\ndef add(a, b)\n    return a + b\n```",                     # missing colon
    "def add(a, b):\n    x = 1\n    return a + * b\n\nThat's it.",         # error deep in the body
    "```python\ndef plus(a, b):\n    return a + b\n```",                   # wrong name
    "```javascript\nfunction add(a, b) { return a + b; }\n```",            # wrong language
    "```python\nprint('def add(a, b): pass')\n```",                         # name only inside a string
    "```python\ndef add(a, b):\n    return a +\n```\ndone",                # a broken fence is not rescued
])
def test_anything_else_is_not(answer):
    assert extract_function(answer, "add") is None


def test_humaneval_is_read_from_its_package():
    probs = problems()
    assert len(probs) == 164
    assert len({p["task_id"] for p in probs}) == 164
    assert {"prompt", "entry_point", "canonical_solution", "test"} <= set(probs[0])
    suite = build_suite()
    cases = list(suite.cases())
    assert [c.id for c in cases] == [p["task_id"] for p in probs]
    assert probs[0]["prompt"] in cases[0].prompt and "```python" in cases[0].prompt


@linux_only
def test_every_canonical_solution_passes_in_the_sandbox():
    # the harness itself is right: HumanEval's reference solutions, given as a model would answer
    # (whole function in a fence), pass all 164 problems; an empty body fails them
    failed = [p["task_id"] for p in problems()
              if not passes(p, f"```python\n{p['prompt']}{p['canonical_solution']}```")]
    assert failed == []


@linux_only
def test_wrong_and_body_only_answers():
    p = problems()[0]  # has_close_elements
    assert not passes(p, "```python\ndef has_close_elements(numbers, threshold):\n    return False\n```")
    assert not passes(p, "I cannot do that.")
    assert passes(p, p["canonical_solution"])  # just the body, as a completion model gives it
    assert program(p, "no code") is None


@linux_only
def test_a_hostile_answer_is_contained_and_fails():
    p = problems()[0]
    hostile = "```python\ndef has_close_elements(numbers, threshold):\n    import os\n    os.system('rm -rf ~')\n    while True: pass\n```"
    assert not passes(p, hostile)


def test_no_humaneval_problem_leaks_into_the_training_data():
    from aeth.evals import find_overlaps, record_text
    from aetherial_coding.recipe import build_recipe

    records = build_recipe().records()
    bench = [p["prompt"] + p["canonical_solution"] for p in problems()]
    assert find_overlaps([record_text(r) for r in records], bench, n=13) == []


GAMES = {
    "SystemExit": "    raise SystemExit(0)\n",
    "os._exit": "    import os\n    os._exit(0)\n",
    "exit at import": "    pass\nimport sys\nsys.exit(0)\n",
}


@linux_only
@pytest.mark.parametrize("body", GAMES.values(), ids=GAMES.keys())
def test_an_answer_that_exits_before_its_tests_end_fails_every_problem(body):
    """Before grading required the harness's nonce, these scored a pass on 40 of 40 problems."""
    for p in problems()[:40:8]:
        name = p["entry_point"]
        answer = f"```python\n{p['prompt'].split('def ' + name)[0]}def {name}(*args, **kwargs):\n{body}```"
        assert program(p, answer) is not None
        assert not passes(p, answer), p["task_id"]
