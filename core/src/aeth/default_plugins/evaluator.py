"""aeth's default evaluator: runs a suite case by case with :func:`aeth.evals.run_suite`."""

from __future__ import annotations

from aeth.hookspecs import hookimpl


@hookimpl(trylast=True)
def evaluate(specialist, model, suite):
    from aeth.evals.runner import run_suite

    return run_suite(specialist, suite, model, progress=True)
