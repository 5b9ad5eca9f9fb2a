"""aeth.models: safety checks, resolution, loading (bf16 / fp32 / NF4), the shared pool, threads.

Every model here is a tiny Llama (a few tens of thousands of parameters) with a BPE tokenizer
trained in-process, saved with ``save_pretrained`` and loaded through the same code users hit.
No test touches the network.
"""

from __future__ import annotations

import json
import pickle
import shutil
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from aeth.config import load_config
from aeth.errors import ModelError
from aeth.models import loading, threads
from aeth.models import pool as pool_mod
from aeth.models.loading import load_model
from aeth.models.pool import ModelPool
from aeth.models.resolve import parse_hub_id, resolve_model
from aeth.models.safety import check_model_dir
from aeth.specialist import Specialist

torch = pytest.importorskip("torch")

TINY_LAYERS = 2
LINEAR_PER_LAYER = 7  # q, k, v, o, gate, up, down


# ----------------------------------------------------------------------------- helpers

def build_tiny_model(out: Path) -> int:
    """Save a tiny Llama and a freshly trained byte-level BPE tokenizer to ``out``; return n_params."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=300, special_tokens=["<unk>", "<s>", "</s>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(["the quick brown fox jumps over the lazy dog",
                             "what is the capital of France? Paris is."] * 20, trainer)
    # No pad token on purpose: load_model must fall back to eos.
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", unk_token="<unk>")
    cfg = LlamaConfig(vocab_size=300, hidden_size=32, intermediate_size=64, num_hidden_layers=TINY_LAYERS,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
                      bos_token_id=1, eos_token_id=2)
    torch.manual_seed(0)
    model = LlamaForCausalLM(cfg)
    model.save_pretrained(out)
    fast.save_pretrained(out)
    return model.num_parameters()


def make_config(tmp_path: Path, *overrides: str):
    """A Config isolated from the user's files and environment, with ``home`` under ``tmp_path``."""
    cfg_file = tmp_path / "aeth.yaml"
    cfg_file.write_text("{}\n")
    return load_config([f"home={tmp_path / 'home'}", *overrides], path=cfg_file, env={})


class _Sentinel:
    """Unpickling this creates a file: if it exists afterwards, something unpickled our junk."""

    def __init__(self, path: Path):
        self.path = path

    def __reduce__(self):
        return (Path.touch, (self.path,))


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("tiny-llama")
    build_tiny_model(out)
    return out


@pytest.fixture(scope="module")
def tiny_params(tiny_dir) -> int:
    from transformers import AutoConfig, AutoModelForCausalLM

    return AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(tiny_dir)).num_parameters()


@pytest.fixture
def restore_threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)
    threads._applied = None


def _forward(loaded) -> torch.Tensor:
    ids = loaded.tokenizer("the quick brown fox", return_tensors="pt")["input_ids"]
    with torch.no_grad():
        return loaded.model(input_ids=ids).logits


# ----------------------------------------------------------------------------- import hygiene

