"""HTTP APIs over aeth models.

:mod:`aeth.serving.openai` serves one model through a minimal OpenAI-compatible chat-completions
API (what distillation tests and local teachers speak). Nothing here imports torch until a model
is loaded.
"""
