"""Preference records -> what the DPO and KTO objectives train on, in the base model's chat format.

Two record formats, chat records like SFT's (``{"messages": [...]}``) whose *last* message is the
assistant's completion being judged; every message before it is the prompt (system and user
turns, and earlier assistant turns, which are context here, never learned):

- **DPO** (a preference pair): the last message is the preferred answer, ``"rejected"`` the
  other answer to the same prompt, as text::

      {"messages": [{"role": "user", "content": "2+2?"}, {"role": "assistant", "content": "4"}],
       "rejected": "5"}

- **KTO** (one judged answer): ``"label"`` says whether the answer is desirable::

      {"messages": [{"role": "user", "content": "2+2?"}, {"role": "assistant", "content": "4"}],
       "label": true}

  A DPO record is also accepted by KTO: its preferred answer becomes a desirable example and its
  rejected one an undesirable example (the rejected ones go after all others, as trl unpairs).

Other keys (an interaction id, a score) are ignored. The specialist's system prompt is put first,
as for SFT and at serving time. Tokens are split as trl splits them: the prompt rendered with the
generation prompt, the completion the tokens the chat template adds for the answer (its end
marker included); a sequence is cut at ``seq_len`` tokens from its start, and a record whose prompt
alone fills ``seq_len`` is dropped (nothing of its answer would be left to judge).

KTO's reference point needs each example's *mismatched* completion: the completion of the previous
example in its chunk of ``chunk`` (the run's batch size) consecutive examples, the first taking the
last's, as trl rotates them (a short last chunk joins the one before, where trl leaves it short).
The loop keeps each chunk together in one micro-batch and shuffles whole chunks
(:meth:`aeth.learning.objectives.KTOObjective.groups`), so the mismatched completions of a batch
are its own completions, paired with other prompts, as trl's sequential batches have them. Two
neighbours with the same prompt make a matched "mismatched" pair: records built from feedback
should not put several answers to one prompt next to each other.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any

from aeth.errors import AethError, ModelError
from aeth.training.data import IGNORE, Example, encode_record


class PreferenceRecordError(AethError):
    """A preference record is not in the format its objective reads (the message says which and how)."""


@dataclass(frozen=True)
class PreferencePair:
    """A DPO pair: the preferred and the rejected completion of one prompt (the same prompt tokens),
    and, once computed, the reference model's log-probability of each."""

    chosen: Example
    rejected: Example
    ref_chosen: float | None = None
    ref_rejected: float | None = None

    @property
    def sequences(self) -> tuple[Example, Example]:
        """What the model scores for this pair: chosen, rejected."""
        return self.chosen, self.rejected

    def with_reference(self, chosen: float, rejected: float) -> PreferencePair:
        """This pair with the reference log-probabilities of its :attr:`sequences`."""
        return replace(self, ref_chosen=chosen, ref_rejected=rejected)


@dataclass(frozen=True)
class KTOExample:
    """A KTO example: one completion, whether it is ``desirable``, ``kl`` (this prompt with another
    example's completion, for the KL reference point), the chunk it shares its KL completions with
    (``group``), and the reference log-probabilities of both sequences."""

    example: Example
    desirable: bool
    kl: Example
    group: int = 0
    ref: float | None = None
    ref_kl: float | None = None

    @property
    def sequences(self) -> tuple[Example, Example]:
        """What the model scores for this example: its completion, its mismatched KL completion."""
        return self.example, self.kl

    def with_reference(self, completion: float, kl: float) -> KTOExample:
        """This example with the reference log-probabilities of its :attr:`sequences`."""
        return replace(self, ref=completion, ref_kl=kl)


def split_prompt(tokenizer: Any, messages: list[dict], system_prompt: str = "") -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(prompt ids, completion ids) of a conversation whose last message is the assistant's answer."""
    whole = encode_record(tokenizer, {"messages": messages}, system_prompt, seq_len=1 << 62)
    if whole is None:
        raise PreferenceRecordError("a preference record's answer renders to no tokens; give it some text")
    start = len(whole.labels)
    while start > 0 and whole.labels[start - 1] != IGNORE:  # the answer is the last run of learned tokens
        start -= 1
    return whole.input_ids[:start], whole.input_ids[start:]


def sequence(prompt: tuple[int, ...], completion: tuple[int, ...], seq_len: int) -> Example:
    """``prompt + completion`` with only the completion learned, cut to ``seq_len`` tokens."""
    ids = (prompt + completion)[:seq_len]
    labels = ((IGNORE,) * len(prompt) + completion)[:seq_len]
    return Example(ids, labels)


