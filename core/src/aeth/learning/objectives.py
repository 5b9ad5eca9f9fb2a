"""DPO and KTO as objectives of aeth's training loop, beside SFT's :class:`~aeth.training.objective.Objective`.

The loop talks to every objective through the same few names: ``loss(model, items, count)`` for a
micro-batch (its share of the step, divided by the step's ``count``), ``items(batch)`` (what the
step's mean is over: pairs for DPO, examples for KTO), ``tokens(batch)`` (throughput),
``groups(items)`` (micro-batches that must stay together, or None), ``prepare(...)`` (the
reference log-probabilities, :mod:`aeth.learning.reference`), ``step_metrics()`` (what a step's
record in metrics.jsonl adds: KTO's ``kl``), ``validate(...)``, ``metrics`` and ``manifest(plan)``.

Validation metrics, on the held-out pairs / examples, against the same reference:

- DPO: ``val_loss`` (mean DPO loss), ``val_reward_accuracy`` (share of pairs whose chosen answer
  has the higher implicit reward), ``val_reward_margin`` (mean chosen minus rejected reward);
- KTO: ``val_loss`` (mean KTO loss), ``val_kl`` (the reference point, mean over chunks),
  ``val_reward_margin`` (mean reward of desirable answers minus that of undesirable ones).

With ``reference="active"`` the trained model starts as the reference, so every reward and margin
starts at 0, the DPO loss at log 2 and the KTO loss at 0.5 (with unit weights).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aeth.learning import reference as references


class _Preference:
    """What DPO and KTO share: the reference pass, counting, validation chunk by chunk."""

    name = ""
    metrics: tuple[str, ...] = ()

    def __init__(self, plan: Any, pad_id: int, sparse: bool, dist: Any):
        self.plan, self.pad_id, self.sparse, self.dist = plan, pad_id, sparse, dist
        self.beta = plan.beta

    def items(self, batch: list) -> int:
        """What the step's loss is a mean over: one per pair or example."""
        return len(batch)

    def tokens(self, batch: list) -> int:
        """Tokens the model runs on for ``batch`` (every sequence of every item)."""
        return sum(len(seq.input_ids) for item in batch for seq in item.sequences)

    def groups(self, items: list) -> list[list[int]] | None:
        """Micro-batches that must stay together (None: any order)."""
        return None

    def step_metrics(self) -> dict:
        """What the last step's record adds beside its loss (nothing here)."""
        return {}

    def prepare(self, model: Any, train_set: list, val_set: list, run_dir: Path, progress: bool = False) -> tuple[list, list]:
        """``train_set`` and ``val_set`` with the reference log-probabilities attached (``model``: the
        PEFT model as the run starts, before any step)."""
        describe = {"objective": self.name, "reference": self.plan.reference,
                    "init_adapter": None if self.plan.init_adapter is None else str(self.plan.init_adapter)}
        done = references.prepare(model, {"train": train_set, "validation": val_set}, run_dir, describe,
                                  pad_id=self.pad_id, batch_size=self.plan.batch_size, reference=self.plan.reference,
                                  sparse=self.sparse, dist=self.dist, progress=progress)
        return done["train"], done["validation"]

    def manifest(self, plan: Any) -> dict:
        """What the adapter's manifest records of this objective."""
        return {"learning": {"objective": self.name, "beta": plan.beta, "reference": plan.reference,
                             "init_adapter": plan.init_adapter, **self._settings(plan)}}

    def _settings(self, plan: Any) -> dict:
        return {}

    def _chunks(self, items: list, batch_size: int) -> list[list]:
        return [items[i:i + batch_size] for i in range(0, len(items), batch_size)]

    def _sums(self, model: Any, chunks: list[list], measure: Any) -> list[float]:
        """``measure(share, weight) -> [sums]`` over every chunk, each rank taking its share (a rank
        whose share is empty still runs with weight 0: FSDP needs every rank in every forward), summed
        over ranks."""
        import torch

        model.eval()
        totals: list[float] = []
        with torch.no_grad():
            for chunk in chunks:
                mine, weight = self.dist.shard(chunk), 1.0
                if not mine:
                    mine, weight = chunk[:1], 0.0
                values = [v * weight for v in measure(mine, weight)]
                totals = values if not totals else [a + b for a, b in zip(totals, values, strict=True)]
        model.train()
        return self.dist.sum(*totals) if totals else []

    def _refs(self, values: list, like: Any) -> Any:
        import torch

        return torch.tensor(values, dtype=torch.float32, device=like.device)


