"""Load a checked model directory with transformers: device, dtype and NF4 quantization chosen here.

Two kinds of model load here (:data:`KINDS`): ``text``, a causal language model with its
tokenizer, and ``image-text``, a model that reads images and text and writes text (a
vision-language model such as SmolVLM) with its processor. Both go through the same safety check,
device, dtype and quantization choices.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aeth.config import DEVICES, DTYPES, QUANTIZATIONS
from aeth.errors import ModelError
from aeth.models.safety import check_model_dir

#: what a model reads and writes: ``text`` (a causal LM) or ``image-text`` (images and text in, text out)
KINDS = ("text", "image-text")


@dataclass
class LoadedModel:
    """A base model in memory with its tokenizer, and how it was loaded.

    ``dtype`` is the compute dtype (``"bfloat16"``, ``"float16"`` or ``"float32"``);
    ``quantization`` is ``"nf4"`` or ``"none"``; ``n_params`` counts logical parameters (a 4-bit
    weight counts as one, not as half a byte). ``kind`` is one of :data:`KINDS`; an ``image-text``
    model also has its ``processor`` (which turns images and text into model inputs), and
    ``tokenizer`` is that processor's tokenizer.
    """

    model: Any
    tokenizer: Any
    name: str
    path: Path
    device: str
    dtype: str
    quantization: str
    n_params: int
    kind: str = "text"
    processor: Any = None


def resolve_device(device: str = "auto") -> str:
    """``"cuda"`` or ``"cpu"``: ``auto`` picks CUDA when available; asking for absent CUDA is an error."""
    _check_choice("device", device, DEVICES)
    import torch

    has_cuda = torch.cuda.is_available()
    if device == "auto":
        return "cuda" if has_cuda else "cpu"
    if device == "cuda" and not has_cuda:
        raise ModelError("model.device is 'cuda' but torch sees no CUDA device; set model.device to auto or cpu")
    return device


def resolve_quantization(quantization: str, device: str) -> str:
    """``"nf4"`` or ``"none"``: ``auto`` is NF4 on CUDA (memory) and none on CPU, where LoRA over a
    bf16 base is as fast as QLoRA and more accurate on small models."""
    _check_choice("quantization", quantization, QUANTIZATIONS)
    if quantization == "auto":
        return "nf4" if device == "cuda" else "none"
    return quantization


def resolve_dtype(dtype: str, device: str) -> str:
    """The compute dtype name: ``auto`` = bfloat16 where ``device`` runs it natively, else float32.

    CPUs without AVX512-BF16 or AMX still compute in bfloat16, but emulated: on the 2-core
    reference Xeon (AVX-512, no BF16) a bf16 matmul runs at 30 GFLOP/s against 152 in float32, so
    LoRA training is 3.2x and decoding ~1.2x faster in float32 (bench/bench_train.py). An explicit
    bfloat16 is honoured wherever it works, and falls back to float32 (with a warning) elsewhere.
    """
    _check_choice("dtype", dtype, DTYPES)
    if dtype == "auto":
        return "bfloat16" if bf16_native(device) else "float32"
    if dtype == "bfloat16":
        if bf16_supported(device):
            return "bfloat16"
        if dtype == "bfloat16":
            from aeth.plugins import warn

            warn(f"bfloat16 does not work on this {device}; using float32 instead")
        return "float32"
    return dtype


@functools.cache
def bf16_native(device: str) -> bool:
    """Whether ``device`` computes bfloat16 in hardware (CUDA with bf16, or a CPU with AVX512-BF16 or AMX)."""
    if device != "cpu":
        return bf16_supported(device)
    import torch

    checks = [getattr(torch.cpu, name, lambda: False) for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported")]
    return any(check() for check in checks) and bf16_supported(device)


@functools.cache
def bf16_supported(device: str) -> bool:
    """Whether bfloat16 matmuls work on ``device`` (probed once per process)."""
    import torch

    if device == "cuda":
        return bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported())
    try:  # CPUs without native bf16 still emulate it in recent torch; a failure means no support
        a = torch.ones(4, 4, dtype=torch.bfloat16)
        return bool(torch.isfinite((a @ a).float()).all())
    except Exception:  # noqa: BLE001  (any failure of the probe means: do not use bf16 here)
        return False


def load_model(
    path: str | Path,
    *,
    quantization: str = "auto",
    dtype: str = "auto",
    device: str = "auto",
    trust_remote_code: bool = False,
    name: str | None = None,
    kind: str = "text",
) -> LoadedModel:
    """Load the model in ``path`` (safetensors only) for inference or training: a causal LM and its
    tokenizer, or with ``kind="image-text"`` an image-text-to-text model and its processor.

    ``quantization``: ``nf4`` (bitsandbytes 4-bit NF4, double quantization, works on CPU and
    CUDA), ``none``, or ``auto`` (NF4 on CUDA, none on CPU). ``dtype`` is the compute dtype
    (``auto`` = bf16 where supported, else fp32). ``trust_remote_code`` lets a model's own Python
    code run and is off unless the user turns it on. Failures raise :class:`ModelError` naming the
    path and the cause.
    """
    _check_choice("kind", kind, KINDS)
    path = Path(path).expanduser()
    check_model_dir(path)
    device = resolve_device(device)
    quant = resolve_quantization(quantization, device)
    dtype_name = resolve_dtype(dtype, device)

    import torch
    import transformers

    torch_dtype = getattr(torch, dtype_name)
    kwargs: dict[str, Any] = {"dtype": torch_dtype, "use_safetensors": True, "trust_remote_code": trust_remote_code}
    if quant == "nf4":
        kwargs["quantization_config"] = _nf4_config(torch_dtype)
    if device == "cuda":
        kwargs["device_map"] = {"": "cuda"}

    try:
        with _quiet_transformers():
            if kind == "image-text":
                model = transformers.AutoModelForImageTextToText.from_pretrained(path, **kwargs)
                processor = transformers.AutoProcessor.from_pretrained(path, trust_remote_code=trust_remote_code)
                tokenizer = processor.tokenizer
            else:
                model = transformers.AutoModelForCausalLM.from_pretrained(path, **kwargs)
                processor = None
                tokenizer = transformers.AutoTokenizer.from_pretrained(path, trust_remote_code=trust_remote_code)
    except ModelError:
        raise
    except Exception as e:
        hint = " (it needs its own code: set model.trust_remote_code=true if you trust it)" \
            if "trust_remote_code" in str(e) else ""
        what = "the image-text model" if kind == "image-text" else "the model"
        raise ModelError(f"could not load {what} in {path}: {type(e).__name__}: {e}{hint}") from e

    if quant == "nf4":
        _disable_cpu_inference_repack(model)
    model.eval()
    if tokenizer.pad_token is None and tokenizer.eos_token is not None:
        # Batched generation and training pad; eos is the conventional pad for causal LMs.
        tokenizer.pad_token = tokenizer.eos_token
    return LoadedModel(
        model=model,
        tokenizer=tokenizer,
        name=name or path.name,
        path=path,
        device=device,
        dtype=dtype_name,
        quantization=quant,
        n_params=int(model.num_parameters()),
        kind=kind,
        processor=processor,
    )


@contextmanager
def _quiet_transformers() -> Iterator[None]:
    """Hide transformers' per-tensor "Loading weights" bar and advisory warnings while loading.

    Loading safetensors takes well under a second for aeth's models, and a library call must not
    write to stderr: the CLI's ``--quiet`` and ``--json`` modes promise clean output. Errors still
    surface as exceptions.
    """
    from transformers.utils import logging as hf_logging

    bars, verbosity = hf_logging.is_progress_bar_enabled(), hf_logging.get_verbosity()
    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()
    try:
        yield
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()


def _nf4_config(compute_dtype: Any) -> Any:
    # On import, bitsandbytes tries to fetch an AVX512-BF16 inference kernel through the optional
    # `kernels` package and warns when it is absent; aeth disables that inference path anyway
    # (see _disable_cpu_inference_repack), so the warning would only mislead.
    cpu_ops_log = logging.getLogger("bitsandbytes.backends.cpu.ops")
    level = cpu_ops_log.level
    cpu_ops_log.setLevel(logging.ERROR)
    try:
        import bitsandbytes  # noqa: F401  (imported to fail here, with a fix, rather than deep in transformers)
    except ImportError as e:
        raise ModelError(
            "quantization 'nf4' needs bitsandbytes, which is not installed. Fix: `pip install 'aeth[train]'` "
            "(or `pip install bitsandbytes`), or set model.quantization to none"
        ) from e
    finally:
        cpu_ops_log.setLevel(level)
    from transformers import BitsAndBytesConfig

    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=compute_dtype,
    )


def _disable_cpu_inference_repack(model: Any) -> int:
    """Turn off bitsandbytes' CPU inference repacking on every 4-bit layer; return how many.

    On CPUs with AVX512-BF16, the first no-grad forward repacks 4-bit weights into an inference
    layout, after which training silently loses the base layers' gradients (only a warning says
    so). A loaded model may be evaluated and then trained (train -> eval -> train), so the repack
    is disabled everywhere; inference stays correct, only that CPU fast path is skipped.
    """
    import bitsandbytes as bnb

    n = 0
    for module in model.modules():
        if isinstance(module, bnb.nn.Linear4bit):
            module.support_avx512bf16_for_cpu = False
            n += 1
    return n


def _check_choice(what: str, value: str, options: tuple[str, ...]) -> None:
    if value not in options:
        raise ModelError(f"model {what} must be one of {', '.join(options)}, got {value!r}")
