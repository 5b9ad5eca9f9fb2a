"""aeth's default trainer: LoRA (or QLoRA) on the specialist's base model, ending in an adapter version."""

from __future__ import annotations

from aeth.hookspecs import hookimpl


@hookimpl(trylast=True)
def train(specialist, plan):
    from aeth import __version__, runtime
    from aeth.datasets import training_records
    from aeth.models.adapters import AdapterStore
    from aeth.models.loading import load_model
    from aeth.models.resolve import resolve_model
    from aeth.training.loop import train as run

    cfg = runtime.config()
    data = training_records(specialist, cfg.home)
    path = resolve_model(plan.base_model, cfg)
    loaded = load_model(path, quantization=plan.quantization, dtype=cfg.get("model.dtype", "auto"),
                        device=cfg.get("model.device", "auto"), trust_remote_code=bool(cfg.get("model.trust_remote_code", False)),
                        name=plan.base_model)
    from aeth.models.threads import apply_threads, choose_threads

    apply_threads(choose_threads(loaded.n_params, cfg.get("model.threads", "auto")))  # as deliberate as for serving
    manifest = {"base_model": plan.base_model, "base_path": str(path), "quantization": loaded.quantization,
                "dtype": loaded.dtype, "recipe": {"sources": data.sources, "train": len(data.train),
                                                  "validation": len(data.validation)},
                "specialist_version": specialist.version, "aeth_version": __version__}
    return run(specialist, plan, data.train, data.validation, loaded, AdapterStore(cfg.home), manifest)