class DPOObjective(_Preference):
    """DPO (trl's sigmoid loss) over :class:`~aeth.learning.preferences.PreferencePair` items."""

    name = "dpo"
    metrics = ("val_loss", "val_reward_accuracy", "val_reward_margin")

    def _losses(self, model: Any, pairs: list) -> tuple[Any, Any, Any]:
        from aeth.learning.losses import dpo_loss, sequence_logps

        # chosen and rejected in one forward, as trl batches them
        logps = sequence_logps(model, [p.chosen for p in pairs] + [p.rejected for p in pairs], self.pad_id, self.sparse)
        chosen, rejected = logps[:len(pairs)], logps[len(pairs):]
        return dpo_loss(chosen, rejected, self._refs([p.ref_chosen for p in pairs], logps),
                        self._refs([p.ref_rejected for p in pairs], logps), self.beta)

    def loss(self, model: Any, pairs: list, count: int) -> Any:
        """The summed DPO loss of ``pairs`` divided by ``count``, the pairs of the whole step."""
        losses, _, _ = self._losses(model, pairs)
        return losses.sum() / max(1, count)

    def validate(self, model: Any, pairs: list, batch_size: int, dist: Any) -> dict[str, float | None]:
        """Mean loss, reward accuracy and reward margin over ``pairs`` (None each without pairs)."""
        if not pairs:
            return dict.fromkeys(self.metrics)

        def measure(mine: list, weight: float) -> list[float]:
            losses, chosen, rejected = self._losses(model, mine)
            return [losses.sum().item(), (chosen > rejected).sum().item(), (chosen - rejected).sum().item(), len(mine)]

        loss, right, margin, n = self._sums(model, self._chunks(pairs, batch_size), measure)
        return {"val_loss": loss / n, "val_reward_accuracy": right / n, "val_reward_margin": margin / n}


class KTOObjective(_Preference):
    """KTO over :class:`~aeth.learning.preferences.KTOExample` items, each chunk (whose examples
    lend each other their completions for the KL reference point) one micro-batch."""

    name = "kto"
    metrics = ("val_loss", "val_kl", "val_reward_margin")

    def groups(self, items: list) -> list[list[int]]:
        """The KL chunks: the loop shuffles them, never the examples inside one."""
        from aeth.learning.preferences import groups

        return groups(items)

    def prepare(self, model: Any, train_set: list, val_set: list, run_dir: Path, progress: bool = False) -> tuple[list, list]:
        """Refuse chunks too small for a KL reference point or for every process, then the reference pass."""
        from aeth.errors import AethError

        need = max(2, self.dist.world)
        if min(len(group) for group in self.groups(train_set)) < need:
            raise AethError(f"KTO needs at least {need} training examples (each is judged against another's answer, and "
                            f"every process needs one); this run has {len(train_set)}: gather more feedback first")
        return super().prepare(model, train_set, val_set, run_dir, progress)

    def __init__(self, plan: Any, pad_id: int, sparse: bool, dist: Any):
        super().__init__(plan, pad_id, sparse, dist)
        self._step_kl: list[float] = []

    def _settings(self, plan: Any) -> dict:
        return {"desirable_weight": plan.desirable_weight, "undesirable_weight": plan.undesirable_weight}

    def step_metrics(self) -> dict:
        """``kl``: the reference point of the last step (mean over its micro-batches), as trl logs it."""
        kl, self._step_kl = self._step_kl, []
        return {"kl": round(sum(kl) / len(kl), 6)} if kl else {}

    def _kl(self, model: Any, examples: list, weight: float = 1.0) -> Any:
        """The reference point of a micro-batch: over all its ranks' shares (their mean, clamped at 0)."""
        import torch

        from aeth.learning.losses import kto_kl, sequence_logps

        with torch.no_grad():  # trl's KL forward: no gradient through the reference point
            kl_logps = sequence_logps(model, [e.kl for e in examples], self.pad_id, self.sparse)
        ref = self._refs([e.ref_kl for e in examples], kl_logps)
        if not self.dist.active:
            return kto_kl(kl_logps, ref)
        total, n = self.dist.sum((kl_logps - ref).sum().item() * weight, len(examples) * weight)
        return torch.tensor(max(0.0, total / max(n, 1e-9)), dtype=torch.float32, device=kl_logps.device)

    def _losses(self, model: Any, examples: list, weight: float = 1.0) -> tuple[Any, Any, Any]:
        from aeth.learning.losses import kto_loss, sequence_logps

        kl = self._kl(model, examples, weight)
        logps = sequence_logps(model, [e.example for e in examples], self.pad_id, self.sparse)
        losses, rewards = kto_loss(logps, self._refs([e.ref for e in examples], logps), [e.desirable for e in examples],
                                   kl, self.beta, self.plan.desirable_weight, self.plan.undesirable_weight)
        return losses, rewards, kl

    def loss(self, model: Any, examples: list, count: int) -> Any:
        """The summed KTO loss of ``examples`` divided by ``count``, the examples of the whole step."""
        losses, _, kl = self._losses(model, examples)
        self._step_kl.append(kl.item())
        return losses.sum() / max(1, count)

    def validate(self, model: Any, examples: list, batch_size: int, dist: Any) -> dict[str, float | None]:
        """Mean loss, KL reference point and reward margin over ``examples``, chunk by chunk."""
        if not examples:
            return dict.fromkeys(self.metrics)

        def measure(mine: list, weight: float) -> list[float]:
            losses, rewards, kl = self._losses(model, mine, weight)
            good = [e.desirable for e in mine]
            good_rewards = sum(r for r, g in zip(rewards.tolist(), good, strict=True) if g)
            bad_rewards = sum(r for r, g in zip(rewards.tolist(), good, strict=True) if not g)
            return [losses.sum().item(), kl.item() * len(mine), good_rewards, sum(good), bad_rewards,
                    len(mine) - sum(good), len(mine)]

        chunks = [[examples[i] for i in group] for group in self.groups(examples)]
        loss, kl, good, n_good, bad, n_bad, n = self._sums(model, chunks, measure)
        margin = good / n_good - bad / n_bad if n_good and n_bad else None
        return {"val_loss": loss / n, "val_kl": kl / n, "val_reward_margin": margin}
