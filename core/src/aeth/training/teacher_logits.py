"""The teacher's side of logit distillation in the loop: its distributions where the student learns.

:class:`LoopTeacher` runs the teacher (eval mode, no gradient) on the very inputs the student gets
and returns its logits at the student's learned positions, in the order the loop flattens them
(row by row, position by position). With a :class:`TeacherCache` it instead keeps, per example,
the teacher's top-k tokens at those positions (:func:`aeth.distill.kd.topk_of`) in a safetensors
file under the run directory, so later epochs read instead of running the teacher again; the loss
is then computed over those k tokens plus "all others" (docs/distillation.md says what that
approximates). Every pass of a cached run, the first included, uses the cached form, so the loss of
a run does not depend on whether an entry was just computed or read back after a resume.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aeth.distill.kd import KDSettings, TopK, topk_of
from aeth.training.data import IGNORE, collate

CACHE_DIR = "teacher-logits"


def learned_positions(example: Any) -> list[int]:
    """Positions t of ``example`` whose next token is learned (the logits the loss uses)."""
    return [t for t, label in enumerate(example.labels[1:]) if label != IGNORE]


class TeacherCache:
    """Per-example top-k teacher log-probabilities at the learned positions, content-addressed.

    A file is named by a hash of the example's tokens and labels, so it is found again whatever
    order or batch the example comes in. Files are written to a temporary name and renamed; a file
    that does not load (a crash tore it) counts as missing and is recomputed.
    """

    def __init__(self, root: Path, k: int, temperature: float, teacher: str):
        self.root, self.k = Path(root), k
        self.root.mkdir(parents=True, exist_ok=True)
        meta = {"teacher": teacher, "k": k, "temperature": temperature}
        path = self.root / "meta.json"
        if path.is_file() and json.loads(path.read_text()) != meta:  # another teacher or setting: start over
            for old in self.root.glob("*.safetensors"):
                old.unlink()
        if not path.is_file() or json.loads(path.read_text()) != meta:
            from aeth.atomic import write_text

            write_text(path, json.dumps(meta))
        self.reads = self.writes = 0

    @staticmethod
    def key(example: Any) -> str:
        digest = hashlib.sha256(json.dumps([example.input_ids, example.labels]).encode())
        return digest.hexdigest()[:32]

    def get(self, example: Any) -> TopK | None:
        from safetensors.torch import load_file

        path = self.root / f"{self.key(example)}.safetensors"
        if not path.is_file():
            return None
        try:
            tensors = load_file(path)
        except Exception:  # noqa: BLE001  (a torn or foreign file: recompute it)
            return None
        self.reads += 1
        return TopK(tensors["ids"].long(), tensors["logprobs"])

    def put(self, example: Any, topk: TopK) -> None:
        from safetensors.torch import save_file

        path = self.root / f"{self.key(example)}.safetensors"
        fd, tmp = tempfile.mkstemp(dir=self.root, prefix=".", suffix=".tmp")
        os.close(fd)
        try:  # no fsync: a cache entry lost in a power cut is recomputed, not trusted
            save_file({"ids": topk.ids.to(dtype=_id_dtype(), device="cpu").contiguous(),
                       "logprobs": topk.logprobs.float().cpu().contiguous()}, tmp)
            os.replace(tmp, path)
        finally:
            Path(tmp).unlink(missing_ok=True)
        self.writes += 1


def _id_dtype() -> Any:
    import torch

    return torch.int32


@dataclass
class LoopTeacher:
    """A loaded teacher as the loop uses it: model, settings, logits compared over ``vocab`` ids."""

    model: Any
    settings: KDSettings
    vocab: int
    sparse: bool
    pad_id: int
    cache: TeacherCache | None = None

    def targets(self, examples: list, inputs: dict, keep: Any, learned: Any) -> Any:
        """The teacher at the batch's learned positions: logits [N, vocab], or a :class:`TopK` with
        the cache; N = ``learned.sum()``, rows in the order ``student_logits[learned]`` has them."""
        if self.cache is None:
            return self.logits(inputs, keep)[learned]
        import torch

        found = [self.cache.get(e) for e in examples]
        missing = [i for i, f in enumerate(found) if f is None]
        if missing:
            fresh = [examples[i] for i in missing]
            batch = collate(fresh, self.pad_id)
            device = next(self.model.parameters()).device
            sub = {k: v.to(device) for k, v in batch.items() if k != "labels"}
            targets = batch["labels"][:, 1:]
            sub_keep = (targets != IGNORE).any(dim=0).nonzero().flatten().to(device)
            logits = self.logits(sub, sub_keep)
            for row, i in enumerate(missing):
                mask = (targets[row, sub_keep.cpu()] != IGNORE).to(logits.device)
                found[i] = topk_of(logits[row][mask], self.cache.k, self.settings.temperature)
                self.cache.put(examples[i], found[i])
        device = learned.device
        return TopK(torch.cat([f.ids for f in found]).to(device), torch.cat([f.logprobs for f in found]).to(device))

    def logits(self, inputs: dict, keep: Any) -> Any:
        """The teacher's logits at positions ``keep`` of every row (no gradient, eval mode)."""
        import torch

        self.model.eval()
        with torch.no_grad():
            if self.sparse:
                logits = self.model(**inputs, logits_to_keep=keep).logits
            else:
                logits = self.model(**inputs).logits[:, keep]
        return logits[..., :self.vocab].float()

    def describe(self) -> dict:
        """The KD settings and how the teacher's logits were obtained, for the adapter's manifest."""
        s = self.settings
        return {"loss": s.kind, "alpha": s.alpha, "temperature": s.temperature,
                **({"jsd_beta": s.beta} if s.kind == "jsd" else {}),
                "teacher_logits": ({"cached": True, "top_k": self.cache.k, "dir": str(self.cache.root),
                                    "approximation": "top-k tokens plus one 'all other tokens' outcome"}
                                   if self.cache else {"cached": False})}
