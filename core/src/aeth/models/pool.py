"""An application's model pool: each base model is loaded once and shared by its specialists.

Specialists on the same base share one :class:`~aeth.models.loading.LoadedModel` (their adapters
are switched on top of it per request). Importing this module does not import torch: loading
happens on the first :meth:`ModelPool.get`.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aeth.models.loading import (
    LoadedModel,
    load_model,
    resolve_device,
    resolve_dtype,
    resolve_quantization,
)
from aeth.models.resolve import resolve_model
from aeth.models.threads import apply_threads, choose_threads

if TYPE_CHECKING:
    from aeth.config import Config
    from aeth.models.adapters import AdapterVersion
    from aeth.specialist import Specialist


class ModelPool:
    """Loads base models on demand, once per pool (an application has one), and hands the same
    object to every caller.

    Models are keyed by (resolved directory, quantization, dtype, device, kind), so two references
    to the same directory share a model. Text and image-text models (vision-language models) live
    here alike, with the same safety check, dtype, device, threads and per-base locking.
    Thread-safe: loads are serialised under one lock, so concurrent callers of the same model wait
    for a single load (two loads at once would only compete for the same cores and memory).
    Configuration keys used: ``home``, ``model.quantization`` (overrides specialists'),
    ``model.dtype``, ``model.device``, ``model.threads`` and ``model.trust_remote_code``.
    """

    def __init__(self, config: Config):
        self.config = config
        self._lock = threading.RLock()
        self._paths: dict[str, Path] = {}
        self._models: dict[tuple[str, str, str, str, str], LoadedModel] = {}
        self._peft: dict[int, object] = {}  # id(base LoadedModel) -> its PeftModel, once an adapter is loaded
        self._switches: dict[int, AdapterSwitch] = {}
        self._serve_locks: defaultdict[int, threading.RLock] = defaultdict(threading.RLock)  # per base model

    def get(self, base_model: str, quantization: str | None = None, kind: str = "text") -> LoadedModel:
        """The loaded model for ``base_model`` (a built-in name, local directory or hub id).

        ``quantization`` is ``auto``, ``nf4`` or ``none``; when omitted, the configured
        ``model.quantization`` applies, else ``auto``. ``kind`` is ``text`` (a causal LM and its
        tokenizer) or ``image-text`` (a vision-language model and its processor, see
        :data:`~aeth.models.loading.KINDS`); the same directory loaded as both is two models.
        """
        if quantization is None:
            quantization = self.config.get("model.quantization") or "auto"
        with self._lock:
            path = self._paths.get(base_model)
            if path is None:
                path = self._paths[base_model] = resolve_model(base_model, self.config)
            device = resolve_device(self.config["model.device"])
            quant = resolve_quantization(quantization, device)
            dtype = resolve_dtype(self.config["model.dtype"], device)
            key = (str(path), quant, dtype, device, kind)
            loaded = self._models.get(key)
            if loaded is None:
                loaded = load_model(
                    path,
                    quantization=quant,
                    dtype=dtype,
                    device=device,
                    trust_remote_code=self.config["model.trust_remote_code"],
                    name=base_model,
                    kind=kind,
                )
                self._models[key] = loaded
                # Sized for the largest model in the pool: a tiny model loaded first must not
                # leave a big one on a single thread.
                largest = max(m.n_params for m in self._models.values())
                apply_threads(choose_threads(largest, self.config["model.threads"]))
            return loaded

    def for_specialist(self, spec: Specialist) -> LoadedModel:
        """The base model of ``spec``: its ``base_model`` with its ``quantization``, unless the
        configuration's ``model.quantization`` overrides every specialist's."""
        override = self.config.get("model.quantization")
        return self.get(spec.base_model, override or spec.quantization)

    @property
    def loaded(self) -> list[LoadedModel]:
        """The models loaded so far, in load order."""
        with self._lock:
            return list(self._models.values())

    def with_adapter(self, loaded: LoadedModel, specialist: str, adapter: AdapterVersion | None) -> tuple[LoadedModel, Any]:
        """``loaded`` with ``specialist``'s adapter, and the context to generate in.

        Every adapter on a base is loaded once into one PEFT model over the shared base weights and
        selected per request (a switch, not a reload). The selection happens when the context is
        entered, under a lock per base model held until it exits, so two threads serving different
        adapters of one base take turns instead of switching under each other. A specialist
        without an adapter on a base that carries others gets every adapter layer switched off: the
        bare base. Switching sets two attributes on each LoRA layer, from a list made when an
        adapter is loaded, instead of PEFT's ``set_adapter`` (a walk over every module that also
        resets ``requires_grad``, which serving does not need): well under a millisecond.
        """
        if adapter is None:
            with self._lock:
                if self._peft.get(id(loaded)) is None:
                    return loaded, nullcontext()
                return replace(loaded, model=self._peft[id(loaded)]), self._serving(id(loaded), None)
        name = self.load_adapter(loaded, specialist, adapter)
        return replace(loaded, model=self._peft[id(loaded)]), self._serving(id(loaded), name)

    def load_adapter(self, loaded: LoadedModel, specialist: str, adapter: AdapterVersion) -> str:
        """Load ``specialist``'s ``adapter`` into ``loaded``'s PEFT model (once) and return its PEFT
        adapter name, which a mixed batch passes per row (see :meth:`mixed`)."""
        name = f"{specialist}.{adapter.version}".replace(".", "--")  # PEFT adapter names may not hold dots
        with self._lock:
            peft_model = self._peft.get(id(loaded))
            if peft_model is not None and name in peft_model.peft_config:
                return name
            from peft import PeftModel
            from safetensors.torch import load_file

            from aeth.models.adapters import WEIGHTS

            load_file(Path(adapter.path) / WEIGHTS)  # damaged weights fail here, before the shared model is touched
            with self._serve_locks[id(loaded)]:  # not while another request generates on this base
                if peft_model is None:  # wraps the shared base in place: its layers gain LoRA modules
                    peft_model = PeftModel.from_pretrained(loaded.model, str(adapter.path), adapter_name=name)
                    peft_model.eval()
                    self._peft[id(loaded)] = peft_model
                else:
                    try:
                        peft_model.load_adapter(str(adapter.path), adapter_name=name)
                    except BaseException:
                        if name in peft_model.peft_config:  # half loaded: it must not be served later
                            peft_model.delete_adapter(name)
                        raise
                self._switches[id(loaded)] = AdapterSwitch(peft_model)  # the new adapter may add layers
            return name

    def serve_lock(self, loaded: LoadedModel) -> threading.RLock:
        """The lock one forward (or one whole stream) on ``loaded`` holds so nobody switches adapters under it."""
        with self._lock:
            return self._serve_locks[id(loaded)]

    @contextmanager
    def mixed(self, loaded: LoadedModel, names: list[str | None]) -> Iterator[tuple[Any, dict[str, Any]]]:
        """Under ``loaded``'s serve lock: the model for one forward whose row ``i`` uses adapter
        ``names[i]`` (a name :meth:`load_adapter` returned, or None for the bare base), and the
        extra arguments to call it with.

        Rows that all want the same adapter (or none) get it switched on as :meth:`with_adapter`
        does; a mix gets every adapter layer switched on and PEFT's ``adapter_names=[...]``, which
        applies each row's own adapter (``"__base__"``: none) within the one forward.
        """
        with self.serve_lock(loaded):
            peft_model = self._peft.get(id(loaded))
            if peft_model is None:
                if any(names):
                    raise ValueError(f"no adapter is loaded on {loaded.name!r}; load_adapter() first")
                yield loaded.model, {}
                return
            switch = self._switches[id(loaded)]
            if len(set(names)) == 1:
                switch.select(names[0])
                yield peft_model, {}
            else:
                switch.select_mixed()
                yield peft_model, {"adapter_names": [name or "__base__" for name in names]}

    @contextmanager
    def _serving(self, key: int, name: str | None) -> Iterator[None]:
        with self._serve_locks[key]:
            self._switches[key].select(name)
            yield


class AdapterSwitch:
    """Selects one loaded adapter of a PEFT model (or none) by setting each LoRA layer's state directly."""

    def __init__(self, peft_model: Any):
        from peft.tuners.tuners_utils import BaseTunerLayer

        self.model = peft_model
        self.layers = [m for m in peft_model.modules() if isinstance(m, BaseTunerLayer)]
        self.current: Any = False  # False: not known yet; _MIXED: every adapter on, chosen per row

    def select(self, name: str | None) -> None:
        """Make ``name`` the active adapter on every layer, or switch every adapter off (None)."""
        if name == self.current:
            return
        for layer in self.layers:
            state = layer.__dict__  # plain attributes: skip nn.Module.__setattr__'s bookkeeping
            if name is None:
                state["_disable_adapters"] = True
            else:
                state["_disable_adapters"] = False
                state["_active_adapter"] = [name]  # as PEFT does: a layer the adapter skips ignores the name
        if name is not None:
            self.model.base_model.active_adapter = name
        self.current = name

    def select_mixed(self) -> None:
        """Switch every layer's adapters on, for a forward that names each row's adapter (``adapter_names``)."""
        if self.current is _MIXED:
            return
        for layer in self.layers:
            layer.__dict__["_disable_adapters"] = False
        self.current = _MIXED


_MIXED = object()
