"""What the loop minimises and how it validates: answer-token cross-entropy, mixed with a
teacher's distillation loss when the plan names a teacher; or, with ``plan.objective`` dpo or
kto, a preference loss (:mod:`aeth.learning.objectives`).

The loop only talks to an objective: :func:`encode` turns records into what it trains on,
``items(batch)`` counts what a step's loss is a mean over (trained tokens for SFT, pairs or
examples for DPO and KTO), ``loss(model, examples, items)`` for a micro-batch, ``validate(...)``
for the metrics of a validation pass (``val_loss``, and ``val_kd_loss`` with a teacher),
``prepare(...)`` for work before the first step (the reference pass of DPO and KTO) and
``groups(...)`` for micro-batches that must stay together. Whether a teacher or a reference is in
the loop is the objective's business alone.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aeth.training.data import IGNORE, collate, encode_records
from aeth.training.distributed import Dist, unwrap


def learned(example: Any) -> int:
    """Tokens of ``example`` that carry a loss once labels are shifted (the model predicts t+1 from t)."""
    return sum(label != IGNORE for label in example.labels[1:])


def token_loss(model: Any, examples: list, pad_id: int, items: int, sparse: bool = True, teacher: Any = None) -> Any:
    """Summed token loss of ``examples`` divided by ``items``, the trained tokens of the whole step on
    all ranks, so micro-batches and ranks add up to one mean over the step's global batch.

    With ``sparse`` (models whose forward takes ``logits_to_keep``), the vocabulary projection and
    the cross-entropy run only at positions whose next token is learned in some row of the batch:
    prompt tokens (system, user turns) cost no lm_head and no log-softmax over the vocabulary. The
    loss is the same sum as transformers' own (fp32 logits, labels shifted by one).

    With a ``teacher`` (:class:`~aeth.training.teacher_logits.LoopTeacher`), each learned token's
    loss is ``alpha * divergence(teacher, student) + (1 - alpha) * cross-entropy``, the teacher's
    distribution taken at exactly those positions of the same inputs.
    """
    import torch

    batch = collate(examples, pad_id)
    device = next(model.parameters()).device
    labels = batch.pop("labels").to(device)
    inputs = {k: v.to(device) for k, v in batch.items()}
    if not sparse and teacher is None:
        return model(**inputs, labels=labels, num_items_in_batch=max(1, items)).loss
    targets = labels[:, 1:]
    keep = (targets != IGNORE).any(dim=0).nonzero().flatten()
    if keep.numel() == 0:  # nothing learned here (a rank's padding share): a zero that keeps the graph
        keep = torch.zeros(1, dtype=torch.long, device=device)
    logits = model(**inputs, logits_to_keep=keep).logits if sparse else model(**inputs).logits[:, keep]
    chosen = targets[:, keep]
    loss = torch.nn.functional.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), chosen.reshape(-1),
                                             ignore_index=IGNORE, reduction="sum")
    if teacher is not None:
        from aeth.distill.kd import mixed_loss, token_divergence

        learned_here = chosen != IGNORE
        student = logits[learned_here][..., :teacher.vocab]
        kd = token_divergence(student, teacher.targets(examples, inputs, keep, learned_here), teacher.settings).sum()
        loss = mixed_loss(kd, loss, teacher.settings.alpha)
    return loss / max(1, items)


def takes_logits_to_keep(model: Any) -> bool:
    """Whether the causal LM inside ``model`` (PEFT, DDP, FSDP or DeepSpeed wrapped) accepts ``logits_to_keep``."""
    import inspect

    inner = unwrap(model)
    inner = getattr(getattr(inner, "base_model", inner), "model", inner)
    return "logits_to_keep" in inspect.signature(inner.forward).parameters


def validation_pass(model: Any, examples: list, batch_size: int, dist: Dist, measure: Any) -> float | None:
    """Sum of ``measure(chunk) -> (total, tokens)`` over ``examples`` divided by its tokens, each rank
    taking its share of every chunk (a rank whose share is empty still runs a forward with weight 0:
    under FSDP every rank must take part)."""
    import torch

    if not examples:
        return None
    model.eval()
    total, tokens = 0.0, 0.0
    with torch.no_grad():
        for i in range(0, len(examples), batch_size):
            chunk = examples[i:i + batch_size]
            mine, weight = dist.shard(chunk), 1.0
            if not mine:
                mine, weight = chunk[:1], 0.0
            part, count = measure(mine)
            total += part * weight
            tokens += count * weight
    model.train()
    total, tokens = dist.sum(total, tokens)
    return total / max(1.0, tokens)


class Objective:
    """The loss of a micro-batch and the metrics of a validation pass, with or without a teacher."""

    def __init__(self, pad_id: int, sparse: bool, teacher: Any = None):
        self.pad_id, self.sparse, self.teacher = pad_id, sparse, teacher

    @property
    def metrics(self) -> tuple[str, ...]:
        """The names :meth:`validate` returns."""
        return ("val_loss", "val_kd_loss") if self.teacher is not None else ("val_loss",)

    def items(self, batch: list) -> int:
        """What a step's loss is a mean over: the trained tokens of ``batch`` (every example of the step)."""
        return sum(learned(e) for e in batch)

    def tokens(self, batch: list) -> int:
        """Tokens the model runs on for ``batch``."""
        return sum(len(e.input_ids) for e in batch)

    def groups(self, items: list) -> None:
        """SFT examples may be batched in any order."""
        return None

    def prepare(self, model: Any, train_set: list, val_set: list, run_dir: Path, progress: bool = False) -> tuple[list, list]:
        """Nothing to do before the first step."""
        return train_set, val_set

    def step_metrics(self) -> dict:
        """What the last step's record adds beside its loss (nothing, for SFT)."""
        return {}

    def loss(self, model: Any, examples: list, items: int) -> Any:
        """The micro-batch's loss, divided by ``items`` (see :func:`token_loss`)."""
        return token_loss(model, examples, self.pad_id, items, self.sparse, self.teacher)

    def validate(self, model: Any, examples: list, batch_size: int, dist: Dist) -> dict[str, float | None]:
        """Mean token loss over ``examples`` (``val_loss``) and, with a teacher, the mean divergence per
        learned token between teacher and model (``val_kd_loss``, full teacher logits, never the cache:
        what the run is trying to bring down)."""
        metrics = {"val_loss": validation_pass(model, examples, batch_size, dist, lambda mine: (
            token_loss(model, mine, self.pad_id, 1, self.sparse).item(), sum(learned(e) for e in mine)))}
        if self.teacher is not None:
            metrics["val_kd_loss"] = validation_pass(model, examples, batch_size, dist,
                                                     lambda mine: self._divergence(model, mine))
        return metrics

    def _divergence(self, model: Any, mine: list) -> tuple[float, int]:
        from aeth.distill.kd import token_divergence

        batch = collate(mine, self.pad_id)
        device = next(model.parameters()).device
        targets = batch.pop("labels")[:, 1:].to(device)
        inputs = {k: v.to(device) for k, v in batch.items()}
        keep = (targets != IGNORE).any(dim=0).nonzero().flatten()
        logits = model(**inputs, logits_to_keep=keep).logits if self.sparse else model(**inputs).logits[:, keep]
        chosen = targets[:, keep] != IGNORE
        teacher = self.teacher
        kd = token_divergence(logits[chosen][..., :teacher.vocab], teacher.logits(inputs, keep)[chosen], teacher.settings)
        return kd.sum().item(), int(chosen.sum())

    def manifest(self, plan: Any) -> dict:
        """What the adapter's manifest records of this objective: the distillation, if any."""
        if self.teacher is None:
            return {}
        return {"distillation": {"teacher": plan.teacher, "teacher_name": plan.teacher_name, **self.teacher.describe()}}


