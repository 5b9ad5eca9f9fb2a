"""``aeth distill train``: train a specialist's adapter on a local teacher's token distributions.

It is ``aeth train`` (:func:`aeth.cli.train.train_command`) with the plan's ``kd`` settings as
options too (``--teacher``, ``--loss``, ``--alpha``...), and a teacher name resolved and checked
before anything loads (:func:`prepare_teacher`).
"""

from __future__ import annotations

from aeth.cli.distill import distill
from aeth.cli.train import train_command
from aeth.training.plan import DISTILL_GROUPS

API_TEACHER = ("logit distillation needs the teacher's token distributions; API teachers give text: "
               "use aeth distill collect")

DISTILL_TRAIN_HELP = """Train SPECIALIST's adapter to match a local TEACHER's token distributions (logit KD).

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


def prepare_teacher(app, spec, cfg, values: dict) -> None:
    """Turn ``values["teacher"]`` (a name) into the model to load, and compare vocabularies now.

    A registered teacher must name a local model (``model_name``); one that only answers in text
    (an API teacher) is refused. Anything else is taken as a model reference aeth resolves.
    """
    from aeth.distill.teachers import SPECIALIST_PREFIX
    from aeth.errors import AethError, ModelError

    name = values.get("teacher")
    if not name:
        raise AethError(f"--teacher NAME is required: a local teacher or a model (or continue a run with "
                        f"aeth distill train {spec.name} --resume)")
    if name.startswith(SPECIALIST_PREFIX):
        raise AethError(f"--teacher {name}: a specialist teacher answers in text (its adapter on its base); logit "
                        f"distillation needs a bare model's token distributions: use aeth distill collect {spec.name} "
                        f"--teacher {name}")
    teachers = app.teachers()
    registered = teachers.get(name)
    if registered is not None:
        model = getattr(registered, "model_name", None)
        if not model:
            raise AethError(f"teacher {name!r}: {API_TEACHER} {spec.name} --teacher {name}")
        values["teacher"], values["teacher_name"] = model, name
    from aeth.models.resolve import resolve_model

    try:
        teacher_path = resolve_model(values["teacher"], cfg)
    except ModelError as e:
        raise AethError(f"--teacher {name}: not a registered teacher ({', '.join(sorted(teachers)) or 'none'}) "
                        f"and not a model aeth can load: {e}") from e
    student_path = resolve_model(values["base_model"], cfg)
    from aeth.distill.kd import check_vocabularies

    check_vocabularies(_tokenizer(student_path, cfg), _tokenizer(teacher_path, cfg), values["base_model"], name,
                       specialist=spec.name)


def _tokenizer(path, cfg):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(path, trust_remote_code=cfg["model.trust_remote_code"])


distill_train = train_command(name="train", groups=DISTILL_GROUPS, command="distill train", prepare=prepare_teacher,
                              help=DISTILL_TRAIN_HELP)
distill.add_command(distill_train)
