"""Answers from several specialists: a prompt whose parts belong to different specialists is
answered part by part, and the answers are composed into one reply.

:func:`plan` decides, after routing, whether a prompt is answered by one specialist or several:

- **parts**: the prompt is split into its requests (sentences and lines that ask something: a
  question, or one opening with a request word such as "write", "explain", "what"; a sentence
  that only sets context joins the request after it; "... and write a haiku" splits at the
  "and"). Each request is routed on its own. A request goes to another specialist than the
  whole prompt's winner only when that one is confident (above ``router.threshold``) and the
  winner's own bid for the request is lower by at least :data:`PART_MARGIN` (the winner is not
  competent for it); when that happens, each specialist answers its own requests (joined in
  order) and the answers follow each other in the reply;
- **margin**: when ``router.margin`` is above 0 and the runner-up's bid for the whole prompt is
  within it of the winner's, both specialists answer the whole prompt.

Otherwise (and always for a named specialist, images, or a chat turn) one specialist answers, as
before. ``router.compose: false`` turns composing off. A composed answer names every contributor:
:attr:`Response.contributors <aeth.request.Response.contributors>`, ``aeth run --json``, the API's
``aeth`` object; its specialist is their names joined with ``+`` (``coding+writing``), so the
interaction it is logged as belongs to no single specialist and ``aeth learn`` does not train one
specialist on another's answer.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from aeth.request import Bid, Request

__all__ = ["ComposedAnswer", "Part", "SEPARATOR", "plan", "split_requests"]

#: between two contributors' answers in a composed reply
SEPARATOR = "\n\n"
#: the most parts a prompt is answered in (a longer list of requests goes to one specialist)
MAX_PARTS = 4
#: a request shorter than this many words is not split off on its own
MIN_WORDS = 3
#: a request goes to another specialist than the whole prompt's winner only when the winner's bid
#: for it is lower than the other's by at least this much (else the winner is competent for it)
PART_MARGIN = 0.1

_REQUEST_WORDS = (
    "write|explain|give|list|create|translate|summari[sz]e|calculate|compute|solve|make|generate|draft|suggest|tell|"
    "describe|find|fix|debug|review|design|plan|recommend|compose|outline|prove|convert|estimate|compare|rewrite|"
    "implement|build|show|name|define|quiz|help|reverse|sort|count|parse|check|analy[sz]e|classify|extract|rank|predict|"
    "what|how|why|who|when|where|which|can|could|would|should|is|are|do|does|"
    "please")
_OPENS_REQUEST = re.compile(rf"^\W*(?:also,?\s+|then,?\s+|and\s+|finally,?\s+|next,?\s+)?(?:{_REQUEST_WORDS})\b", re.I)
_SENTENCES = re.compile(r"(?<=[.?!])\s+(?=[A-Z0-9\"'(])|\n+")
_AND_REQUEST = re.compile(rf"[,;]?\s+(?:and\s+(?:then\s+|also\s+)?|then\s+)(?=(?:{_REQUEST_WORDS})\b)", re.I)


@dataclass(frozen=True)
class Part:
    """One contributor: ``specialist`` answers ``prompt`` (its requests of the whole, or all of it), chosen by ``bid``."""

    prompt: str
    specialist: str
    bid: Bid


def split_requests(prompt: str) -> list[str]:
    """The requests in ``prompt``, in order: each sentence or line that asks something, with the
    context sentences before it; a trailing context sentence joins the last request."""
    pieces = []
    for sentence in _SENTENCES.split(prompt.strip()):
        pieces += [p.strip() for p in _AND_REQUEST.split(sentence) if p and p.strip()]
    requests: list[str] = []
    context: list[str] = []
    for piece in pieces:
        asks = piece.endswith("?") or bool(_OPENS_REQUEST.match(piece))
        if asks and len(piece.split()) >= MIN_WORDS:
            requests.append(" ".join([*context, piece]))
            context = []
        else:
            context.append(piece)
    if context:
        if requests:
            requests[-1] = " ".join([requests[-1], *context])
        else:
            requests.append(" ".join(context))
    return requests


def plan(app: Any, request: Request, bids: list[Bid]) -> list[Part] | None:
    """The parts ``request`` is answered in (two or more specialists), or None when one answers
    (see the module docstring). ``bids`` are the whole prompt's, best first."""
    config = app.config
    if request.specialist or request.images or not config.get("router.compose", True) or not bids:
        return None
    threshold, fallback = config["router.threshold"], config["router.fallback"]
    requests = split_requests(request.prompt)
    winner = bids[0]
    if 2 <= len(requests) <= MAX_PARTS and winner.specialist != fallback:
        routed = []
        for text in requests:
            part_bids = app.bids(Request(text, history=request.history))
            best = part_bids[0] if part_bids else None
            own = next((b for b in part_bids if b.specialist == winner.specialist), None)
            foreign = (best is not None and best.specialist != winner.specialist and best.score > threshold
                       and (own is None or own.score <= best.score - PART_MARGIN))
            routed.append((text, best if foreign else own or winner))
        if len({bid.specialist for _, bid in routed}) >= 2:
            return _group(routed)
    margin = config.get("router.margin", 0.0)
    if margin > 0 and len(bids) >= 2:
        first, second = bids[0], bids[1]
        if (second.specialist != first.specialist and fallback not in (first.specialist, second.specialist)
                and first.score - second.score <= margin):
            why = f"within router.margin {margin:g} of {first.specialist} ({first.score:.2f} vs {second.score:.2f})"
            return [Part(request.prompt, first.specialist, first),
                    Part(request.prompt, second.specialist, Bid(second.specialist, second.score, f"{second.reason}; {why}",
                                                                second.plugin))]
    return None


