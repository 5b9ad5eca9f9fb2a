"""The verifier: checks an answer without a person, so aeth can learn from answers on its own.

``verify(request, answer)`` returns a reward in [0, 1] (1.0 right, 0.0 wrong), or ``None`` when
the request carries nothing to check against: then nothing is recorded for it. What a verifier
checks against travels with the request, JSON-friendly, under ``request.metadata["verify"]``
(you choose the shape; the interaction log keeps it, so logged answers can be checked later).

This one reads ``{"verify": {"keywords": ["lemon", "vinegar"]}}`` and gives 1.0 when the answer
mentions one of them, reusing the eval's scorer. A real specialist checks something stronger:
the coding specialist runs the prompt's tests in aeth's sandbox (never run model output anywhere
else), the reasoning specialist asks reasoning-gym's scorer.
"""

from __future__ import annotations

from aeth import Request
from aetherial_example.evals import score_answer


def verify(request: Request, answer: str) -> float | None:
    """1.0 when ``answer`` mentions a keyword the request lists, 0.0 when it does not, None when the
    request lists none."""
    given = request.metadata.get("verify")
    keywords = given.get("keywords") if isinstance(given, dict) else None
    if not keywords or not all(isinstance(k, str) for k in keywords):
        return None
    return score_answer(answer or "", tuple(keywords))
