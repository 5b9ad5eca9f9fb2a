"""Turn a specialist and a request into chat messages and then into token ids."""

from __future__ import annotations

from typing import Any

from aeth.plugins import warn
from aeth.request import Request
from aeth.specialist import Specialist


def build_messages(specialist: Specialist, request: Request) -> list[dict[str, str]]:
    """System prompt (if any), earlier turns, then the user's prompt."""
    messages = []
    if specialist.system_prompt:
        messages.append({"role": "system", "content": specialist.system_prompt})
    messages.extend({"role": m["role"], "content": m["content"]} for m in request.history)
    messages.append({"role": "user", "content": request.prompt})
    return messages


def encode_chat(tokenizer: Any, messages: list[dict[str, str]]) -> list[int]:
    """Token ids for ``messages`` with the assistant's turn opened, in the model's own chat format.

    A tokenizer without a chat template (a base model) gets a plain ``Role: text`` transcript and
    one warning, since its answers will be weaker.
    """
    templated = bool(getattr(tokenizer, "chat_template", None))
    if templated:
        text = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    else:
        warn("the model's tokenizer has no chat template; using a plain 'Role: text' transcript")
        text = "".join(f"{m['role'].capitalize()}: {m['content']}\n" for m in messages) + "Assistant:"
    # a chat template writes its own special tokens (BOS included); a plain transcript needs them
    # added. Not verbose: an input longer than the model's context rolls through the sink cache,
    # so the tokenizer's warning that it "will result in indexing errors" does not apply.
    return tokenizer(text, add_special_tokens=not templated, verbose=False)["input_ids"]
