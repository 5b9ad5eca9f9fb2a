"""Configuration: defaults < user config file < ./aeth.yaml < AETH_* env vars < -o key=value.

Keys are dotted (``router.threshold``); in YAML they nest. Each key's environment variable is
``AETH_`` plus the key upper-cased with dots as underscores (``AETH_ROUTER_THRESHOLD``). Anything
under ``plugins.<name>.`` is free-form and belongs to that plugin. Each ``teachers.<name>`` is a
mapping describing one distillation teacher (``kind``, ``base_url``, ``model``, ``api_key_env``),
merged field by field across sources (``-o teachers.mine.model=gpt-4o`` changes one field) and
validated where the teacher is built (:func:`aeth.distill.teachers.teacher_from_config`). Each
``specialists.<name>`` is a mapping of :data:`SPECIALIST_FIELDS` (which plugin serves it, its own learn
schedule), and each ``policy.<name>`` one of :data:`POLICY_FIELDS` (a content policy, see
:mod:`aeth.safety.policy`) and each ``quality.<name>`` one of :data:`QUALITY_FIELDS` (see
:mod:`aeth.quality`), merged the same way and checked here. Unknown
keys and bad values from every source are collected and reported together in one
:class:`~aeth.errors.ConfigError`.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aeth.errors import ConfigError

CONFIG_FILE = "aeth.yaml"
#: how quality control chooses an answer (:mod:`aeth.quality`)
QUALITY_METHODS = ("off", "retry", "best", "vote")
#: how a base model's weights are held: NF4 on CUDA and bf16 on CPU (auto), 4-bit NF4, or unquantized
QUANTIZATIONS = ("auto", "nf4", "none")
#: compute dtypes; auto = bf16 where the device supports it, else fp32
DTYPES = ("auto", "bfloat16", "float16", "float32")
#: where models run; auto = CUDA if available
DEVICES = ("auto", "cpu", "cuda")


def _choice(*options: str) -> Callable[[Any], Any]:
    def check(v: Any) -> Any:
        if v not in options:
            raise ValueError(f"must be one of {', '.join(options)}")
        return v
    return check


def _switch(*options: str) -> Callable[[Any], Any]:
    """A choice that includes "off" (YAML reads a bare off as false, which means the same)."""
    choose = _choice(*options)
    return lambda v: "off" if v is False else choose(v)


def _number(kind: type, lo: float | None = None, hi: float | None = None, optional: bool = False) -> Callable[[Any], Any]:
    def check(v: Any) -> Any:
        if v is None and optional:
            return None
        if isinstance(v, bool) or not isinstance(v, (int, float)) or (kind is int and not float(v).is_integer()):
            raise ValueError(f"must be {'an integer' if kind is int else 'a number'}")
        v = kind(v)
        if (lo is not None and v < lo) or (hi is not None and v > hi):
            raise ValueError(f"must be between {lo} and {hi}" if hi is not None else f"must be >= {lo}")
        return v
    return check


def _threads(v: Any) -> Any:
    return v if v == "auto" else _number(int, 1, 512)(v)


def _bool(v: Any) -> bool:
    if not isinstance(v, bool):
        raise ValueError("must be true or false")
    return v


def _text(v: Any) -> str:
    if not isinstance(v, str) or not v.strip():
        raise ValueError("must be a non-empty string")
    return v


def _store_url(v: Any) -> Any:
    if v is None:
        return None
    from aeth.store.url import problem  # no SQLAlchemy: configuration stays light

    why = problem(v)
    if why:
        raise ValueError(why)
    return v


def _model_names(v: Any) -> list[str]:
    from aeth.store.cost import model_names

    if not isinstance(v, (str, list, tuple)) or not model_names(v):
        raise ValueError("must name models of the price table (`aeth distill prices`): a list, or comma-separated")
    return model_names(v)


def _positive_hours(v: Any) -> float | None:
    if v is None:
        return None
    v = _number(float, 0.0)(v)
    if v <= 0:
        raise ValueError("must be a number of hours > 0, or null (no time trigger)")
    return v


def _plugin_name(v: Any) -> str:
    if not isinstance(v, str) or not v.strip():
        raise ValueError("must name a plugin (its distribution)")
    return v


@dataclass(frozen=True)
class Key:
    """One configuration key: default, validator and the line of help ``aeth config`` shows."""

    default: Any
    check: Callable[[Any], Any]
    help: str


def _default_home() -> str:
    import platformdirs

    return platformdirs.user_data_dir("aeth")


KEYS: dict[str, Key] = {
    "home": Key(None, _text, "where models, adapters, datasets and caches live (default: the user data dir)"),
    "model.default": Key("smollm2-135m-instruct", _text, "base model of the general fallback and of `--base` defaults"),
    "model.quantization": Key(None, lambda v: v if v is None else _choice(*QUANTIZATIONS)(v),
                              "override every specialist's quantization: auto (NF4 on CUDA, bf16 on CPU), nf4, none"),
    "model.dtype": Key("auto", _choice(*DTYPES), "compute dtype; auto = bf16 where supported, else fp32"),
    "model.device": Key("auto", _choice(*DEVICES), "where models run; auto = cuda if available"),
    "model.threads": Key("auto", _threads, "torch CPU threads; auto = 1 for tiny models, else the usable cores not busy with other work"),
    "model.trust_remote_code": Key(False, _bool, "allow a hub model's own Python code to run (off: never by default)"),
    "router.threshold": Key(0.20, _number(float, -1.0, 1.0), "best similarity below this falls back to router.fallback"),
    "router.fallback": Key("general", _text, "specialist that answers when no specialist is confident"),
    "router.compose": Key(True, _bool, "answer a prompt whose requests belong to different specialists part by part, "
                          "each by its own specialist, composed into one reply (see docs/safety.md)"),
    "router.margin": Key(0.0, _number(float, 0.0, 1.0), "when above 0 and the runner-up's bid is within this of the "
                         "winner's, both specialists answer and the reply composes the two (0: never)"),
    "router.top_k": Key(3, _number(int, 1, 100), "how many nearest routing examples are averaged per specialist"),
    "generation.temperature": Key(None, _number(float, 0.0, 10.0, optional=True), "sampling temperature (0 = greedy); unset: the specialist's"),
    "generation.top_p": Key(None, _number(float, 0.0, 1.0, optional=True), "nucleus sampling; unset: the specialist's"),
    "generation.top_k": Key(None, _number(int, 0, optional=True), "top-k sampling (0 = off); unset: the specialist's"),
    "generation.repetition_penalty": Key(None, _number(float, 0.01, 10.0, optional=True),
                                         "repetition penalty (1 = off); unset: the specialist's"),
    "generation.max_tokens": Key(None, _number(int, 1, optional=True), "most tokens to generate; unset: the specialist's"),
    "generation.seed": Key(None, _number(int, 0, optional=True), "random seed for reproducible sampling"),
    "generation.max_input_tokens": Key(131072, _number(int, 1),
                                       "longest input accepted, in tokens; a larger one is refused before any work "
                                       "(a long document rolls through the KV cache, but its prefill takes time)"),
    "cache.sinks": Key(4, _number(int, 0, 1024), "attention-sink tokens a rolling KV cache keeps from the start of a text"),
    "cache.window": Key(None, _number(int, 16, optional=True),
                        "recent tokens the KV cache keeps besides the sinks; unset: the model's context (at most 4096) "
                        "minus the sinks"),
    "store.url": Key(None, _store_url, "database of the interaction log, feedback and API keys: unset = SQLite at "
                     "$AETH_HOME/aeth.db; or postgresql+psycopg://USER:PASSWORD@HOST:PORT/DB (several servers share one)"),
    "store.redact": Key(False, _bool, "mask personal data (emails, phone and card numbers, ...) in prompts and "
                        "answers before an interaction is stored; policy.<specialist>.redact overrides it"),
    "store.log_interactions": Key(True, _bool, "record every answer of `aeth serve`, `aeth run` and `aeth chat` "
                                  "(see `aeth log`); false records none"),
    "cost.machine_per_hour": Key(0.10, _number(float, 0.0), "USD per hour of the machine aeth runs on, to price its "
                                 "answers in `aeth log stats`; the default is an assumption: set what yours costs"),
    "cost.compare": Key(["gpt-4o-mini", "gpt-4o"], _model_names, "API models whose prices (`aeth distill prices`) "
                        "`aeth log stats` sets beside aeth's cost; a list or comma-separated names"),
    # the schedule of `aeth learn --watch` (aeth.learning.schedule); specialists.<name>.learn_every_* override them
    "learn.every_feedback": Key(50, _number(int, 1, optional=True),
                                "`aeth learn --watch` learns a specialist once this many new feedback rows wait "
                                "(null: never by count); specialists.<name>.learn_every_feedback overrides it"),
    "learn.every_hours": Key(24.0, _positive_hours,
                             "`aeth learn --watch` also learns a specialist once this many hours passed since its "
                             "last learn ended (since its oldest waiting row, if it never learnt) and a row waits "
                             "(null: never by time); "
                             "specialists.<name>.learn_every_hours overrides it"),
}


#: top-level keys whose children are subtrees: one per plugin (free-form), teacher, specialist or policy
SUBTREES = ("plugins", "teachers", "specialists", "policy", "quality")
#: subtrees whose entries are mappings merged field by field across sources
MAPPING_SUBTREES = ("teachers", "specialists", "policy", "quality")
#: the fields a ``specialists.<name>`` entry may set; a field that overrides a key for one specialist takes its check
SPECIALIST_FIELDS: dict[str, Key] = {
    "plugin": Key(None, _plugin_name, "the plugin (distribution name) that serves this specialist when several "
                  "register it"),
    "learn_every_feedback": Key(None, KEYS["learn.every_feedback"].check, "learn.every_feedback for this specialist"),
    "learn_every_hours": Key(None, KEYS["learn.every_hours"].check, "learn.every_hours for this specialist"),
}


#: the fields a ``policy.<entry>`` may set; entries: ``default`` (every specialist), a specialist's name,
#: ``key:<name>`` (requests made with that API key); see :mod:`aeth.safety.policy`
POLICY_FIELDS: dict[str, Key] = {
    "harmful": Key("block", _switch("block", "off"), "block | off: refuse harmful requests"),
    "jailbreak": Key("block", _switch("block", "off"), "block | off: refuse jailbreak wrappers"),
    "injection": Key("block", _switch("block", "off"), "block | off: refuse prompt injections aimed at the system prompt"),
    "strict": Key(False, _bool, "true | false: the input classifier blocks at a lower score (child-safe)"),
    "pii": Key("off", _switch("off", "mask", "block"), "off | mask | block: personal data in answers"),
    "secrets": Key("off", _switch("off", "mask", "block"), "off | mask | block: keys, tokens and private keys in answers"),
    "redact": Key(None, _bool, "true | false: mask personal data before an interaction is stored (default: store.redact)"),
}
#: the fields a ``quality.<entry>`` may set; entries: ``default`` (every specialist that can) or a
#: specialist's name; see :mod:`aeth.quality`
QUALITY_FIELDS: dict[str, Key] = {
    "method": Key(None, _switch(*QUALITY_METHODS), "off | retry | best | vote: how an answer is checked or chosen"),
    "k": Key(None, _number(int, 1, 64), "the most answers generated for one (retry), or generated together (best, vote)"),
}
#: the fields of each mapping subtree that is checked here (teachers are checked where they are built)
ENTRY_FIELDS: dict[str, dict[str, Key]] = {"specialists": SPECIALIST_FIELDS, "policy": POLICY_FIELDS,
                                           "quality": QUALITY_FIELDS}


def env_name(key: str) -> str:
    """The environment variable that sets ``key``."""
    return "AETH_" + key.upper().replace(".", "_")


def _flatten(tree: Mapping, prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in tree.items():
        path = f"{prefix}{k}"
        if path in SUBTREES and isinstance(v, Mapping):
            out.update({f"{path}.{name}": sub for name, sub in v.items()})  # each plugin's or teacher's own subtree
        elif isinstance(v, Mapping):
            out.update(_flatten(v, path + "."))
        else:
            out[path] = v
    return out


def _set_entry_field(values: dict[str, Any], key: str, raw: Any) -> None:
    """Merge ``teachers.<name>`` (a whole mapping) or ``teachers.<name>.<field>`` into ``values``
    (likewise ``specialists.<name>``).

    Later sources change single fields of an entry instead of replacing it; anything that is not a
    mapping is kept as it is, for the teacher's validation to report.
    """
    tree, name, *field = key.split(".", 2)
    entry_key = f"{tree}.{name}"
    current = values.get(entry_key)
    if field:
        values[entry_key] = {**(current if isinstance(current, Mapping) else {}), field[0]: raw}
    elif isinstance(raw, Mapping) and isinstance(current, Mapping):
        values[entry_key] = {**current, **raw}
    else:
        values[entry_key] = dict(raw) if isinstance(raw, Mapping) else raw


def _parse_scalar(raw: str) -> Any:
    import yaml  # here, not at module level: `import aeth` (and `aeth --help`) needs no YAML parser

    try:
        return yaml.safe_load(raw) if raw.strip() else raw
    except yaml.YAMLError:
        return raw


class Config:
    """Resolved configuration: ``config["router.threshold"]``, plus where each value came from."""

    def __init__(self, values: dict[str, Any], sources: dict[str, str]):
        self._values = values
        self.sources = sources

    def __getitem__(self, key: str) -> Any:
        if key in self._values:
            return self._values[key]
        if key.startswith(tuple(f"{t}." for t in SUBTREES)):
            return None
        raise KeyError(key)

    def get(self, key: str, default: Any = None) -> Any:
        """The value of ``key``, or ``default`` when it is unset (None).

        An unknown key raises KeyError naming the closest known one: a typo must not read as unset.
        """
        if key not in self._values and key not in KEYS and not key.startswith(tuple(f"{t}." for t in SUBTREES)):
            near = difflib.get_close_matches(key, list(KEYS), n=1)
            raise KeyError(f"unknown configuration key {key!r}" + (f" (did you mean {near[0]!r}?)" if near else ""))
        v = self._values.get(key)
        return default if v is None else v

    def subtrees(self, prefix: str) -> dict[str, Any]:
        """``{name: value}`` for every ``<prefix>.<name>`` key set (``prefix`` is "plugins" or "teachers")."""
        start = prefix + "."
        return {k[len(start):]: v for k, v in self._values.items() if k.startswith(start)}

    @property
    def home(self) -> Path:
        """``$AETH_HOME``: the root of everything aeth writes."""
        return Path(self._values["home"]).expanduser()

    def items(self) -> list[tuple[str, Any, str]]:
        """(key, value, source) for every known key, sorted."""
        return [(k, self._values.get(k), self.sources.get(k, "default")) for k in sorted(self._values)]


def config_files(explicit: str | os.PathLike | None = None) -> list[Path]:
    """Files read, lowest precedence first: the user config, then ./aeth.yaml (or only ``explicit``)."""
    if explicit:
        return [Path(explicit)]
    import platformdirs

    return [Path(platformdirs.user_config_dir("aeth")) / CONFIG_FILE, Path.cwd() / CONFIG_FILE]


def load_config(overrides: Sequence[str] = (), path: str | os.PathLike | None = None,
                env: Mapping[str, str] | None = None) -> Config:
    """Build the configuration from every source; raise one ConfigError listing all problems.

    ``overrides`` are ``key=value`` strings (the CLI's ``-o``); ``path`` replaces the file search
    (the CLI's ``--config`` / ``AETH_CONFIG``).
    """
    import yaml

    env = os.environ if env is None else env
    path = path or env.get("AETH_CONFIG")
    problems: list[str] = []
    layers: list[tuple[str, dict[str, Any]]] = []

    for f in config_files(path):
        if not f.exists():
            if path:
                problems.append(f"{f}: config file not found")
            continue
        try:
            tree = yaml.safe_load(f.read_text()) or {}
        except yaml.YAMLError as e:
            problems.append(f"{f}: not valid YAML: {e}".replace("\n", " "))
            continue
        if not isinstance(tree, Mapping):
            problems.append(f"{f}: must hold a mapping of keys, got {type(tree).__name__}")
            continue
        layers.append((str(f), _flatten(tree)))

    layers.append(("environment", {k: _parse_scalar(env[env_name(k)]) for k in KEYS if env_name(k) in env}))

    cli: dict[str, Any] = {}
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            problems.append(f"-o {item!r}: expected key=value, e.g. -o router.threshold=0.4")
            continue
        cli[key.strip()] = _parse_scalar(raw)
    layers.append(("-o", cli))

    values = {k: spec.default for k, spec in KEYS.items()}
    sources: dict[str, str] = {}
    for source, layer in layers:
        for key, raw in layer.items():
            if key.startswith("plugins."):
                values[key], sources[key] = raw, source
                continue
            if key.startswith(tuple(f"{t}." for t in MAPPING_SUBTREES)):
                _set_entry_field(values, key, raw)
                sources[".".join(key.split(".")[:2])] = source
                continue
            if key not in KEYS:
                near = difflib.get_close_matches(key, list(KEYS), n=1)
                problems.append(f"{source}: unknown key {key!r}" + (f" (did you mean {near[0]!r}?)" if near else ""))
                continue
            try:
                values[key] = KEYS[key].check(raw)
                sources[key] = source
            except ValueError as e:
                where = env_name(key) if source == "environment" else key
                problems.append(f"{source}: {where} {e}, got {raw!r}")
    problems += _entry_problems(values)
    if problems:
        raise ConfigError(problems)
    if values["home"] is None:
        values["home"] = _default_home()
    return Config(values, sources)


def _entry_problems(values: dict[str, Any]) -> list[str]:
    """What is wrong with the ``specialists.<name>`` and ``policy.<name>`` entries (mappings of
    :data:`ENTRY_FIELDS`); the valid fields are replaced by their checked values (``"12"`` from
    ``-o`` becomes 12)."""
    problems = []
    for key, entry in values.items():
        tree = key.split(".", 1)[0]
        allowed = ENTRY_FIELDS.get(tree)
        if allowed is None or "." not in key:
            continue
        if not isinstance(entry, Mapping):
            problems.append(f"{key}: must be a mapping with {', '.join(allowed)}, got {entry!r}")
            continue
        checked = dict(entry)
        for name, value in entry.items():
            if name not in allowed:
                near = difflib.get_close_matches(name, list(allowed), n=1)
                problems.append(f"{key}.{name}: unknown field (fields: {', '.join(allowed)})"
                                + (f"; did you mean {near[0]!r}?" if near else ""))
                continue
            try:
                checked[name] = allowed[name].check(value)
            except ValueError as e:
                problems.append(f"{key}.{name}: {e}, got {value!r}")
        values[key] = checked
    return problems
