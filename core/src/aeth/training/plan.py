"""A training run's settings, declared once (:class:`TrainPlan`), and how a run ended (:class:`TrainResult`).

Every setting is a field of :class:`TrainPlan` whose ``metadata`` holds a :class:`Setting` (made
by :func:`setting`): its help text, command-line flag, allowed values and group. Everything else
is derived from those fields (:func:`settings`):

- the options of ``aeth train`` (groups ``train`` and ``gate``) and ``aeth distill train`` (also
  ``kd``), with their ``--help`` defaults (:mod:`aeth.cli.train`); group ``learn`` (the objective,
  DPO/KTO settings, the adapter to start from) is for learning from feedback (``LEARN_GROUPS``);
- the keys a ``--plan`` file may set (:func:`read_plan_file`), and ``plan.yaml``, which every run
  writes with the equivalent command in its header (:func:`write_plan_yaml`);
- ``plan.json``, every field of the plan, which ``--resume`` restores (:func:`write_plan`,
  :func:`read_plan`).

A subclass (or ``dataclasses.make_dataclass(..., bases=(TrainPlan,))``) that adds a field with
:func:`setting` metadata gets all of that too. Nothing here imports torch.
"""

from __future__ import annotations

import json
import math
import types
import typing
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from aeth.atomic import write_text
from aeth.config import QUANTIZATIONS
from aeth.distill.kd import KINDS
from aeth.errors import AethError, ConfigError
from aeth.training.report import TARGETS

#: where the metadata of a setting lives in a dataclass field's ``metadata``
SETTING = "aeth.setting"
#: a run directory's files: every field of the plan (what --resume reads), the settings as a plan file
PLAN_JSON, PLAN_YAML = "plan.json", "plan.yaml"
#: written into a run's directory when it ends with an adapter version
FINISHED = "finished.json"
#: the optimizers a plan may name (torch's AdamW, bitsandbytes' 8-bit and paged ones)
OPTIMIZERS = ("adamw", "adamw8bit", "paged_adamw8bit", "paged_adamw")
#: setting groups: ``aeth train`` offers train and gate, ``aeth distill train`` kd as well, learning
#: from feedback (``aeth learn``) learn as well
TRAIN_GROUPS, DISTILL_GROUPS, LEARN_GROUPS = ("train", "gate"), ("kd", "train", "gate"), ("learn", "train", "gate")
#: what a run may minimise (``plan.objective``), and what DPO and KTO measure the model against
OBJECTIVES, REFERENCES = ("sft", "dpo", "kto"), ("active", "base")


@dataclass(frozen=True)
class Setting:
    """How a :class:`TrainPlan` field is offered to users (see :func:`setting`)."""

    help: str
    flag: str | None = None
    choices: tuple[str, ...] | None = None
    min: float | None = None
    max: float | None = None
    min_open: bool = False
    max_open: bool = False
    metavar: str | None = None
    group: str = "train"
    on_resume: bool = False
    from_specialist: bool = False


def setting(help: str, **options: Any) -> dict[str, Setting]:
    """Field metadata declaring a setting: ``field(default=..., metadata=setting("Help.", min=1))``.

    Options: ``flag`` (default ``--field-name``; a boolean that defaults to true gets
    ``--no-field-name``), ``choices``, ``min``/``max`` (``min_open``/``max_open`` to exclude them),
    ``metavar``, ``group`` (``train``, ``gate``, ``kd`` or ``learn``: which commands offer it),
    ``on_resume`` (a flag given with ``--resume`` still applies: the checkpoint does not depend on
    it), ``from_specialist`` (unset on the command line: the specialist's attribute of that name).
    """
    return {SETTING: Setting(help, **options)}


