"""aeth's pytest plugin: tiny models, isolated state and the contract every specialist passes.

Registered through the ``pytest11`` entry point, so in every test of every installed package:

- :func:`build_tiny_model` / ``tiny_model_dir``: a Llama of a few hundred KB and a byte-level BPE
  tokenizer, both built in-process (no network, no model hub) and saved the way a real model is,
  so tests go through aeth's real loading code.
- ``aeth_home``: a fresh ``$AETH_HOME`` and no stray configuration, so ``Aeth()`` starts from defaults.
- ``register_plugin``: register a throwaway plugin on the default plugin host (every ``Aeth()``
  not given another host sees it); it is always unregistered at teardown.
- :class:`SpecialistContract`: subclass it in a specialist package's tests.
- ``postgres_url`` / ``postgres_db``: a real PostgreSQL server on 127.0.0.1 in a temporary
  directory (:class:`PostgresCluster`, once per session) and a fresh database in it per test.

Importing this module never imports torch or transformers (pytest loads it in every process);
they are imported inside the functions that build or load models.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from aeth.routing.embedder import Embedder

__all__ = [
    "HEAVY_MODULES",
    "CountingEmbedder",
    "PostgresCluster",
    "SpecialistContract",
    "adder_plugin_source",
    "adder_records",
    "adder_specialist",
    "aeth_home",
    "build_lora",
    "build_tiny_model",
    "install_plugin_source",
    "postgres_bindir",
    "postgres_cluster",
    "postgres_db",
    "postgres_url",
    "register_plugin",
    "tiny_model_dir",
]

SPECIAL_TOKENS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>")
# SmolLM2's ChatML template without its built-in default system prompt, so a test that renders a
# conversation sees exactly the turns it passed.
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
TINY_VOCAB_SIZE = 420
HEAVY_MODULES = ("torch", "transformers", "peft", "sentence_transformers", "bitsandbytes")

# A small English + code corpus: enough for the BPE trainer to learn merges for common words and
# code tokens, so prompts tokenize to a sensible number of ids (the tiny model has 512 positions).
_CORPUS = """\
You are a helpful assistant. Answer accurately and concisely, in complete sentences.
The quick brown fox jumps over the lazy dog while the cat sleeps in the sun.
Write a Python function that returns the sum of two numbers.
Explain what this code does and why it is correct.
Find the bug in the following function and suggest a fix.
Review this code for readability, performance and security problems.
Add a docstring and type hints to the function below.
How do I reverse a list in Python without changing the original?
What is the difference between a list and a tuple?
Please summarise the following text in three short sentences.
A good answer is short, correct, and gives an example when one helps.
The recipe needs two cups of flour, one egg, a pinch of salt and some milk.
Preheat the oven to 180 degrees and bake the bread for forty minutes.
def add(a: int, b: int) -> int:
    \"\"\"Return the sum of a and b.\"\"\"
    return a + b
def is_palindrome(text: str) -> bool:
    cleaned = [c.lower() for c in text if c.isalnum()]
    return cleaned == cleaned[::-1]
for i in range(10):
    if i % 2 == 0:
        print(i)
class Stack:
    def __init__(self):
        self.items = []
    def push(self, item):
        self.items.append(item)
