"""Logit distillation: divergences between a teacher's and a student's next-token distributions.

Every divergence here takes *log-probabilities* over one support (the last dimension) and returns
one value per position, so the training loop can sum them over exactly the tokens it learns, as it
sums the cross-entropy. Both distributions are softened by the temperature ``T`` before comparing,
and the result is multiplied by ``T**2`` (Hinton et al., 2015), so the gradients keep their size
as ``T`` changes.

- ``fkl``: forward KL, KL(p || q) = sum p (log p - log q), p the teacher, q the student (mean-seeking);
- ``rkl``: reverse KL, KL(q || p) (mode-seeking, MiniLLM);
- ``jsd``: generalized Jensen-Shannon with ``beta`` in (0, 1), beta KL(p || m) + (1 - beta) KL(q || m),
  m = beta p + (1 - beta) q (GKD); beta = 0.5 is the symmetric JSD.

Teacher logits can also come from a cache of the teacher's top-k tokens (:class:`TopK`): the
distributions are then compared over k + 1 outcomes, the k tokens and "any other token", which is
exact for those outcomes (see :func:`topk_of` and docs/distillation.md).

Nothing here imports torch at module level.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from aeth.errors import AethError

KINDS = ("fkl", "rkl", "jsd")

#: log-probabilities are floored here: a probability that underflows to 0 (or a token a model
#: masks with -inf) then contributes 0 * finite = 0 instead of 0 * inf = nan, with no gradient
LOG_FLOOR = -1e4


@dataclass(frozen=True)
class KDSettings:
    """How a run distils: the divergence, its weight against the SFT loss, temperature, JSD beta."""

    kind: str = "fkl"
    alpha: float = 0.5
    temperature: float = 1.0
    beta: float = 0.5

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise AethError(f"unknown distillation loss {self.kind!r}; choose one of {', '.join(KINDS)}")
        if not 0.0 <= self.alpha <= 1.0:
            raise AethError(f"--alpha {self.alpha}: the KD weight must be between 0 and 1")
        if not self.temperature > 0:
            raise AethError(f"--kd-temperature {self.temperature}: the temperature must be above 0")
        if not 0.0 < self.beta < 1.0:
            raise AethError(f"--jsd-beta {self.beta}: beta must be strictly between 0 and 1")


@dataclass
class TopK:
    """A teacher's distribution at some positions, as its k most likely tokens and the rest.

    ``ids`` [..., k] are token ids, ``logprobs`` [..., k + 1] the teacher's (softened) log-probability
    of each of them and, last, of all other tokens together.
    """

    ids: Any
    logprobs: Any


def divergence(teacher_logp: Any, student_logp: Any, kind: str = "fkl", beta: float = 0.5) -> Any:
    """Per-position divergence between two log-probability tensors over the same support (last dim)."""
    import torch

    p_log = teacher_logp.float().clamp(min=LOG_FLOOR)
    q_log = student_logp.float().clamp(min=LOG_FLOOR)
    if kind == "fkl":
        return (p_log.exp() * (p_log - q_log)).sum(-1)
    if kind == "rkl":
        return (q_log.exp() * (q_log - p_log)).sum(-1)
    if kind == "jsd":
        # log m = log(beta p + (1 - beta) q), without ever forming a log(0)
        m_log = torch.logsumexp(torch.stack([p_log + math.log(beta), q_log + math.log1p(-beta)]), dim=0)
        return beta * (p_log.exp() * (p_log - m_log)).sum(-1) + (1 - beta) * (q_log.exp() * (q_log - m_log)).sum(-1)
    raise AethError(f"unknown distillation loss {kind!r}; choose one of {', '.join(KINDS)}")


def token_divergence(student_logits: Any, teacher: Any, settings: KDSettings) -> Any:
    """``settings``' divergence at each position, times T**2.

    ``teacher`` is the teacher's logits (same shape as ``student_logits``: the full distribution)
    or a :class:`TopK` (the student is then reduced to the same k + 1 outcomes).
    """
    import torch

    t = settings.temperature
    student_logp = torch.log_softmax(student_logits.float() / t, dim=-1)
    if isinstance(teacher, TopK):
        student_logp = _coarsen(student_logp, teacher.ids)
        teacher_logp = teacher.logprobs.float()
    else:
        teacher_logp = torch.log_softmax(teacher.float() / t, dim=-1)
    return divergence(teacher_logp, student_logp, settings.kind, settings.beta) * (t * t)


def mixed_loss(kd: Any, sft: Any, alpha: float) -> Any:
    """``alpha * kd + (1 - alpha) * sft`` (both already reduced the same way)."""
    return alpha * kd + (1.0 - alpha) * sft


def topk_of(teacher_logits: Any, k: int, temperature: float) -> TopK:
    """The teacher's k most likely tokens at each position, softened by ``temperature``, and the
    log-probability of all other tokens together (computed from the logits, so it is exact)."""
    import torch

    logp = torch.log_softmax(teacher_logits.float() / temperature, dim=-1)
    k = min(k, logp.shape[-1])
    top, ids = logp.topk(k, dim=-1)
    rest = torch.logsumexp(logp.scatter(-1, ids, float("-inf")), dim=-1, keepdim=True)
    return TopK(ids, torch.cat([top, rest.clamp(min=LOG_FLOOR)], dim=-1))


def _coarsen(logp: Any, ids: Any) -> Any:
    """``logp`` [..., V] reduced to [..., k + 1]: the k tokens ``ids``, then all others together."""
    import torch

    chosen = logp.gather(-1, ids)
    rest = torch.logsumexp(logp.scatter(-1, ids, float("-inf")), dim=-1, keepdim=True)
    return torch.cat([chosen, rest], dim=-1)


# ---- vocabularies ------------------------------------------------------------------------------


def check_vocabularies(student_tokenizer: Any, teacher_tokenizer: Any, student: str, teacher: str,
                       specialist: str = "SPECIALIST") -> None:
    """Refuse a teacher whose token ids do not mean the student's tokens.

    Logit distillation compares two distributions id by id, so every id must name the same token
    on both sides and the vocabularies must be the same size. The error names both models and the
    first id where they differ, and points to sequence-level distillation, which needs only text.
    """
    s_vocab, t_vocab = student_tokenizer.get_vocab(), teacher_tokenizer.get_vocab()
    if s_vocab == t_vocab:
        return
    s_by_id, t_by_id = _by_id(s_vocab), _by_id(t_vocab)
    first = next((i for i in range(max(len(s_by_id), len(t_by_id))) if s_by_id.get(i) != t_by_id.get(i)), None)
    if first is None and len(s_vocab) == len(t_vocab):
        return
    where = "" if first is None else (f"; the first difference is token id {first}: {_show(s_by_id.get(first))} for "
                                      f"the student, {_show(t_by_id.get(first))} for the teacher")
    raise AethError(
        f"teacher {teacher!r} and student {student!r} do not share a vocabulary ({len(t_vocab)} vs {len(s_vocab)} "
        f"tokens{where}). Logit distillation compares token distributions id by id, so both need the same "
        f"tokenizer: pick a teacher of the student's model family, or distil from the teacher's text with "
        f"`aeth distill collect {specialist} --teacher {teacher}` (sequence-level KD works across vocabularies)")


def check_output_sizes(student_model: Any, teacher_model: Any, tokenizer: Any, student: str, teacher: str) -> int:
    """The number of logits both models produce, which must cover the shared tokenizer.

    Some models pad their output layer beyond the tokenizer (to a multiple of 64 or 128); the padding
    rows are no token, so distributions are compared over the first ``min`` logits of each.
    """
    sizes = {name: model.get_output_embeddings().weight.shape[0]
             for name, model in ((student, student_model), (teacher, teacher_model))}
    needed = len(tokenizer)
    short = [f"{name!r} has {n}" for name, n in sizes.items() if n < needed]
    if short:
        raise AethError(f"the tokenizer has {needed} tokens but {' and '.join(short)} output logits; "
                        "logit distillation needs a logit for every token on both sides")
    return min(sizes.values())


def _by_id(vocab: dict[str, int]) -> dict[int, str]:
    return {i: token for token, i in vocab.items()}


def _show(token: str | None) -> str:
    return "no token" if token is None else repr(token)