@dataclass(frozen=True)
class Declared:
    """One setting of a plan class: the field's name, its :class:`Setting`, its type and default."""

    name: str
    setting: Setting
    kind: type
    optional: bool
    default: Any

    @property
    def flag(self) -> str:
        """The command-line flag: ``--max-steps``, or ``--no-gate`` for a boolean that defaults to true."""
        if self.setting.flag:
            return self.setting.flag
        dashed = self.name.replace("_", "-")
        return f"--no-{dashed}" if self.kind is bool and self.default is True else f"--{dashed}"

    def problem(self, value: Any) -> str | None:
        """Why ``value`` is not allowed here, or None."""
        s = self.setting
        if value is None:
            return None if self.optional else "must be set"
        if self.kind is bool:
            return None if isinstance(value, bool) else "must be true or false"
        if self.kind is str and not isinstance(value, str):
            return "must be text"
        if self.kind in (int, float):
            number = isinstance(value, int | float) and not isinstance(value, bool)
            if not number or (self.kind is int and not isinstance(value, int)) or not math.isfinite(value):
                return f"must be {'an integer' if self.kind is int else 'a number'}"
            low = s.min is not None and (value <= s.min if s.min_open else value < s.min)
            high = s.max is not None and (value >= s.max if s.max_open else value > s.max)
            if low or high:
                return f"must be {self.range_text()}"
        if s.choices is not None and value not in s.choices:
            return f"must be one of {', '.join(s.choices)}"
        return None

    def range_text(self) -> str:
        """The allowed range in words: ``>= 1``, ``> 0``, ``between 0 and 1``."""
        s = self.setting
        parts = [f"{'>' if s.min_open else '>='} {s.min}" if s.min is not None else "",
                 f"{'<' if s.max_open else '<='} {s.max}" if s.max is not None else ""]
        return " and ".join(p for p in parts if p)

    def coerce(self, value: Any) -> Any:
        """A plan file's value in this setting's type (YAML reads ``2e-4`` as text, for one)."""
        if self.kind is float and isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                return value
        if self.kind is float and isinstance(value, int) and not isinstance(value, bool):
            return float(value)
        return value


def settings(plan_class: type | None = None, groups: tuple[str, ...] | None = None) -> list[Declared]:
    """Every setting of ``plan_class`` (default :class:`TrainPlan`) in ``groups`` (default: all), in
    field order within each group, groups in the order given."""
    plan_class = plan_class or TrainPlan
    hints = typing.get_type_hints(plan_class)
    found = []
    for f in fields(plan_class):
        meta = f.metadata.get(SETTING)
        if meta is None:
            continue
        kind, optional = _kind(hints[f.name])
        found.append(Declared(f.name, meta, kind, optional, f.default))
    if groups is None:
        return found
    return [d for group in groups for d in found if d.setting.group == group]


def _kind(hint: Any) -> tuple[type, bool]:
    """(type, optional) of a field annotation such as ``int`` or ``str | None``."""
    args = typing.get_args(hint)
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        rest = [a for a in args if a is not type(None)]
        return (rest[0] if len(rest) == 1 else object), type(None) in args
    return hint, False