def _prompt_and_answer(record: dict, where: str, needs: str) -> tuple[list[dict], str]:
    messages = record.get("messages") if isinstance(record, dict) else None
    if not messages or messages[-1].get("role") != "assistant" or len(messages) < 2:
        raise PreferenceRecordError(f"{where}: a preference record needs \"messages\" ending in the assistant's answer "
                                    f"after at least one prompt message, and {needs} (see aeth.learning.preferences)")
    return [dict(role=m["role"], content=m["content"]) for m in messages[:-1]], messages[-1]["content"]


def encode_pairs(tokenizer: Any, records: Iterable[dict], system_prompt: str = "", seq_len: int = 512) -> list[PreferencePair]:
    """The DPO pairs of ``records`` (format in the module docstring), those whose prompt fits ``seq_len``."""
    pairs = []
    for n, record in enumerate(records):
        prompt, answer = _prompt_and_answer(record, f"record {n}", '"rejected": the other answer, as text')
        if not isinstance(record.get("rejected"), str):
            raise PreferenceRecordError(f'record {n}: a DPO record needs "rejected", the answer it prefers less, as text')
        chosen_prompt, chosen = split_prompt(tokenizer, [*prompt, {"role": "assistant", "content": answer}], system_prompt)
        rejected_prompt, rejected = split_prompt(tokenizer, [*prompt, {"role": "assistant", "content": record["rejected"]}],
                                                 system_prompt)
        if chosen_prompt != rejected_prompt:
            raise ModelError("the chat template renders the same prompt differently before two answers; use a model "
                             "whose template is prefix-stable (ChatML, Llama 3)")
        if len(chosen_prompt) < seq_len:
            pairs.append(PreferencePair(sequence(chosen_prompt, chosen, seq_len), sequence(chosen_prompt, rejected, seq_len)))
    return pairs


def kto_records(records: Iterable[dict]) -> list[tuple[list[dict], str, bool]]:
    """(prompt messages, answer, desirable) of each KTO record, DPO records unpaired (rejected answers last)."""
    judged, rejected = [], []
    for n, record in enumerate(records):
        prompt, answer = _prompt_and_answer(record, f"record {n}", '"label": true or false (or "rejected", as for DPO)')
        if isinstance(record.get("rejected"), str):
            judged.append((prompt, answer, True))
            rejected.append((prompt, record["rejected"], False))
        elif isinstance(record.get("label"), bool):
            judged.append((prompt, answer, record["label"]))
        else:
            raise PreferenceRecordError(f'record {n}: a KTO record needs "label": true (a desirable answer) or false')
    return judged + rejected


def encode_kto(tokenizer: Any, records: Iterable[dict], system_prompt: str = "", seq_len: int = 512,
               chunk: int = 4) -> list[KTOExample]:
    """The KTO examples of ``records`` (format in the module docstring) whose prompt fits ``seq_len``,
    each with its mismatched KL completion from its chunk of ``chunk`` consecutive examples.

    A last chunk shorter than ``chunk`` joins the one before it (trl leaves it short): every chunk
    is then one micro-batch of at least the batch size, and no example is left out of training.
    """
    split = []
    for prompt, answer, desirable in kto_records(records):
        ids, completion = split_prompt(tokenizer, [*prompt, {"role": "assistant", "content": answer}], system_prompt)
        if len(ids) < seq_len:
            split.append((ids, completion, desirable))
    chunk = max(1, chunk)
    starts = list(range(0, len(split), chunk))
    if len(starts) > 1 and len(split) - starts[-1] < chunk:
        starts.pop()
    examples = []
    for group, start in enumerate(starts):
        members = split[start:starts[group + 1] if group + 1 < len(starts) else len(split)]
        for k, (ids, completion, desirable) in enumerate(members):
            other = members[k - 1][1]  # k = 0 takes the chunk's last completion
            examples.append(KTOExample(sequence(ids, completion, seq_len), desirable, sequence(ids, other, seq_len), group))
    return examples


def groups(examples: list[KTOExample]) -> list[list[int]]:
    """Indices of ``examples`` chunk by chunk (the micro-batches KTO trains on)."""
    found: dict[int, list[int]] = {}
    for i, example in enumerate(examples):
        found.setdefault(example.group, []).append(i)
    return list(found.values())
