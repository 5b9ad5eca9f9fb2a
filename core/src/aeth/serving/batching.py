"""Continuous batching: concurrent requests on one base model decoded together, any mix of adapters.

:class:`BatchingEngine` is aeth's default engine for ``aeth serve``. A job that a plugin other than
aeth's default generator answers (its own model, images) goes to that plugin through
:class:`~aeth.serving.engine.HookEngine`; every other job joins the batch of its base model:

- At submission the adapter is resolved as the default generator resolves it (the active version
  read from the adapter store *now*, so ``aeth adapters activate`` takes effect at the next request
  while an answer in flight keeps its version), the prompt is encoded and checked against
  ``generation.max_input_tokens`` and the model's context (:class:`~aeth.errors.ContextOverflow`).
- One scheduler thread per base model keeps the running rows in one KV cache (a ``DynamicCache``,
  rows left-padded, an attention mask and per-row positions). Between two decode steps, finished
  and cancelled rows leave (their row selected out, columns that are padding in every row
  dropped) and waiting jobs join: prefilled together in one forward, then padded on the left and
  concatenated to the running cache. Each step is one forward for every row, each with its own
  adapter (PEFT's mixed batches), under the pool's per-base serve lock.
- Each row samples with its own seeded generator through the same
  :func:`~aeth.generation.sampling.next_token` as the single-request loop and feeds its prompt the
  same way (all but the last token prefilled, the last one in its first step), so a greedy answer
  is the one it gets alone.

A failure while preparing or prefilling a job fails that job's generation; a failing decode step
fails the rows in it; the scheduler keeps serving either way.
"""

from __future__ import annotations

import threading
import time
import weakref
from collections import deque
from typing import Any

from aeth.serving.engine import Engine, HookEngine
from aeth.serving.generation import Generation, Job, StopText

#: the registered name of aeth's default generator (see :data:`aeth.plugins.DEFAULT_PLUGINS`)
DEFAULT_GENERATOR = "aeth.generator"


class _Declined(Exception):
    """No plugin but aeth's default generator answers this job: the engine batches it."""


