"""Fixtures of the vision plugin's tests: a tiny random VLM built once per session."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def tiny_vlm_dir(tiny_model_dir: Path) -> Path:
    """A directory holding a tiny random Idefics3 VLM and its processor (safetensors)."""
    from aetherial_vision.testing import tiny_vlm_beside

    return tiny_vlm_beside(tiny_model_dir)
