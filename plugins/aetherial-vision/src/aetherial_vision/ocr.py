"""Offline OCR with RapidOCR: PP-OCRv4 detection and recognition run by onnxruntime.

The ONNX weights ship inside the PyPI package ``rapidocr-onnxruntime`` (Apache-2.0), so reading
text needs no network and no model download. An :class:`OCR` builds its engine on first use and
reuses it (building takes 0.2-0.8 s; reading a sign-sized image about 0.1 s on one CPU thread);
:func:`ocr_for` keeps one per application, with threads from that application's config.

Two settings differ from RapidOCR's defaults, both measured on rendered text:

- detection limits the image's *longest* side to 960 px (the default scales the *shortest* side
  up to 736 px, which turns a 600 x 80 px sign into 5520 x 736 and takes 2-5 s instead of ~0.1 s);
- images whose longest side is under 1000 px are first enlarged 2x with a Lanczos filter: PP-OCRv4
  reads small type (16-24 px) far better then (drops fewer spaces between words).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

from aeth.errors import AethError

DISTRIBUTION = "rapidocr-onnxruntime==1.4.4"
UPSCALE_BELOW = 1000  # px, longest side


class OCRUnavailable(AethError):
    """The OCR engine cannot run here (its package is missing); the message says how to fix it."""


@dataclass(frozen=True)
class TextLine:
    """One line of text found in an image: the text, its box (x0, y0, x1, y1) and confidence."""

    text: str
    box: tuple[float, float, float, float]
    score: float


def threads(config: Any) -> int:
    """onnxruntime threads for OCR: ``model.threads`` of ``config`` when it is a number, else 1.

    One thread, because OCR'ing a sign or a receipt is a few small convolutions: on this project's
    2-core machine, 1 thread read the OCR eval's images in 0.11 s each (median; 0.24 s while other
    work kept the cores busy), 2 threads in 0.30 s (0.63 s): the second thread waits for a core
    more than it works, as torch's do (see aeth.models.threads).
    """
    setting = config["model.threads"]
    return setting if isinstance(setting, int) and not isinstance(setting, bool) and setting > 0 else 1


def ocr_for(app: Any) -> OCR:
    """The :class:`OCR` of application ``app`` (made once, with :func:`threads` from its config)."""
    return app.state("aetherial-vision.ocr", lambda: OCR(threads(app.config)))


class OCR:
    """RapidOCR with aeth's settings (see the module docstring), on ``threads`` onnxruntime threads.

    The engine is built on first use, once (thread-safe), and reused.
    """

    def __init__(self, threads: int = 1):
        self.threads = threads
        self._engine: Any = None
        self._lock = threading.Lock()

    def engine(self) -> Any:
        """The RapidOCR engine (built on first use)."""
        with self._lock:
            if self._engine is None:
                try:
                    from rapidocr_onnxruntime import RapidOCR
                except ImportError as e:
                    raise OCRUnavailable(f"reading text in images needs RapidOCR: `pip install {DISTRIBUTION}` ({e})") from e
                self._engine = RapidOCR(det_limit_type="max", det_limit_side_len=960,
                                        intra_op_num_threads=self.threads, inter_op_num_threads=1)
            return self._engine

    def lines(self, image: Any) -> list[TextLine]:
        """The text lines found in RGB ``PIL.Image`` ``image``, top to bottom, left to right."""
        import numpy as np
        from PIL import Image

        scale = 2 if max(image.size) < UPSCALE_BELOW else 1
        if scale > 1:
            image = image.resize((image.width * scale, image.height * scale), Image.Resampling.LANCZOS)
        bgr = np.ascontiguousarray(np.asarray(image.convert("RGB"))[:, :, ::-1])  # OpenCV's channel order
        result, _ = self.engine()(bgr)
        lines = []
        for points, text, score in result or []:
            xs, ys = [p[0] / scale for p in points], [p[1] / scale for p in points]
            if text.strip():
                lines.append(TextLine(text.strip(), (min(xs), min(ys), max(xs), max(ys)), float(score)))
        return lines

    def text(self, image: Any) -> str:
        """All the text in ``image`` (``""`` when there is none), in reading order."""
        return join_lines(self.lines(image))


def join_lines(lines: list[TextLine]) -> str:
    """The text of ``lines`` as a reader would write it: boxes on the same row joined by a space
    (left to right), rows separated by newlines (top to bottom)."""
    rows: list[list[TextLine]] = []
    for line in sorted(lines, key=lambda t: (t.box[1] + t.box[3]) / 2):
        middle = (line.box[1] + line.box[3]) / 2
        if rows and abs(middle - _middle(rows[-1])) < 0.5 * _height(rows[-1]):
            rows[-1].append(line)
        else:
            rows.append([line])
    return "\n".join(" ".join(t.text for t in sorted(row, key=lambda t: t.box[0])) for row in rows)


def _middle(row: list[TextLine]) -> float:
    return sum((t.box[1] + t.box[3]) / 2 for t in row) / len(row)


def _height(row: list[TextLine]) -> float:
    return max(t.box[3] - t.box[1] for t in row)
