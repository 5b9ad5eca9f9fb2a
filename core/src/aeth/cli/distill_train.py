"""``aeth distill train``: train a specialist's adapter on a local teacher's token distributions."""

from __future__ import annotations

import click

from aeth.cli.distill import distill
from aeth.cli.train import run_training, train_options

#: command-line parameter -> TrainPlan field, for the distillation options (a --plan file may set them too)
KD_KEYS = {"teacher": "teacher", "kd_loss": "kd_loss", "kd_alpha": "kd_alpha", "kd_temperature": "kd_temperature",
           "jsd_beta": "jsd_beta", "kd_cache": "kd_cache", "kd_top_k": "kd_top_k"}

API_TEACHER = ("logit distillation needs the teacher's token distributions; API teachers give text: "
               "use aeth distill collect")


@distill.command("train")
@click.argument("specialist")
@click.option("--teacher", metavar="NAME",
              help="A registered local teacher (one with a model_name, like `local`), or any model aeth can load: "
                   "a built-in name, a local directory, a hub id. Required unless resuming.")
@click.option("--loss", "kd_loss", type=click.Choice(["fkl", "rkl", "jsd"]), default="fkl", show_default=True,
              help="Forward KL(teacher||student), reverse KL(student||teacher), or generalized JSD (--jsd-beta).")
@click.option("--alpha", "kd_alpha", type=click.FloatRange(0, 1), default=0.5, show_default=True,
              help="Weight of the distillation loss; the answer tokens' cross-entropy gets 1 - alpha.")
@click.option("--kd-temperature", "kd_temperature", type=click.FloatRange(0, min_open=True), default=1.0,
              show_default=True, help="Soften both distributions by T (the loss is scaled by T^2).")
@click.option("--jsd-beta", "jsd_beta", type=click.FloatRange(0, 1, min_open=True, max_open=True), default=0.5,
              show_default=True, help="With --loss jsd: m = beta*teacher + (1-beta)*student.")
@click.option("--kd-cache", "kd_cache", type=click.Choice(["auto", "on", "off"]), default="auto", show_default=True,
              help="Cache the teacher's top-k log-probs under the run (auto: when the run passes over its data more than "
                   "once) instead of running the teacher every epoch.")
@click.option("--kd-top-k", "kd_top_k", type=click.IntRange(1), default=64, show_default=True,
              help="Tokens per position the cache keeps (the rest as one 'other' outcome).")
@train_options
@click.pass_context
def distill_train(ctx, specialist, teacher, kd_loss, kd_alpha, kd_temperature, jsd_beta, kd_cache, kd_top_k, **options):
    """Train SPECIALIST's adapter to match a local TEACHER's token distributions (logit KD).

    At every answer token the loss is alpha * divergence(teacher, student) + (1 - alpha) *
    cross-entropy, the teacher run on the same inputs (no gradient). Teacher and student must share
    a tokenizer: the vocabularies are compared before anything loads. Everything else is `aeth
    train`'s: the same options, checkpoints, --resume, and promotion gate; the adapter's manifest
    records the teacher and these settings.

    \b
    Examples:
      aeth distill train coding --teacher local --max-steps 100
      aeth distill train reasoning --teacher HuggingFaceTB/SmolLM2-360M-Instruct --loss rkl --alpha 0.7
      aeth distill train coding --teacher ./my-model --epochs 3 --kd-temperature 2
      aeth distill train coding --resume                      continue the latest run
    """
    flags = {"teacher": teacher, "kd_loss": kd_loss, "kd_alpha": kd_alpha, "kd_temperature": kd_temperature,
             "jsd_beta": jsd_beta, "kd_cache": kd_cache, "kd_top_k": kd_top_k}
    run_training(ctx, specialist, options, command="distill train", extra_flags=flags, extra_keys=KD_KEYS,
                 prepare=prepare_teacher)


def prepare_teacher(spec, cfg, flags: dict) -> None:
    """Turn ``flags["teacher"]`` (a name) into the model to load, and compare vocabularies now.

    A registered teacher must name a local model (``model_name``); one that only answers in text
    (an API teacher) is refused. Anything else is taken as a model reference aeth resolves.
    """
    from aeth.errors import AethError, ModelError
    from aeth.plugins import get_host

    name = flags.get("teacher")
    if not name:
        raise AethError(f"--teacher NAME is required: a local teacher or a model (or continue a run with "
                        f"aeth distill train {spec.name} --resume)")
    registered = get_host().teachers().get(name)
    if registered is not None:
        model = getattr(registered, "model_name", None)
        if not model:
            raise AethError(f"teacher {name!r}: {API_TEACHER} {spec.name} --teacher {name}")
        flags["teacher"], flags["teacher_name"] = model, name
    from aeth.models.resolve import resolve_model

    try:
        teacher_path = resolve_model(flags["teacher"], cfg)
    except ModelError as e:
        raise AethError(f"--teacher {name}: not a registered teacher ({', '.join(sorted(get_host().teachers())) or 'none'}) "
                        f"and not a model aeth can load: {e}") from e
    student_path = resolve_model(flags["base_model"], cfg)
    from aeth.distill.kd import check_vocabularies

    check_vocabularies(_tokenizer(student_path, cfg), _tokenizer(teacher_path, cfg), flags["base_model"], name,
                       specialist=spec.name)


def _tokenizer(path, cfg):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(path, trust_remote_code=bool(cfg.get("model.trust_remote_code", False)))
