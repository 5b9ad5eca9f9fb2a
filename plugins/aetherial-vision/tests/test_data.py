"""The bundled data: the seed set is exactly what synth builds, correct, small, and free of benchmark items."""

import hashlib
import json
from pathlib import Path

import pytest

from aeth.datasets import package_file
from aeth.evals import find_overlaps
from aetherial_vision import evals, seed_records, synth
from aetherial_vision.recipe import build_recipe

DATA = package_file("aetherial_vision", "data")


@pytest.fixture(scope="module")
def built():
    return seed_records.build_seed()


def _shipped() -> list[dict]:
    return [json.loads(line) for line in (DATA / "seed.jsonl").read_text(encoding="utf-8").splitlines()]


def test_the_seed_file_is_what_the_generator_builds(built):
    assert seed_records.build_seed() == built  # deterministic
    assert _shipped() == seed_records.records(built)
    assert seed_records.build_seed(seed=1) != built


def test_the_shipped_images_are_what_the_generator_draws(built):
    from io import BytesIO

    import numpy as np
    from PIL import Image

    scenes = {name: scene for name, scene, _ in built}
    assert {p.stem for p in (DATA / "images").glob("*.png")} == set(scenes)  # none missing, none stray
    for name, scene in scenes.items():
        shipped = np.asarray(Image.open(DATA / "images" / f"{name}.png").convert("RGB"), dtype=np.int16)
        drawn = np.asarray(Image.open(BytesIO(synth.png_bytes(synth.render(scene)))).convert("RGB"), dtype=np.int16)
        assert shipped.shape == drawn.shape, name
        if isinstance(scene, (synth.TextScene, synth.BarChart)):
            # another Pillow / FreeType may anti-alias glyph edges differently; the text stays the same
            assert np.abs(shipped - drawn).mean() < 3, name
        else:
            assert (shipped == drawn).all(), name


def test_the_recipe_keeps_images_as_absolute_paths():
    records = build_recipe().records()
    assert len(records) >= 200
    for record in records:
        assert record["images"], record
        assert all(Path(p).is_absolute() and Path(p).is_file() for p in record["images"])
    train, val = build_recipe().split()
    assert train and val and all("images" in r for r in train + val)


def test_the_data_is_small():
    size = sum(p.stat().st_size for p in Path(DATA).rglob("*") if p.is_file())
    assert size < 1_000_000, f"data files take {size} bytes"


def test_the_transcriptions_match_what_ocr_reads(built):
    from aeth.images import load_image
    from aetherial_vision.ocr import OCR
    from aetherial_vision.scoring import cer

    transcriptions = [(name, m[1]["content"]) for name, scene, m in built
                      if isinstance(scene, synth.TextScene) and m[1]["content"] == "\n".join(scene.lines)]
    assert len(transcriptions) >= 30
    sample = transcriptions[::5]
    ocr = OCR()
    rates = [cer(ocr.text(load_image(str(DATA / "images" / f"{name}.png"))), answer) for name, answer in sample]
    assert sum(rates) / len(rates) < 0.05, list(zip(sample, rates, strict=True))


def test_routing_prompts_are_plenty_and_apart_from_the_seed():
    from aetherial_vision.specialist import routing_examples, routing_heldout

    examples, heldout = routing_examples(), routing_heldout()
    assert len(examples) >= 45 and len(heldout) >= 25
    assert not set(examples) & set(heldout)
    firsts = {r["messages"][0]["content"] for r in _shipped()}
    assert not firsts & (set(examples) | set(heldout))


# ---- contamination ------------------------------------------------------------------------


def _image_word(path: str) -> str:
    """A word naming an image by its pixels (so re-encoding a PNG does not hide it)."""
    from PIL import Image

    with Image.open(path) as im:
        rgb = im.convert("RGB")
        return "img" + hashlib.sha256(f"{rgb.size}".encode() + rgb.tobytes()).hexdigest()[:20]


def _pair_texts(records) -> list[str]:
    """Each record as "<image word> <user turn>" pairs, the form the benchmark items take."""
    out = []
    for r in records:
        words = [_image_word(p) for p in r.get("images", [])]
        out.append("\n".join(f"{w} {m['content']}" for w in words for m in r["messages"] if m["role"] == "user"))
    return out


def _easy_vqa_items() -> list[str]:
    return [f"{_image_word(str(evals.easy_vqa_image(i)))} {q}" for q, _, i in evals.easy_vqa_questions("test")]


def test_no_easy_vqa_test_question_and_image_pair_is_in_the_training_data():
    records = build_recipe().records()
    items = _easy_vqa_items()
    assert len(items) == 9673
    assert find_overlaps(_pair_texts(records), items, n=13) == []
    # the check can fail: one leaked test pair is found
    q, a, i = evals.easy_vqa_questions("test")[123]
    leaked = {"messages": [{"role": "user", "content": q}, {"role": "assistant", "content": a}],
              "images": [str(evals.easy_vqa_image(i))]}
    found = find_overlaps(_pair_texts(records + [leaked]), items, n=13)
    assert [f.train for f in found] == [len(records)]


def test_no_training_image_is_an_easy_vqa_test_image():
    train_images = {_image_word(p) for r in build_recipe().records() for p in r["images"]}
    test_images = {_image_word(str(evals.easy_vqa_image(i))) for i in {i for _, _, i in evals.easy_vqa_questions("test")}}
    assert len(test_images) > 900 and not train_images & test_images


def test_no_ocr_eval_phrase_is_in_the_training_data():
    from aeth.evals import record_text

    texts = [record_text(r) for r in build_recipe().records()]
    assert find_overlaps(texts, evals.OCR_PHRASES, n=13) == []
    assert find_overlaps(texts + ["Note: Gate B closes 20 minutes before departure."], evals.OCR_PHRASES, n=13)
