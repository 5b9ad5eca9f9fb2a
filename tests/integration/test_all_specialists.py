"""Every specialist in plugins/ together: registration without warnings, and held-out routing accuracy.

The README's test command installs all of them; a specialist package that is not installed is
skipped here (each is also tested alone by `nox -s tests_plugins`).
"""

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

AETH = str(Path(sys.executable).with_name("aeth"))
SPECIALISTS = ["coding", "writing", "reasoning", "ecommerce", "elearning", "vision"]
INSTALLED = [s for s in SPECIALISTS if importlib.util.find_spec(f"aetherial_{s}") is not None]
#: Regression floors for the router on prompts it never saw (measured values are in docs/evals.md).
MIN_ACCURACY = 0.85
MIN_RECALL = 0.6


def aeth(home, *args):
    env = {k: v for k, v in os.environ.items() if not k.startswith("AETH_")}
    env["AETH_HOME"] = str(home)
    return subprocess.run([AETH, *args], capture_output=True, text=True, env=env, stdin=subprocess.DEVNULL, timeout=600)


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    return tmp_path_factory.mktemp("aeth-home")


def test_every_installed_specialist_registers_cleanly(home):
    if not INSTALLED:
        pytest.skip("no specialist package installed")
    out = aeth(home, "specialists", "--json")
    assert out.returncode == 0 and "warning" not in out.stderr, out.stderr
    listed = {s["name"]: s for s in json.loads(out.stdout)}
    assert set(INSTALLED) <= set(listed)
    for name in INSTALLED:
        assert listed[name]["plugin"] == f"aetherial-{name}"  # a plugin is its distribution
        assert listed[name]["routing_examples"] >= 40 and listed[name]["routing_heldout"] >= 20
        assert listed[name]["suite"]


def test_held_out_routing_accuracy(home):
    if len(INSTALLED) < 2:
        pytest.skip("routing accuracy needs several specialists installed")
    out = aeth(home, "route", "--evaluate", "--json")
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert report["total"] >= 20 * len(INSTALLED)
    assert report["accuracy"] >= MIN_ACCURACY, report["mistakes"]
    for name, row in report["confusion"].items():
        assert row.get(name, 0) / sum(row.values()) >= MIN_RECALL, (name, row)
