"""Fixtures of the vision plugin's tests: a tiny random VLM, rendered text images, a clean VLM cache."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def tiny_vlm_dir(tiny_model_dir: Path) -> Path:
    """A directory holding a tiny random Idefics3 VLM and its processor (safetensors)."""
    from aetherial_vision.testing import tiny_vlm_beside

    return tiny_vlm_beside(tiny_model_dir)


@pytest.fixture(autouse=True)
def _fresh_vlm_cache():
    # a VLM that failed to load is remembered per process; no test may inherit another's
    from aetherial_vision import vlm

    vlm.clear()
    yield
    vlm.clear()

