"""Fine-tuning specialists: records -> chat-template tokens -> LoRA training loop -> adapter version.

- :mod:`aeth.training.data`        answer-only labels in the base model's chat format
- :mod:`aeth.training.loop`        the loop (setup -> steps -> save), resumable
- :mod:`aeth.training.teacher_logits` logit distillation's teacher in the loop, and its top-k cache
- :mod:`aeth.training.checkpoint`  atomic, pickle-free checkpoints
- :mod:`aeth.training.distributed` torchrun launch, DDP / FSDP2, rank agreement on stopping
- :mod:`aeth.training.deepspeed_engine` DeepSpeed ZeRO configs, engine and gathered checkpoints
- :mod:`aeth.training.report`      metrics to TensorBoard or MLflow

Nothing here imports torch at module level.
"""
