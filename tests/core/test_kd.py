"""Logit distillation: the divergences, the vocabulary check, KD in the training loop, `aeth distill train`."""

import json
import math

import pytest
import torch

from aeth.distill.kd import KDSettings, check_vocabularies, divergence, mixed_loss, token_divergence, topk_of
from aeth.errors import AethError
from aeth.models.adapters import AdapterStore
from aeth.models.loading import load_model
from aeth.training.loop import TrainPlan, train

peft = pytest.importorskip("peft")

RECORDS = [{"messages": [{"role": "user", "content": f"What is {a} plus {b}?"},
                         {"role": "assistant", "content": f"{a} plus {b} is {a + b}."}]}
           for a in range(1, 9) for b in range(1, 6)]


# ---- the divergences against their formulas -------------------------------------------------------


def direct(p, q, kind, beta=0.5):
    """The textbook formulas on probability vectors, in float64, one position at a time."""
    p, q = p.double(), q.double()
    kl = lambda a, b: (a * (a / b).log()).sum(-1)  # noqa: E731
    if kind == "fkl":
        return kl(p, q)
    if kind == "rkl":
        return kl(q, p)
    m = beta * p + (1 - beta) * q
    return beta * kl(p, m) + (1 - beta) * kl(q, m)


@pytest.mark.parametrize("kind", ["fkl", "rkl", "jsd"])
@pytest.mark.parametrize("temperature", [1.0, 2.5])
def test_divergences_match_their_formulas(kind, temperature):
    gen = torch.Generator().manual_seed(3)
    student, teacher = torch.randn(5, 11, generator=gen) * 3, torch.randn(5, 11, generator=gen) * 3
    beta = 0.3
    got = token_divergence(student, teacher, KDSettings(kind, temperature=temperature, beta=beta))
    p, q = (teacher / temperature).softmax(-1), (student / temperature).softmax(-1)
    want = direct(p, q, kind, beta) * temperature ** 2
    assert got.shape == (5,)
    assert torch.allclose(got.double(), want, rtol=1e-5, atol=1e-7)
    assert (got > 0).all()
    # identical distributions: exactly nothing to learn
    assert torch.allclose(token_divergence(student, student.clone(), KDSettings(kind, temperature=temperature)),
                          torch.zeros(5), atol=1e-6)


def test_jsd_with_half_beta_is_symmetric_and_bounded():
    gen = torch.Generator().manual_seed(4)
    a, b = torch.randn(4, 9, generator=gen) * 5, torch.randn(4, 9, generator=gen) * 5
    settings = KDSettings("jsd", beta=0.5)
    assert torch.allclose(token_divergence(a, b, settings), token_divergence(b, a, settings), atol=1e-6)
    assert (token_divergence(a, b, settings) <= math.log(2) + 1e-6).all()


@pytest.mark.parametrize("kind", ["fkl", "rkl", "jsd"])
def test_extreme_logits_give_finite_values_and_gradients(kind):
    student = torch.tensor([[80.0, -80.0, 0.0, -1e4], [0.0, 0.0, 0.0, 0.0]], requires_grad=True)
    teacher = torch.tensor([[-90.0, 90.0, float("-inf"), 0.0], [1e4, -1e4, 0.0, float("-inf")]])
    loss = token_divergence(student, teacher, KDSettings(kind, temperature=0.5)).sum()
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(student.grad).all() and student.grad.abs().sum() > 0


def test_mixed_loss_weights_kd_against_sft():
    kd, sft = torch.tensor(2.0), torch.tensor(6.0)
    assert mixed_loss(kd, sft, 0.25).item() == pytest.approx(0.25 * 2 + 0.75 * 6)
    assert mixed_loss(kd, sft, 1.0).item() == 2.0 and mixed_loss(kd, sft, 0.0).item() == 6.0


def test_settings_are_checked():
    for bad in ({"kind": "kl"}, {"alpha": 1.5}, {"temperature": 0.0}, {"beta": 0.0}, {"beta": 1.0}):
        with pytest.raises(AethError):
            KDSettings(**bad)