def encode(plan: Any, tokenizer: Any, records: list[dict], system_prompt: str = "") -> list:
    """What ``plan.objective`` trains on: :class:`~aeth.training.data.Example` for sft,
    :class:`~aeth.learning.preferences.PreferencePair` for dpo, :class:`~aeth.learning.preferences.KTOExample`
    for kto (record formats in :mod:`aeth.learning.preferences`)."""
    if plan.objective == "dpo":
        from aeth.learning.preferences import encode_pairs

        return encode_pairs(tokenizer, records, system_prompt, plan.seq_len)
    if plan.objective == "kto":
        from aeth.learning.preferences import encode_kto

        return encode_kto(tokenizer, records, system_prompt, plan.seq_len, chunk=plan.batch_size)
    return encode_records(tokenizer, records, system_prompt, plan.seq_len)


def objective_for(plan: Any, teacher: Any, loaded: Any, model: Any, pad_id: int, run_dir: Path, passes: float,
                  dist: Dist | None = None) -> Any:
    """The objective of ``plan`` for ``model`` (the student, wrapped or not): an :class:`Objective`,
    with ``teacher`` (a loaded model) in the loop when the plan names one, or DPO / KTO
    (:mod:`aeth.learning.objectives`) when ``plan.objective`` says so."""
    sparse = takes_logits_to_keep(model)
    if plan.objective in ("dpo", "kto"):
        from aeth.errors import AethError
        from aeth.learning.objectives import DPOObjective, KTOObjective

        if teacher is not None or plan.teacher:
            raise AethError(f"logit distillation trains with SFT only; drop the teacher or use --objective sft "
                            f"(not {plan.objective})")
        return (DPOObjective if plan.objective == "dpo" else KTOObjective)(plan, pad_id, sparse, dist or Dist())
    return Objective(pad_id, sparse, loop_teacher(plan, teacher, loaded, pad_id, run_dir, passes))


