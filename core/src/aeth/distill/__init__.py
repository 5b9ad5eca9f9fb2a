"""Knowledge distillation: teachers (API and local), collecting teacher data, logit distillation.

Nothing here imports torch at module level.
"""
