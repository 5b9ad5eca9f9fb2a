"""The few exceptions aeth raises on purpose.

Each message is written for the person at the keyboard: what went wrong, where, and how to fix
it. The CLI shows them as they are (one line, non-zero exit); library users can catch
:class:`AethError` to handle every one of them.
"""

from __future__ import annotations

__all__ = ["AethError", "ConfigError", "ContextOverflow", "InputTooLong", "ModelError", "PluginError", "PolicyBlocked",
           "RoutingError", "SpecialistError"]


class AethError(Exception):
    """Base of every error whose message a user can act on."""


class ConfigError(AethError):
    """The configuration has problems; all of them are reported together."""

    def __init__(self, problems: list[str], source: str = "configuration"):
        self.problems = list(problems)
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"{len(self.problems)} problem(s) in the {source}:\n{lines}")


class PluginError(AethError):
    """A plugin broke a rule of the plugin system (bad registration, failing hook)."""


class SpecialistError(AethError):
    """A specialist definition is invalid, or the specialist asked for does not exist."""


class ModelError(AethError):
    """A base model cannot be found, is unsafe to load, or fails to load."""


class InputTooLong(AethError):
    """An input is longer than ``generation.max_input_tokens`` (or another bound on how much one
    request may hold); refused before any work on it. ``tokens`` is its size, ``limit`` the bound."""

    def __init__(self, tokens: int, limit: int, *, what: str = "the input", bound: str = "generation.max_input_tokens",
                 fix: str = "shorten it, or raise the limit with -o generation.max_input_tokens=N"):
        self.tokens, self.limit = tokens, limit
        super().__init__(f"{what} is {tokens:,} tokens, more than {bound} ({limit:,}): {fix}")


class ContextOverflow(AethError):
    """The prompt and the answer it may grow to do not fit the model's context (``limit`` tokens):
    refused before any generation, as an OpenAI-style server does."""

    def __init__(self, prompt_tokens: int, max_tokens: int, limit: int):
        self.prompt_tokens, self.max_tokens, self.limit = prompt_tokens, max_tokens, limit
        super().__init__(f"This model's maximum context length is {limit} tokens; the messages have {prompt_tokens} "
                         f"tokens and max_tokens asks for {max_tokens} more. Shorten the messages or lower max_tokens.")


class RoutingError(AethError):
    """The router cannot work (its embedding model is missing, no specialist to route to)."""


class PolicyBlocked(AethError):
    """A ``check_input`` or ``check_output`` hook blocked the request."""

    def __init__(self, plugin: str, reason: str, stage: str, specialist: str | None = None):
        self.plugin, self.reason, self.stage, self.specialist = plugin, reason, stage, specialist
        super().__init__(f"{stage} blocked by plugin {plugin!r}: {reason}")
