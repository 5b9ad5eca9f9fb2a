"""The vision plugin's own configuration keys (``plugins.vision.*`` in aeth's config).

=========================  ==========  ===========================================================
key                        default     meaning
=========================  ==========  ===========================================================
``backend``                ``auto``    ``auto``: the VLM when it loads, else OCR and the text model;
                                       ``vlm``: the VLM only (an error when it cannot load);
                                       ``ocr``: never load a VLM (OCR and the text model only)
``model``                  unset       the VLM: a hub id or a local directory; unset = the
                                       specialist's ``base_model`` (HuggingFaceTB/SmolVLM-256M-Instruct)
``text_model``             unset       the text model that answers questions about OCR'd text;
                                       unset = aeth's ``model.default``
``image_longest_edge``     ``1024``    images are given to the VLM at most this big (longest side,
                                       pixels); each 512-pixel tile costs SmolVLM 64 tokens
=========================  ==========  ===========================================================

In YAML they nest under ``plugins: vision:``; on the command line, ``-o plugins.vision.backend=ocr``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aeth.errors import ConfigError

BACKENDS = ("auto", "vlm", "ocr")
PREFIX = "plugins.vision"


def _value(config: Any, key: str) -> Any:
    # -o gives the flat key; a YAML file gives the plugin's whole subtree under "plugins.vision"
    flat = config.get(f"{PREFIX}.{key}")
    if flat is not None:
        return flat
    tree = config.get(PREFIX)
    return tree.get(key) if isinstance(tree, dict) else None


@dataclass(frozen=True)
class VisionSettings:
    """The ``plugins.vision.*`` keys, checked."""

    backend: str = "auto"
    model: str | None = None
    text_model: str | None = None
    image_longest_edge: int = 1024

    @classmethod
    def of(cls, app: Any) -> VisionSettings:
        """The settings of application ``app`` (read from its config once, then kept in ``app.state``)."""
        return app.state("aetherial-vision.settings", lambda: cls.from_config(app.config))

    @classmethod
    def from_config(cls, config: Any) -> VisionSettings:
        """Read and check the keys; every problem is reported together in one :class:`ConfigError`."""
        problems = []
        backend = str(_value(config, "backend") or "auto")
        if backend not in BACKENDS:
            problems.append(f"{PREFIX}.backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
        edge = _value(config, "image_longest_edge") or 1024
        if isinstance(edge, bool) or not isinstance(edge, int) or edge < 32:
            problems.append(f"{PREFIX}.image_longest_edge must be an integer >= 32, got {edge!r}")
        if problems:
            raise ConfigError(problems)
        model, text_model = _value(config, "model"), _value(config, "text_model")
        return cls(backend, str(model) if model else None, str(text_model) if text_model else None, edge)
