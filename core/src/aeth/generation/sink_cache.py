"""An attention-sink rolling KV cache (StreamingLLM) for transformers 5.x: constant memory, any length.

Each layer keeps the first ``sinks`` tokens (attention sinks) and the ``window`` most recent ones.
Before a forward of ``q`` new tokens, :meth:`SinkCache.make_room` evicts the oldest window tokens
so the new ones fit, and rotates the kept window keys back by the number evicted, so positions
inside the cache stay contiguous (0 .. sinks + window - 1), as StreamingLLM does. Because the
room is made before the forward, the model's own defaults are the in-cache ones: without
``position_ids`` it numbers new tokens from ``get_seq_length()``, and builds its mask from
``get_query_offset`` and ``get_mask_sizes`` (see DESIGN.md §5). Absolute positions, which
``generate()`` would pass, must not be given.

Left-padded batches (prompts of different lengths) declare their padding to ``make_room`` with the
new tokens' 2-D mask; the cache then counts each row's pad slots at the front (``pad``), drops pads
before real tokens when it evicts, so a short row's sinks are its first real tokens, and
:meth:`SinkCache.forward_inputs` gives the ``attention_mask`` and ``position_ids`` the forward needs.

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

    def excess(self, new: int) -> int:
        """Slots to evict so ``new`` more fit (never the first ``sinks``)."""
        length = self.get_seq_length()
        excess = length + new - (self.sinks + self.window)
        return max(0, min(excess, length - min(length, self.sinks))) if self.is_initialized else 0

    def make_room(self, new: int) -> int:
        """Evict the oldest window tokens so ``new`` more fit; re-rotate the kept window keys. Returns how many went."""
        excess = self.excess(new)
        if excess:
            self.evict(excess)
        return excess

    def evict(self, excess: int, pad: Any = None, dropped: Any = None) -> None:
        """Remove ``excess`` slots from every row and re-rotate the kept window keys.

        Unpadded (``dropped`` None or all 0): the ``excess`` window tokens after the sinks go, and the
        kept window rotates back by ``excess``. Padded: row ``i`` has ``pad[i]`` pad slots in front and
        loses ``dropped[i]`` of them plus its ``excess - dropped[i]`` oldest window tokens (those after
        its ``sinks`` real tokens); its kept window rotates back by ``excess - dropped[i]``.
        """
        import torch

        if dropped is None or not bool(dropped.any()):
            shift: Any = excess
            head, kept = self.keys[:, :, :self.sinks], self.keys[:, :, self.sinks + excess:]
            self.values = torch.cat([self.values[:, :, :self.sinks], self.values[:, :, self.sinks + excess:]], dim=-2)
        else:
            rows, heads, length, dim = self.keys.shape
            shift = excess - dropped  # [B] real window tokens each row loses
            slot = torch.arange(length, device=self.keys.device)[None]
            start = (pad + self.sinks)[:, None]  # a row's window starts after its pads and sinks
            keep = (slot >= dropped[:, None]) & ~((slot >= start) & (slot < start + shift[:, None]))
            index = keep.nonzero()[:, 1].view(rows, 1, length - excess, 1).expand(rows, heads, -1, dim)
            keys, self.values = self.keys.gather(2, index), self.values.gather(2, index)
            # a row that lost window tokens lost all its pads, so its window starts at slot `sinks`;
            # the other rows rotate by 0, which leaves their keys exactly as they were
            shift = shift.to(torch.float32)[:, None, None, None]
            head, kept = keys[:, :, :self.sinks], keys[:, :, self.sinks:]
        angle = shift * self.inv_freq.to(device=kept.device, dtype=torch.float32)
        emb = torch.cat((angle, angle), dim=-1)
        cos, sin = emb.cos(), emb.sin()
        # R(p - e) = R(-e) R(p): rotating by -e is x cos(e) - rotate_half(x) sin(e)
        rotated = (kept.float() * cos - _rotate_half(kept.float()) * sin).to(kept.dtype)
        self.keys = torch.cat([head, rotated], dim=-2)

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
    """Sinks + rolling window for every layer; call :meth:`make_room` before each forward.

    ``pad`` is ``None`` until a batch declares left padding (see :meth:`make_room`); then it is a
    LongTensor ``[B]``: each row's pad slots at the front, those of the forward being prepared included.
    """

    def __init__(self, layers: list[SinkLayer]):
        super().__init__(layers=layers)
        self.pad: Any = None

    @property
    def capacity(self) -> int:
        """Tokens the cache can hold (sinks + window)."""
        return self.layers[0].get_max_length()

    def make_room(self, new: int, attention_mask: Any = None) -> int:
        """Before a forward of ``new`` tokens: evict so they fit (``new`` may not exceed the window).

        ``attention_mask`` (``[B, new]``, 1 real, 0 pad) declares left padding among the new tokens:
        a row's pads must come before any of its real tokens, in this forward and all earlier ones.
        Once padding is declared, pass the model :meth:`forward_inputs`; later calls may omit the mask
        (all new tokens real). Evicting ``e`` slots, row ``i`` first drops ``min(e, pad[i])`` pads.
        """
        import torch

        window = self.layers[0].window
        if new > window:
            raise ValueError(f"a forward of {new} tokens does not fit a window of {window}; prefill in chunks of at most {window}")
        if attention_mask is None and self.pad is None:
            evicted = [layer.make_room(new) for layer in self.layers]
            return evicted[0]
        excess = self.layers[0].excess(new)
        pad = self.pad
        if pad is None:  # padding declared now, over a cache that has none
            pad = torch.zeros(attention_mask.shape[0], dtype=torch.long, device=attention_mask.device)
        new_pads = self._new_pads(new, attention_mask, pad)  # checked before anything changes
        if excess:
            # Row i keeps pad[i] + R[i] = L slots and loses e - d[i] real ones, d[i] = min(e, pad[i]).
            # e <= L - sinks (SinkLayer.excess), so if e > pad[i]: e - pad[i] <= R[i] - sinks, and the
            # tokens lost lie after the row's sinks; if e <= pad[i] it loses no real token at all.
            dropped = pad.clamp(max=excess)
            for layer in self.layers:
                layer.evict(excess, pad, dropped)
            pad = pad - dropped
        self.pad = pad + new_pads
        return excess

    def _new_pads(self, new: int, attention_mask: Any, pad: Any) -> Any:
        """Pads among the ``new`` tokens per row, after checking they form a left padding."""
        import torch

        if attention_mask is None:
            return torch.zeros_like(pad)
        mask = attention_mask.to(device=pad.device, dtype=torch.bool)
        if mask.shape != (pad.shape[0], new):
            raise ValueError(f"attention_mask has shape {tuple(mask.shape)}; a forward of {new} tokens over "
                             f"{pad.shape[0]} rows needs ({pad.shape[0]}, {new})")
        pads = new - mask.sum(dim=1)
        left = torch.arange(new, device=pad.device)[None] >= pads[:, None]
        has_real = self.get_seq_length() - pad > 0
        if not bool((mask == left).all()) or bool((has_real & (pads > 0)).any()):
            raise ValueError("a sink cache takes left padding only: in each row, pads (0 in attention_mask) "
                             "must come before every real token; pad on the left, or keep feeding a finished "
                             "row real tokens")
        return pads

    def forward_inputs(self, new: int) -> dict[str, Any]:
        """After :meth:`make_room`: the ``attention_mask`` (``[B, slots + new]``, False at pad slots) and
        ``position_ids`` (``[B, new]``: the row's real tokens in the cache onward) for a forward of
        ``new`` tokens; ``{}`` when no padding was declared (the model's defaults are right then)."""
        import torch

        if self.pad is None:
            return {}
        slot = torch.arange(self.get_seq_length() + new, device=self.pad.device)[None]
        # real tokens sit in slots pad .. end at in-cache positions 0 .. n-1; a pad's position is unused
        return {"attention_mask": slot >= self.pad[:, None],
                "position_ids": (slot[:, -new:] - self.pad[:, None]).clamp(min=0)}

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
    config = model.config.get_text_config() if hasattr(model.config, "get_text_config") else model.config
    name = type(model).__name__
    # the language model's rotary embedding (an image-text model's vision tower may have its own)
    decoder = model.get_decoder() if hasattr(model, "get_decoder") else model
    rotary = next((m for n, m in decoder.named_modules() if n.endswith("rotary_emb")), None)
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
    if "mrope_section" in (getattr(config, "rope_parameters", None) or getattr(config, "rope_scaling", None) or {}):
        raise ModelError(f"{name} numbers its tokens with multimodal RoPE (positions per image row and column), "
                         "which a sink cache cannot re-position")
    inv_freq = rotary.inv_freq.detach().clone()
    return SinkCache([SinkLayer(sinks, window, inv_freq) for _ in range(config.num_hidden_layers)])
