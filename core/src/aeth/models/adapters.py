"""Adapter versions on disk: ``$AETH_HOME/adapters/<specialist>/<version>/`` and the active pointer.

Each version directory holds what plain PEFT loads (``adapter_model.safetensors``,
``adapter_config.json``) plus aeth's ``manifest.json`` (base model, data, hyperparameters, metrics,
eval report, parent version, created). A version is written to a temporary directory beside its
final place, fsynced and renamed, so a crash never leaves a half-written version that is later
listed. The active version is named in ``<specialist>/active`` (written atomically), and every
change of it is appended to ``<specialist>/history.jsonl``, which is what ``rollback`` walks back.

Only safetensors adapters are accepted: a directory whose weights are pickles is refused.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from aeth.atomic import fsync_dir, fsync_tree, write_text
from aeth.errors import AethError

WEIGHTS = "adapter_model.safetensors"
CONFIG = "adapter_config.json"
MANIFEST = "manifest.json"
_VERSION = re.compile(r"^v(\d{4,})-[0-9a-f]{6}$")


class AdapterError(AethError):
    """An adapter version is missing, malformed, or cannot be stored."""


@dataclass(frozen=True)
class AdapterVersion:
    """One stored adapter: its specialist, version id, directory and manifest."""

    specialist: str
    version: str
    path: Path
    manifest: dict

    @property
    def number(self) -> int:
        """The version's sequence number (``v0003-...`` is 3)."""
        return int(_VERSION.match(self.version).group(1))