def _group(routed: list[tuple[str, Bid]]) -> list[Part]:
    """One part per specialist, in the order each first appears, holding its requests in order."""
    texts: dict[str, list[str]] = {}
    bids: dict[str, Bid] = {}
    for text, bid in routed:
        texts.setdefault(bid.specialist, []).append(text)
        if bid.specialist not in bids or bid.score > bids[bid.specialist].score:
            bids[bid.specialist] = bid
    return [Part(" ".join(texts[name]), name, bids[name]) for name in texts]


class ComposedAnswer:
    """A reply composed of several specialists' :class:`~aeth.app.Answer` s, one per :class:`Part`:
    iterate for text (each answer streamed in turn, :data:`SEPARATOR` between them); ``response``
    is set once the last one ends. ``specialist`` is the first contributor (who speaks first);
    ``bid`` names them all (``coding+writing``)."""

    def __init__(self, app: Any, request: Request, parts: list[Part], answers: list[Any], bids: list[Bid]):
        self.app, self.request, self.parts, self.answers, self.bids = app, request, parts, answers, bids
        self.specialist = answers[0].specialist
        from aeth.routing.index import quote  # numpy: not at import time

        names = "+".join(p.specialist for p in parts)
        reasons = "; ".join(f"{p.specialist} for {quote(p.prompt, 48)} ({p.bid.score:.2f})" for p in parts)
        self.bid = Bid(names, min(p.bid.score for p in parts), f"composed: {reasons}", "aeth.compose")
        self.response: Any = None
        self.ttft_s: float | None = None

    @property
    def context(self) -> Any:
        """The first contributor's generation context (its sampling)."""
        return self.answers[0].context

    def __iter__(self):
        import time

        from aeth.request import Response

        started = time.perf_counter()
        for i, answer in enumerate(self.answers):
            if i:
                yield SEPARATOR
            for chunk in answer:
                if self.ttft_s is None:
                    self.ttft_s = round(time.perf_counter() - started, 4)
                yield chunk
        done = [a.response for a in self.answers]
        reasons = [r.finish_reason for r in done]
        self.response = Response(
            id=self.request.id, specialist=self.bid.specialist, text=SEPARATOR.join(r.text for r in done),
            reason=self.bid.reason, score=self.bid.score, tokens_in=sum(r.tokens_in for r in done),
            tokens_out=sum(r.tokens_out for r in done), seconds=round(time.perf_counter() - started, 3),
            load_seconds=sum(r.load_seconds for r in done),
            finish_reason=next((f for f in reasons if f not in ("stop", "")), reasons[-1]),
            contributors=[contributor(p, r) for p, r in zip(self.parts, done, strict=True)])

    def text(self) -> str:
        """Consume the whole reply and return its text."""
        for _ in self:
            pass
        return self.response.text


def contributor(part: Part, response: Any) -> dict[str, Any]:
    """What one contributor did, for ``Response.contributors`` and the API's ``aeth`` object."""
    out = {"specialist": part.specialist, "part": part.prompt, "score": round(float(part.bid.score), 4),
           "adapter": response.adapter, "tokens_out": response.tokens_out, "finish_reason": response.finish_reason}
    if response.quality:
        out["quality"] = response.quality
    return out
