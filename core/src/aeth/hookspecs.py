"""The hooks a plugin can implement (pluggy project ``"aeth"``).

A plugin module or object implements any subset of these with ``@aeth.hookimpl``; an
implementation may accept fewer arguments than the spec lists. Core calls each hook at one
well-defined moment, documented below, through pluggy: ``tryfirst``/``trylast`` and wrappers
(``wrapper=True``) work as pluggy documents, and implementations run in pluggy's order (tryfirst
ones, then the most recently registered plugin first, aeth's defaults last).

``app`` is the :class:`aeth.app.Aeth` making the call: read its ``config``, use its ``models`` and
``adapters``; never a process-wide copy. An implementation that raises costs one warning naming its
plugin and counts as returning ``None``; an :class:`~aeth.errors.AethError` from ``generate``,
``train`` or ``evaluate`` is a message for the user and passes through.
"""

from __future__ import annotations

import pluggy

PROJECT = "aeth"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def register_specialists(register, app):
    """Add specialists.

    Called once per application when it first needs the list of specialists (``aeth run``,
    ``aeth specialists``, ``aeth plugins``...), with that application (register under its config,
    e.g. ``app.config["model.default"]``). Call ``register(Specialist(...))`` once per specialist.
    Every plugin's implementation is called; core validates each specialist and records which
    plugin registered it. When two plugins register one name, the one that already serves it keeps
    it (aeth's own, then the distribution installed first); the other gets one warning, and
    ``specialists.<name>.plugin`` in config chooses explicitly. The return value is ignored.
    """


@hookspec
def register_teachers(register, app):
    """Add teacher backends for distillation.

    Called once per application when it first needs the list of teachers. Call
    ``register(name, teacher)`` once per teacher. Every plugin's implementation is called; a name
    registered twice goes to the plugin that already serves it, as for specialists, and the other
    gets a warning. The return value is ignored.
    """


@hookspec
def register_commands(cli):
    """Add CLI commands.

    Called from ``aeth.cli.main()`` (not at import) with the root ``click.Group``; add commands
    with ``@cli.command()``. Every plugin's implementation is called. Keep heavy imports inside
    the command functions so ``aeth --help`` stays fast. The return value is ignored.
    """


@hookspec
def route(request, specialists, app):
    """Bid for who should answer ``request``.

    Called for every request that does not name a specialist. ``specialists`` maps name to
    :class:`~aeth.specialist.Specialist`. Return a list of :class:`~aeth.request.Bid` (or
    ``None`` to abstain). Every plugin's implementation is called; core picks the highest-scoring
    bid across all of them. A tie goes to the bid pluggy returned first: a ``tryfirst``
    implementation, else the most recently registered plugin (so an installed router wins a tie
    with aeth's default one).
    """


@hookspec(firstresult=True)
def generate(specialist, request, context):
    """Produce the answer to ``request`` as a stream.

    Called once per request after routing. Return an iterator of text chunks, yielded as they are
    produced, or ``None`` to let the next implementation answer. The first non-``None`` result
    wins; aeth's default generator runs last. Fill ``context.stats`` with ``tokens_in``,
    ``tokens_out`` and ``finish_reason`` when known. ``context.app`` is the answering application
    (its ``models`` pool, ``adapters`` and ``config``).
    """


@hookspec(firstresult=True)
def train(specialist, plan, app):
    """Fine-tune ``specialist`` according to ``plan`` and return a :class:`aeth.TrainResult`.

    Called by :func:`aeth.training.run` (``aeth train``, ``aeth distill train``) in every
    training process, once the run has its directory. ``plan`` is an :class:`aeth.TrainPlan`:
    every setting, ``plan.run_dir`` (write checkpoints and ``metrics.jsonl`` there) and
    ``plan.resume`` (continue from the newest checkpoint in it). ``app`` is the
    :class:`~aeth.app.Aeth` to take configuration (``app.config``) and the adapter store
    (``app.adapters``) from. Callers use from the result: ``version`` (the new
    :class:`~aeth.models.adapters.AdapterVersion`, stored but not active; the promotion gate then
    judges it; ``None`` when nothing was stored), ``interrupted`` (true: a checkpoint was saved
    and the run can be resumed; no gate runs), ``steps``, ``train_loss``, ``val_loss`` and
    ``first_val_loss`` (and, distilling, ``val_kd_loss`` / ``first_val_kd_loss``) for the
    summary. The first non-``None`` result wins; return ``None`` to let another implementation
    (aeth's default trainer runs last) handle the plan.
    """


@hookspec(firstresult=True)
def evaluate(specialist, model, suite, app):
    """Run eval ``suite`` for ``specialist`` against ``model`` and return an eval report.

    ``model`` is a callable ``prompt -> answer text`` (so a suite can be run against any backend).
    Called by ``aeth.evals.run_evaluation(app, ...)``. The first non-``None`` result wins; aeth's default
    runner runs last.
    """


@hookspec
def check_input(request, specialist, app):
    """Content policy on the way in.

    Called for every request once routing chose ``specialist`` (the
    :class:`~aeth.specialist.Specialist` that would answer) and before any model sees it. Return
    ``None`` to allow, or a non-empty string giving the reason to block (name the rule that
    fired: the user reads it). Every plugin's implementation is called; any block wins and the
    request is refused with that plugin's name and reason (``finish_reason`` "content_filter"
    over the API). aeth's own (:mod:`aeth.default_plugins.safety`) applies the specialist's
    :class:`~aeth.safety.policy.Policy`: ``aeth.safety.policy.policy_for(app, specialist, key)``
    gives it, ``key`` being ``request.metadata.get("api_key")``.
    """


@hookspec
def check_output(request, response, specialist, app):
    """Content policy on the way out.

    Called once the answer is complete, with the :class:`~aeth.request.Response` (its text
    already masked where the specialist's policy masks). Return ``None`` to allow, or a non-empty
    string giving the reason to block. Every plugin's implementation is called; any block wins.
    Streaming output already shown cannot be recalled, so the CLI reports the block and exits
    non-zero; ``--json`` output and the API withhold the text.
    """
