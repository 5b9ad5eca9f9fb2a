"""A learn run's settings: :class:`LearnPlan`, a :class:`~aeth.training.plan.TrainPlan` with defaults
for small feedback datasets.

Feedback arrives in tens or hundreds of records, not the thousands a recipe holds, and a learn run
continues the active adapter rather than starting one. So, unlike ``aeth train``:

- ``epochs`` 3: at batch size 4, one pass over 40 records is 10 optimizer steps, too few to move
  an adapter; three passes stay well short of memorising them (the held-out gate catches it);
- ``lr`` 5e-5: between the QLoRA recipes of Hugging Face's alignment-handbook for SFT (2e-4, what
  ``aeth train`` uses) and for DPO (5e-6 over ~60k pairs in one epoch), nearer the gentle end,
  because the run refines what serves. A choice, not a measurement: tune it with ``--lr``;
- ``save_every`` 5: short runs still leave checkpoints for ``--resume``.

Everything else, and how the settings become options, plan files and ``--resume``, is
:mod:`aeth.training.plan`'s. Nothing here imports torch.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from aeth.training.plan import TrainPlan, setting

__all__ = ["LearnPlan"]


@dataclass
class LearnPlan(TrainPlan):
    """:class:`TrainPlan` with learning's defaults (module docstring); ``aeth learn`` builds one."""

    epochs: float = field(default=3.0, metadata=setting("Passes over the feedback's training records.", min=0,
                                                        min_open=True))
    lr: float = field(default=5e-5, metadata=setting(
        "Peak learning rate (lower than aeth train's: the run refines the active adapter).", min=0, min_open=True))
    save_every: int = field(default=5, metadata=setting("Checkpoint every N steps.", min=1))