def test_topk_keeps_the_rest_as_one_outcome():
    gen = torch.Generator().manual_seed(5)
    student, teacher = torch.randn(6, 30, generator=gen) * 2, torch.randn(6, 30, generator=gen) * 2
    for kind in ("fkl", "rkl", "jsd"):
        settings = KDSettings(kind, temperature=1.5)
        full = token_divergence(student, teacher, settings)
        top = topk_of(teacher, 8, 1.5)
        assert top.ids.shape == (6, 8) and top.logprobs.shape == (6, 9)
        assert torch.allclose(top.logprobs.exp().sum(-1), torch.ones(6), atol=1e-5)  # a whole distribution
        coarse = token_divergence(student, top, settings)
        # a divergence of the coarsened distributions never exceeds the true one (data processing)
        assert (coarse <= full + 1e-5).all() and (coarse > 0).all()
        # with every token kept the cache is exact
        assert torch.allclose(token_divergence(student, topk_of(teacher, 30, 1.5), settings), full, atol=1e-5)
        assert torch.allclose(token_divergence(teacher, topk_of(teacher, 8, 1.5), settings), torch.zeros(6), atol=1e-5)


def test_divergence_takes_log_probabilities_on_any_support():
    p = torch.tensor([0.5, 0.5, 0.0]).log()
    q = torch.tensor([0.25, 0.25, 0.5]).log()
    assert divergence(p, q, "fkl").item() == pytest.approx(math.log(2))
    assert math.isfinite(divergence(p, q, "rkl").item())  # q has mass where p has none: large, not inf/nan


# ---- vocabularies ------------------------------------------------------------------------------


def swapped_tokenizer_model(tiny_model_dir, directory):
    """A copy of the tiny model whose tokenizer gives two tokens each other's ids (same size)."""
    import shutil

    shutil.copytree(tiny_model_dir, directory)
    data = json.loads((directory / "tokenizer.json").read_text())
    vocab = data["model"]["vocab"]
    by_id = {i: token for token, i in vocab.items()}
    a, b = by_id[300], by_id[350]
    vocab[a], vocab[b] = vocab[b], vocab[a]
    (directory / "tokenizer.json").write_text(json.dumps(data))
    return directory, min(vocab[a], vocab[b])


def test_a_different_vocabulary_is_refused_naming_both_models(tiny_model_dir, tmp_path):
    from transformers import AutoTokenizer

    other, first = swapped_tokenizer_model(tiny_model_dir, tmp_path / "other")
    student, teacher = AutoTokenizer.from_pretrained(tiny_model_dir), AutoTokenizer.from_pretrained(other)
    check_vocabularies(student, AutoTokenizer.from_pretrained(tiny_model_dir), "s", "t")  # the same: fine
    with pytest.raises(AethError) as e:
        check_vocabularies(student, teacher, "student-model", "teacher-model", specialist="adder")
    message = str(e.value)
    assert "'teacher-model'" in message and "'student-model'" in message
    assert f"token id {first}" in message and "aeth distill collect adder --teacher teacher-model" in message
    bigger = AutoTokenizer.from_pretrained(tiny_model_dir)
    bigger.add_tokens(["<extra>"])  # the same ids plus one: the extra id is the first difference
    with pytest.raises(AethError, match=r"421 vs 420 tokens; the first difference is token id 420: no token for the student"):
        check_vocabularies(student, bigger, "s", "t")


# ---- KD in the training loop -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def teacher_dir(tiny_model_dir, tmp_path_factory):
    """A second tiny model (another seed, the same tokenizer) that speaks through the student's output
    layer scaled 10x: its distributions are peaked and far from the student's near-uniform ones, yet
    within what a LoRA on the student's layers can reach (a 32-wide model whose own output layer spans
    another subspace could barely move toward it)."""
    from safetensors.torch import load_file, save_file

    from aeth.testing import build_tiny_model

    directory = build_tiny_model(tmp_path_factory.mktemp("teacher"), seed=7)
    weights = load_file(directory / "model.safetensors")
    weights["lm_head.weight"] = load_file(tiny_model_dir / "model.safetensors")["lm_head.weight"] * 10
    save_file(weights, directory / "model.safetensors", metadata={"format": "pt"})
    return directory


def load(directory):
    return load_model(directory, quantization="none", dtype="float32", device="cpu")


def spec():
    from aeth import DatasetRecipe, Specialist

    return Specialist(name="adder", description="adds", system_prompt="Be brief.",
                      recipe=DatasetRecipe("adder-seed", "1", lambda: RECORDS))


def distil(student_dir, teacher_dir, run_dir, home=None, **kw):
    kw.setdefault("lr", 1e-2)
    plan = TrainPlan(base_model=str(student_dir), batch_size=4, seq_len=64, eval_every=5, save_every=4, seed=1,
                     run_dir=run_dir, teacher=str(teacher_dir), **kw)
    s = spec()
    train_set, val_set = s.recipe.split()
    store = AdapterStore(home) if home else None
    return train(s, plan, train_set, val_set, load(student_dir), store, {"base_model": str(student_dir)},
                 progress=False, teacher=load(teacher_dir))


