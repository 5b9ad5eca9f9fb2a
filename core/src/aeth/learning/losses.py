"""The preference losses, as trl 1.16 computes them inside ``DPOTrainer`` and ``KTOTrainer``.

trl keeps its losses inside its trainers (``_compute_loss``), so aeth writes the three pieces its
own loop needs, in plain torch, checked against trl on the same batch and weights (within 1e-5,
tests/core/test_learning_losses.py):

- :func:`sequence_logps`: a completion's log-probability, the *sum* (never the mean) of the
  log-probabilities of its learned tokens, labels shifted by one as transformers does; prompt and
  padding tokens add nothing (trl's fused LM head: labels ``-100`` outside the completion);
- :func:`dpo_loss`: trl's default DPO (``loss_type="sigmoid"``, ``label_smoothing=0``,
  ``f_divergence_type="reverse_kl"``): ``-log sigmoid(beta * (chosen log-ratio - rejected log-ratio))``;
- :func:`kto_loss` and :func:`kto_kl`: trl's KTO (``loss_type="kto"``), whose reference point is
  the KL estimate from mismatched prompt/completion pairs, detached and clamped at 0.

Each loss returns one value per pair or example; the loop divides their sum by the step's count
(their mean over a one-micro-batch step is trl's loss).
"""

from __future__ import annotations

from typing import Any

from aeth.training.data import IGNORE, collate


def sequence_logps(model: Any, examples: list, pad_id: int, sparse: bool = True) -> Any:
    """Summed log-probability of each example's learned tokens (a float32 tensor, one value per example).

    The examples run as one right-padded batch. With ``sparse`` (a model whose forward takes
    ``logits_to_keep``), the vocabulary projection runs only at positions whose next token is
    learned in some row, as in the SFT loss; the log-softmax is taken in float32.
    """
    import torch

    batch = collate(examples, pad_id)
    device = next(model.parameters()).device
    targets = batch.pop("labels")[:, 1:].to(device)
    inputs = {k: v.to(device) for k, v in batch.items()}
    keep = (targets != IGNORE).any(dim=0).nonzero().flatten()
    if keep.numel() == 0:  # nothing learned in the whole batch: zeros that keep the graph
        keep = torch.zeros(1, dtype=torch.long, device=device)
    logits = model(**inputs, logits_to_keep=keep).logits if sparse else model(**inputs).logits[:, keep]
    chosen = targets[:, keep]
    # cross-entropy is -log p(label) and exactly 0 where the label is IGNORE (prompt, padding)
    per_token = -torch.nn.functional.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), chosen.reshape(-1),
                                                   ignore_index=IGNORE, reduction="none")
    return per_token.view(chosen.shape).sum(dim=1)


def dpo_loss(chosen_logps: Any, rejected_logps: Any, ref_chosen_logps: Any, ref_rejected_logps: Any,
             beta: float) -> tuple[Any, Any, Any]:
    """DPO's sigmoid loss per pair, and the pairs' implicit rewards: ``(losses, chosen_rewards, rejected_rewards)``.

    ``losses = -log sigmoid(beta * ((chosen - ref_chosen) - (rejected - ref_rejected)))`` (trl's
    default; ``losses.mean()`` is ``DPOTrainer``'s loss); a reward is ``beta`` times a completion's
    log-ratio to the reference, detached (trl's ``rewards/chosen`` and ``rewards/rejected``).
    """
    import torch.nn.functional as F

    chosen_logratios = chosen_logps - ref_chosen_logps
    rejected_logratios = rejected_logps - ref_rejected_logps
    losses = -F.logsigmoid(beta * (chosen_logratios - rejected_logratios))
    return losses, beta * chosen_logratios.detach(), beta * rejected_logratios.detach()


def kto_kl(kl_logps: Any, ref_kl_logps: Any) -> Any:
    """KTO's reference point: the mean log-ratio of mismatched (prompt, other completion) pairs,
    detached and clamped at 0 (trl computes ``kl_logps`` under ``no_grad``: no gradient flows here)."""
    return (kl_logps - ref_kl_logps).mean().detach().clamp(min=0)


def kto_loss(logps: Any, ref_logps: Any, desirable: Any, kl: Any, beta: float, desirable_weight: float = 1.0,
             undesirable_weight: float = 1.0) -> tuple[Any, Any]:
    """KTO's loss per example, and each example's implicit reward: ``(losses, rewards)``.

    A desirable completion costs ``desirable_weight * (1 - sigmoid(beta * (log-ratio - kl)))``, an
    undesirable one ``undesirable_weight * (1 - sigmoid(beta * (kl - log-ratio)))`` (Eq. 7 of the KTO
    paper, as trl writes it); ``desirable`` is a bool tensor, ``kl`` from :func:`kto_kl` (or its
    estimate over several processes). ``losses.mean()`` is ``KTOTrainer``'s loss for the batch.
    """
    import torch

    logratios = logps - ref_logps
    desired = torch.as_tensor(desirable, dtype=torch.bool, device=logratios.device)
    chosen = desirable_weight * (1 - torch.sigmoid(beta * (logratios - kl)))
    rejected = undesirable_weight * (1 - torch.sigmoid(beta * (kl - logratios)))
    return torch.where(desired, chosen, rejected), beta * logratios.detach()
