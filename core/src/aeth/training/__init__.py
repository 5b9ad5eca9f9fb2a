"""Fine-tuning specialists: records -> chat-template tokens -> LoRA training loop -> adapter version.

- :mod:`aeth.training.data`        answer-only labels in the base model's chat format
- :mod:`aeth.training.loop`        the loop (setup -> steps -> save), resumable
- :mod:`aeth.training.checkpoint`  atomic, pickle-free checkpoints

Nothing here imports torch at module level.
"""
