"""The built-in distillation teachers, plus one per ``teachers.<name>`` config entry.

Built-ins: ``local`` (the config's ``model.default`` through aeth's own decode loop), ``openai``
(gpt-4o-mini, key in ``$OPENAI_API_KEY``), ``anthropic`` (claude-3-5-haiku-latest, key in
``$ANTHROPIC_API_KEY``) and ``ollama`` (llama3.2 on 127.0.0.1:11434, no key). A config entry of
a built-in's name changes that built-in; an entry with problems costs one warning (asking for
that teacher by name raises its ConfigError), never the other teachers.
"""

from __future__ import annotations

from aeth.hookspecs import hookimpl


@hookimpl
def register_teachers(register, app):
    from aeth.distill.teachers import BUILTIN_TEACHERS, teacher_from_config
    from aeth.errors import ConfigError
    from aeth.plugins import warn

    entries = {**{name: {} for name in BUILTIN_TEACHERS}, **app.config.subtrees("teachers")}
    for name, entry in entries.items():
        try:
            teacher = teacher_from_config(name, entry, app)
        except ConfigError as e:
            warn(f"teacher {name!r} was skipped: " + "; ".join(e.problems))
            continue
        register(name, teacher)