class AdapterStore:
    """The adapter versions of every specialist under ``<home>/adapters``."""

    def __init__(self, home: Path):
        self.root = Path(home) / "adapters"

    def _dir(self, specialist: str) -> Path:
        return self.root / specialist

    def versions(self, specialist: str) -> list[AdapterVersion]:
        """Every complete version of ``specialist``, oldest first (temporary leftovers are skipped)."""
        base = self._dir(specialist)
        if not base.is_dir():
            return []
        found = []
        for d in base.iterdir():
            if d.is_dir() and _VERSION.match(d.name) and (d / MANIFEST).is_file():
                found.append(AdapterVersion(specialist, d.name, d, json.loads((d / MANIFEST).read_text(encoding="utf-8"))))
        return sorted(found, key=lambda v: v.number)

    def get(self, specialist: str, version: str) -> AdapterVersion:
        """Version ``version`` of ``specialist`` (a unique prefix such as ``v0003`` is enough)."""
        matches = [v for v in self.versions(specialist) if v.version.startswith(version)]
        if len(matches) != 1:
            known = ", ".join(v.version for v in self.versions(specialist)) or "none yet"
            what = "no" if not matches else "more than one"
            raise AdapterError(f"{what} adapter version of {specialist!r} matches {version!r} (versions: {known})")
        return matches[0]

    def add(self, specialist: str, source: Path, manifest: dict) -> AdapterVersion:
        """Store the PEFT adapter saved in ``source`` as the next version, with ``manifest``.

        The adapter must be safetensors (``adapter_model.safetensors`` + ``adapter_config.json``).
        The new version is not made active: promotion decides that.
        """
        source = Path(source)
        if not (source / CONFIG).is_file() or not (source / WEIGHTS).is_file():
            pickles = sorted(p.name for p in source.glob("adapter_model.*") if p.suffix != ".safetensors")
            why = f"its weights are pickles ({', '.join(pickles)}); aeth stores safetensors only" if pickles else \
                f"it needs {WEIGHTS} and {CONFIG} (save the adapter with PEFT's save_pretrained)"
            raise AdapterError(f"{source} is not an adapter aeth can store: {why}")
        base = self._dir(specialist)
        base.mkdir(parents=True, exist_ok=True)
        number = max((v.number for v in self.versions(specialist)), default=0) + 1
        version = f"v{number:04d}-{secrets.token_hex(3)}"
        tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{version}-", dir=base))
        try:
            for name in (WEIGHTS, CONFIG):
                shutil.copy2(source / name, tmp / name)
            full = {"specialist": specialist, "version": version,
                    "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), **manifest}
            (tmp / MANIFEST).write_text(json.dumps(full, indent=2, sort_keys=True) + "\n", encoding="utf-8")
            fsync_tree(tmp)
            os.replace(tmp, base / version)
            fsync_dir(base)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
        return self.get(specialist, version)

    def annotate(self, specialist: str, version: str, **fields) -> AdapterVersion:
        """Add ``fields`` to a version's manifest (atomically), e.g. how it was promoted."""
        chosen = self.get(specialist, version)
        write_text(chosen.path / MANIFEST, json.dumps({**chosen.manifest, **fields}, indent=2, sort_keys=True) + "\n")
        return self.get(specialist, version)

    def active(self, specialist: str) -> AdapterVersion | None:
        """The active version of ``specialist``, or None (the bare base model answers)."""
        pointer = self._dir(specialist) / "active"
        if not pointer.is_file():
            return None
        name = pointer.read_text(encoding="utf-8").strip()
        return self.get(specialist, name) if name else None

    def activate(self, specialist: str, version: str, reason: str = "activated") -> AdapterVersion:
        """Make ``version`` active (atomically) and record the change in the history."""
        chosen = self.get(specialist, version)
        previous = self.active(specialist)
        if reason.startswith("rollback"):
            raise AdapterError("use rollback() to roll back; activation reasons may not start with 'rollback'")
        write_text(self._dir(specialist) / "active", chosen.version + "\n")
        self._log(specialist, chosen.version, previous.version if previous else None, reason)
        return chosen

    def history(self, specialist: str) -> list[dict]:
        """Every change of the active version, oldest first."""
        path = self._dir(specialist) / "history.jsonl"
        if not path.is_file():
            return []
        return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]

    def rollback(self, specialist: str) -> AdapterVersion | None:
        """Re-activate the version that was active before the current one (None: the bare base).

        Activations stack up and each rollback pops one, so repeated rollbacks walk back in order.
        """
        current = self.active(specialist)
        if current is None:
            raise AdapterError(f"{specialist!r} has no active adapter to roll back from")
        stack: list[str | None] = [None]
        for entry in self.history(specialist):
            if entry.get("reason", "").startswith("rollback"):
                if len(stack) > 1:
                    stack.pop()
            else:
                stack.append(entry["active"])
        previous = stack[-2] if len(stack) > 1 else None
        if previous is None:
            (self._dir(specialist) / "active").unlink()
            fsync_dir(self._dir(specialist))
            self._log(specialist, None, current.version, f"rollback from {current.version}")
            return None
        chosen = self.get(specialist, previous)
        write_text(self._dir(specialist) / "active", chosen.version + "\n")
        self._log(specialist, chosen.version, current.version, f"rollback from {current.version}")
        return chosen

    def _log(self, specialist: str, active: str | None, previous: str | None, reason: str) -> None:
        entry = {"at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "active": active,
                 "previous": previous, "reason": reason}
        with open(self._dir(specialist) / "history.jsonl", "a", encoding="utf-8") as f:
            f.write(json.dumps(entry) + "\n")
            f.flush()
            os.fsync(f.fileno())

    def export(self, specialist: str, version: str, dest: Path) -> Path:
        """Copy a version's PEFT files and manifest to ``dest`` (a new or empty directory)."""
        chosen = self.get(specialist, version)
        dest = Path(dest)
        if dest.exists() and any(dest.iterdir()):
            raise AdapterError(f"{dest} is not empty; export into a new directory")
        dest.mkdir(parents=True, exist_ok=True)
        for name in (WEIGHTS, CONFIG, MANIFEST):
            shutil.copy2(chosen.path / name, dest / name)
        return dest
