"""Evaluation: run a specialist's suite against a model, score, save, compare; the code sandbox.

- :mod:`aeth.evals.runner`   cases -> answers -> scores, per-group means, pass@k
- :mod:`aeth.evals.model`    a specialist answering through the ``generate`` hook, as evals see it
- :mod:`aeth.evals.store`    saved reports under ``$AETH_HOME/evals`` and their comparison
- :mod:`aeth.evals.sandbox`  where generated code runs, and nowhere else
- :mod:`aeth.evals.overlap`  checks that benchmark items never leak into training data

The names below are the public ones plugins use (a coding suite grades answers with
:func:`run_tests` under :class:`Limits`, which passes only checks that ran to their end; a package's tests check with :func:`find_overlaps`
that no benchmark item is in its training data).
"""

from aeth.evals.model import specialist_model
from aeth.evals.overlap import find_overlaps, record_text
from aeth.evals.runner import CaseResult, EvalReport, limited, pass_at_k, run_evaluation, run_suite
from aeth.evals.sandbox import Limits, SandboxResult, SandboxUnavailable, run_python, run_tests

__all__ = [
    "CaseResult",
    "EvalReport",
    "Limits",
    "SandboxResult",
    "SandboxUnavailable",
    "find_overlaps",
    "limited",
    "pass_at_k",
    "record_text",
    "run_evaluation",
    "run_python",
    "run_suite",
    "run_tests",
    "specialist_model",
]