def test_importing_models_package_does_not_import_torch():
    code = ("import sys, aeth.models, aeth.models.pool, aeth.models.builtin, aeth.models.resolve, "
            "aeth.models.loading, aeth.models.threads, aeth.models.safety\n"
            "heavy = [m for m in ('torch', 'transformers', 'bitsandbytes', 'huggingface_hub') if m in sys.modules]\n"
            "print(','.join(heavy))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


# ----------------------------------------------------------------------------- safety

def test_pickle_only_dir_is_refused_without_opening_the_file(tmp_path, tiny_dir):
    bad = tmp_path / "pickled"
    bad.mkdir()
    shutil.copy(tiny_dir / "config.json", bad / "config.json")
    sentinel = tmp_path / "UNPICKLED"
    # A real pickle whose loading would create `sentinel`, followed by junk torch.load chokes on.
    (bad / "pytorch_model.bin").write_bytes(pickle.dumps(_Sentinel(sentinel)) + b"\x00junk" * 10)

    for attempt in (lambda: check_model_dir(bad), lambda: load_model(bad, quantization="none"),
                    lambda: resolve_model(str(bad), make_config(tmp_path))):
        with pytest.raises(ModelError) as err:
            attempt()
        msg = str(err.value)
        assert "pytorch_model.bin" in msg and "safetensors" in msg
        assert "arbitrary code" in msg and "save_pretrained" in msg
    assert not sentinel.exists()


@pytest.mark.parametrize("name", ["model.pt", "weights.pth", "model.pkl", "last.ckpt"])
def test_other_pickle_formats_are_refused(tmp_path, name):
    (tmp_path / "config.json").write_text("{}")
    (tmp_path / name).write_bytes(b"junk")
    with pytest.raises(ModelError, match=name.replace(".", r"\.")):
        check_model_dir(tmp_path)


def test_pickle_files_beside_safetensors_are_ignored(tmp_path, tiny_dir):
    mixed = tmp_path / "mixed"
    shutil.copytree(tiny_dir, mixed)
    (mixed / "pytorch_model.bin").write_bytes(b"\x80junk that would crash torch.load")
    (mixed / "training_args.bin").write_bytes(b"junk")
    check_model_dir(mixed)
    loaded = load_model(mixed, quantization="none", dtype="float32")
    assert _forward(loaded).shape[-1] == 300


def test_dir_without_config_or_weights_is_refused(tmp_path, tiny_dir):
    with pytest.raises(ModelError, match="no model weights"):
        check_model_dir(tmp_path)
    shutil.copy(tiny_dir / "model.safetensors", tmp_path / "model.safetensors")
    with pytest.raises(ModelError, match="config.json"):
        check_model_dir(tmp_path)
    with pytest.raises(ModelError, match="not a directory"):
        check_model_dir(tmp_path / "model.safetensors")


def test_sharded_checkpoint_with_missing_shard_is_refused(tmp_path, tiny_dir):
    shutil.copy(tiny_dir / "config.json", tmp_path)
    (tmp_path / "model-00001-of-00002.safetensors").write_bytes(b"")
    index = {"metadata": {}, "weight_map": {"a": "model-00001-of-00002.safetensors",
                                            "b": "model-00002-of-00002.safetensors"}}
    (tmp_path / "model.safetensors.index.json").write_text(json.dumps(index))
    with pytest.raises(ModelError, match="model-00002-of-00002.safetensors"):
        check_model_dir(tmp_path)


# ----------------------------------------------------------------------------- loading

@pytest.mark.parametrize("dtype", ["bfloat16", "float32"])
def test_local_dir_loads_in_dtype(tiny_dir, tiny_params, dtype):
    loaded = load_model(tiny_dir, quantization="auto", dtype=dtype, device="cpu")
    assert loaded.quantization == "none"  # auto = none on CPU
    assert loaded.device == "cpu" and loaded.dtype == dtype
    assert {p.dtype for p in loaded.model.parameters()} == {getattr(torch, dtype)}
    assert loaded.n_params == tiny_params
    assert loaded.name == tiny_dir.name and loaded.path == tiny_dir
    assert not loaded.model.training
    assert loaded.tokenizer.pad_token == loaded.tokenizer.eos_token == "</s>"
    logits = _forward(loaded)
    assert logits.shape[-1] == 300 and torch.isfinite(logits.float()).all()


def test_loading_writes_nothing_to_the_terminal(tiny_dir, capfd):
    # The CLI's --quiet and --json modes rely on this (no transformers progress bars or warnings).
    load_model(tiny_dir, quantization="none")
    load_model(tiny_dir, quantization="nf4")
    out, err = capfd.readouterr()
    assert (out, err) == ("", "")


def test_auto_dtype_falls_back_to_fp32_without_native_bf16(monkeypatch, tiny_dir):
    monkeypatch.setattr(loading, "bf16_native", lambda device: False)
    assert loading.resolve_dtype("auto", "cpu") == "float32"
    loaded = load_model(tiny_dir, dtype="auto", device="cpu")
    assert loaded.dtype == "float32"
    assert next(loaded.model.parameters()).dtype == torch.float32
    assert loading.resolve_dtype("bfloat16", "cpu") == "bfloat16"  # asked for, and it works (emulated)


def test_auto_dtype_is_bf16_only_where_the_cpu_has_it_natively():
    native = torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported()
    assert loading.resolve_dtype("auto", "cpu") == ("bfloat16" if native else "float32")


def test_auto_dtype_is_bf16_when_native(monkeypatch):
    monkeypatch.setattr(loading, "bf16_native", lambda device: True)
    assert loading.resolve_dtype("auto", "cpu") == "bfloat16"
    assert loading.resolve_quantization("auto", "cuda") == "nf4"
    assert loading.resolve_quantization("auto", "cpu") == "none"


def test_nf4_loads_on_cpu_with_avx512_repack_disabled(tiny_dir, tiny_params):
    import bitsandbytes as bnb

    loaded = load_model(tiny_dir, quantization="nf4", dtype="bfloat16", device="cpu")
    assert loaded.quantization == "nf4"
    layers = [m for m in loaded.model.modules() if isinstance(m, bnb.nn.Linear4bit)]
    assert len(layers) == TINY_LAYERS * LINEAR_PER_LAYER
    assert all(m.support_avx512bf16_for_cpu is False for m in layers)
    assert all(m.weight.quant_state.quant_type == "nf4" for m in layers)
    assert loaded.n_params == tiny_params  # logical count, not packed 4-bit storage
    logits = _forward(loaded)
    assert torch.isfinite(logits.float()).all()
    # The no-grad eval forward above must not have repacked any weight into the inference layout.
    assert not any(getattr(m.weight.quant_state, "packing_format_for_cpu", False) for m in layers)


def test_nf4_gradients_survive_train_eval_train(tiny_dir):
    """The DESIGN.md §5 trap: an eval forward between two training steps must not lose gradients."""
    loaded = load_model(tiny_dir, quantization="nf4", device="cpu")
    model, ids = loaded.model, torch.tensor([[5, 17, 42, 99, 7]])
    emb = model.get_input_embeddings().weight
    emb.requires_grad_(True)

    def embedding_grad():
        model.train()
        emb.grad = None
        model(input_ids=ids, labels=ids).loss.backward()
        return emb.grad.detach().clone()

    before = embedding_grad()
    model.eval()
    with torch.no_grad():
        model(input_ids=ids)
    after = embedding_grad()
    assert before.abs().sum() > 0
    torch.testing.assert_close(after, before)


def test_broken_model_dir_gives_model_error_naming_it(tmp_path, tiny_dir):
    shutil.copy(tiny_dir / "config.json", tmp_path)
    (tmp_path / "model.safetensors").write_bytes(b"not a safetensors file at all")
    with pytest.raises(ModelError) as err:
        load_model(tmp_path, quantization="none")
    assert str(tmp_path) in str(err.value) and "could not load" in str(err.value)


def test_bad_choices_and_missing_cuda_are_model_errors(tiny_dir):
    with pytest.raises(ModelError, match="quantization"):
        load_model(tiny_dir, quantization="int3")
    with pytest.raises(ModelError, match="dtype"):
        load_model(tiny_dir, dtype="float8")
    if not torch.cuda.is_available():
        with pytest.raises(ModelError, match="no CUDA device"):
            load_model(tiny_dir, device="cuda")
    with pytest.raises(ModelError, match="kind must be one of text, image-text"):
        load_model(tiny_dir, kind="video")


# ----------------------------------------------------------------------------- resolution

def test_resolve_local_dir_and_home_expansion(tmp_path, monkeypatch, tiny_dir):
    cfg = make_config(tmp_path)
    assert resolve_model(str(tiny_dir), cfg) == tiny_dir.resolve()
    monkeypatch.setenv("HOME", str(tiny_dir.parent))
    assert resolve_model(f"~/{tiny_dir.name}", cfg) == tiny_dir.resolve()


def test_missing_model_ref_is_a_clear_error(tmp_path):
    cfg = make_config(tmp_path)
    with pytest.raises(ModelError) as err:
        resolve_model("./nope", cfg)
    msg = str(err.value)
    assert "'./nope'" in msg and "smollm2-135m-instruct" in msg and "hub id" in msg
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(ModelError, match="is a file"):
        resolve_model(str(tmp_path / "file.txt"), cfg)


@pytest.mark.parametrize("ref, expected", [
    ("HuggingFaceTB/SmolLM2-135M-Instruct", ("HuggingFaceTB/SmolLM2-135M-Instruct", None)),
    ("org/name@main", ("org/name", "main")),
    ("org/name@refs/pr/3", ("org/name", "refs/pr/3")),
    ("./nope", None), ("/abs/path", None), ("a/b/c", None), ("plain", None), ("~/x", None),
])
def test_parse_hub_id(ref, expected):
    assert parse_hub_id(ref) == expected


@pytest.fixture
def offline_hub(monkeypatch, tmp_path):
    """HF offline mode, an empty private HF cache, and a tripwire on every hub API call."""
    import huggingface_hub._snapshot_download as sd
    from huggingface_hub import constants

    cache = tmp_path / "hf-cache"
    cache.mkdir()
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))

    class NoNetwork:  # constructed by snapshot_download either way; any use of it is a network call
        def __init__(self, *a, **k):
            pass

        def __getattr__(self, name):
            raise AssertionError(f"HfApi.{name} was called in offline mode")

    monkeypatch.setattr(sd, "HfApi", NoNetwork)
    return cache


