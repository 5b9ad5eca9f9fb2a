"""aeth's default trainer: LoRA (or QLoRA) on the specialist's base model, ending in an adapter version
(with ``plan.teacher``, distilling that teacher's token distributions as it trains)."""

from __future__ import annotations

from aeth.hookspecs import hookimpl


@hookimpl(trylast=True)
def train(specialist, plan, app):
    """Load the base (and a teacher), train with :func:`aeth.training.loop.train`, store the version
    in ``app``'s adapter store; configuration (dtype, device, threads) from ``app.config``. The data is
    the specialist's (:func:`aeth.datasets.training_records`), or with ``plan.dataset`` that learn
    dataset's records (:func:`aeth.learning.dataset.training_data`)."""
    from aeth.datasets import training_records
    from aeth.models.resolve import resolve_model
    from aeth.training import distributed
    from aeth.training.loop import train as run

    cfg = app.config
    dist = distributed.setup()
    distributed.quiet_deepspeed()
    if plan.dataset:  # learning from feedback: the learn dataset's records of the plan's objective
        from aeth.learning.dataset import training_data

        data = training_data(plan.dataset, plan.objective)
    else:
        data = training_records(specialist, cfg.home)
    path = resolve_model(plan.base_model, cfg)
    device = dist.device if dist.active else cfg["model.device"]  # one GPU per rank
    loaded = _load(cfg, path, plan.quantization, device, plan.base_model)
    _threads(cfg, loaded, dist)
    store = app.adapters
    manifest = _manifest(cfg, specialist, plan, path, loaded, data, store.active(specialist.name), dist)
    teacher = None
    if plan.teacher:  # logit distillation: the teacher on the same device, in the same dtype
        teacher_path = resolve_model(plan.teacher, cfg)
        teacher = _load(cfg, teacher_path, plan.quantization, device, plan.teacher)
        manifest["teacher"] = {"model": plan.teacher, "name": plan.teacher_name, "path": str(teacher_path),
                               "quantization": teacher.quantization, "dtype": teacher.dtype, "parameters": teacher.n_params,
                               "hash": _hash(teacher_path, cfg, dist)}
    return run(specialist, plan, data.train, data.validation, loaded, store, manifest, dist=dist, teacher=teacher,
               home=cfg.home)


def _load(cfg, path, quantization, device, name):
    from aeth.models.loading import load_model

    return load_model(path, quantization=quantization, dtype=cfg["model.dtype"], device=device,
                      trust_remote_code=cfg["model.trust_remote_code"], name=name)


def _threads(cfg, loaded, dist) -> None:
    """torch's thread count, as deliberate as for serving (the ranks on one machine share its cores)."""
    from aeth.models.threads import apply_threads, choose_threads

    threads = choose_threads(loaded.n_params, cfg["model.threads"])
    if dist.active:
        import os

        threads = max(1, min(threads, (os.cpu_count() or 1) // int(os.environ.get("LOCAL_WORLD_SIZE", dist.world))))
    apply_threads(threads)


def _hash(path, cfg, dist):
    """The model's content hash, on rank 0 only (every rank would read the same files)."""
    from aeth.fingerprint import model_hash

    return model_hash(path, cfg.home / "cache") if dist.main else None


def _manifest(cfg, specialist, plan, path, loaded, data, parent, dist) -> dict:
    """Provenance for the version's manifest: base weights and data by content, the parent version."""
    from pathlib import Path

    from aeth import __version__
    from aeth.fingerprint import records_hash

    recipe = specialist.recipe
    # a learn run's data is its learn dataset version, not the recipe
    name, version = (Path(plan.dataset).name, None) if plan.dataset else \
        (recipe.name if recipe else None, recipe.version if recipe else None)
    return {"base_model": plan.base_model, "base_path": str(path), "quantization": loaded.quantization,
            "dtype": loaded.dtype, "base_hash": _hash(path, cfg, dist),
            "recipe": {"name": name, "version": version,
                       "sources": data.sources, "train": len(data.train), "validation": len(data.validation),
                       "data_hash": records_hash([*data.train, *data.validation])},
            "parent": parent.version if parent else None,
            "specialist_version": specialist.version, "aeth_version": __version__}
