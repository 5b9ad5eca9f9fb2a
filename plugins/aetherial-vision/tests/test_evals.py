"""The eval suite: easy-VQA's test split read from its package, OCR images rendered at run time."""

import hashlib
from dataclasses import replace

import pytest

from aeth.config import load_config
from aeth.errors import ModelError
from aetherial_vision import evals


def test_vqa_cases_are_a_fixed_subset_of_the_test_split():
    cases = evals.vqa_cases()
    assert len(cases) == evals.VQA_CASES == len({c.id for c in cases})
    assert cases == evals.vqa_cases()
    answers = set((evals.easy_vqa_dir() / "answers.txt").read_text().split())
    assert len(answers) == 13 and {c.reference for c in cases} <= answers
    assert {c.reference for c in cases} >= {"yes", "no", "circle"}  # a spread of question types
    for case in cases:
        (image,) = case.images
        assert "/test/images/" in image.replace("\\", "/") and case.group == "easy-vqa"
    test = evals.easy_vqa_questions("test")
    keys = sorted(hashlib.sha256(f"{i}:{q}".encode()).hexdigest() for q, _, i in test)
    assert [c.id.split("-")[-1] for c in cases[:5]] == [k[:8] for k in keys[:5]]
    assert cases[0].prompt.endswith("Answer with a single word.") and cases[0].prompt[0].isupper()


def test_ocr_cases_are_rendered_once_under_aeth_home(aeth_home):
    cases = evals.ocr_cases(aeth_home)
    assert [c.reference for c in cases] == list(evals.OCR_PHRASES)
    paths = [c.images[0] for c in cases]
    assert all(p.startswith(str(aeth_home)) for p in paths)
    from pathlib import Path

    stamps = [Path(p).stat().st_mtime_ns for p in paths]
    assert [Path(c.images[0]).stat().st_mtime_ns for c in evals.ocr_cases(aeth_home)] == stamps  # kept, not redrawn
    assert len({evals.ocr_scene(i).lines for i in range(len(cases))}) == len(cases)
    assert any(len(evals.ocr_scene(i).lines) == 2 for i in range(len(cases)))  # some wrap onto two lines


def test_the_suite_and_its_round_robin_limit(aeth_home):
    from aeth.evals import limited

    suite = evals.build_suite(aeth_home)
    cases = list(suite.cases())
    assert len(cases) == evals.VQA_CASES + len(evals.OCR_PHRASES)
    first = list(limited(suite, 20).cases())
    assert [c.group for c in first].count("easy-vqa") == 10 and [c.group for c in first].count("ocr") == 10
    vqa, ocr = cases[0], cases[-1]
    assert suite.score(vqa, vqa.reference.capitalize() + ".") == 1.0 and suite.score(vqa, "purple") == 0.0
    assert suite.score(ocr, ocr.reference) == 1.0 and suite.score(ocr, "") == 0.0
    assert "MIT" in suite.source and "CC0" in suite.source


@pytest.fixture
def vision_offline(aeth_home, monkeypatch):
    from aeth import Aeth

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(aeth_home / "hf"))
    app = Aeth(load_config(["plugins.vision.backend=auto"]))
    return app, app.specialist("vision")


def test_the_ocr_benchmark_runs_for_real_without_a_vlm(vision_offline):
    from aeth.evals import run_evaluation, specialist_model

    app, spec = vision_offline
    ocr_only = replace(spec, suite=replace(spec.suite, cases=lambda: evals.ocr_cases(app.config.home)))
    report = run_evaluation(app, ocr_only, specialist_model(app, ocr_only, max_tokens=48))
    assert report.n == len(evals.OCR_PHRASES)
    # PP-OCRv4 reads Pillow-rendered text almost perfectly (measured 0.99 here); a broken
    # pipeline (wrong channel order, lost lines, no upscaling) drops far below this
    assert report.score >= 0.95, [(c.id, c.answers[0]) for c in report.cases if c.score < 1]


def test_the_vqa_benchmark_without_a_vlm_says_how_to_get_one(vision_offline):
    from aeth.evals import run_evaluation, specialist_model

    app, spec = vision_offline
    with pytest.raises(ModelError, match="SmolVLM-256M-Instruct"):
        run_evaluation(app, spec, specialist_model(app, spec), limit=1)


def test_each_application_renders_the_ocr_images_under_its_own_home(aeth_home, tmp_path):
    from aeth import Aeth

    homes = [tmp_path / "one", tmp_path / "two"]
    for home in homes:
        suite = Aeth(load_config([f"home={home}"])).specialist("vision").suite
        ocr = [c for c in suite.cases() if c.group == "ocr"]
        assert len(ocr) == len(evals.OCR_PHRASES)
        assert all(c.images[0].startswith(str(home / "cache" / "vision-eval")) for c in ocr)
    assert not (aeth_home / "cache").exists()  # nothing under the environment's home
