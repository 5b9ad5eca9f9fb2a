"""DeepSpeed as aeth's third engine (``aeth train --nproc N --deepspeed CONFIG``).

The user's ZeRO config is passed through with the values aeth's plan decides filled in
(:func:`config`), the engine is built by ``deepspeed.initialize`` (:func:`engine`), and
checkpoints gather the ZeRO partitions into aeth's one-process, pickle-free layout
(:func:`full_state`, :func:`load_full_state`), so a DeepSpeed run's checkpoint resumes under any
engine and process count.
"""

from __future__ import annotations

from typing import Any

from aeth.training.distributed import trainable_named

#: the options aeth fills in a user's DeepSpeed config (HF's convention: "auto" or absent)
_DS_FILLED = ("train_micro_batch_size_per_gpu", "gradient_accumulation_steps", "train_batch_size", "gradient_clipping")


def config(path: str, batch_size: int, grad_accum: int, world: int, lr: float) -> dict:
    """The JSON config at ``path`` with batch sizes, accumulation, clipping and the optimizer's
    ``"auto"`` learning rate taken from aeth's plan; a value that contradicts the plan is refused."""
    import json

    from aeth.errors import AethError

    try:
        settings = json.loads(open(path, encoding="utf-8").read())
    except (OSError, ValueError) as e:
        raise AethError(f"cannot read DeepSpeed config {path}: {e}") from None
    wanted = {"train_micro_batch_size_per_gpu": batch_size // world, "gradient_accumulation_steps": grad_accum,
              "train_batch_size": batch_size * grad_accum, "gradient_clipping": 1.0}
    for key in _DS_FILLED:
        given = settings.get(key, "auto")
        if given not in ("auto", wanted[key]) and key != "gradient_clipping":
            raise AethError(f"DeepSpeed config {path} sets {key}={given!r} but aeth's plan gives {wanted[key]} "
                            f"(--batch-size {batch_size} over {world} processes, --grad-accum {grad_accum}); "
                            f'set it to "auto" or drop it')
        settings[key] = wanted[key] if given == "auto" else given
    params = settings.get("optimizer", {}).get("params", {})
    for key, value in (("lr", lr), ("weight_decay", 0.0)):
        if params.get(key) == "auto":
            params[key] = value
    return settings


def engine(model: Any, params: list, config: dict, make_optimizer: Any) -> tuple[Any, Any]:
    """(engine, optimizer) from ``deepspeed.initialize``: the config's optimizer if it names one
    (needed for CPU offload, which only DeepSpeed's own Adam supports), else aeth's."""
    try:
        import deepspeed
    except ImportError:
        from aeth.errors import AethError

        raise AethError("--deepspeed needs the deepspeed package: pip install deepspeed") from None
    optimizer = None if "optimizer" in config else make_optimizer(params)
    engine, optimizer, _, _ = deepspeed.initialize(model=model, model_parameters=params, optimizer=optimizer, config=config)
    return engine, optimizer


def _inner_step(optimizer: Any) -> Any:
    """The optimizer step count DeepSpeed's ZeRO optimizer keeps in its inner (flat) optimizer."""
    for state in getattr(optimizer, "optimizer", optimizer).state.values():
        if "step" in state:
            return state["step"]
    return None


def full_state(model: Any, optimizer: Any) -> tuple[dict, dict]:
    """Whole fp32 weights and Adam moments, gathered from ZeRO partitions (a collective)."""
    from deepspeed.utils import safe_get_full_fp32_param, safe_get_full_optimizer_state

    named = trainable_named(model)
    weights = {n: safe_get_full_fp32_param(p).detach().cpu() for n, p in named}
    step = _inner_step(optimizer)
    state = {}
    for i, (_, p) in enumerate(named):
        moments = {k: safe_get_full_optimizer_state(p, k) for k in ("exp_avg", "exp_avg_sq")}
        if all(v is not None for v in moments.values()) and step is not None:
            state[i] = {"step": step.detach().cpu().clone() if hasattr(step, "detach") else step,
                        **{k: v.detach().cpu() for k, v in moments.items()}}
    groups = [{k: v for k, v in g.items() if k != "params"} for g in optimizer.param_groups]
    return weights, {"state": state, "param_groups": [{**groups[0], "params": list(range(len(named)))}]}


def load_full_state(model: Any, optimizer: Any, weights: dict, optim: dict) -> None:
    from deepspeed.utils import safe_set_full_fp32_param, safe_set_full_optimizer_state

    named = trainable_named(model)
    for i, (n, p) in enumerate(named):
        safe_set_full_fp32_param(p, weights[n].float())
        saved = optim["state"].get(i) or optim["state"].get(str(i))
        if saved:
            for key in ("exp_avg", "exp_avg_sq"):
                safe_set_full_optimizer_state(p, saved[key].float(), key)
    steps = [v["step"] for v in optim["state"].values() if "step" in v]
    if steps:
        for state in getattr(optimizer, "optimizer", optimizer).state.values():
            if "step" in state:
                state["step"] = steps[0].clone() if hasattr(steps[0], "clone") else steps[0]