class BatchingEngine(Engine):
    """Decodes concurrent requests on one base model together, at most ``max_batch`` rows at a time
    per base (the rest wait their turn); see the module's documentation."""

    def __init__(self, app: Any, max_batch: int = 16):
        super().__init__(app)
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        self.max_batch = max_batch
        self._plugins = HookEngine(app, hook=self._plugin_generate)  # plugins other than aeth's generator
        self._hooks = HookEngine(app)  # every generator (images; a model the batch cannot hold)
        self._lock = threading.Lock()
        self._schedulers: dict[int, _Scheduler] = {}
        self._streamed: weakref.WeakSet[Generation] = weakref.WeakSet()
        self._closed = False

    def submit(self, job: Job) -> Generation:
        """Answer ``job`` through a plugin that takes it, else in its base model's batch.

        Raises before returning when the job cannot be answered: an unknown adapter version,
        :class:`~aeth.errors.InputTooLong`, :class:`~aeth.errors.ContextOverflow`, or what the
        answering plugin raises. Blocks while the base model loads (the first request on it).
        """
        if self._closed:
            raise RuntimeError("this engine is closed")
        if job.request.images:  # whichever generator looks at images (aeth's own says it cannot)
            return self._track(self._hooks.submit(job))
        try:
            return self._track(self._plugins.submit(job))
        except _Declined:
            pass
        return self._batch(job)

    def _plugin_generate(self, **kwargs: Any) -> Any:
        """The ``generate`` hook without aeth's default generator (the stream it returns is the one drained)."""
        pm = self.app.host.pm
        default = pm.get_plugin(DEFAULT_GENERATOR)
        call = pm.subset_hook_caller("generate", remove_plugins=[default] if default is not None else [])
        stream = call(**kwargs)
        if stream is None:
            raise _Declined
        return stream

    def _track(self, gen: Generation) -> Generation:
        self._streamed.add(gen)
        return gen

    def _batch(self, job: Job) -> Generation:
        from aeth.default_plugins.generator import served_adapter
        from aeth.errors import ContextOverflow
        from aeth.generation import build_messages, check_input_tokens, encode_chat

        specialist, sampling = job.specialist, job.sampling
        loaded = self.app.models.for_specialist(specialist)
        scheduler = self._scheduler(loaded)
        if not scheduler.batchable:  # a cache layout the batch cannot splice: one at a time
            return self._track(self._hooks.submit(job))
        adapter = served_adapter(self.app, specialist, loaded, job.adapter)
        prompt = encode_chat(loaded.tokenizer, merge_system(build_messages(specialist, job.request)))
        check_input_tokens(len(prompt), self.app.config)
        if scheduler.context and len(prompt) + sampling.max_tokens > scheduler.context:
            raise ContextOverflow(len(prompt), sampling.max_tokens, scheduler.context)
        gen = Generation(job)
        gen.stats.update(tokens_in=len(prompt), model=loaded.name, adapter=adapter.version if adapter else None)
        scheduler.add(_Row(gen, prompt, specialist.name, adapter))
        return gen

    def _scheduler(self, loaded: Any) -> _Scheduler:
        with self._lock:
            if self._closed:
                raise RuntimeError("this engine is closed")
            scheduler = self._schedulers.get(id(loaded))
            if scheduler is None:
                scheduler = self._schedulers[id(loaded)] = _Scheduler(self.app.models, loaded, self.max_batch)
            return scheduler

    def stats(self) -> dict[str, Any]:
        """``running``: answers decoding now (batched or streamed by a plugin); ``waiting``: queued for a batch."""
        with self._lock:
            schedulers = list(self._schedulers.values())
        plugins, hooks = self._plugins.stats(), self._hooks.stats()
        return {"running": plugins["running"] + hooks["running"] + sum(s.running() for s in schedulers),
                "waiting": sum(len(s.pending) for s in schedulers)}

    def close(self) -> None:
        """Stop the scheduler threads; every unfinished answer ends with finish_reason "cancelled"."""
        with self._lock:
            self._closed = True
            schedulers = list(self._schedulers.values())
        for gen in list(self._streamed):
            gen.cancel()  # a plugin's stream stops at its next token
        for scheduler in schedulers:
            scheduler.close()


def merge_system(messages: list[dict[str, str]]) -> list[dict[str, str]]:
    """``messages`` with their leading system messages joined into one (the specialist's prompt
    first, then the client's), since many chat templates expect at most one, at the start."""
    lead = 0
    while lead < len(messages) and messages[lead]["role"] == "system":
        lead += 1
    if lead < 2:
        return messages
    merged = "\n\n".join(m["content"] for m in messages[:lead] if m["content"])
    return [{"role": "system", "content": merged}, *messages[lead:]]


class _Row:
    """One answer in a batch: its prompt, adapter, sampling state and text pipeline."""

    def __init__(self, gen: Generation, prompt: list[int], specialist: str, adapter: Any):
        self.gen, self.prompt, self.specialist, self.adapter = gen, prompt, specialist, adapter
        self.sampling = gen.job.sampling
        self.name: str | None = None  # the adapter's name in the pool's PEFT model (None: the bare base)
        self.generator: Any = None
        self.detok: Any = None
        self.stop = StopText(gen.job.stop)
        self.generated: list[int] = []
        self.next_id = prompt[-1]  # the token this row feeds at its next step
        self.left = False
        self.began: float | None = None  # when its own work in this step began (sampling, text)

    def clock(self) -> None:
        """Add the time since :attr:`began` to this answer's machine seconds."""
        if self.began is not None:
            self.gen.stats["machine_seconds"] += time.perf_counter() - self.began
            self.began = None

    def end(self, reason: str, error: BaseException | None = None) -> None:
        """Finish the answer (text held back by the stop strings goes out first) and leave at the next boundary."""
        if self.left:
            return
        self.left = True
        self.clock()
        stats = self.gen.stats
        stats.update(finish_reason=reason, tokens_out=len(self.generated),
                     machine_seconds=round(stats["machine_seconds"], 6))
        if error is None:
            try:
                self.gen.put(self.stop.flush())
            except Exception as e:  # noqa: BLE001  (nothing of this may keep the consumer waiting)
                error = e
        self.gen.finish(error)


