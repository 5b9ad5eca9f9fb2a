"""Evaluation: run a specialist's suite against a model and report per-case and mean scores."""

from aeth.evals.runner import CaseResult, EvalReport, run_evaluation, run_suite

__all__ = ["CaseResult", "EvalReport", "run_evaluation", "run_suite"]
