"""The hooks a plugin can implement (pluggy project ``"aeth"``).

A plugin module or object implements any subset of these with ``@aeth.hookimpl``; an
implementation may accept fewer arguments than the spec lists. Core calls each hook at one
well-defined moment, documented below.
"""

from __future__ import annotations

import pluggy

PROJECT = "aeth"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def register_specialists(register):
    """Add specialists.

    Called once per process when core first needs the list of specialists (``aeth run``,
    ``aeth specialists``, ``aeth plugins``...). Call ``register(Specialist(...))`` once per
    specialist. Every plugin's implementation is called; core validates each specialist, records
    which plugin registered it, and refuses a name already taken with one warning naming both
    plugins. The return value is ignored.
    """


@hookspec
def register_teachers(register):
    """Add teacher backends for distillation.

    Called once per process when core first needs the list of teachers. Call
    ``register(name, teacher)`` once per teacher. Every plugin's implementation is called; a name
    already taken is refused with a warning. The return value is ignored.
    """


@hookspec
def register_commands(cli):
    """Add CLI commands.

    Called from ``aeth.cli.main()`` (not at import) with the root ``click.Group``; add commands
    with ``@cli.command()``. Every plugin's implementation is called. Keep heavy imports inside
    the command functions so ``aeth --help`` stays fast. The return value is ignored.
    """


@hookspec
def route(request, specialists):
    """Bid for who should answer ``request``.

    Called for every request that does not name a specialist. ``specialists`` maps name to
    :class:`~aeth.specialist.Specialist`. Return a list of :class:`~aeth.request.Bid` (or
    ``None`` to abstain). Every plugin's implementation is called; core picks the highest-scoring
    bid across all of them (ties go to the earlier plugin).
    """


@hookspec(firstresult=True)
def generate(specialist, request, context):
    """Produce the answer to ``request`` as a stream.

    Called once per request after routing. Return an iterator of text chunks, yielded as they are
    produced, or ``None`` to let the next implementation answer. The first non-``None`` result
    wins; aeth's default generator runs last. Fill ``context.stats`` with ``tokens_in``,
    ``tokens_out`` and ``finish_reason`` when known.
    """


@hookspec(firstresult=True)
def train(specialist, plan):
    """Fine-tune ``specialist`` according to ``plan`` and return the new adapter version.

    Called when aeth trains a specialist (``plan`` holds data, hyperparameters and where to
    write). The first non-``None`` result wins; return ``None`` to let another implementation
    handle the plan.
    """


@hookspec(firstresult=True)
def evaluate(specialist, model, suite):
    """Run eval ``suite`` for ``specialist`` against ``model`` and return an eval report.

    ``model`` is a callable ``prompt -> answer text`` (so a suite can be run against any backend).
    Called by ``aeth.evals.run_evaluation``. The first non-``None`` result wins; aeth's default
    runner runs last.
    """


@hookspec
def check_input(request):
    """Content policy on the way in.

    Called for every request before routing. Return ``None`` to allow, or a non-empty string
    giving the reason to block. Every plugin's implementation is called; any block wins and the
    request is refused with that plugin's name and reason.
    """


@hookspec
def check_output(request, response):
    """Content policy on the way out.

    Called once the answer is complete, with the :class:`~aeth.request.Response`. Return ``None``
    to allow, or a non-empty string giving the reason to block. Every plugin's implementation is
    called; any block wins. Streaming output already shown cannot be recalled, so the CLI reports
    the block and exits non-zero; ``--json`` output and the API withhold the text.
    """
