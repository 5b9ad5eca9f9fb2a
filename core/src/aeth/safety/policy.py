"""Content policies: what a specialist refuses on the way in, and masks or blocks on the way out.

A :class:`Policy` is declared by the plugin that ships a specialist (``Specialist(policy=...)``)
and resolved per request by :func:`policy_for`, most general first, each layer changing only the
fields it sets:

1. aeth's defaults (:class:`Policy`'s own: refuse harmful requests, jailbreak wrappers and
   prompt injections; leave answers alone; ``store.redact`` for storage);
2. ``policy.default.*`` in the config: the operator's defaults for every specialist;
3. the specialist's own policy, as its plugin declares it;
4. ``policy.<specialist>.*`` in the config;
5. ``policy.key:<name>.*`` in the config, for requests made with the API key of that name
   (``aeth serve``): e.g. a key for a children's app with ``strict: true``.

The checks themselves are ordinary plugins on the ``check_input`` and ``check_output`` hooks
(:mod:`aeth.default_plugins.safety`); masking an answer is done where text leaves (the engines'
:class:`~aeth.serving.generation.Generation` and :class:`~aeth.app.Answer`) by :class:`MaskedText`,
which holds a stream back to whole lines so that a value split across two tokens is still found.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields, replace
from typing import Any

__all__ = ["CHECKS", "MaskedText", "Policy", "key_entry", "policy_for", "redact_interaction"]

#: what the input classifier can refuse (a :class:`Policy` field each)
CHECKS = ("harmful", "jailbreak", "injection")


@dataclass(frozen=True)
class Policy:
    """What is refused, masked or blocked for one specialist (see the module docstring).

    - ``harmful``, ``jailbreak``, ``injection``: ``"block"`` refuses such a request before it
      reaches a model, ``"off"`` lets it through;
    - ``strict``: the input classifier blocks at a lower score (child-safe specialists);
    - ``pii``: personal data in answers (emails, phone and card numbers, IBANs, IP addresses,
      SSNs): ``"off"``, ``"mask"`` (replaced by ``<EMAIL>``, ...) or ``"block"`` the answer;
    - ``secrets``: keys, tokens and private keys in answers, likewise;
    - ``redact``: mask personal data in the prompt and answer before the interaction is stored
      (``None``: the ``store.redact`` setting).
    """

    harmful: str = "block"
    jailbreak: str = "block"
    injection: str = "block"
    strict: bool = False
    pii: str = "off"
    secrets: str = "off"
    redact: bool | None = None

    def problems(self) -> list[str]:
        """What is wrong with this policy's values (empty when valid), checked as the config's
        ``policy.*`` fields are."""
        from aeth.config import POLICY_FIELDS

        out = []
        for name, key in POLICY_FIELDS.items():
            value = getattr(self, name)
            if value is None and name == "redact":
                continue
            try:
                key.check(value)
            except ValueError as e:
                out.append(f"{name} {e}, got {value!r}")
        return out

    def updated(self, changes: Mapping[str, Any]) -> Policy:
        """This policy with the fields ``changes`` sets (a config entry or a declared policy's non-defaults)."""
        return replace(self, **dict(changes))

    @property
    def blocks(self) -> tuple[str, ...]:
        """The input checks this policy refuses on."""
        return tuple(name for name in CHECKS if getattr(self, name) == "block")

    def masker(self) -> Callable[[str], str] | None:
        """The function that masks an answer under this policy, or ``None`` when nothing is masked."""
        kinds = [name for name in ("pii", "secrets") if getattr(self, name) == "mask"]
        if not kinds:
            return None

        def mask(text: str) -> str:
            if "secrets" in kinds:
                from aeth.safety import secrets

                text = secrets.mask(text)[0]
            if "pii" in kinds:
                from aeth.safety import pii

                text = pii.mask(text)[0]
            return text

        return mask


def key_entry(name: str) -> str:
    """The ``policy.<entry>`` that applies to requests made with the API key named ``name``."""
    return f"key:{name}"


def policy_for(app: Any, specialist: Any, key: str | None = None) -> Policy:
    """The policy for a request to ``specialist`` (a :class:`~aeth.specialist.Specialist`, or
    ``None`` when none is known yet), made with the API key named ``key`` (if any): the layers of
    the module docstring, each changing the fields it sets."""
    entries = app.config.subtrees("policy")
    policy = Policy(redact=bool(app.config.get("store.redact", False))).updated(entries.get("default") or {})
    if specialist is not None:
        declared = getattr(specialist, "policy", None)
        if declared is not None:
            base = Policy()
            policy = policy.updated({f.name: getattr(declared, f.name) for f in fields(Policy)
                                     if getattr(declared, f.name) != getattr(base, f.name)})
        policy = policy.updated(entries.get(specialist.name) or {})
    if key:
        policy = policy.updated(entries.get(key_entry(key)) or {})
    return policy


def redact_interaction(interaction: Any) -> Any:
    """``interaction`` (a :class:`~aeth.store.Interaction`) with personal data masked in every
    message and in the answer; the same object when there is none."""
    from aeth.safety import pii

    messages = []
    for m in interaction.messages:
        content = m.get("content")
        messages.append({**m, "content": pii.mask(content)[0]} if isinstance(content, str) else m)
    answer = pii.mask(interaction.answer)[0]
    if answer == interaction.answer and messages == interaction.messages:
        return interaction
    return replace(interaction, messages=messages, answer=answer)


class MaskedText:
    """Masks a stream of text deltas with ``mask``, holding text back until a line ends (or the
    stream does), so a value cut between two deltas is masked whole.

    ``push(delta)`` returns the masked complete lines that are safe to emit; ``flush()`` the
    masked rest once the stream ended.
    """

    def __init__(self, mask: Callable[[str], str]):
        self.mask = mask
        self.held = ""

    def push(self, delta: str) -> str:
        text = self.held + delta
        end = text.rfind("\n") + 1
        self.held = text[end:]
        return self.mask(text[:end]) if end else ""

    def flush(self) -> str:
        held, self.held = self.held, ""
        return self.mask(held) if held else ""