def test_offline_hub_id_not_cached_gives_clear_error(tmp_path, offline_hub):
    with pytest.raises(ModelError) as err:
        resolve_model("some-org/some-model@v1", make_config(tmp_path))
    msg = str(err.value)
    assert "some-org/some-model@v1" in msg and "not in the local Hugging Face cache" in msg
    assert "HF_HUB_OFFLINE" in msg and "smollm2-135m-instruct" in msg


def _fake_cached_repo(cache: Path, repo_id: str, files: dict[str, Path | bytes]) -> Path:
    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = cache / ("models--" + repo_id.replace("/", "--"))
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    snap = repo / "snapshots" / commit
    snap.mkdir(parents=True)
    for name, src in files.items():
        (snap / name).write_bytes(src.read_bytes() if isinstance(src, Path) else src)
    return snap


def test_offline_hub_id_in_cache_resolves_and_loads(tmp_path, offline_hub, tiny_dir):
    snap = _fake_cached_repo(offline_hub, "tiny-org/tiny", {p.name: p for p in tiny_dir.iterdir()})
    path = resolve_model("tiny-org/tiny", make_config(tmp_path))
    assert path == snap
    assert load_model(path, quantization="none").n_params > 0


def test_cached_hub_repo_without_safetensors_is_refused(tmp_path, offline_hub, tiny_dir):
    _fake_cached_repo(offline_hub, "old-org/pickled", {"config.json": tiny_dir / "config.json",
                                                       "pytorch_model.bin": b"junk"})
    with pytest.raises(ModelError) as err:
        resolve_model("old-org/pickled", make_config(tmp_path))
    msg = str(err.value)
    assert "old-org/pickled" in msg and "pytorch_model.bin" in msg and "refs/pr/N" in msg


