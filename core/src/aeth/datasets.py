"""Training data from files: a specialist's seed data, the user's own files, and generated sets.

A *record* is a chat: ``{"messages": [{"role", "content"}, ...]}`` ending with the assistant's
answer, optionally with ``"images": [paths]`` for specialists that see. Records come from three places, combined by :func:`training_records`:

1. the specialist's :class:`~aeth.specialist.DatasetRecipe` (seed data bundled in its package);
2. the user's files: JSONL, JSON, CSV, TSV or Parquet, either with a ``messages`` column or with
   prompt / answer (and optional system) columns named by a :class:`ColumnMapping`;
3. generated sets: ``$AETH_HOME/datasets/<specialist>/<version>/records.jsonl`` (plus
   ``card.json``), which ``aeth distill`` writes from teacher answers: the hook point for
   teacher-generated data. Any tool may add a set there.

Every problem with a file is reported with the file, the line (or row) and the field.
Duplicates (same messages) are kept once. The train / validation split is by content hash, so
it never changes when records are added elsewhere.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from aeth.errors import AethError
from aeth.specialist import Specialist, record_key, record_problems, split_records

__all__ = ["ColumnMapping", "DatasetError", "dedupe", "installed_data", "package_file", "read_prompts", "read_records"]

FORMATS = {".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "json", ".csv": "csv", ".tsv": "tsv", ".parquet": "parquet"}


class DatasetError(AethError):
    """A data file or one of its records is malformed; the message names file, line and field."""


@dataclass(frozen=True)
class ColumnMapping:
    """Which columns of a user's file hold what.

    Either ``messages`` (a column holding a list of ``{role, content}``, or its JSON text), or
    ``prompt`` and ``answer`` (and optionally ``system``) columns of plain text.
    """

    prompt: str = "prompt"
    answer: str = "answer"
    system: str | None = None
    messages: str | None = None

    @classmethod
    def parse(cls, text: str) -> ColumnMapping:
        """From ``"prompt=question,answer=response,system=sys"`` or ``"messages=conversation"``."""
        fields: dict[str, str] = {}
        for part in filter(None, (p.strip() for p in text.split(","))):
            key, sep, column = part.partition("=")
            if not sep or key.strip() not in {"prompt", "answer", "system", "messages"} or not column.strip():
                raise DatasetError(f"bad column mapping {part!r}: write field=column, fields being prompt, answer, "
                                   "system or messages (e.g. prompt=question,answer=response)")
            fields[key.strip()] = column.strip()
        return cls(**fields)


def _rows(path: Path) -> Iterator[tuple[int, Mapping]]:
    """``(line or row number, row)`` for every row of a data file."""
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise DatasetError(f"{path}: unknown data format {path.suffix!r}; use {', '.join(sorted(FORMATS))}")
    if not path.is_file():
        raise DatasetError(f"{path}: no such file")
    if fmt == "jsonl":
        with path.open(encoding="utf-8") as f:
            for n, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    yield n, json.loads(line)
                except json.JSONDecodeError as e:
                    raise DatasetError(f"{path}:{n}: not valid JSON ({e.msg} at column {e.colno})") from None
    elif fmt == "json":
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as e:
            raise DatasetError(f"{path}:{e.lineno}: not valid JSON ({e.msg})") from None
        if not isinstance(data, list):
            raise DatasetError(f"{path}: a .json data file must hold a list of records; use .jsonl for one per line")
        yield from enumerate(data, 1)
    elif fmt in ("csv", "tsv"):
        with path.open(encoding="utf-8", newline="") as f:
            reader = csv.DictReader(f, delimiter="\t" if fmt == "tsv" else ",")
            for row in reader:
                yield reader.line_num, row
    else:
        try:
            import pyarrow.parquet as pq
        except ImportError:
            raise DatasetError(f"{path}: reading Parquet needs pyarrow: `pip install pyarrow`") from None
        for n, row in enumerate(pq.read_table(path).to_pylist(), 1):
            yield n, row


def _to_record(row: Mapping, mapping: ColumnMapping | None, where: str) -> dict:
    if not isinstance(row, Mapping):
        raise DatasetError(f"{where}: expected an object with named fields, got {type(row).__name__}")
    if mapping is None or mapping.messages:
        column = mapping.messages if mapping else "messages"
        if column not in row and mapping is None:
            mapping = ColumnMapping()  # no messages column: try prompt/answer
        else:
            messages = row.get(column)
            if isinstance(messages, str):
                try:
                    messages = json.loads(messages)
                except json.JSONDecodeError:
                    raise DatasetError(f"{where}: field {column!r}: not a JSON list of messages") from None
            record = {"messages": list(messages) if isinstance(messages, (list, tuple)) else messages}
            images = row.get("images")
            if images is not None:  # a record about images (vision) keeps them beside the chat
                if not isinstance(images, (list, tuple)) or not all(isinstance(i, str) and i for i in images):
                    raise DatasetError(f"{where}: field 'images' must be a list of image paths")
                record["images"] = list(images)
            return record
    messages = []
    for field, role in ((mapping.system, "system"), (mapping.prompt, "user"), (mapping.answer, "assistant")):
        if field is None:
            continue
        if field not in row:
            raise DatasetError(f"{where}: no field {field!r} (fields: {', '.join(map(str, row))}); "
                               "name the right columns with a mapping such as prompt=question,answer=response")
        value = row[field]
        if not isinstance(value, str) or not value.strip():
            if role == "system" and (value is None or value == ""):
                continue
            raise DatasetError(f"{where}: field {field!r} must be non-empty text, got {value!r}")
        messages.append({"role": role, "content": value})
    return {"messages": messages}


def read_records(path: str | Path, mapping: ColumnMapping | None = None) -> list[dict]:
    """Every record of a data file, validated; the first problem raises naming file, line and field."""
    path = Path(path).expanduser()
    out = []
    for n, row in _rows(path):
        where = f"{path}:{n}"
        record = _to_record(row, mapping, where)
        problems = record_problems(record)
        if problems:
            field, message = problems[0]
            raise DatasetError(f"{where}: field {field!r}: {message}")
        out.append(record)
    return out


def installed_data(module: str, relative: str, needed_for: str, install: str) -> Path:
    """A file or directory shipped inside the installed package ``module``, found without importing
    it (benchmark packages often fail to import without dependencies aeth does not need).

    A missing package or file raises :class:`~aeth.errors.SpecialistError` saying what needs it
    and the ``install`` command that fixes it.
    """
    import importlib.util

    spec = importlib.util.find_spec(module)
    for location in (spec.submodule_search_locations or []) if spec else []:
        path = Path(location) / relative
        if path.exists():
            return path
    from aeth.errors import SpecialistError

    raise SpecialistError(f"{needed_for} needs {relative} from the package {module!r}, which is not installed "
                          f"(or lacks it); install it with `{install}`")


def package_file(package: str, relative: str) -> Path:
    """A data file shipped inside an installed package (e.g. a specialist's ``data/seed.jsonl``)."""
    from importlib.resources import files

    return Path(str(files(package).joinpath(relative)))


def read_prompts(path: str | Path) -> tuple[str, ...]:
    """One prompt per non-blank line; lines starting with ``#`` are comments. Duplicates are an
    error naming the file and line (a routing example twice would weigh double)."""
    path = Path(path)
    seen: dict[str, int] = {}
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        if text in seen:
            raise DatasetError(f"{path}:{n}: the same prompt as line {seen[text]}: {text[:60]!r}")
        seen[text] = n
    return tuple(seen)


def generated_sets(home: Path, specialist: str) -> list[Path]:
    """Generated datasets of ``specialist`` (``<home>/datasets/<specialist>/<version>/records.jsonl``), oldest first."""
    root = Path(home) / "datasets" / specialist
    return sorted(p for p in root.glob("*/records.jsonl") if p.is_file())


def dedupe(records: Iterable[dict]) -> list[dict]:
    """Records in order, each distinct conversation once."""
    seen, out = set(), []
    for record in records:
        key = record_key(record)
        if key not in seen:
            seen.add(key)
            out.append(record)
    return out


@dataclass
class TrainingData:
    """A specialist's combined training data and where it came from."""

    train: list[dict]
    validation: list[dict]
    sources: dict[str, int]  #: source label -> records it gave (before dedup)


def training_records(specialist: Specialist, home: Path, files: Iterable[tuple[str | Path, ColumnMapping | None]] = (),
                     include_generated: bool = True) -> TrainingData:
    """Seed data + the user's files + generated sets of ``specialist``, deduplicated and split."""
    sources: dict[str, int] = {}
    records: list[dict] = []
    fraction = 0.1
    if specialist.recipe is not None:
        seed = specialist.recipe.records()
        sources[f"recipe {specialist.recipe.name} {specialist.recipe.version}"] = len(seed)
        records += seed
        fraction = specialist.recipe.validation_fraction
    for path, mapping in files:
        got = read_records(path, mapping)
        sources[str(path)] = len(got)
        records += got
    if include_generated:
        for path in generated_sets(home, specialist.name):
            got = read_records(path)
            sources[f"generated {path.parent.name}"] = len(got)
            records += got
    train, val = split_records(dedupe(records), fraction)
    return TrainingData(train, val, sources)
