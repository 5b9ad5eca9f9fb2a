"""aeth's default trainer: LoRA (or QLoRA) on the specialist's base model, ending in an adapter version
(with ``plan.teacher``, distilling that teacher's token distributions as it trains)."""

from __future__ import annotations

from aeth.hookspecs import hookimpl


@hookimpl(trylast=True)
def train(specialist, plan):
    from aeth import __version__, runtime
    from aeth.datasets import training_records
    from aeth.fingerprint import model_hash, records_hash
    from aeth.models.adapters import AdapterStore
    from aeth.models.loading import load_model
    from aeth.models.resolve import resolve_model
    from aeth.models.threads import apply_threads, choose_threads
    from aeth.training import distributed
    from aeth.training.loop import train as run

    cfg = runtime.config()
    dist = distributed.setup()
    distributed.quiet_deepspeed()
    data = training_records(specialist, cfg.home)
    path = resolve_model(plan.base_model, cfg)
    device = dist.device if dist.active else cfg.get("model.device", "auto")  # one GPU per rank
    loaded = load_model(path, quantization=plan.quantization, dtype=cfg.get("model.dtype", "auto"),
                        device=device, trust_remote_code=bool(cfg.get("model.trust_remote_code", False)),
                        name=plan.base_model)
    threads = choose_threads(loaded.n_params, cfg.get("model.threads", "auto"))
    if dist.active:  # the ranks on this machine share its cores
        import os

        threads = max(1, min(threads, (os.cpu_count() or 1) // int(os.environ.get("LOCAL_WORLD_SIZE", dist.world))))
    apply_threads(threads)  # as deliberate as for serving
    store = AdapterStore(cfg.home)
    parent = store.active(specialist.name)
    recipe = specialist.recipe
    manifest = {"base_model": plan.base_model, "base_path": str(path), "quantization": loaded.quantization,
                "dtype": loaded.dtype,
                "base_hash": model_hash(path, cfg.home / "cache") if dist.main else None,
                "recipe": {"name": recipe.name if recipe else None, "version": recipe.version if recipe else None,
                           "sources": data.sources, "train": len(data.train), "validation": len(data.validation),
                           "data_hash": records_hash([*data.train, *data.validation])},
                "parent": parent.version if parent else None,
                "specialist_version": specialist.version, "aeth_version": __version__}
    teacher = None
    if plan.teacher:  # logit distillation: the teacher on the same device, in the same dtype
        teacher_path = resolve_model(plan.teacher, cfg)
        teacher = load_model(teacher_path, quantization=plan.quantization, dtype=cfg.get("model.dtype", "auto"),
                             device=device, trust_remote_code=bool(cfg.get("model.trust_remote_code", False)),
                             name=plan.teacher)
        manifest["teacher"] = {"model": plan.teacher, "name": plan.teacher_name, "path": str(teacher_path),
                               "quantization": teacher.quantization, "dtype": teacher.dtype, "parameters": teacher.n_params,
                               "hash": model_hash(teacher_path, cfg.home / "cache") if dist.main else None}
    return run(specialist, plan, data.train, data.validation, loaded, store, manifest, dist=dist, teacher=teacher)