def metrics(run_dir):
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def test_distillation_moves_the_student_toward_the_teacher(tiny_model_dir, teacher_dir, tmp_path):
    result = distil(tiny_model_dir, teacher_dir, tmp_path / "run", home=tmp_path / "home", max_steps=15,
                    kd_alpha=0.9, kd_loss="fkl", kd_temperature=2.0, kd_cache="off")
    assert result.steps == 15 and not result.interrupted
    # measured 18 % lower after 15 steps at T=1 (and 0.7 % higher when the same run learns the answers alone)
    assert result.val_kd_loss < 0.9 * result.first_val_kd_loss, (result.first_val_kd_loss, result.val_kd_loss)
    sft_only = distil(tiny_model_dir, teacher_dir, tmp_path / "sft", max_steps=15, kd_alpha=0.0, kd_loss="fkl",
                      kd_temperature=2.0, kd_cache="off")
    assert sft_only.first_val_kd_loss == result.first_val_kd_loss
    assert result.val_kd_loss < sft_only.val_kd_loss - 0.05 * result.first_val_kd_loss
    assert [m["step"] for m in metrics(tmp_path / "run") if "val_kd_loss" in m] == [5, 10, 15]
    manifest = result.version.manifest
    assert manifest["distillation"]["teacher"] == str(teacher_dir)
    assert manifest["distillation"]["loss"] == "fkl" and manifest["distillation"]["alpha"] == 0.9
    assert manifest["distillation"]["temperature"] == 2.0 and manifest["distillation"]["teacher_logits"]["cached"] is False
    assert manifest["metrics"]["val_kd_loss"] == result.val_kd_loss
    assert manifest["hyperparameters"]["teacher"] == str(teacher_dir)
    assert (result.version.path / "adapter_model.safetensors").is_file()


def test_cached_topk_with_every_token_equals_the_live_teacher(tiny_model_dir, teacher_dir, tmp_path):
    """The cache's bookkeeping (which stored row is which learned position) is exactly right: keeping
    all 420 tokens, a cached loss equals the live one; keeping 8 it is a little lower."""
    from aeth.training import objective
    from aeth.training.data import encode_records

    student, teacher = load(tiny_model_dir), load(teacher_dir)
    examples = encode_records(student.tokenizer, RECORDS[:6], "Be brief.", 64)
    examples[1] = type(examples[1])(examples[1].input_ids[:-4], examples[1].labels[:-4])  # ragged rows: padding
    pad = student.tokenizer.pad_token_id
    losses = {}
    for cache, k in (("off", 64), ("on", 420), ("on", 8)):
        plan = TrainPlan(base_model="s", teacher="t", kd_loss="jsd", kd_alpha=1.0, kd_temperature=1.5, kd_cache=cache,
                         kd_top_k=k, run_dir=tmp_path / f"{cache}{k}")
        kd = objective.loop_teacher(plan, teacher, student, pad, plan.run_dir, passes=1.0)
        assert (kd.cache is not None) == (cache == "on")
        losses[cache, k] = [objective.token_loss(student.model, examples, pad, 1, True, kd).item() for _ in range(2)]
        if kd.cache is not None:
            assert kd.cache.writes == 6 and kd.cache.reads == 6  # the second pass read every example back
    assert losses["on", 420] == pytest.approx(losses["off", 64], rel=1e-5)
    assert losses["on", 8][0] == pytest.approx(losses["on", 8][1], rel=1e-6)
    assert 0 < losses["on", 8][0] < losses["off", 64][0]


def test_interrupted_distillation_resumes_onto_the_same_curve(tiny_model_dir, teacher_dir, tmp_path, monkeypatch):
    """With the teacher cache on and a second epoch (reads), a Ctrl-C mid-run and --resume give the
    uninterrupted losses step by step."""
    whole = tmp_path / "whole"
    distil(tiny_model_dir, teacher_dir, whole, max_steps=12, kd_cache="on", kd_loss="rkl")
    from aeth.training import objective

    real, calls = objective.token_loss, {"n": 0}

    def interrupting(*args):
        calls["n"] += 1
        if calls["n"] == 8:
            raise KeyboardInterrupt
        return real(*args)

    monkeypatch.setattr(objective, "token_loss", interrupting)
    parts = tmp_path / "parts"
    first = distil(tiny_model_dir, teacher_dir, parts, max_steps=12, kd_cache="on", kd_loss="rkl")
    assert first.interrupted and 0 < first.steps < 12
    monkeypatch.setattr(objective, "token_loss", real)
    second = distil(tiny_model_dir, teacher_dir, parts, max_steps=12, kd_cache="on", kd_loss="rkl", resume=True)
    assert second.steps == 12 and not second.interrupted
    assert [m["loss"] for m in metrics(parts)] == pytest.approx([m["loss"] for m in metrics(whole)], abs=1e-5)
    assert second.first_val_kd_loss == first.first_val_kd_loss  # carried through the checkpoint
    assert second.val_kd_loss == pytest.approx(metrics(whole)[-1]["val_kd_loss"], abs=1e-5)
    cached = {f.name for f in (parts / "teacher-logits").glob("*.safetensors")}
    assert cached == {f.name for f in (whole / "teacher-logits").glob("*.safetensors")} and len(cached) > 30


