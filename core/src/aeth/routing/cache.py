"""On-disk cache of each specialist's routing-example embeddings, under ``<home>/cache/router/``.

Embedding a specialist's examples costs milliseconds each but means loading the embedding model
for them; caching them makes every later process start routing from disk. An entry's key covers
everything that changes the vectors: the specialist's name, the plugin that registered it, its
version, the embedder (model and package version) and a hash of the example texts. Hashing the
texts means an edited editable install invalidates the entry even when nobody bumped a version.

Files are plain ``.npy`` arrays read with ``allow_pickle=False`` (never unpickled), written
atomically (temp file in the same directory, fsync, rename). A file that is unreadable or has the
wrong shape is ignored and rewritten; a home that cannot be written only costs the disk cache.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Protocol

import numpy as np

from aeth.atomic import fsync_dir
from aeth.specialist import Specialist

log = logging.getLogger(__name__)

FORMAT = 1  # bump when the file layout changes, so old files are simply missed


class TextEmbedder(Protocol):
    """What the cache needs from an embedder: an ``id``, a ``dim`` and ``embed(texts)``."""

    id: str
    dim: int

    def embed(self, texts: list[str]) -> np.ndarray:
        """Unit-length float32 rows, one per text."""
        ...


def examples_digest(examples: tuple[str, ...] | list[str]) -> str:
    """sha256 of the example texts (JSON-encoded, so no two different lists hash alike)."""
    return hashlib.sha256(json.dumps(list(examples), ensure_ascii=False).encode()).hexdigest()


def cache_key(specialist: Specialist, embedder_id: str) -> str:
    """The hex key of ``specialist``'s example embeddings made by the embedder ``embedder_id``."""
    parts = [FORMAT, specialist.name, specialist.plugin, specialist.version, embedder_id,
             examples_digest(specialist.routing_examples)]
    return hashlib.sha256(json.dumps(parts, ensure_ascii=False).encode()).hexdigest()


class EmbeddingCache:
    """Example embeddings per specialist: an in-process memo over ``.npy`` files in ``directory``.

    Use :meth:`get` to fetch (embedding on a miss). The memo makes repeated routes free; the files
    make the next process fast.
    """

    def __init__(self, directory: Path, embedder: TextEmbedder):
        self.directory = Path(directory)
        self.embedder = embedder
        self._memo: dict[tuple, np.ndarray] = {}

    def path_for(self, specialist: Specialist) -> Path:
        """Where ``specialist``'s entry lives (whether or not it exists yet)."""
        # The name (already restricted to [a-z0-9-]) keeps the directory readable; the key decides.
        return self.directory / f"{specialist.name}.{cache_key(specialist, self.embedder.id)[:32]}.npy"

    def get(self, specialist: Specialist) -> np.ndarray:
        """``specialist``'s example embeddings, shape ``(n_examples, dim)``, read-only float32."""
        embedder_id = self.embedder.id
        memo_key = (specialist.name, specialist.plugin, specialist.version, embedder_id, tuple(specialist.routing_examples))
        hit = self._memo.get(memo_key)
        if hit is not None:
            return hit
        path = self.path_for(specialist)
        vectors = self._read(path, len(specialist.routing_examples))
        if vectors is None:
            vectors = np.asarray(self.embedder.embed(list(specialist.routing_examples)), dtype=np.float32)
            self._write(path, vectors)
        vectors.setflags(write=False)  # shared by every later route: nobody may change it in place
        self._memo[memo_key] = vectors
        return vectors

    def _read(self, path: Path, rows: int) -> np.ndarray | None:
        return read_vectors(path, rows, self.embedder.dim, "routing cache")

    def _write(self, path: Path, vectors: np.ndarray) -> None:
        if write_vectors(path, vectors, "routing cache", "routing goes on without it, but re-embeds examples in every "
                         f"process: make {self.directory} writable or set AETH_HOME"):
            self._prune(path)

    def _prune(self, keep: Path) -> None:
        # Older entries of the same specialist (other version, other examples) will not be read
        # again by this install; dropping them keeps the directory from growing forever.
        name = keep.name.split(".", 1)[0]
        for old in self.directory.glob(f"{name}.*.npy"):
            if old != keep:
                old.unlink(missing_ok=True)


def read_vectors(path: Path, rows: int, dim: int, what: str) -> np.ndarray | None:
    """The ``(rows, dim)`` float32 array cached at ``path``; None when it is missing, unreadable
    or of another shape (``what`` names the cache in the log line that says so)."""
    if not path.is_file():
        return None
    try:
        with path.open("rb") as f:  # read_array: plain .npy only (np.load would also open zips), never a pickle
            vectors = np.lib.format.read_array(f, allow_pickle=False)
    except (OSError, ValueError, EOFError) as e:  # truncated, garbage, a pickle: all just a miss
        log.info("%s %s unreadable (%s: %s); rebuilding it", what, path, type(e).__name__, e)
        return None
    if vectors.dtype != np.float32 or vectors.shape != (rows, dim) or not np.isfinite(vectors).all():
        log.info("%s %s has shape %s %s, expected (%d, %d) float32; rebuilding it", what, path, vectors.shape,
                 vectors.dtype, rows, dim)
        return None
    return vectors


def write_vectors(path: Path, vectors: np.ndarray, what: str, consequence: str) -> bool:
    """Write ``vectors`` to ``path`` atomically (temp file, fsync, rename); False, with one warning
    naming ``what`` and the ``consequence``, when the directory cannot be written."""
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        with os.fdopen(fd, "wb") as f:
            np.save(f, vectors, allow_pickle=False)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        tmp = None
        fsync_dir(path.parent)
        return True
    except OSError as e:  # read-only or full home: go on, just without the disk cache
        log.warning("could not write %s %s (%s); %s", what, path, e, consequence)
        return False
    finally:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
