"""The model as the loop trains it: a LoRA (PEFT) over the base, QLoRA-ready when the base is 4-bit,
and the optimizer over its trainable parameters."""

from __future__ import annotations

from typing import Any


def prepare_kbit(model: Any) -> Any:
    """Ready a 4-bit base for QLoRA: base frozen, gradient checkpointing on, inputs requiring grad.

    peft's ``prepare_model_for_kbit_training`` also casts every weight that is not 4-bit to fp32;
    the tied embedding / lm_head alone would raise SmolLM2-135M's weights from 0.21x to 0.31x of
    fp32 (bench/bench_nf4.py), so aeth leaves them in the compute dtype.
    """
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    options = {"use_reentrant": False}
    if hasattr(model, "activation_checkpointing_enable"):  # transformers >= 5.x's name for it
        model.activation_checkpointing_enable(activation_checkpointing_kwargs=options)
    else:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs=options)
    model.enable_input_require_grads()
    return model


def add_lora(loaded: Any, spec: Any) -> Any:
    """``loaded``'s model (:class:`~aeth.models.loading.LoadedModel`) with the LoRA of ``spec`` (an
    :class:`~aeth.specialist.AdapterSpec`) on the target modules it has (all named ones if none match)."""
    from peft import LoraConfig, get_peft_model

    model = loaded.model
    if loaded.quantization == "nf4":
        prepare_kbit(model)
    present = {name.rsplit(".", 1)[-1] for name, _ in model.named_modules()}
    targets = [m for m in spec.target_modules if m in present] or list(spec.target_modules)
    return get_peft_model(model, LoraConfig(r=spec.r, lora_alpha=spec.alpha, lora_dropout=spec.dropout,
                                            target_modules=targets, task_type="CAUSAL_LM"))


def start_lora(loaded: Any, spec: Any, init_adapter: str | None = None) -> Any:
    """The LoRA a run trains: a fresh one from ``spec`` (:func:`add_lora`), or, with ``init_adapter``
    (an adapter version's directory), that adapter's weights and LoRA settings, trainable, so the run
    continues what serves. Either way the adapter is PEFT's "default", so checkpoints and saved
    versions have the same parameter names."""
    if init_adapter is None:
        return add_lora(loaded, spec)
    from peft import PeftModel

    if loaded.quantization == "nf4":
        prepare_kbit(loaded.model)
    return PeftModel.from_pretrained(loaded.model, str(init_adapter), is_trainable=True)


def make_optimizer(name: str, params: list, lr: float) -> Any:
    """AdamW (torch), or bitsandbytes' 8-bit / paged AdamW: 8-bit state takes a quarter of the memory
    of fp32 state, paged state spills to CPU memory instead of failing when the GPU runs out."""
    import torch

    if name == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
    import bitsandbytes as bnb

    kinds = {"adamw8bit": bnb.optim.AdamW8bit, "paged_adamw8bit": bnb.optim.PagedAdamW8bit,
             "paged_adamw": bnb.optim.PagedAdamW32bit}
    return kinds[name](params, lr=lr, weight_decay=0.0)