# ---- aeth distill train -------------------------------------------------------------------------


def register(register_plugin, tiny_model_dir, teachers):
    from dataclasses import replace

    from aeth import hookimpl

    class Plugin:
        @hookimpl
        def register_specialists(self, register):
            register(replace(spec(), base_model=str(tiny_model_dir)))

        @hookimpl
        def register_teachers(self, register):
            for name, teacher in teachers.items():
                register(name, teacher)

    register_plugin(Plugin(), "kd-plugin")


class ApiTeacher:
    """A teacher that only answers in text (as an OpenAI or Anthropic teacher does)."""

    name, model = "api", "gpt-test"

    def complete(self, messages, *, max_tokens, temperature, timeout):
        raise AssertionError("never asked")


class Local:
    """A registered local teacher: aeth loads its ``model_name``."""

    def __init__(self, model_name):
        self.name, self.model_name, self.model = "tiny-teacher", model_name, model_name


def test_distill_train_command(aeth_home, register_plugin, tiny_model_dir, teacher_dir, tmp_path):
    from click.testing import CliRunner

    from aeth.cli import cli

    register(register_plugin, tiny_model_dir, {"api": ApiTeacher(), "tiny-teacher": Local(str(teacher_dir))})
    runner = CliRunner()
    common = ["-o", "model.dtype=float32", "distill", "train", "adder", "--max-steps", "4", "--batch-size", "4",
              "--seq-len", "64", "--lr", "1e-2", "--eval-every", "2"]
    out = runner.invoke(cli, [*common, "--teacher", "tiny-teacher", "--loss", "jsd", "--jsd-beta", "0.3",
                              "--alpha", "0.8", "--kd-temperature", "2"])
    assert out.exit_code == 0, out.output
    assert "validation KD loss" in out.output and "stored adapter v0001" in out.output
    assert "no eval suite to judge it by" in out.output  # through the same promotion gate as aeth train
    manifest = AdapterStore(aeth_home).get("adder", "v0001").manifest
    assert manifest["distillation"] == {**manifest["distillation"], "teacher": str(teacher_dir), "teacher_name": "tiny-teacher",
                                        "loss": "jsd", "jsd_beta": 0.3, "alpha": 0.8, "temperature": 2.0}
    assert manifest["teacher"]["name"] == "tiny-teacher" and manifest["teacher"]["hash"]
    plan_yaml = next((aeth_home / "runs" / "adder").glob("*/plan.yaml")).read_text()
    assert plan_yaml.startswith("# aeth distill train adder --base ") and "--teacher tiny-teacher" in plan_yaml
    # an API teacher gives text, not distributions
    api = runner.invoke(cli, [*common, "--teacher", "api"])
    assert api.exit_code == 1
    assert ("logit distillation needs the teacher's token distributions; API teachers give text: use aeth distill collect"
            in api.output)
    # a specialist teacher answers in text too (its adapter over its base)
    spec = runner.invoke(cli, [*common, "--teacher", "specialist:adder"])
    assert spec.exit_code == 1 and "aeth distill collect adder --teacher specialist:adder" in spec.output
    # a model with another vocabulary, named by its directory
    other, first = swapped_tokenizer_model(tiny_model_dir, tmp_path / "other")
    bad = runner.invoke(cli, [*common, "--teacher", str(other)])
    assert bad.exit_code == 1 and "do not share a vocabulary" in bad.output and f"token id {first}" in bad.output
    assert "aeth distill collect adder" in bad.output
    missing = runner.invoke(cli, [*common])
    assert missing.exit_code == 1 and "--teacher NAME is required" in missing.output
    assert len(AdapterStore(aeth_home).versions("adder")) == 1  # the refusals trained nothing
