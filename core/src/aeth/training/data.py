"""Chat records -> token ids and labels, in the base model's own chat format, loss on answers only.

A record is rendered turn by turn with the tokenizer's chat template; the tokens each assistant
turn adds are learned (their labels are the token ids), everything else (system prompt, user
turns, the template's markup before an answer) gets the label ``-100`` and costs no loss. The
specialist's system prompt is put first, as at serving time, so the adapter learns the answers in
the context it will see them in.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

IGNORE = -100  #: the label that torch's cross-entropy skips


@dataclass(frozen=True)
class Example:
    """One training sequence: token ids and per-token labels (``IGNORE`` where nothing is learned)."""

    input_ids: tuple[int, ...]
    labels: tuple[int, ...]

    @property
    def trained_tokens(self) -> int:
        """How many tokens carry a loss."""
        return sum(label != IGNORE for label in self.labels)


def _render(tokenizer: Any, messages: Sequence[dict], add_generation_prompt: bool) -> list[int]:
    if getattr(tokenizer, "chat_template", None):
        text = tokenizer.apply_chat_template(list(messages), add_generation_prompt=add_generation_prompt, tokenize=False)
        return tokenizer(text, add_special_tokens=False)["input_ids"]
    text = "".join(f"{m['role'].capitalize()}: {m['content']}\n" for m in messages)
    return tokenizer(text + ("Assistant:" if add_generation_prompt else ""), add_special_tokens=True)["input_ids"]


def encode_record(tokenizer: Any, record: dict, system_prompt: str = "", seq_len: int = 512) -> Example | None:
    """The :class:`Example` for one chat record, truncated to ``seq_len`` tokens.

    Returns None when nothing learnable is left after truncation (the first answer starts past
    ``seq_len``), so such a record is skipped rather than trained on as pure context.
    """
    messages = [dict(role=m["role"], content=m["content"]) for m in record["messages"]]
    if system_prompt and messages[0]["role"] != "system":
        messages.insert(0, {"role": "system", "content": system_prompt})
    ids: list[int] = []
    labels: list[int] = []
    for k, message in enumerate(messages):
        if message["role"] == "assistant":
            prompt = _render(tokenizer, messages[:k], add_generation_prompt=True)
            full = _render(tokenizer, messages[:k + 1], add_generation_prompt=False)
            _check_prefix(ids, prompt)
            _check_prefix(prompt, full)
            context, answer = prompt[len(ids):], full[len(prompt):]
            ids += context + answer
            labels += [IGNORE] * len(context) + answer
        else:
            full = _render(tokenizer, messages[:k + 1], add_generation_prompt=False)
            _check_prefix(ids, full)
            new = full[len(ids):]
            ids += new
            labels += [IGNORE] * len(new)
    ids, labels = ids[:seq_len], labels[:seq_len]
    example = Example(tuple(ids), tuple(labels))
    return example if example.trained_tokens else None


def _check_prefix(shorter: list[int], longer: list[int]) -> None:
    if longer[:len(shorter)] != shorter:
        from aeth.errors import ModelError

        raise ModelError("the model's chat template renders a conversation differently once a turn is added, so "
                         "answer tokens cannot be told apart; use a model whose template is prefix-stable (ChatML, Llama 3)")


def encode_records(tokenizer: Any, records: Iterable[dict], system_prompt: str = "", seq_len: int = 512) -> list[Example]:
    """Every record that keeps something to learn after truncation, encoded."""
    out = []
    for record in records:
        example = encode_record(tokenizer, record, system_prompt, seq_len)
        if example is not None:
            out.append(example)
    return out


def collate(examples: Sequence[Example], pad_id: int) -> dict:
    """A right-padded batch: ``input_ids``, ``attention_mask`` and ``labels`` tensors."""
    import torch

    width = max(len(e.input_ids) for e in examples)
    ids = torch.full((len(examples), width), pad_id, dtype=torch.long)
    labels = torch.full((len(examples), width), IGNORE, dtype=torch.long)
    mask = torch.zeros((len(examples), width), dtype=torch.long)
    for i, e in enumerate(examples):
        n = len(e.input_ids)
        ids[i, :n] = torch.tensor(e.input_ids)
        labels[i, :n] = torch.tensor(e.labels)
        mask[i, :n] = 1
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}