@dataclass
class TrainPlan:
    """What to train and how: every training setting aeth has, each declared once (module docstring).

    ``run_dir`` is where the run writes (None: :func:`aeth.training.run` makes a new one under
    ``$AETH_HOME/runs/<specialist>/``); ``resume`` continues that run from its newest checkpoint.
    """

    base_model: str = field(metadata=setting("Base model (default: the specialist's).", flag="--base",
                                             metavar="MODEL", from_specialist=True))
    quantization: str = field(default="auto", metadata=setting(
        "auto = NF4 on CUDA, a plain base on CPU (in model.dtype; auto = bf16 where native, else fp32). "
        "Default: the specialist's.", choices=QUANTIZATIONS, from_specialist=True))
    epochs: float = field(default=1.0, metadata=setting("Passes over the training data.", min=0, min_open=True))
    max_steps: int | None = field(default=None, metadata=setting(
        "Stop after this many optimizer steps (overrides --epochs).", min=1))
    lr: float = field(default=2e-4, metadata=setting("Peak learning rate.", min=0, min_open=True))
    batch_size: int = field(default=4, metadata=setting(
        "Examples per micro-batch (with --nproc, over all processes together).", min=1))
    grad_accum: int = field(default=1, metadata=setting("Micro-batches per optimizer step.", min=1))
    seq_len: int = field(default=512, metadata=setting("Longest sequence, in tokens.", min=16))
    warmup_fraction: float = field(default=0.05, metadata=setting(
        "Fraction of the steps over which the learning rate warms up (then cosine decay to 10 %).", min=0, max=1))
    save_every: int = field(default=25, metadata=setting("Checkpoint every N steps.", min=1))
    eval_every: int = field(default=50, metadata=setting("Validation loss every N steps.", min=1))
    keep: int = field(default=3, metadata=setting("Newest checkpoints kept.", min=1))
    seed: int = field(default=0, metadata=setting("Seed of the LoRA init, the data order and dropout.", min=0))
    optimizer: str = field(default="adamw", metadata=setting(
        "AdamW (torch), or bitsandbytes' 8-bit state (a quarter of the memory) / paged state.", choices=OPTIMIZERS))
    report: str = field(default="none", metadata=setting(
        "Also send metrics to TensorBoard (RUN/tensorboard) or MLflow (MLFLOW_TRACKING_URI); needs the package.",
        choices=tuple(TARGETS)))
    nproc: int = field(default=1, metadata=setting(
        "Train in N processes under torchrun (gloo on CPU, nccl with one GPU each); --batch-size is the global "
        "batch, split evenly, so results match one process.", min=1, on_resume=True))
    fsdp: bool = field(default=False, metadata=setting(
        "With --nproc: shard weights, gradients and optimizer state with FSDP2 (fully_shard) instead of "
        "replicating them (DDP)."))
    deepspeed: str | None = field(default=None, metadata=setting(
        "With --nproc: train through DeepSpeed with this JSON config; 'auto' values are filled from the plan. "
        "'zero2-offload' is aeth's ZeRO-2 example with CPU optimizer offload (see docs/training.md).",
        metavar="CONFIG"))
    #: logit distillation (``aeth distill train``): the teacher model aeth loads, None for plain SFT
    teacher: str | None = field(default=None, metadata=setting(
        "A registered local teacher (one with a model_name, like `local`), or any model aeth can load: a built-in "
        "name, a local directory, a hub id. Required unless resuming.", metavar="NAME", group="kd"))
    kd_loss: str = field(default="fkl", metadata=setting(
        "Forward KL(teacher||student), reverse KL(student||teacher), or generalized JSD (--jsd-beta).",
        flag="--loss", choices=KINDS, group="kd"))
    kd_alpha: float = field(default=0.5, metadata=setting(
        "Weight of the distillation loss; the answer tokens' cross-entropy gets 1 - alpha.", flag="--alpha",
        min=0, max=1, group="kd"))
    kd_temperature: float = field(default=1.0, metadata=setting(
        "Soften both distributions by T (the loss is scaled by T^2).", min=0, min_open=True, group="kd"))
    jsd_beta: float = field(default=0.5, metadata=setting(
        "With --loss jsd: m = beta*teacher + (1-beta)*student.", min=0, max=1, min_open=True, max_open=True,
        group="kd"))
    kd_cache: str = field(default="auto", metadata=setting(
        "Cache the teacher's top-k log-probs under the run (auto: when the run passes over its data more than "
        "once) instead of running the teacher every epoch.", choices=("auto", "on", "off"), group="kd"))
    kd_top_k: int = field(default=64, metadata=setting(
        "Tokens per position the cache keeps (the rest as one 'other' outcome).", min=1, group="kd"))
    #: learning from feedback (aeth.learning): SFT, DPO or KTO, continuing from an adapter version
    objective: str = field(default="sft", metadata=setting(
        "What the run minimises: sft (answer cross-entropy), dpo (preference pairs: records with \"rejected\") or "
        "kto (answers labelled desirable or not); record formats in aeth.learning.preferences.", choices=OBJECTIVES,
        group="learn"))
    beta: float = field(default=0.1, metadata=setting(
        "DPO/KTO: how far the model may move from the reference (higher: less far).", min=0, min_open=True,
        group="learn"))
    desirable_weight: float = field(default=1.0, metadata=setting(
        "KTO: weight of a desirable answer's loss.", min=0, min_open=True, group="learn"))
    undesirable_weight: float = field(default=1.0, metadata=setting(
        "KTO: weight of an undesirable answer's loss.", min=0, min_open=True, group="learn"))
    reference: str = field(default="active", metadata=setting(
        "DPO/KTO: what the model is measured against: the adapter the run starts from (active), or the bare base.",
        choices=REFERENCES, group="learn"))
    init_adapter: str | None = field(default=None, metadata=setting(
        "Start the LoRA from this adapter directory (an adapter version) instead of a fresh one; its LoRA settings "
        "replace the specialist's.", metavar="DIR", group="learn"))
    gate_limit: int = field(default=20, metadata=setting(
        "Eval cases the promotion gate runs on the new version and on the active one.", min=1, group="gate",
        on_resume=True))
    gate: bool = field(default=True, metadata=setting(
        "Only store the new version; judge and activate it later.", group="gate", on_resume=True))
    force: bool = field(default=False, metadata=setting(
        "Activate the new version even if its evals are worse (the manifest says so).", group="gate",
        on_resume=True))
    #: the registered teacher ``teacher`` came from, if any (for the manifest and plan.yaml)
    teacher_name: str | None = None
    #: learning from feedback: a learn dataset version's directory (:mod:`aeth.learning.dataset`); the
    #: run trains on its ``<objective>.jsonl`` and validates on its held-out records of that objective
    #: instead of the specialist's data. Set by ``aeth learn``, kept in plan.json, so ``--resume``
    #: continues on the same dataset version.
    dataset: str | None = None
    run_dir: Path | None = None
    resume: bool = False

    def kd_settings(self) -> Any:
        """The distillation settings of this plan (:class:`aeth.distill.kd.KDSettings`), or None."""
        from aeth.distill.kd import KDSettings

        return None if not self.teacher else KDSettings(self.kd_loss, self.kd_alpha, self.kd_temperature, self.jsd_beta)

    def problems(self) -> list[str]:
        """Every setting whose value is not allowed, as ``field: why`` (empty when all are)."""
        return [f"{d.name}: {why}" for d in settings(type(self)) if (why := d.problem(getattr(self, d.name)))]

    @property
    def learns(self) -> bool:
        """Whether this is a run of learning from feedback: DPO or KTO, starting from an adapter, or
        training on a learn dataset."""
        return self.objective != "sft" or self.init_adapter is not None or self.dataset is not None

    @property
    def command(self) -> str:
        """The aeth command that trains this plan: ``distill train`` with a teacher, ``learn`` for
        learning from feedback (:attr:`learns`), else ``train``."""
        return "distill train" if self.teacher else "learn" if self.learns else "train"

    @property
    def groups(self) -> tuple[str, ...]:
        """The setting groups of :attr:`command`."""
        return DISTILL_GROUPS if self.teacher else LEARN_GROUPS if self.learns else TRAIN_GROUPS

    def to_json(self) -> dict[str, Any]:
        """Every field, JSON-ready (what plan.json holds)."""
        return {**asdict(self), "run_dir": None if self.run_dir is None else str(self.run_dir)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TrainPlan:
        """The plan :meth:`to_json` wrote (keys this class does not know, from another aeth version, are
        dropped; fields the file lacks keep their defaults)."""
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        if values.get("run_dir") is not None:
            values["run_dir"] = Path(values["run_dir"])
        return cls(**values)


@dataclass
class TrainResult:
    """How a run ended: its final step, losses, the adapter version it stored and the gate's decision."""

    steps: int
    train_loss: float
    val_loss: float | None
    first_val_loss: float | None
    version: Any = None
    interrupted: bool = False
    run_dir: Path | None = None
    #: the trained PEFT model as the run left it (one process; under FSDP or DeepSpeed, None)
    model: Any = field(default=None, repr=False)
    #: with a teacher: mean divergence per validation token (the run's KD loss, exact logits)
    val_kd_loss: float | None = None
    first_val_kd_loss: float | None = None
    #: the promotion gate's :class:`~aeth.training.promotion.Decision`; None when the gate did not run
    decision: Any = None


# ---- the run directory's plan files ------------------------------------------------------------


def write_plan(plan: TrainPlan) -> None:
    """``<run>/plan.json``: what ``--resume`` reads back (written atomically before anything else)."""
    Path(plan.run_dir).mkdir(parents=True, exist_ok=True)
    write_text(Path(plan.run_dir) / PLAN_JSON, json.dumps(plan.to_json(), indent=2))


def read_plan(run_dir: Path, plan_class: type[TrainPlan] | None = None) -> TrainPlan:
    """The plan saved in ``run_dir``, with ``run_dir`` set to where it was found."""
    data = json.loads((Path(run_dir) / PLAN_JSON).read_text())
    return (plan_class or TrainPlan).from_json({**data, "run_dir": str(run_dir)})


def plan_file_values(plan: TrainPlan, groups: tuple[str, ...] | None = None) -> dict[str, Any]:
    """The settings of ``plan`` a plan file holds, in field order (the teacher by the name the user gave it)."""
    groups = groups or plan.groups
    values = {d.name: getattr(plan, d.name) for d in settings(type(plan)) if d.setting.group in groups}
    if values.get("teacher") and plan.teacher_name:  # the name the user gave, which a --plan file takes back
        values["teacher"] = plan.teacher_name
    return values


def command_line(plan: TrainPlan, specialist: str) -> list[str]:
    """The ``aeth`` command line that starts the same run as ``plan``."""
    words = ["aeth", *plan.command.split(), specialist]
    declared = {d.name: d for d in settings(type(plan), plan.groups)}
    for name, value in plan_file_values(plan).items():
        d = declared[name]
        if d.kind is bool:
            words += [d.flag] if value != d.default else []
        elif value is not None:
            words += [d.flag, str(value)]
    return words


def write_plan_yaml(plan: TrainPlan, specialist: str) -> None:
    """``<run>/plan.yaml``: every setting of the run as a ``--plan`` file, the equivalent command in its header."""
    import shlex

    import yaml

    header = (f"# {shlex.join(command_line(plan, specialist))}\n"
              f"# the same run: aeth {plan.command} {specialist} --plan plan.yaml\n")
    write_text(Path(plan.run_dir) / PLAN_YAML, header + yaml.safe_dump(plan_file_values(plan), sort_keys=False))


def read_plan_file(path: str | Path, plan_class: type | None = None,
                   groups: tuple[str, ...] | None = None) -> dict[str, Any]:
    """The settings a ``--plan`` YAML file sets, checked: an unknown key or a bad value is a
    :class:`ConfigError` listing every problem."""
    import yaml

    source = f"plan file {path}"
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as e:
        raise ConfigError([f"not valid YAML: {e}"], source=source) from None
    if not isinstance(data, dict):
        raise ConfigError(["must be a mapping of option: value"], source=source)
    declared = {d.name: d for d in settings(plan_class, groups)}
    problems = [f"unknown key {k!r} (keys: {', '.join(sorted(declared))})" for k in sorted(set(data) - set(declared))]
    values = {k: declared[k].coerce(v) for k, v in data.items() if k in declared}
    problems += [f"{k}: {why}" for k, v in values.items() if (why := declared[k].problem(v))]
    if problems:
        raise ConfigError(problems, source=source)
    return values


def check(plan: TrainPlan, under_torchrun: bool = False) -> TrainPlan:
    """``plan`` ready to train, or an error saying what to change.

    Every value is checked against its declaration (one :class:`ConfigError` for all), then the
    engine options against each other and the ``report`` target's package; a DeepSpeed config
    becomes an absolute path (``zero2-offload`` names aeth's example).
    """
    from dataclasses import replace

    from aeth.training import report

    problems = plan.problems()
    if problems:
        raise ConfigError(problems, source="training plan")
    report.check(plan.report)
    if plan.resume and plan.run_dir is None:
        raise AethError("plan.resume needs plan.run_dir, the run to continue (aeth.training.resume_plan finds it)")
    if (plan.fsdp or plan.deepspeed) and plan.nproc == 1 and not under_torchrun and not plan.resume:
        raise AethError("--fsdp and --deepspeed shard over several processes; add --nproc N (N >= 2)")
    if plan.fsdp and plan.deepspeed:
        raise AethError("choose one engine: --fsdp or --deepspeed")
    if plan.batch_size % plan.nproc:
        raise AethError(f"--batch-size {plan.batch_size} does not split evenly over {plan.nproc} processes; "
                        f"use a multiple of {plan.nproc} (each process trains on an equal share of every batch)")
    _check_learning(plan)
    return replace(plan, deepspeed=_deepspeed_config_path(plan.deepspeed)) if plan.deepspeed else plan


def _check_learning(plan: TrainPlan) -> None:
    """The learning settings against the rest: DPO/KTO without a teacher, KTO batches of 2 or more,
    a starting adapter that is one."""
    if plan.objective != "sft" and plan.teacher:
        raise AethError(f"logit distillation trains with SFT only; drop --teacher or use --objective sft (not {plan.objective})")
    if plan.objective == "kto" and plan.batch_size < 2:
        raise AethError("KTO's reference point pairs each prompt with another example's answer in the same batch: "
                        "use --batch-size 2 or more")
    if plan.init_adapter is not None and not (Path(plan.init_adapter) / "adapter_config.json").is_file():
        raise AethError(f"--init-adapter {plan.init_adapter}: no PEFT adapter there (adapter_config.json); give an "
                        "adapter version's directory, $AETH_HOME/adapters/SPECIALIST/VERSION")


def _deepspeed_config_path(value: str) -> str:
    """A DeepSpeed config file, or the path of aeth's example ``zero2-offload``."""
    if value == "zero2-offload":
        return str(Path(__file__).parent / "zero2_offload.json")
    if not Path(value).is_file():
        raise AethError(f"--deepspeed {value}: no such file (give a DeepSpeed JSON config, or zero2-offload)")
    return str(Path(value).resolve())
