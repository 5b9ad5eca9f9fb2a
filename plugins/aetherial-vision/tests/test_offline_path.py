"""Without a VLM: real OCR (RapidOCR, PP-OCRv4), OCR + text model, and the error that says how to get a VLM."""

import pytest

from aeth import GenerationContext, Request, Sampling
from aeth.config import load_config
from aeth.errors import ModelError
from aetherial_vision.testing import render_text

GREEDY = Sampling(temperature=0.0, top_p=1.0, top_k=0, max_tokens=8, repetition_penalty=1.0, seed=0)
VLM_ID = "HuggingFaceTB/SmolVLM-256M-Instruct"


@pytest.fixture
def offline(aeth_home, monkeypatch):
    """The hub is unreachable by configuration (no network is ever tried), no VLM is cached."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(aeth_home / "hf"))
    return aeth_home


def _answer(overrides, prompt, images, sampling=GREEDY, app=None):
    from aeth import Aeth
    from aetherial_vision import plugin

    app = app or Aeth(load_config(overrides))
    context = GenerationContext(app, sampling)
    refs = tuple(i if isinstance(i, (bytes, str)) else str(i) for i in images)  # paths as text, data as it is
    chunks = list(plugin.generate(app.specialist("vision"), Request(prompt, images=refs), context))
    return "".join(chunks), context.stats


@pytest.fixture(scope="module")
def ocr():
    from aetherial_vision.ocr import OCR

    return OCR()


def test_ocr_reads_rendered_text_exactly(offline, tmp_path, ocr):
    from aeth.images import load_image

    image = render_text(tmp_path / "sign.png", "Gallery closes at 5:30 pm", size=30)
    assert ocr.text(load_image(str(image))) == "Gallery closes at 5:30 pm"
    lines = ocr.lines(load_image(str(image)))
    assert len(lines) == 1 and lines[0].score > 0.9
    x0, y0, x1, y1 = lines[0].box  # in the original image's pixels, not the enlarged copy's
    assert 0 <= x0 < x1 <= 600 and 0 <= y0 < y1 <= 80


def test_lines_come_back_in_reading_order(offline, tmp_path, ocr):
    from aeth.images import load_image

    image = render_text(tmp_path / "note.png", "Milk and eggs", "Call the plumber", "Pay the rent", size=28)
    assert ocr.text(load_image(str(image))) == "Milk and eggs\nCall the plumber\nPay the rent"


def test_a_picture_without_text_reads_as_empty(offline, tmp_path, ocr):
    from PIL import Image

    assert ocr.text(Image.new("RGB", (120, 90), (200, 40, 40))) == ""


def test_the_ocr_engine_is_one_per_application_with_its_threads(offline):
    from aeth import Aeth
    from aetherial_vision.ocr import ocr_for

    one, two = Aeth(load_config(["model.threads=2"])), Aeth(load_config([]))
    assert ocr_for(one) is ocr_for(one) and ocr_for(one) is not ocr_for(two)
    assert (ocr_for(one).threads, ocr_for(two).threads) == (2, 1)  # auto: one thread (see ocr.threads)


def test_without_a_vlm_a_transcription_is_answered_by_ocr(offline, tmp_path):
    image = render_text(tmp_path / "label.png", "Basil 20 g", "Best before 03 Oct", size=26)
    text, stats = _answer([], "Transcribe the text on this label.", [image])
    assert text == "Basil 20 g\nBest before 03 Oct"
    assert stats["path"] == "ocr" and stats["finish_reason"] == "stop" and stats["tokens_out"] == 7  # words


def test_several_images_are_read_and_labelled(offline, tmp_path):
    one = render_text(tmp_path / "a.png", "North gate", size=30)
    two = render_text(tmp_path / "b.png", "South gate", size=30)
    text, _ = _answer(["plugins.vision.backend=ocr"], "Read the text in these images.", [one, two])
    assert text == "Image 1:\nNorth gate\n\nImage 2:\nSouth gate"


def test_a_question_about_the_text_goes_to_the_text_model_with_the_ocr_text(offline, tmp_path, tiny_model_dir):
    from aeth import Aeth
    from aeth.generation import encode_chat
    from aetherial_vision.generator import READ_SYSTEM_PROMPT

    image = render_text(tmp_path / "notice.png", "Choir practice", "Thursdays 19:30", size=28)
    question = "When is choir practice?"
    app = Aeth(load_config([f"plugins.vision.text_model={tiny_model_dir}"]))
    text, stats = _answer([], question, [image], app=app)
    assert stats["path"] == "ocr+text" and stats["model"] == str(tiny_model_dir)
    assert stats["tokens_out"] >= 1 and stats["finish_reason"] in {"stop", "length"}
    # the text model was shown exactly the OCR'd text and the question, nothing else
    expected = [{"role": "system", "content": READ_SYSTEM_PROMPT},
                {"role": "user", "content": f"Text read from the image by OCR:\n\"\"\"\nChoir practice\nThursdays 19:30\n\"\"\"\n\n"
                                            f"Question: {question}"}]
    tokenizer = app.models.get(str(tiny_model_dir)).tokenizer
    assert stats["tokens_in"] == len(encode_chat(tokenizer, expected))


def test_a_request_without_images_is_answered_by_the_text_model(offline, tiny_model_dir):
    _, stats = _answer(["plugins.vision.backend=ocr", f"plugins.vision.text_model={tiny_model_dir}"],
                       "What can you do with images?", [])
    assert stats["path"] == "text" and stats["tokens_in"] > 0


@pytest.mark.parametrize("prompt", ["What colour is the triangle?", "Describe this image.", "Is there a dog in this photo?"])
def test_looking_without_a_vlm_fails_saying_how_to_get_one(offline, tmp_path, prompt):
    image = render_text(tmp_path / "x.png", "Exit", size=30)
    with pytest.raises(ModelError) as info:
        _answer([], prompt, [image])
    message = str(info.value)
    assert VLM_ID in message and "network connection" in message  # what to download once online
    assert "plugins.vision.model" in message  # or how to point at a local one
    assert "HF_HUB_OFFLINE" in message  # and why it failed
    assert "smollm2" not in message.lower()  # core's text-model hint would mislead here


def test_a_question_about_an_image_without_text_needs_a_vlm(offline, tmp_path):
    from PIL import Image

    blank = tmp_path / "blank.png"
    Image.new("RGB", (100, 100), "white").save(blank)
    with pytest.raises(ModelError, match="OCR found no readable text"):
        _answer([], "When does it open?", [blank])


def test_backend_ocr_never_tries_a_vlm_and_says_so(offline, tmp_path, tiny_vlm_dir):
    image = render_text(tmp_path / "x.png", "Exit", size=30)
    with pytest.raises(ModelError, match="backend is 'ocr'"):
        _answer(["plugins.vision.backend=ocr", f"plugins.vision.model={tiny_vlm_dir}"], "Describe this image.", [image])


def test_backend_vlm_refuses_to_fall_back(offline, tmp_path):
    image = render_text(tmp_path / "x.png", "Exit", size=30)
    with pytest.raises(ModelError, match=VLM_ID):
        _answer(["plugins.vision.backend=vlm"], "Transcribe this sign.", [image])


def test_a_local_directory_that_is_not_a_model_names_the_directory(offline, tmp_path):
    image = render_text(tmp_path / "x.png", "Exit", size=30)
    empty = tmp_path / "my-vlm"
    empty.mkdir()
    with pytest.raises(ModelError) as info:
        _answer([f"plugins.vision.model={empty}"], "Describe this image.", [image])
    assert str(empty) in str(info.value) and "safetensors" in str(info.value)


def test_bad_settings_are_reported_together(offline, tmp_path):
    from aeth.errors import ConfigError

    with pytest.raises(ConfigError) as info:
        _answer(["plugins.vision.backend=gpu", "plugins.vision.image_longest_edge=5"], "Read this.", [])
    assert "backend" in str(info.value) and "image_longest_edge" in str(info.value)


def test_images_given_as_bytes_or_base64_are_read_too(offline, tmp_path):
    import base64

    from aeth.images import to_data_uri

    data = render_text(tmp_path / "x.png", "Mind the gap", size=30).read_bytes()
    for ref in (data, to_data_uri(data), base64.b64encode(data).decode()):
        answer, _ = _answer(["plugins.vision.backend=ocr"], "Read the sign.", [ref])
        assert answer == "Mind the gap", type(ref)


def test_settings_nest_in_aeth_yaml(offline):
    from pathlib import Path

    from aetherial_vision.settings import VisionSettings

    Path("aeth.yaml").write_text("plugins:\n  vision:\n    backend: ocr\n    image_longest_edge: 512\n")  # cwd is fresh
    settings = VisionSettings.from_config(load_config())
    assert (settings.backend, settings.image_longest_edge, settings.model) == ("ocr", 512, None)
    assert VisionSettings.from_config(load_config(["plugins.vision.backend=vlm"])).backend == "vlm"  # -o wins