# ----------------------------------------------------------------------------- threads

def test_choose_threads_rule(monkeypatch):
    monkeypatch.setattr(threads, "idle_cores", lambda: threads.usable_cores())
    monkeypatch.setattr(threads, "usable_cores", lambda: 2)
    assert threads.choose_threads(100_000, "auto") == 1
    assert threads.choose_threads(threads.SMALL_MODEL_PARAMS - 1, "auto") == 1
    assert threads.choose_threads(135_000_000, "auto") == 2
    monkeypatch.setattr(threads, "usable_cores", lambda: 64)
    assert threads.choose_threads(7_000_000_000, "auto") == threads.MAX_AUTO_THREADS
    assert threads.choose_threads(100_000, 3) == 3  # explicit wins, small or large
    assert threads.choose_threads(7_000_000_000, 1) == 1
    with pytest.raises(ValueError):
        threads.choose_threads(1, 0)


@pytest.mark.parametrize("load,expected", [(0.0, 4), (0.7, 4), (0.8, 3), (1.9, 2), (3.5, 1), (12.0, 1)])
def test_auto_leaves_out_cores_that_other_work_keeps_busy(monkeypatch, load, expected):
    monkeypatch.setattr(threads, "usable_cores", lambda: 4)
    monkeypatch.setattr(threads.os, "cpu_count", lambda: 4)
    monkeypatch.setattr(threads.os, "getloadavg", lambda: (load, 0.0, 0.0))
    assert threads.choose_threads(135_000_000, "auto") == expected
    assert threads.choose_threads(135_000_000, 4) == 4  # an explicit setting is never second-guessed
    monkeypatch.setattr(threads.os, "cpu_count", lambda: 64)  # a narrower affinity mask: load is not ours to judge
    assert threads.choose_threads(135_000_000, "auto") == 4


def test_usable_cores_is_positive():
    assert 1 <= threads.usable_cores() <= (__import__("os").cpu_count() or 1)


def test_apply_threads_sets_torch(restore_threads):
    target = 1 if torch.get_num_threads() != 1 else 2
    assert threads.apply_threads(target) == target
    assert torch.get_num_threads() == target


# ----------------------------------------------------------------------------- pool

def _counting_loads(monkeypatch) -> list:
    calls = []
    real = pool_mod.load_model

    def counted(path, **kw):
        calls.append((path, kw))
        return real(path, **kw)

    monkeypatch.setattr(pool_mod, "load_model", counted)
    return calls


