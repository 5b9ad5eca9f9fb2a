"""An attention-sink rolling KV cache (StreamingLLM) for transformers 5.x: constant memory, any length.

Each layer keeps the first ``sinks`` tokens (attention sinks) and the ``window`` most recent ones.
Before a forward of ``q`` new tokens, :meth:`SinkCache.make_room` evicts the oldest window tokens
so the new ones fit, and rotates the kept window keys back by the number evicted, so positions
inside the cache stay contiguous (0 .. sinks + window - 1), as StreamingLLM does. Because the
room is made before the forward, the model's own defaults are the in-cache ones: without
``position_ids`` it numbers new tokens from ``get_seq_length()``, and builds its mask from
``get_query_offset`` and ``get_mask_sizes`` (see DESIGN.md §5). Absolute positions, which
``generate()`` would pass, must not be given.

Only rotary (RoPE) models whose rotary embedding is the plain or linearly scaled kind are served;
:func:`sink_cache_for` refuses the rest (learned absolute positions, partial rotary dimensions,
dynamic/YaRN/LongRoPE scaling) with an error that says why, instead of degrading silently.
"""

from __future__ import annotations

from typing import Any

from transformers.cache_utils import Cache, CacheLayerMixin

from aeth.errors import ModelError

#: rotary embedding kinds whose inv_freq fully describes a rotation (what re-rotation relies on)
SUPPORTED_ROPE = ("default", "linear")


def _rotate_half(x: Any) -> Any:
    import torch

    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


class SinkLayer(CacheLayerMixin):
    """One layer's keys and values: ``sinks`` first tokens + the last ``window`` tokens."""

    is_sliding = False

    def __init__(self, sinks: int, window: int, inv_freq: Any):
        super().__init__()
        self.sinks, self.window, self.inv_freq = sinks, window, inv_freq
        self.seen = 0  # tokens ever added, evicted ones included

    def lazy_initialization(self, key_states: Any, value_states: Any) -> None:
        import torch

        self.device = key_states.device
        self.keys = torch.empty(*key_states.shape[:2], 0, key_states.shape[-1], dtype=key_states.dtype, device=self.device)
        self.values = torch.empty(*value_states.shape[:2], 0, value_states.shape[-1], dtype=value_states.dtype,
                                  device=self.device)
        self.is_initialized = True

    def update(self, key_states: Any, value_states: Any, *args: Any, **kwargs: Any) -> tuple[Any, Any]:
        """Append the new (already rotated) keys and values; return everything the attention sees."""
        import torch

        if not self.is_initialized:
            self.lazy_initialization(key_states, value_states)
        self.keys = torch.cat([self.keys, key_states], dim=-2)
        self.values = torch.cat([self.values, value_states], dim=-2)
        self.seen += key_states.shape[-2]
        return self.keys, self.values

    def make_room(self, new: int) -> int:
        """Evict the oldest window tokens so ``new`` more fit; re-rotate the kept window keys. Returns how many went."""
        import torch

        length = self.get_seq_length()
        excess = length + new - (self.sinks + self.window)
        if excess <= 0 or not self.is_initialized:
            return 0
        excess = min(excess, length - min(length, self.sinks))
        if excess <= 0:
            return 0
        kept = self.keys[:, :, self.sinks + excess:]
        angle = excess * self.inv_freq.to(device=kept.device, dtype=torch.float32)
        emb = torch.cat((angle, angle), dim=-1)
        cos, sin = emb.cos(), emb.sin()
        # R(p - e) = R(-e) R(p): rotating by -e is x cos(e) - rotate_half(x) sin(e)
        rotated = (kept.float() * cos - _rotate_half(kept.float()) * sin).to(kept.dtype)
        self.keys = torch.cat([self.keys[:, :, :self.sinks], rotated], dim=-2)
        self.values = torch.cat([self.values[:, :, :self.sinks], self.values[:, :, self.sinks + excess:]], dim=-2)
        return excess

    def get_mask_sizes(self, query_length: int) -> tuple[int, int]:
        return self.get_seq_length() + query_length, 0

    def get_seq_length(self) -> int:
        return 0 if not self.is_initialized or self.keys is None else self.keys.shape[-2]

    def get_max_length(self) -> int:
        return self.sinks + self.window

    def nbytes(self) -> int:
        """Bytes of keys and values held."""
        return 0 if not self.is_initialized else self.keys.nbytes + self.values.nbytes


class SinkCache(Cache):
    """Sinks + rolling window for every layer; call :meth:`make_room` before each forward."""

    def __init__(self, layers: list[SinkLayer]):
        super().__init__(layers=layers)

    @property
    def capacity(self) -> int:
        """Tokens the cache can hold (sinks + window)."""
        return self.layers[0].get_max_length()

    def make_room(self, new: int) -> int:
        """Before a forward of ``new`` tokens: evict so they fit (``new`` may not exceed the window)."""
        window = self.layers[0].window
        if new > window:
            raise ValueError(f"a forward of {new} tokens does not fit a window of {window}; prefill in chunks of at most {window}")
        evicted = [layer.make_room(new) for layer in self.layers]
        return evicted[0]

    @property
    def tokens_seen(self) -> int:
        """Tokens ever added (evicted ones included)."""
        return self.layers[0].seen

    def nbytes(self) -> int:
        """Bytes of keys and values held, all layers."""
        return sum(layer.nbytes() for layer in self.layers)


def sink_cache_for(model: Any, sinks: int = 4, window: int = 252) -> SinkCache:
    """A :class:`SinkCache` for ``model`` (a transformers causal LM), or a :class:`ModelError` naming
    why the model cannot be served correctly with one."""
    if sinks < 0 or window < 1:
        raise ValueError(f"sinks must be >= 0 and window >= 1 (got {sinks}, {window})")
    config = model.config
    name = type(model).__name__
    rotary = next((m for n, m in model.named_modules() if n.endswith("rotary_emb")), None)
    if rotary is None or not hasattr(rotary, "inv_freq"):
        raise ModelError(f"{name} has no rotary position embedding (learned absolute positions?): a sink cache "
                         "cannot re-position its keys; use a RoPE model")
    rope = getattr(rotary, "rope_type", "default")
    if rope not in SUPPORTED_ROPE:
        raise ModelError(f"{name} uses {rope!r} RoPE scaling, which a sink cache would distort; supported: "
                         f"{', '.join(SUPPORTED_ROPE)}")
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
    if 2 * rotary.inv_freq.numel() != head_dim:
        raise ModelError(f"{name} rotates {2 * rotary.inv_freq.numel()} of {head_dim} head dimensions (partial RoPE), "
                         "which this sink cache does not handle")
    inv_freq = rotary.inv_freq.detach().clone()
    return SinkCache([SinkLayer(sinks, window, inv_freq) for _ in range(config.num_hidden_layers)])
