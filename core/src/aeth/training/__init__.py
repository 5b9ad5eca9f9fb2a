"""Fine-tuning specialists: records -> chat-template tokens -> LoRA training loop -> adapter version.

- :func:`run`                      a whole training run as one library call (:mod:`aeth.training.runs`)
- :mod:`aeth.training.plan`        :class:`TrainPlan`, every training setting declared once; :class:`TrainResult`
- :mod:`aeth.training.data`        answer-only labels in the base model's chat format
- :mod:`aeth.training.loop`        the loop (setup -> steps -> save), resumable
- :mod:`aeth.training.lora`        LoRA / QLoRA over the base, and the optimizer
- :mod:`aeth.training.objective`   the loss and validation metrics (with a teacher: logit distillation)
- :mod:`aeth.training.engines`     one process, DDP, FSDP2 or DeepSpeed behind one interface
- :mod:`aeth.training.teacher_logits` logit distillation's teacher in the loop, and its top-k cache
- :mod:`aeth.training.checkpoint`  atomic, pickle-free checkpoints
- :mod:`aeth.training.distributed` torchrun launch, process group, rank agreement on stopping
- :mod:`aeth.training.deepspeed_engine` DeepSpeed ZeRO configs, engine and gathered checkpoints
- :mod:`aeth.training.promotion`   the promotion gate
- :mod:`aeth.training.report`      metrics to TensorBoard or MLflow

Nothing here imports torch at module level.
"""

from __future__ import annotations

from typing import Any

from aeth.training.plan import TrainPlan, TrainResult, setting

__all__ = ["TrainPlan", "TrainResult", "resume_plan", "run", "setting"]


def run(app: Any, specialist: Any, plan: TrainPlan, *, progress: bool = True, echo: Any = None) -> TrainResult:
    """Train ``specialist`` according to ``plan`` with ``app``'s configuration and plugins, then put the
    new adapter version through the promotion gate unless ``plan.gate`` is false (see
    :func:`aeth.training.runs.run`)."""
    from aeth.training.runs import run as run_training

    return run_training(app, specialist, plan, progress=progress, echo=echo)


def resume_plan(app: Any, specialist: Any, which: str = "latest", plan_class: type[TrainPlan] | None = None) -> TrainPlan:
    """The saved plan of a run of ``specialist`` to continue (``latest``, or a run name's prefix); see
    :func:`aeth.training.runs.resume_plan`."""
    from aeth.training.runs import resume_plan as saved_plan

    return saved_plan(app, specialist, which, plan_class)