class _Scheduler:
    """The batch of one base model and the thread that decodes it."""

    def __init__(self, pool: Any, loaded: Any, max_batch: int):
        from transformers import DynamicCache
        from transformers.cache_utils import DynamicLayer

        from aeth.generation.decode import stop_ids, text_config

        self.pool, self.loaded, self.max_batch = pool, loaded, max_batch
        self.config = text_config(loaded.model)
        self.context = getattr(self.config, "max_position_embeddings", None)
        self.stop_ids = stop_ids(loaded.model, loaded.tokenizer)
        self.device = next(loaded.model.parameters()).device
        # rows are spliced by editing each layer's keys and values: plain growing layers only
        self.batchable = all(type(layer) is DynamicLayer for layer in DynamicCache(config=self.config).layers)
        self.pending: deque[_Row] = deque()
        self.rows: list[_Row] = []
        self.admitting = 0  # rows taken from the queue, joining the batch
        self.cache: Any = None
        self.mask: Any = None  # [rows, cache columns], 1 where a column holds a real token of that row
        self.positions: Any = None  # [rows], the position of each row's next token
        self._cond = threading.Condition()
        self._closed = False
        self._thread = threading.Thread(target=self._run, daemon=True, name=f"aeth-batch-{loaded.name}")
        self._thread.start()

    def running(self) -> int:
        """Rows decoding or joining now (a finished row still in the batch until the next boundary is not)."""
        return self.admitting + sum(not row.left for row in self.rows)

    def add(self, row: _Row) -> None:
        with self._cond:
            if self._closed:
                raise RuntimeError("this engine is closed")
            self.pending.append(row)
            self._cond.notify()

    def close(self) -> None:
        with self._cond:
            self._closed = True
            waiting = list(self.pending)
            self.pending.clear()
            self._cond.notify()
        for row in waiting:
            row.end("cancelled")
        self._thread.join(timeout=60)  # the rows in the batch end at the next step boundary
        self._end_all("cancelled")  # whatever the thread could not finish (it normally has)

    # ---- the scheduler thread -------------------------------------------------------------------

    def _run(self) -> None:
        import torch

        while True:
            with self._cond:
                while not self._closed and not self.pending and not self.rows:
                    self._cond.wait()
                if self._closed:
                    break
            new: list[_Row] = []
            try:
                with torch.inference_mode():
                    self._leave()  # first, so the rows that ended make room
                with self._cond:
                    room = self.max_batch - len(self.rows)
                    new = [self.pending.popleft() for _ in range(min(room, len(self.pending)))]
                    self.admitting = len(new)
                ready = [row for row in new if self._start(row)]  # adapters load outside inference mode
                self.admitting = len(ready)
                with torch.inference_mode():
                    if ready:
                        self._admit(ready)
                    self._leave()  # cancel is polled before every step
                    if self.rows:
                        self._step()
            except BaseException as e:  # noqa: BLE001  a failed step fails its rows; the thread serves on
                for row in self.rows + new:
                    row.end("stop", error=e)
                self.rows, self.cache, self.mask, self.positions, self.admitting = [], None, None, None, 0
        self._end_all("cancelled")

    def _end_all(self, reason: str) -> None:
        with self._cond:
            rows = self.rows + list(self.pending)
            self.pending.clear()
        for row in rows:
            row.end(reason)

    def _start(self, row: _Row) -> bool:
        """Make ``row`` ready to join (its adapter loaded, its sampler seeded); False when it ended instead."""
        import random

        import torch

        from aeth.generation.decode import Detokenizer

        if row.gen.cancelled:
            row.end("cancelled")
            return False
        if row.sampling.max_tokens <= 0:
            row.end("length")
            return False
        try:
            if row.adapter is not None:
                row.name = self._load(row)
            seed = row.sampling.seed if row.sampling.seed is not None else random.randrange(2**63)
            row.generator = torch.Generator().manual_seed(seed)
            row.detok = Detokenizer(self.loaded.tokenizer)
        except Exception as e:  # noqa: BLE001  this job fails, the batch goes on
            row.end("stop", error=e)
            return False
        return True

    def _load(self, row: _Row) -> str:
        from aeth.models.adapters import AdapterError

        try:
            return self.pool.load_adapter(self.loaded, row.specialist, row.adapter)
        except Exception as e:
            raise AdapterError(f"adapter {row.adapter.version} of {row.specialist!r} could not be loaded from "
                               f"{row.adapter.path}: {type(e).__name__}: {e} (activate another version with "
                               "`aeth adapters activate`)") from e

    def _forward(self, rows: list[_Row], ids: Any, mask: Any, positions: Any, cache: Any) -> Any:
        """One forward of ``rows`` (each with its adapter) under the base's serve lock; the last logits per row."""
        with self.pool.mixed(self.loaded, [row.name for row in rows]) as (model, extra):
            out = model(input_ids=ids.to(self.device), attention_mask=mask.to(self.device),
                        position_ids=positions.to(self.device), cache=cache, use_cache=True, logits_to_keep=1, **extra)
        return out.logits[:, -1]

    def _admit(self, rows: list[_Row]) -> None:
        """Prefill ``rows`` together (all but each prompt's last token) and splice them into the batch."""
        import torch
        from transformers import DynamicCache

        feeds = [row.prompt[:-1] for row in rows]
        width = max(map(len, feeds))
        mask = torch.tensor([[0] * (width - len(f)) + [1] * len(f) for f in feeds], dtype=torch.long)
        cache = DynamicCache(config=self.config)
        if width:
            ids = torch.tensor([[0] * (width - len(f)) + f for f in feeds], dtype=torch.long)
            started = time.perf_counter()
            try:
                self._forward(rows, ids, mask, (mask.cumsum(1) - 1).clamp(min=0), cache)
            except Exception as e:  # noqa: BLE001  these rows fail; the running batch is untouched
                for row in rows:
                    row.end("stop", error=e)
                self.admitting = 0
                return
            share = (time.perf_counter() - started) / len(rows)
            for row in rows:
                row.gen.steps += 1
                row.gen.stats["machine_seconds"] += share
            if not bool(mask.all()):  # padding's keys and values: zeros, whatever its forward made of them
                padding = ~mask.bool().to(self.device)[:, None, :, None]
                for layer in cache.layers:
                    layer.keys, layer.values = layer.keys.masked_fill(padding, 0), layer.values.masked_fill(padding, 0)
        positions = torch.tensor([len(f) for f in feeds], dtype=torch.long)
        if not self.rows:
            self.rows, self.cache, self.mask, self.positions, self.admitting = list(rows), cache, mask, positions, 0
            return
        total = max(self.mask.shape[1], width)
        for old, new in zip(self.cache.layers, cache.layers, strict=True):
            keys = _stack(_kv(old, "keys"), len(self.rows), _kv(new, "keys"), len(rows), total)
            values = _stack(_kv(old, "values"), len(self.rows), _kv(new, "values"), len(rows), total)
            if keys is not None:
                old.keys, old.values, old.is_initialized, old.device = keys, values, True, keys.device
            else:  # no row has a column yet: the next forward starts the layer afresh, all rows at once
                old.keys, old.values, old.is_initialized = None, None, False
        pad = torch.nn.functional.pad
        self.mask = torch.cat([pad(self.mask, (total - self.mask.shape[1], 0)), pad(mask, (total - width, 0))])
        self.positions = torch.cat([self.positions, positions])
        self.rows, self.admitting = self.rows + list(rows), 0

    def _leave(self) -> None:
        """Drop the rows that ended or were cancelled, and the columns now padding in every row."""
        for row in self.rows:
            if (row.gen.cancelled or self._closed) and not row.left:
                row.end("cancelled")
        keep = [i for i, row in enumerate(self.rows) if not row.left]
        if len(keep) == len(self.rows):
            return
        if not keep:
            self.rows, self.cache, self.mask, self.positions = [], None, None, None
            return
        import torch

        index = torch.tensor(keep, dtype=torch.long)
        mask = self.mask[index]
        used = mask.any(dim=0)
        first = int(used.long().argmax()) if bool(used.any()) else mask.shape[1]
        self.mask, self.positions = mask[:, first:], self.positions[index]
        on_device = index.to(self.device)
        for layer in self.cache.layers:
            if getattr(layer, "keys", None) is not None and layer.keys.dim() == 4:
                layer.keys = layer.keys.index_select(0, on_device)[:, :, first:]
                layer.values = layer.values.index_select(0, on_device)[:, :, first:]
        self.rows = [self.rows[i] for i in keep]

    def _step(self) -> None:
        """One token for every row."""
        import torch

        rows = self.rows
        ids = torch.tensor([[row.next_id] for row in rows], dtype=torch.long)
        mask = torch.cat([self.mask, torch.ones(len(rows), 1, dtype=torch.long)], dim=1)
        started = time.perf_counter()
        logits = self._forward(rows, ids, mask, self.positions[:, None], self.cache).float().cpu()
        share = (time.perf_counter() - started) / len(rows)
        self.mask, self.positions = mask, self.positions + 1
        for i, row in enumerate(rows):
            row.gen.steps += 1
            row.gen.stats["machine_seconds"] += share  # the forward's share, then its own sampling
            row.began = time.perf_counter()
            try:
                self._advance(row, logits[i])
            except Exception as e:  # noqa: BLE001  this row fails, the others go on
                row.end("stop", error=e)
            row.clock()

    def _advance(self, row: _Row, logits: Any) -> None:
        """Sample ``row``'s next token and stream its text; end the row at a stop or its length."""
        import torch

        from aeth.generation.sampling import next_token

        previous = torch.tensor(row.generated, dtype=torch.long) if row.sampling.repetition_penalty != 1.0 else None
        token = next_token(logits, row.sampling, row.generator, previous)
        if token in self.stop_ids:
            row.end("stop")
            return
        row.generated.append(token)
        row.gen.stats["tokens_out"] = len(row.generated)
        row.gen.put(row.stop.push(row.detok.push(token)))
        if row.stop.hit:
            row.end("stop")
        elif len(row.generated) >= row.sampling.max_tokens:
            row.end("length")
        else:
            row.next_id = token


def _kv(layer: Any, which: str) -> Any:
    """A cache layer's keys or values [rows, heads, columns, dim], or None while it holds no column."""
    tensor = getattr(layer, which, None)
    return tensor if getattr(layer, "is_initialized", False) and tensor is not None and tensor.dim() == 4 \
        and tensor.shape[2] else None


def _stack(old: Any, old_rows: int, new: Any, new_rows: int, width: int) -> Any:
    """``old``'s rows above ``new``'s, each left-padded with zeros to ``width`` columns (None: no columns yet)."""
    import torch

    like = old if old is not None else new
    if like is None:
        return None

    def fit(tensor: Any, rows: int) -> Any:
        if tensor is None:
            return like.new_zeros(rows, like.shape[1], width, like.shape[3])
        return torch.nn.functional.pad(tensor, (0, 0, width - tensor.shape[2], 0))

    return torch.cat([fit(old, old_rows), fit(new, new_rows)])