import json
from pathlib import Path
data = json.loads(Path("config.json").read_text())
function greet(name) {
  return `Hello, ${name}!`;
}
const total = items.reduce((sum, item) => sum + item.price, 0);
SELECT name, COUNT(*) FROM orders WHERE status = 'paid' GROUP BY name ORDER BY 2 DESC;
for f in *.txt; do echo "$f"; done
fn main() { println!("hello, world"); }
<|im_start|>user
What is two plus two?<|im_end|>
<|im_start|>assistant
Two plus two is four.<|im_end|>
"""


def _train_tokenizer() -> Any:
    """A byte-level BPE tokenizer trained on :data:`_CORPUS`, wrapped for transformers."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    # Byte-level: every string round-trips, whatever characters it holds.
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(
        vocab_size=TINY_VOCAB_SIZE,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(_CORPUS.splitlines(keepends=True), trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=None,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        unk_token="<|endoftext|>",
        additional_special_tokens=["<|im_start|>"],
        chat_template=CHAT_TEMPLATE,
        model_max_length=512,
    )


def build_tiny_model(directory: Path, *, seed: int = 0) -> Path:
    """Build a tiny Llama and its tokenizer into ``directory`` and return the directory.

    The model (2 layers, hidden size 32, a few hundred KB of float32 safetensors) is initialised
    from ``seed`` without touching the global torch RNG; the tokenizer is a byte-level BPE trained
    in-process with the ChatML special tokens and chat template of SmolLM2 (eos ``<|im_end|>``).
    Both are written with ``save_pretrained``, so loading them exercises the same code as a real
    model. Its answers are noise: tests check plumbing, not quality.
    """
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM
    from transformers.utils import logging as hf_logging

    from aeth.training.distributed import quiet_deepspeed

    quiet_deepspeed()
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    tokenizer = _train_tokenizer()
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        tie_word_embeddings=False,
        bos_token_id=None,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    with torch.random.fork_rng(devices=[]):  # seeded, yet leaves the caller's RNG state alone
        torch.manual_seed(seed)
        model = LlamaForCausalLM(config)
    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()  # a "writing shards" bar per build is noise in test output
    try:
        model.save_pretrained(directory, safe_serialization=True)
    finally:
        if bars:
            hf_logging.enable_progress_bar()
    tokenizer.save_pretrained(directory)
    return directory


def build_lora(base_dir: Path, directory: Path) -> Path:
    """Save a real LoRA adapter (r=4 on q_proj and v_proj, PEFT's safetensors) for the model in
    ``base_dir`` into ``directory`` and return it. Its B matrices are drawn from U(-0.5, 0.5)
    instead of PEFT's zeros, so the adapter changes what the model answers."""
    import peft
    import torch
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(base_dir)
    model = peft.get_peft_model(base, peft.LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"]))
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.uniform_(-0.5, 0.5)
    model.save_pretrained(directory)
    return Path(directory)


def install_plugin_source(directory: Path, name: str, source: str) -> dict[str, str]:
    """Install plugin ``name`` for child processes without pip: its module (``source``, with
    ``@hookimpl`` functions) and a ``*.dist-info`` declaring its ``aeth`` entry point, both in
    ``directory``. Returns the environment variables a subprocess needs to load it (and only it, with
    the defaults): ``PYTHONPATH`` with ``directory`` first, and ``AETH_LOAD_PLUGINS``.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    module = f"{name.replace('-', '_')}_plugin"
    (directory / f"{module}.py").write_text(source)
    info = directory / f"{module}-0.1.dist-info"
    info.mkdir(exist_ok=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {module.replace('_', '-')}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[aeth]\n{name} = {module}\n")
    path = os.pathsep.join(filter(None, [str(directory), os.environ.get("PYTHONPATH")]))
    return {"PYTHONPATH": path, "AETH_LOAD_PLUGINS": name}


def adder_records(a_max: int = 8, b_max: int = 5) -> list[dict]:
    """Chat records "What is a plus b?" -> "a plus b is c." for 1 <= a <= a_max, 1 <= b <= b_max."""
    return [{"messages": [{"role": "user", "content": f"What is {a} plus {b}?"},
                          {"role": "assistant", "content": f"{a} plus {b} is {a + b}."}]}
            for a in range(1, a_max + 1) for b in range(1, b_max + 1)]


def adder_specialist(name: str = "adder", a_max: int = 8, b_max: int = 5) -> Any:
    """A throwaway specialist whose recipe is :func:`adder_records`: short sums, so a training
    step or a teacher request takes milliseconds."""
    from aeth.specialist import DatasetRecipe, Specialist

    return Specialist(name=name, description="adds two numbers", system_prompt="Be brief.",
                      recipe=DatasetRecipe(f"{name}-seed", "1", lambda: adder_records(a_max, b_max)))


def adder_plugin_source(name: str = "adder", a_max: int = 8, b_max: int = 5) -> str:
    """Source of a plugin registering :func:`adder_specialist` (for :func:`install_plugin_source`)."""
    return (f"from aeth import hookimpl\n\n\n@hookimpl\ndef register_specialists(register):\n"
            f"    from aeth.testing import adder_specialist\n\n"
            f"    register(adder_specialist({name!r}, {a_max}, {b_max}))\n")


# ---- PostgreSQL ---------------------------------------------------------------------------

POSTGRES_MISSING = ("the PostgreSQL server binaries (initdb, pg_ctl) are not installed, and the store's tests run on a real "
                    "server: install them (Debian/Ubuntu: apt-get install postgresql; Fedora: dnf install postgresql-server; "
                    "macOS: brew install postgresql) or put their directory on PATH")


def postgres_bindir() -> Path:
    """The directory holding ``initdb`` and ``pg_ctl``: ``pg_config --bindir``, the newest
    ``/usr/lib/postgresql/*/bin`` (Debian), or PATH. Raises FileNotFoundError saying how to install them."""
    candidates = []
    if shutil.which("pg_config"):
        out = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True)
        if out.returncode == 0 and out.stdout.strip():
            candidates.append(Path(out.stdout.strip()))

    def version(bindir: Path) -> tuple[int, ...]:
        return tuple(int(p) for p in bindir.parent.name.split(".") if p.isdigit())

    candidates += sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=version, reverse=True)
    if shutil.which("initdb"):
        candidates.append(Path(shutil.which("initdb")).parent)
    for bindir in candidates:
        if (bindir / "initdb").exists() and (bindir / "pg_ctl").exists():
            return bindir
    raise FileNotFoundError(POSTGRES_MISSING)


class PostgresCluster:
    """A throwaway PostgreSQL server: ``initdb`` in a temporary directory, listening on 127.0.0.1
    (a free port) and a socket in that directory, trusting local user ``aeth``.

    initdb refuses to run as root, so as root the server runs as the ``postgres`` user (through
    ``runuser``) and the directory is given to it. ``start()`` returns :attr:`url`, a SQLAlchemy
    URL of the ``postgres`` database; ``create_database()`` makes another; ``stop()`` stops the
    server and removes the directory.
    """

    user = "aeth"

    def __init__(self, bindir: Path | None = None):
        self.bindir = bindir or postgres_bindir()
        self.dir: Path | None = None
        self.port = 0
        self._as: list[str] = []

    @property
    def url(self) -> str:
        """``postgresql+psycopg://aeth@127.0.0.1:PORT/postgres``."""
        return self.database_url("postgres")

    def database_url(self, name: str) -> str:
        """The SQLAlchemy URL of database ``name`` in this cluster."""
        return f"postgresql+psycopg://{self.user}@127.0.0.1:{self.port}/{name}"

    def _run(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run([*self._as, *args], capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=120)

    def start(self) -> str:
        """initdb and start the server; its URL."""
        owner = None
        if os.geteuid() == 0:
            import pwd

            try:
                owner = pwd.getpwnam("postgres")
            except KeyError:
                raise RuntimeError("running as root, the PostgreSQL server needs a 'postgres' user to run as "
                                   "(initdb refuses root): create one (useradd -r postgres) or run the tests as "
                                   "another user") from None
            self._as = ["runuser", "-u", "postgres", "--"]
        # /tmp, not pytest's own temporary directory: that one is private to this user, and the
        # server (another user, as root) must reach its files; a short path also keeps the socket's
        # name under its length limit
        self.dir = Path(tempfile.mkdtemp(prefix="aeth-pg-", dir="/tmp" if Path("/tmp").is_dir() else None))
        if owner is not None:
            os.chown(self.dir, owner.pw_uid, owner.pw_gid)
        data = self.dir / "data"
        done = self._run(str(self.bindir / "initdb"), "-D", str(data), "-A", "trust", "-U", self.user, "-E", "UTF8",
                         "--no-locale", "--no-sync")
        if done.returncode:
            raise RuntimeError(f"initdb failed: {done.stderr.strip() or done.stdout.strip()}")
        for _ in range(3):  # another process may take the free port between choosing it and listening on it
            self.port = _free_port()
            done = self._run(str(self.bindir / "pg_ctl"), "-D", str(data), "-l", str(self.dir / "server.log"), "-w",
                             "-o", f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1", "start")
            if done.returncode == 0:
                return self.url
        log = (self.dir / "server.log").read_text(errors="replace")[-2000:] if (self.dir / "server.log").exists() else ""
        raise RuntimeError(f"PostgreSQL did not start: {done.stderr.strip() or done.stdout.strip()}\n{log}")

    def stop(self) -> None:
        """Stop the server (fast: open connections are closed) and remove its directory."""
        if self.dir is None:
            return
        if (self.dir / "data" / "postmaster.pid").exists():
            self._run(str(self.bindir / "pg_ctl"), "-D", str(self.dir / "data"), "-m", "fast", "-w", "stop")
        shutil.rmtree(self.dir, ignore_errors=True)
        self.dir = None

    def _admin(self, sql: str) -> None:
        import psycopg

        with psycopg.connect(host="127.0.0.1", port=self.port, user=self.user, dbname="postgres", autocommit=True) as conn:
            conn.execute(sql)

    def create_database(self, name: str) -> str:
        """Create database ``name`` (letters, digits, underscores); its URL."""
        if not name.replace("_", "").isalnum():
            raise ValueError(f"database name {name!r}: letters, digits and underscores only")
        self._admin(f'CREATE DATABASE "{name}"')
        return self.database_url(name)

    def drop_database(self, name: str) -> None:
        """Drop database ``name``, closing whatever is still connected to it."""
        self._admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---- fixtures -----------------------------------------------------------------------------


@pytest.fixture(scope="session")
def postgres_cluster() -> Iterator[PostgresCluster]:
    """A real PostgreSQL server on 127.0.0.1 for the whole session (:class:`PostgresCluster`); fails,
    never skips, when the server binaries are missing, saying how to install them."""
    try:
        cluster = PostgresCluster()
    except FileNotFoundError as e:
        pytest.fail(str(e), pytrace=False)
    try:
        cluster.start()
    except RuntimeError as e:
        cluster.stop()
        pytest.fail(str(e), pytrace=False)
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="session")
def postgres_url(postgres_cluster: PostgresCluster) -> str:
    """``postgresql+psycopg://aeth@127.0.0.1:PORT/postgres`` of the session's PostgreSQL server
    (shared by every test: prefer ``postgres_db`` for a database of the test's own)."""
    return postgres_cluster.url


@pytest.fixture
def postgres_db(postgres_cluster: PostgresCluster) -> Iterator[str]:
    """The URL of a fresh, empty database in the session's PostgreSQL server, dropped after the test."""
    import uuid

    name = f"test_{uuid.uuid4().hex[:12]}"
    url = postgres_cluster.create_database(name)
    try:
        yield url
    finally:
        postgres_cluster.drop_database(name)




@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory holding a tiny model built by :func:`build_tiny_model` (once per session)."""
    return build_tiny_model(tmp_path_factory.mktemp("tiny-model"))


@pytest.fixture
def aeth_home(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A fresh, empty ``$AETH_HOME`` (yielded) with no configuration leaking in.

    Every other ``AETH_*`` variable is cleared (``AETH_LOAD_PLUGINS`` is kept: it picks plugins,
    it is not configuration), the user config file is pointed at an empty directory, and the
    working directory is a fresh one, so no ``./aeth.yaml`` is read: an ``Aeth()`` made in the test
    starts from defaults. There is no process-wide configuration to reset: each application owns its own.
    """
    import platformdirs

    from aeth.plugins import LOAD_PLUGINS_ENV

    root = tmp_path_factory.mktemp("aeth")  # not tmp_path: the test may want that one empty
    home, cwd, user_config = root / "home", root / "cwd", root / "user-config"
    for d in (home, cwd, user_config):
        d.mkdir()
    for name in list(os.environ):
        if name.startswith("AETH_") and name != LOAD_PLUGINS_ENV:
            monkeypatch.delenv(name)
    monkeypatch.setenv("AETH_HOME", str(home))
    # The user's own aeth.yaml must not leak in either. XDG_CONFIG_HOME covers Linux; the wrapper
    # covers platforms where platformdirs ignores it, and leaves other applications' dirs alone.
    monkeypatch.setenv("XDG_CONFIG_HOME", str(user_config))
    real_user_config_dir = platformdirs.user_config_dir

    def user_config_dir(appname: str | None = None, *args: Any, **kwargs: Any) -> str:
        if appname == "aeth":
            return str(user_config / "aeth")
        return real_user_config_dir(appname, *args, **kwargs)

    monkeypatch.setattr(platformdirs, "user_config_dir", user_config_dir)
    monkeypatch.chdir(cwd)
    yield home


@pytest.fixture
def register_plugin() -> Iterator[Callable[..., bool]]:
    """Factory: ``register_plugin(obj, name="test-plugin")`` registers a throwaway plugin.

    ``obj`` is a module or object with ``@aeth.hookimpl`` methods; it is registered on the
    default plugin host (:func:`aeth.plugins.default_host`), which every ``Aeth()`` not given
    another host uses. Returns what :meth:`~aeth.plugins.PluginHost.register` returns: ``False``
    (with a warning) when the host refused it. Every plugin registered through the factory is
    unregistered at teardown, whether the test passed or not; a name the host refused (already
    taken) is left alone.
    """
    from aeth.plugins import default_host

    host = default_host()
    registered: list[str] = []

    def register(obj: Any, name: str = "test-plugin") -> bool:
        ok = host.register(obj, name)
        if ok:
            registered.append(name)
        return ok

    try:
        yield register
    finally:
        for name in reversed(registered):
            host.unregister(name)


# ---- the specialist contract -------------------------------------------------------------


class SpecialistContract:
    """The tests every specialist package passes: subclass it as ``Test<Name>Contract``.

    Set ``specialist_name``; ``plugin_name`` (the entry-point name) defaults to it, and
    ``plugin_module`` (the entry point's module) to ``aetherial_<name>.plugin``. The specialist must
    be registered by that entry point's distribution (a plugin is its distribution)::

        class TestCodingContract(SpecialistContract):
            specialist_name = "coding"
            plugin_module = "aetherial_coding.plugin"

    The package must be installed (``pip install -e``): the contract checks the real entry point.
    """

    specialist_name: str = ""
    plugin_name: str | None = None
    plugin_module: str | None = None
    min_routing_examples: int = 40
    min_routing_heldout: int = 0  #: aeth's own specialists ask for 20
    min_seed_records: int = 1  #: aeth's own specialists ask for 200
    practice_sample: int = 4  #: practice prompts the verifier contract draws (when the specialist has them)

    def contract_model_dir(self, tiny_model_dir: Path) -> Path:
        """The tiny model the eval suite runs on; a specialist that needs another kind of model
        (a vision-language model, say) overrides this to build a tiny one of its own."""
        return tiny_model_dir

    # ---- helpers --------------------------------------------------------------------------

    @property
    def _plugin_name(self) -> str:
        return self.plugin_name or self.specialist_name

    @property
    def _plugin_module(self) -> str:
        return self.plugin_module or f"aetherial_{self.specialist_name.replace('-', '_')}.plugin"

    def _specialist(self):
        import warnings

        from aeth.app import Aeth
        from aeth.plugins import AethWarning

        assert self.specialist_name, f"{type(self).__name__} must set specialist_name"
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", AethWarning)
            specialists = Aeth().specialists()
        if self.specialist_name not in specialists:
            said = [str(w.message) for w in caught if issubclass(w.category, AethWarning)]
            about = [m for m in said if repr(self.specialist_name) in m or repr(self._plugin_name) in m] or said
            raise AssertionError(
                f"specialist {self.specialist_name!r} is not registered (found: {sorted(specialists)}). "
                + (f"Registration said: {' | '.join(about)}" if about else
                   "Is the package installed (pip install -e) and not excluded by AETH_LOAD_PLUGINS?"))
        return specialists[self.specialist_name]

    # ---- the contract ---------------------------------------------------------------------

    def test_registered_through_entry_point(self, aeth_home):
        """The installed entry point loads the plugin, which registers a valid specialist."""
        from importlib.metadata import entry_points

        from aeth.plugins import ENTRY_POINT_GROUP

        found = [ep for ep in entry_points(group=ENTRY_POINT_GROUP)
                 if ep.name == self._plugin_name and ep.value == self._plugin_module]
        assert found, (
            f"no entry point {self._plugin_name} = {self._plugin_module!r} in group {ENTRY_POINT_GROUP!r} "
            f"(found {[(ep.name, ep.value) for ep in entry_points(group=ENTRY_POINT_GROUP)]}); declare it under "
            "[project.entry-points.aeth] and reinstall"
        )
        spec = self._specialist()
        assert spec.plugin == found[0].dist.metadata["Name"], (
            f"specialist {spec.name!r} is served by plugin {spec.plugin!r}, not by {found[0].dist.metadata['Name']!r}")
        assert spec.problems() == []
        assert spec.name == self.specialist_name

    def test_recipe_records_and_split(self):
        """The recipe yields valid chat records and a deterministic, disjoint, two-sided split."""
        from aeth.specialist import record_key, record_problems

        spec = self._specialist()
        assert spec.recipe is not None, "the specialist has no dataset recipe"
        records = spec.recipe.records()
        assert records, f"recipe {spec.recipe.name!r} yields no records"
        assert all(record_problems(r) == [] for r in records)
        train, val = spec.recipe.split()
        again = spec.recipe.split()
        assert (train, val) == again, "the split must not change between calls"
        train_keys, val_keys = {record_key(r) for r in train}, {record_key(r) for r in val}
        assert not train_keys & val_keys, "a record is on both sides of the split"
        assert len(train) + len(val) == len(records)
        assert train and val, (
            f"split is one-sided ({len(train)} train, {len(val)} validation): add records or raise "
            f"the recipe's validation_fraction"
        )

    def test_eval_suite_runs_on_tiny_model(self, tiny_model_dir, aeth_home):
        """The eval suite runs end to end on a tiny model, through the specialist's own generate
        path (as ``aeth eval`` runs it), and scores within [0, 1]."""
        from dataclasses import replace

        from aeth.app import Aeth
        from aeth.evals.model import specialist_model
        from aeth.evals.runner import run_evaluation

        spec = self._specialist()
        assert spec.suite is not None, "the specialist has no eval suite"
        cases = list(spec.suite.cases())
        assert len(cases) >= 2, "an eval suite needs at least two cases"
        assert len({c.id for c in cases}) == len(cases), "eval case ids must be unique"
        tiny = replace(spec, base_model=str(self.contract_model_dir(tiny_model_dir)))
        app = Aeth()
        model = specialist_model(app, tiny, max_tokens=16)
        report = run_evaluation(app, tiny, model, limit=2)
        assert report.n == 2
        assert len(report.cases) == 2
        assert 0.0 <= report.score <= 1.0
        assert all(0.0 <= c.score <= 1.0 for c in report.cases)
        assert {c.id for c in report.cases} <= {c.id for c in cases}

    def test_seed_data_is_plentiful_and_distinct(self):
        """At least ``min_seed_records`` records, no two with the same first user prompt."""
        spec = self._specialist()
        assert spec.recipe is not None, "the specialist has no dataset recipe"
        records = spec.recipe.records()
        assert len(records) >= self.min_seed_records, f"{len(records)} seed records; at least {self.min_seed_records} wanted"
        firsts = [next(m["content"] for m in r["messages"] if m["role"] == "user") for r in records]
        assert len(set(firsts)) == len(firsts), "two seed records start with the same user prompt"

    def test_routing_heldout_prompts(self):
        """Held-out routing prompts exist (``min_routing_heldout``) and never repeat a routing example."""
        spec = self._specialist()
        assert len(spec.routing_heldout) >= self.min_routing_heldout, (
            f"{len(spec.routing_heldout)} held-out routing prompts; at least {self.min_routing_heldout} wanted")
        assert not set(spec.routing_heldout) & set(spec.routing_examples)

    def test_routing_examples_embed(self):
        """Routing examples are plentiful and distinct: finite 384-d embeddings, no duplicate rows."""
        import numpy as np

        from aeth.routing.embedder import get_embedder

        examples = list(self._specialist().routing_examples)
        assert len(examples) >= self.min_routing_examples, (
            f"{len(examples)} routing examples; the router needs at least {self.min_routing_examples}"
        )
        vectors = np.asarray(get_embedder().embed(examples))
        assert vectors.shape == (len(examples), 384)
        assert np.isfinite(vectors).all()
        assert len(np.unique(vectors, axis=0)) == len(examples), "two routing examples embed identically"

    def test_practice_prompts_are_verifiable(self):
        """Practice prompts, when declared, are requests the verifier can check (a reward in [0, 1],
        never None), the same for the same seed, JSON metadata, and none of them an eval case."""
        import json

        from aeth.request import Request
        from aeth.specialist import reward_problem

        spec = self._specialist()
        if spec.practice is None:
            pytest.skip(f"specialist {spec.name!r} declares no practice prompts")
        assert spec.verifier is not None, "practice prompts need a verifier to check their answers"
        requests = spec.practice(self.practice_sample, 0)
        assert requests, "practice(n, seed) returned no request"
        assert len(requests) <= self.practice_sample
        assert all(isinstance(r, Request) and r.prompt.strip() for r in requests)
        assert [r.prompt for r in spec.practice(self.practice_sample, 0)] == [r.prompt for r in requests], (
            "practice(n, seed) must give the same prompts for the same seed")
        for r in requests:
            json.dumps(r.metadata)  # the interaction log keeps metadata as JSON
        held_out = {c.prompt for c in spec.suite.cases()} if spec.suite is not None else set()
        assert not {r.prompt for r in requests} & held_out, "a practice prompt is an eval case: keep held-out data out"
        for r in requests:
            reward = spec.verifier(r, "")
            assert reward is not None, f"the verifier cannot check practice prompt {r.prompt[:60]!r}"
            assert reward_problem(reward) is None, reward_problem(reward)

    def test_verifier_answers_plain_prompts(self):
        """A declared verifier takes any request: on a routing example (no metadata) it returns a
        reward in [0, 1] or None, and never raises."""
        from aeth.request import Request
        from aeth.specialist import reward_problem

        spec = self._specialist()
        if spec.verifier is None:
            pytest.skip(f"specialist {spec.name!r} declares no verifier")
        for prompt in spec.routing_examples[:3]:
            reward = spec.verifier(Request(prompt=prompt, specialist=spec.name), "I am not sure.")
            assert reward_problem(reward) is None, reward_problem(reward)

    def test_plugin_import_is_light(self):
        """Importing the plugin module imports none of the heavy ML libraries."""
        code = (
            f"import {self._plugin_module}; import sys; "
            f"print(sorted(m for m in {HEAVY_MODULES!r} if m in sys.modules))"
        )
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False)
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == "[]", f"importing {self._plugin_module} imported {done.stdout.strip()}"


class CountingEmbedder(Embedder):
    """aeth's real sentence encoder (the router's MiniLM), recording in ``calls`` every list of
    texts it is asked to embed: a test can tell what was embedded and what came from a cache."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[list[str]] = []

    def embed(self, texts):
        self.calls.append(list(texts))
        return super().embed(texts)
