"""aeth's content policy checks, on the public ``check_input`` and ``check_output`` hooks.

Each request is checked against the :class:`~aeth.safety.policy.Policy` of the specialist that
routing chose (and of the API key that asked):

- on the way in, the prompt goes through the offline classifier of :mod:`aeth.safety.harm`
  (harmful requests, jailbreak wrappers, prompt injections), for the checks the policy blocks;
- on the way out, an answer holding personal data (``pii: block``) or a secret
  (``secrets: block``) is blocked. Masking (``mask``) happened while the text streamed
  (:class:`~aeth.safety.policy.MaskedText`), so a masked answer passes here.

A refusal names the rule that fired and the config key that turns the check off. Disable all of
it with ``AETH_LOAD_PLUGINS`` or ``policy.default.*`` set to ``off``.
"""

from __future__ import annotations

from aeth import hookimpl


@hookimpl
def check_input(request, specialist, app):
    policy = app.policy(specialist, request)
    if not policy.blocks or not request.prompt:
        return None
    from aeth.safety.harm import classifier

    found = classifier(app).check(request.prompt, strict=policy.strict, categories=policy.blocks)
    if found is None:
        return None
    where = f"policy.{specialist.name}.{found.category}=off" if specialist is not None else \
        f"policy.default.{found.category}=off"
    return f"refused as a {found.category} request ({found.rule}); an operator can allow it with {where}"


@hookimpl
def check_output(request, response, specialist, app):
    policy = app.policy(specialist, request)
    name = specialist.name if specialist is not None else "default"
    if policy.secrets == "block":
        from aeth.safety import secrets

        found = secrets.find(response.text)
        if found:
            kinds = ", ".join(sorted({f.kind for f in found}))
            return f"the answer holds a secret ({kinds}); policy.{name}.secrets=mask masks it instead"
    if policy.pii == "block":
        from aeth.safety import pii

        found = pii.find(response.text)
        if found:
            kinds = ", ".join(sorted({f.kind for f in found}))
            return f"the answer holds personal data ({kinds}); policy.{name}.pii=mask masks it instead"
    return None