def loop_teacher(plan: Any, teacher: Any, loaded: Any, pad_id: int, run_dir: Path, passes: float) -> Any:
    """The :class:`~aeth.training.teacher_logits.LoopTeacher` for ``plan`` (None without a teacher).

    The teacher's logits are cached (top-k, under the run directory) when ``plan.kd_cache`` is "on",
    or "auto" and the run passes over its examples more than once: the first pass must run the
    teacher anyway, and every later one then reads ~0.5 KB per learned token (k = 64) instead of
    running a forward of a model at least the student's size (docs/distillation.md has the figures).
    """
    from aeth.errors import AethError

    settings = plan.kd_settings()
    if settings is None and teacher is None:
        return None
    if settings is None or teacher is None:
        raise AethError("logit distillation needs both plan.teacher and a loaded teacher model")
    from aeth.distill.kd import check_output_sizes, check_vocabularies
    from aeth.training.teacher_logits import CACHE_DIR, LoopTeacher, TeacherCache

    check_vocabularies(loaded.tokenizer, teacher.tokenizer, loaded.name, plan.teacher)
    vocab = check_output_sizes(loaded.model, teacher.model, loaded.tokenizer, loaded.name, plan.teacher)
    if plan.kd_cache not in ("auto", "on", "off"):
        raise AethError(f"kd_cache {plan.kd_cache!r}: choose auto, on or off")
    cached = plan.kd_cache == "on" or (plan.kd_cache == "auto" and passes > 1.0)
    cache = TeacherCache(Path(run_dir) / CACHE_DIR, plan.kd_top_k, plan.kd_temperature, plan.teacher) if cached else None
    teacher.model.eval()
    for parameter in teacher.model.parameters():
        parameter.requires_grad_(False)
    return LoopTeacher(teacher.model, settings, vocab, takes_logits_to_keep(teacher.model), pad_id, cache)
