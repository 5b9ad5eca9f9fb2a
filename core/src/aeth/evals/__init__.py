"""Evaluation: run a specialist's suite against a model, score, save, compare; the code sandbox.

- :mod:`aeth.evals.runner`   cases -> answers -> scores, per-group means, pass@k
- :mod:`aeth.evals.model`    a specialist answering through the ``generate`` hook, as evals see it
- :mod:`aeth.evals.store`    saved reports under ``$AETH_HOME/evals`` and their comparison
- :mod:`aeth.evals.sandbox`  where generated code runs, and nowhere else
- :mod:`aeth.evals.overlap`  checks that benchmark items never leak into training data
"""

from aeth.evals.runner import CaseResult, EvalReport, pass_at_k, run_evaluation, run_suite

__all__ = ["CaseResult", "EvalReport", "pass_at_k", "run_evaluation", "run_suite"]
