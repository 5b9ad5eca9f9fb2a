"""Harmful requests, jailbreak wrappers and prompt injections in a prompt: an offline classifier.

Two detectors, both cheap once the prompt is embedded:

- **A linear model over labelled examples.** ``data/harm_examples.jsonl`` holds a few hundred
  sentences written for aeth, each labelled ``benign``, ``harmful``, ``jailbreak`` or
  ``injection``; a good share of the benign ones are deliberately close to the others ("how do I
  kill a Python process", "which household chemicals must never be mixed"), so that the benign
  label is a real counter-weight. They are embedded once with the router's encoder
  (all-MiniLM-L6-v2, :mod:`aeth.routing.embedder`), cached on disk like the router's examples,
  and a softmax regression (four labels, L2-regularised, class-balanced, fitted with plain numpy,
  deterministic) is fitted on them when the classifier is first used. A category is flagged when
  its probability reaches :data:`THRESHOLD` (or :data:`STRICT_THRESHOLD` with ``strict=True``)
  and its nearest example is at least :data:`MIN_SIMILARITY` similar (a prompt unlike every
  example is never blocked by the linear model's extrapolation alone). In 10-fold
  cross-validation on the examples the linear model blocked more and falsely blocked less than
  nearest-neighbour voting: MiniLM's neighbours share a topic ("kill a process" / "kill a
  person") more than an intent, while a learned direction can weigh the words that carry intent.
- **Patterns.** A few regular expressions of high precision catch the canonical wordings that
  embeddings blur: "ignore all previous instructions", "reveal your system prompt", "do anything
  now", "act as an unfiltered AI", ... A pattern match is reported with :data:`PATTERN_SCORE`.
  They are written not to fire on a user correcting themselves ("ignore my previous question").

Long prompts (jailbreak wrappers run to hundreds of words; the encoder reads only the first 256
word pieces) that the whole text lets through are also scored window by window: sentences grouped
into windows of about :data:`WINDOW_WORDS` words, at most :data:`MAX_WINDOWS` of them, embedded in
one batch, and the strongest finding of any window wins. Below :data:`CHUNK_ABOVE_WORDS` words only
the whole text is embedded, and a caller that already has that vector (the router does) passes
it as ``vector=``: the classifier then costs well under a millisecond.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np

from aeth.routing.cache import TextEmbedder, read_vectors, write_vectors
from aeth.routing.embedder import normalise
from aeth.routing.index import quote

__all__ = ["CATEGORIES", "Finding", "HarmClassifier", "classifier", "load_examples"]

log = logging.getLogger(__name__)

CATEGORIES = ("harmful", "jailbreak", "injection")
LABELS = ("benign", *CATEGORIES)
DATA = "harm_examples.jsonl"
#: the examples' vectors as shipped (float16), for the embedder and examples named by the cache key
#: stored beside them: a fresh home needs no embedding of its own (``python -m aeth.safety.harm`` rewrites them)
SHIPPED = "harm_examples.vectors.npy"
SHIPPED_KEY = "harm_examples.vectors.key"
FORMAT = 1  # bump when the cache file layout changes, so old files are simply missed

SCALE = 10.0  #: the unit vectors are scaled by this before the regression (a sharper softmax)
L2 = 0.01  #: the regression's weight penalty
STEPS = 500  #: full-batch gradient steps of the fit
STEP_SIZE = 0.5
THRESHOLD = 0.70  #: a category's probability that blocks, by default
STRICT_THRESHOLD = 0.50  #: ... and with ``strict=True`` (child-safe specialists)
MIN_SIMILARITY = 0.30  #: the category's nearest example must be this similar, too
STRICT_MIN_SIMILARITY = 0.25
PATTERN_SCORE = 0.99  #: the score of a pattern match
CHUNK_ABOVE_WORDS = 120  #: longer texts are also scored window by window
WINDOW_WORDS = 40
MAX_WINDOWS = 8  #: at most this many windows are embedded (spread over the text): latency


@dataclass(frozen=True)
class Finding:
    """One verdict: ``category`` (harmful, jailbreak or injection), ``score`` in [0, 1] (higher is
    more sure) and ``rule``, a short text naming what fired."""

    category: str
    score: float
    rule: str


# ---- patterns ---------------------------------------------------------------------------------

_DET = (r"(?:all|any|each|every|of|the|your|these|those|prior|previous|preceding|earlier|above|foregoing|original|initial|"
        r"system|and|following|other|developer's|operator's)")
_INSTRUCTIONS = r"(?:instructions?|directions?|directives?|prompts?|rules|guidelines|commands|orders|context|programming)"
_SECRET = r"(?:full|entire|exact|original|initial|hidden|secret|confidential|internal|complete)"
_UNLIMITED = (r"(?:unfiltered|uncensored|unrestricted|amoral|unethical|jailbroken|unshackled|"
              r"(?:without|with no|has no|have no|no)\s+(?:any\s+)?(?:restrictions|filters?|limits|limitations|rules|ethics|morals"
              r"|moral\s+compass|guidelines|censorship|safeguards|boundaries))")

#: (category, what the rule says, pattern): searched case-insensitively in the whole text, in this order:
#: jailbreak wrappers first, since many open with an injection ("ignore all the instructions you got before")
PATTERNS: tuple[tuple[str, str, re.Pattern], ...] = tuple((c, name, re.compile(p, re.IGNORECASE)) for c, name, p in (
    ("jailbreak", "do anything now", r"\bdo\s+anything\s+now\b"),
    ("jailbreak", "unrestricted mode",
     r"\b(?:enable|enter|activate|switch\s+to|stay\s+in|in|into|with)\s+(?:the\s+)?(?:developer|god|dan|jailbreak|jailbroken|"
     r"unrestricted|unfiltered|uncensored|evil|unlocked)\s+mode\b(?=[\s\S]{0,600}?\b(?:polic(?:y|ies)|censor\w*|restrictions?|"
     r"filter\w*|refus\w*|guidelines|offensive|explicit|illegal|anything)\b)"),
    ("jailbreak", "role-play as an unrestricted AI",
     rf"\b(?:you\s+are|you're|you\s+will\s+be|act\s+(?:as|like)|pretend\s+(?:to\s+be|you\s+are)|play(?:ing)?|role-?\s?play\s+as|"
     rf"become|respond\s+as|answer\s+as|simulate|imagine\s+you\s+are)\b[^.\n]{{0,80}}\b{_UNLIMITED}\b"),
    ("jailbreak", "never refuse",
     r"\b(?:never|not|don't|do\s+not|cannot|can't|won't|must\s+not)\s+(?:ever\s+)?refuse\s+(?:a|any|my|the\s+user's|to\s+answer)"
     r"(?:\s+(?:request|question|order|prompt|command)s?)?\b"),
    ("jailbreak", "disable your safety rules",
     r"\b(?:ignore|disregard|bypass|disable|turn\s+off|remove|lift|drop|forget|suspend)\s+(?:all\s+)?(?:of\s+)?your\s+"
     r"(?:own\s+)?(?:content\s+|safety\s+|ethical\s+|moral\s+)?(?:polic(?:y|ies)|filters?|guidelines|restrictions|safeguards|"
     r"safety\s+(?:features|training|rules|layer)|alignment|programming|ethics)\b"),
    ("injection", "ignore previous instructions",
     rf"\b(?:ignore|disregard|forget|abandon|override|discard|pay\s+no\s+attention\s+to|set\s+aside)\b(?:\s+{_DET})+\s+{_INSTRUCTIONS}\b"),
    ("injection", "ignore what you were told",
     r"\b(?:ignore|disregard|forget)\s+(?:everything|all|anything)\s+(?:that\s+)?you\s+(?:were|have\s+been|'ve\s+been)\s+"
     r"(?:told|given|instructed|asked)\b"),
    ("injection", "reveal the system prompt",
     rf"\b(?:reveal|show|print|repeat|output|display|leak|dump|expose|paste|quote|copy|recite|spell\s+out|tell\s+me|give\s+me)\b"
     rf"[^.?!\n]{{0,40}}\b(?:your|the)\s+(?:{_SECRET}\s+){{0,3}}(?:system\s+(?:prompt|message|instructions?)|"
     rf"(?:initial|original|hidden|secret|confidential|internal|developer|pre-?)\s*(?:prompt|instructions?|directives?|configuration|preamble))\b"),
    ("injection", "instructions declared void",
     rf"\b(?:previous|above|earlier|original|prior|old|your)\s+{_INSTRUCTIONS}\s+(?:are|is)\s+(?:now\s+)?"
     r"(?:void|cancell?ed|revoked|invalid|obsolete|overridden|no\s+longer\s+(?:valid|apply|applies|in\s+effect))\b"),
    ("injection", "system override", r"\bsystem\s+override\b|\bnew\s+system\s+(?:prompt|message|instructions?)\s*:"),
))


def match_pattern(text: str, categories: Iterable[str] = CATEGORIES) -> Finding | None:
    """The first pattern of ``categories`` that ``text`` matches, as a finding; None if none does."""
    for category, name, pattern in PATTERNS:
        if category in categories and pattern.search(text):
            return Finding(category, PATTERN_SCORE, f"{category} pattern: {name}")
    return None


# ---- examples and their vectors ---------------------------------------------------------------


def load_examples() -> tuple[list[str], list[str]]:
    """The labelled examples shipped with aeth: (texts, labels)."""
    texts, labels = [], []
    raw = resources.files("aeth.safety").joinpath("data", DATA).read_text(encoding="utf-8")
    for line in raw.splitlines():
        if line.strip():
            row = json.loads(line)
            if row["label"] not in LABELS:
                raise ValueError(f"{DATA}: unknown label {row['label']!r} (expected one of {', '.join(LABELS)})")
            texts.append(row["text"])
            labels.append(row["label"])
    return texts, labels


def _cache_key(texts: list[str], labels: list[str], embedder_id: str) -> str:
    return hashlib.sha256(json.dumps([FORMAT, embedder_id, texts, labels], ensure_ascii=False).encode()).hexdigest()


def fit_softmax(x: np.ndarray, y: np.ndarray, classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Weights ``(dim, classes)`` and biases of an L2-regularised softmax regression of labels ``y``
    on unit rows ``x``, each class weighted equally whatever its count (full-batch gradient descent)."""
    x = np.asarray(x, dtype=np.float64) * SCALE
    dim = x.shape[1]
    targets = np.eye(classes)[y]
    counts = np.bincount(y, minlength=classes).astype(np.float64)
    weights = (1.0 / np.maximum(counts, 1.0))[y]
    weights /= weights.sum()
    w, b = np.zeros((dim, classes)), np.zeros(classes)
    for _ in range(STEPS):
        z = x @ w + b
        p = np.exp(z - z.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        g = (p - targets) * weights[:, None]
        w -= STEP_SIZE * (x.T @ g + L2 * w)
        b -= STEP_SIZE * g.sum(axis=0)
    return w * SCALE, b  # the scale folded in: a raw unit vector's probabilities are softmax(v @ w + b)


# ---- the classifier ---------------------------------------------------------------------------


def windows(text: str, words: int = WINDOW_WORDS, most: int = MAX_WINDOWS) -> list[str]:
    """``text``'s sentences grouped into windows of about ``words`` words (a longer sentence is cut),
    at most ``most`` of them, spread evenly over the text."""
    pieces: list[str] = []
    for sentence in re.split(r"(?<=[.!?])\s+|\n+", text):
        tokens = sentence.split()
        pieces += [" ".join(tokens[i:i + words]) for i in range(0, len(tokens), words)]
    out: list[str] = []
    current: list[str] = []
    size = 0
    for piece in pieces:
        n = len(piece.split())
        if current and size + n > words:
            out.append(" ".join(current))
            current, size = [], 0
        current.append(piece)
        size += n
    if current:
        out.append(" ".join(current))
    if len(out) > most:
        out = [out[i] for i in np.linspace(0, len(out) - 1, most).round().astype(int)]
    return out


class HarmClassifier:
    """Flags harmful requests, jailbreak wrappers and prompt injections (see the module docstring).

    ``embedder`` is the router's (:func:`aeth.routing.embedder.get_embedder`), or anything with
    ``id``, ``dim`` and ``embed(texts)``; ``cache_dir`` keeps the examples' vectors between
    processes (None: in memory only). Nothing is embedded until the first :meth:`check`.
    Safe to share between threads.
    """

    def __init__(self, embedder: TextEmbedder, cache_dir: Path | None = None):
        self.embedder = embedder
        self.cache_dir = None if cache_dir is None else Path(cache_dir)
        self.texts, labels = load_examples()
        self.labels = np.array([LABELS.index(label) for label in labels])
        self._rows = [np.flatnonzero(self.labels == i) for i in range(len(LABELS))]  # each label's examples
        self._quoted = [quote(t) for t in self.texts]
        self._vectors: np.ndarray | None = None
        self._lock = threading.Lock()

    @property
    def cache_path(self) -> Path | None:
        """The file the examples' vectors are cached in (None without a ``cache_dir``)."""
        if self.cache_dir is None:
            return None
        return self.cache_dir / f"harm.{self.key[:32]}.npy"

    @property
    def key(self) -> str:
        """What the examples' vectors depend on: the cache format, the embedder, the texts and labels."""
        return _cache_key(self.texts, [LABELS[i] for i in self.labels], self.embedder.id)

    @property
    def vectors(self) -> np.ndarray:
        """The examples' unit vectors, ``(n_examples, dim)``: as shipped with aeth when they were made
        by this embedder from these examples, else from the disk cache, else embedded now."""
        if self._vectors is None:
            with self._lock:
                if self._vectors is None:
                    path = self.cache_path
                    vectors = shipped_vectors(self.key, len(self.texts), self.embedder.dim)
                    if vectors is None and path is not None:
                        vectors = read_vectors(path, len(self.texts), self.embedder.dim, "safety cache")
                    if vectors is None:
                        vectors = np.asarray(self.embedder.embed(self.texts), dtype=np.float32)
                        if path is not None and write_vectors(
                                path, vectors, "safety cache", "the classifier re-embeds its examples in every process: "
                                f"make {path.parent} writable or set AETH_HOME"):
                            for old in path.parent.glob("harm.*.npy"):  # other examples or encoder: never read again
                                if old != path:
                                    old.unlink(missing_ok=True)
                    vectors.setflags(write=False)
                    self._weights, self._bias = fit_softmax(vectors, self.labels, len(LABELS))
                    self._vectors = vectors
        return self._vectors

    def check(self, text: str, *, vector: np.ndarray | None = None, strict: bool = False,
              categories: Iterable[str] = CATEGORIES) -> Finding | None:
        """The strongest finding about ``text`` among ``categories``; None means the text is allowed.

        ``vector`` is ``text``'s embedding when the caller already has it (the router computes
        it); ``strict=True`` blocks at a lower score.
        """
        categories = tuple(categories)
        if not text or not text.strip() or not categories:
            return None
        found = match_pattern(text, categories)
        if found is not None:
            return found
        if vector is None:
            vector = self.embedder.embed([text])[0]
        found = self.classify(vector, strict=strict, categories=categories)
        if found is not None or len(text.split()) <= CHUNK_ABOVE_WORDS:
            return found
        # A long text that the whole-text vector (its first 256 word pieces) let through: its windows
        for window_vector in self.embedder.embed(windows(text)):
            finding = self.classify(window_vector, strict=strict, categories=categories)
            if finding is not None and (found is None or finding.score > found.score):
                found = finding
        return found

    def scores(self, vector: np.ndarray) -> tuple[np.ndarray, np.ndarray, list[int]]:
        """For one unit ``vector``: each label's probability (in :data:`LABELS` order), the similarity
        of the nearest example of each label, and that example (an index into :attr:`texts`)."""
        vector = np.asarray(vector, dtype=np.float32)
        sims = self.vectors @ vector
        z = vector.astype(np.float64) @ self._weights + self._bias
        probs = np.exp(z - z.max())
        probs /= probs.sum()
        nearest = [int(rows[np.argmax(sims[rows])]) for rows in self._rows]
        return probs, sims[nearest], nearest

    def classify(self, vector: np.ndarray, *, strict: bool = False, categories: Iterable[str] = CATEGORIES) -> Finding | None:
        """The linear model's verdict on one embedded text (no patterns, no windows)."""
        probs, similarity, nearest = self.scores(vector)
        threshold = STRICT_THRESHOLD if strict else THRESHOLD
        floor = STRICT_MIN_SIMILARITY if strict else MIN_SIMILARITY
        best = None
        for category in categories:
            i = LABELS.index(category)
            if probs[i] >= threshold and similarity[i] >= floor and (best is None or probs[i] > probs[best]):
                best = i
        if best is None:
            return None
        return Finding(LABELS[best], round(float(probs[best]), 4),
                       f"nearest labelled example: {self._quoted[nearest[best]]} ({similarity[best]:.2f})")


def shipped_vectors(key: str, rows: int, dim: int) -> np.ndarray | None:
    """The shipped vectors (as float32) when they were made for ``key``; None otherwise."""
    data = resources.files("aeth.safety").joinpath("data")
    try:
        if data.joinpath(SHIPPED_KEY).read_text().strip() != key:
            return None
        with data.joinpath(SHIPPED).open("rb") as f:  # read_array: a plain .npy only, never a pickle
            vectors = np.lib.format.read_array(f, allow_pickle=False)
    except (OSError, ValueError, EOFError):
        return None
    if vectors.shape != (rows, dim) or not np.isfinite(vectors).all():
        return None
    return normalise(vectors.astype(np.float32))


def write_shipped(embedder: TextEmbedder, directory: Path) -> Path:
    """Embed the examples with ``embedder`` and write them (float16) and their key into
    ``directory`` (the package's ``safety/data``): run after changing the examples."""
    made = HarmClassifier(embedder)
    vectors = np.asarray(embedder.embed(made.texts), dtype=np.float32)
    directory = Path(directory)
    with (directory / SHIPPED).open("wb") as f:
        np.save(f, vectors.astype(np.float16), allow_pickle=False)
    (directory / SHIPPED_KEY).write_text(made.key + "\n")
    return directory / SHIPPED


def classifier(app) -> HarmClassifier:
    """``app``'s classifier, built on first use with the router's embedder; its cache is under ``<home>/cache/safety``."""
    def build() -> HarmClassifier:
        from aeth.routing.embedder import get_embedder

        return HarmClassifier(get_embedder(), app.config.home / "cache" / "safety")

    return app.state("safety.harm", build)


if __name__ == "__main__":  # python -m aeth.safety.harm: rewrite the shipped vectors after editing the examples
    from aeth.routing.embedder import get_embedder

    print(write_shipped(get_embedder(), Path(__file__).parent / "data"))
