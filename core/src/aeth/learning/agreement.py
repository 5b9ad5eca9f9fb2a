"""Agreement with users on held-out feedback: how an adapter version ranks the answers users judged.

A learn dataset's ``heldout.jsonl`` is feedback the run never trained on. The gate scores the new
version and what answers now on it, by the kinds of record it holds, each from the *mean
per-token* log-probability of an answer given its prompt (a sum would favour short answers):

- ``dpo`` (preference pairs: a ``--prefer``, a correction against the original answer, verifier
  rewards that differ): the share of pairs whose chosen answer the model finds more likely than
  the rejected one. A tie counts half.
- ``kto`` (answers judged good or bad alone): the share of judged answers the adapter moves the
  right way from the bare base model: a desirable answer more likely than under the base, an
  undesirable one less likely. A tie counts half, so the bare base itself scores 0.5.
- ``sft`` (corrections, thumbs up, accepted answers without a rejected side): the mean per-token
  log-probability of the target answers (at most 0; higher is better). Not a share.

Every score is higher-is-better, and the gate compares each kind separately. The model is the
application's pool model: the base is loaded once and each adapter version is loaded into one
PEFT model over it and switched (as serving does); scoring runs without gradients.
"""

from __future__ import annotations

from typing import Any

__all__ = ["KINDS", "agreement"]

#: the held-out record kinds, in the order the gate reports them
KINDS = ("dpo", "kto", "sft")


def agreement(app: Any, specialist: Any, dataset: Any, versions: dict[str, Any], *, seq_len: int = 512,
              batch_size: int = 8) -> dict[str, dict[str, float]]:
    """``{name: {kind: score}}`` for each of ``versions`` (name -> an
    :class:`~aeth.models.adapters.AdapterVersion`, or None for the bare base) on ``dataset``'s
    held-out records (a :class:`~aeth.learning.dataset.LearnDataset`); kinds without held-out
    records are left out (all of them: an empty dict per version)."""
    records = {kind: dataset.records(kind, "heldout") for kind in KINDS}
    if not any(records.values()):
        return {name: {} for name in versions}
    pool = app.models
    loaded = pool.for_specialist(specialist)
    tokenizer = loaded.tokenizer
    pairs, judged, targets = _sequences(tokenizer, records, specialist.system_prompt, seq_len)
    flat = [e for pair in pairs for e in pair] + [e for e, _ in judged] + targets
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    base = _mean_logps(pool, loaded, specialist.name, None, flat, pad_id, batch_size) if judged else None
    scores: dict[str, dict[str, float]] = {}
    for name, version in versions.items():
        logps = base if version is None and base is not None else \
            _mean_logps(pool, loaded, specialist.name, version, flat, pad_id, batch_size)
        mean = dict(zip(map(id, flat), logps, strict=True))
        before = dict(zip(map(id, flat), base, strict=True)) if base is not None else {}
        scores[name] = _scores(pairs, judged, targets, mean, before)
    return scores


def _sequences(tokenizer: Any, records: dict[str, list[dict]], system_prompt: str, seq_len: int) -> tuple[list, list, list]:
    """The token sequences to score: DPO (chosen, rejected) pairs, KTO (answer, desirable), SFT targets."""
    from aeth.learning.preferences import encode_pairs, kto_records, sequence, split_prompt
    from aeth.training.data import encode_records

    pairs = [(p.chosen, p.rejected) for p in encode_pairs(tokenizer, records["dpo"], system_prompt, seq_len)]
    judged = []
    for prompt, answer, desirable in kto_records(records["kto"]):
        ids, completion = split_prompt(tokenizer, [*prompt, {"role": "assistant", "content": answer}], system_prompt)
        if len(ids) < seq_len:
            judged.append((sequence(ids, completion, seq_len), desirable))
    return pairs, judged, encode_records(tokenizer, records["sft"], system_prompt, seq_len)


def _mean_logps(pool: Any, loaded: Any, specialist: str, version: Any, examples: list, pad_id: int,
                batch_size: int) -> list[float]:
    """Mean per-token log-probability of each example's answer under ``version`` (None: the bare base)."""
    import torch

    from aeth.learning.losses import sequence_logps
    from aeth.training.objective import learned, takes_logits_to_keep

    view, context = pool.with_adapter(loaded, specialist, version)
    sparse = takes_logits_to_keep(view.model)
    out: list[float] = []
    with context, torch.inference_mode():
        for start in range(0, len(examples), batch_size):
            chunk = examples[start:start + batch_size]
            sums = sequence_logps(view.model, chunk, pad_id, sparse).tolist()
            out += [s / max(1, learned(e)) for s, e in zip(sums, chunk, strict=True)]
    return out


def _scores(pairs: list, judged: list, targets: list, mean: dict[int, float], base: dict[int, float]) -> dict[str, float]:
    """The per-kind scores of the module docstring from mean log-probabilities by example (``id``)."""
    def order(a: float, b: float) -> float:
        return 1.0 if a > b else 0.5 if a == b else 0.0

    scores: dict[str, float] = {}
    if pairs:
        scores["dpo"] = sum(order(mean[id(c)], mean[id(r)]) for c, r in pairs) / len(pairs)
    if judged:
        scores["kto"] = sum(order(mean[id(e)], base[id(e)]) if good else order(base[id(e)], mean[id(e)])
                            for e, good in judged) / len(judged)
    if targets:
        scores["sft"] = sum(mean[id(e)] for e in targets) / len(targets)
    return scores