def test_pool_shares_one_model_among_specialists(tmp_path, monkeypatch, tiny_dir, restore_threads):
    calls = _counting_loads(monkeypatch)
    models = ModelPool(make_config(tmp_path, "model.threads=auto"))
    a = Specialist(name="alpha", description="a", base_model=str(tiny_dir), quantization="none")
    b = Specialist(name="beta", description="b", base_model=str(tiny_dir), quantization="none")
    first, second = models.for_specialist(a), models.for_specialist(b)
    assert first is second
    assert len(calls) == 1 and models.loaded == [first]
    assert first.name == str(tiny_dir)
    assert torch.get_num_threads() == 1  # a tiny model runs on one thread under auto


def test_pool_keys_on_quantization_and_config_overrides(tmp_path, monkeypatch, tiny_dir):
    calls = _counting_loads(monkeypatch)
    models = ModelPool(make_config(tmp_path, "model.dtype=float32", "model.threads=1"))
    none = models.get(str(tiny_dir), "none")
    nf4 = models.get(str(tiny_dir), "nf4")
    assert none is not nf4 and (none.quantization, nf4.quantization) == ("none", "nf4")
    assert none.dtype == "float32" and len(calls) == 2

    overridden = ModelPool(make_config(tmp_path, "model.quantization=nf4", "model.threads=1"))
    spec = Specialist(name="gamma", description="g", base_model=str(tiny_dir), quantization="none")
    assert overridden.for_specialist(spec).quantization == "nf4"


def test_pool_loads_once_under_concurrency(tmp_path, monkeypatch, tiny_dir):
    calls = _counting_loads(monkeypatch)
    models = ModelPool(make_config(tmp_path, "model.threads=1"))
    start = threading.Barrier(4)

    def first_use(_):
        start.wait()
        return models.get(str(tiny_dir), "none")

    with ThreadPoolExecutor(4) as workers:
        results = list(workers.map(first_use, range(4)))  # re-raises any worker's exception
    assert all(r is results[0] for r in results)
    assert len(calls) == 1


def test_pool_missing_model_is_model_error(tmp_path):
    with pytest.raises(ModelError, match="no model named"):
        ModelPool(make_config(tmp_path)).get("./does-not-exist")


# ----------------------------------------------------------------------------- image-text models

@pytest.fixture(scope="module")
def tiny_vlm(tmp_path_factory, tiny_model_dir) -> Path:
    """A tiny random Idefics3 (SmolVLM's architecture) with its processor; the vision plugin builds it."""
    vision_testing = pytest.importorskip("aetherial_vision.testing")
    return vision_testing.build_tiny_vlm(tmp_path_factory.mktemp("tiny-vlm"), tiny_model_dir)


def test_an_image_text_model_loads_with_its_processor_in_the_chosen_dtype(tiny_vlm, tiny_dir, capfd):
    capfd.readouterr()
    loaded = load_model(tiny_vlm, quantization="none", dtype="float32", device="cpu", kind="image-text")
    assert loaded.kind == "image-text" and type(loaded.model).__name__ == "Idefics3ForConditionalGeneration"
    assert loaded.processor is not None and loaded.tokenizer is loaded.processor.tokenizer
    assert next(loaded.model.parameters()).dtype == torch.float32 and not loaded.model.training
    assert loaded.n_params == loaded.model.num_parameters() > 0
    assert capfd.readouterr().err == ""  # loading is as quiet as a text model's
    text = load_model(tiny_dir, quantization="none", dtype="float32", device="cpu")
    assert text.kind == "text" and text.processor is None


def test_the_pool_keeps_image_text_models_beside_text_ones(tmp_path, monkeypatch, tiny_vlm, tiny_dir):
    calls = _counting_loads(monkeypatch)
    models = ModelPool(make_config(tmp_path, "model.threads=1", "model.dtype=float32"))
    vlm = models.get(str(tiny_vlm), "none", kind="image-text")
    assert models.get(str(tiny_vlm), "none", kind="image-text") is vlm and vlm.kind == "image-text"
    text = models.get(str(tiny_dir), "none")
    assert text.kind == "text" and models.loaded == [vlm, text] and len(calls) == 2
    assert calls[0][1]["kind"] == "image-text" and calls[1][1]["kind"] == "text"


def test_an_image_text_model_in_pickle_form_is_refused_before_loading(tmp_path):
    (tmp_path / "config.json").write_text('{"model_type": "idefics3"}')
    (tmp_path / "pytorch_model.bin").write_bytes(b"never opened")
    with pytest.raises(ModelError, match="pickle"):
        load_model(tmp_path, kind="image-text")
