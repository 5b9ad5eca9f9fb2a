"""The ``vision`` eval suite: easy-VQA visual questions and OCR of rendered text.

Two benchmarks (groups), scored by :mod:`aetherial_vision.scoring`:

- ``easy-vqa``: :data:`VQA_CASES` questions from the TEST split of easy-VQA (Victor Zhou, MIT
  licence): 64 x 64 images of one coloured shape, with questions whose answer is one word out
  of 13 (a shape, a colour, yes or no). Read from where the PyPI package ``easy-vqa`` 1.0
  installs (``easy_vqa/data/test/``); nothing of it is copied into this package. The subset and
  its order are fixed: the questions sorted by the SHA-256 of ``"<image id>:<question>"``, so
  ``--limit N`` takes a spread of images and question types. Scored by exact match after
  normalisation.
- ``ocr``: one image per phrase of :data:`OCR_PHRASES` (written for this project), rendered at
  run time with Pillow's bundled Aileron Regular font (CC0) in sizes from 20 to 44 px, five colour
  schemes, some bold, some broken over two lines; the same phrase always gets the same style.
  Images go to ``$AETH_HOME/cache/vision-eval/`` of the application that registered the suite,
  keyed by the Pillow version, since another version may rasterise text differently. Scored as
  1 - character error rate.
"""

from __future__ import annotations

import hashlib
import json
import os
from functools import cache
from pathlib import Path

from aeth import EvalCase, EvalSuite
from aeth.datasets import installed_data
from aetherial_vision.scoring import ocr_score, vqa_score

DISTRIBUTION = "easy-vqa==1.0"
VQA_CASES = 500
VQA_PROMPT = "{question} Answer with a single word."
OCR_PROMPT = "Transcribe the text in this image exactly as written. Reply with the text only."

OCR_PHRASES = (
    "Gate B closes 20 minutes before departure", "Please return trays to the counter", "Sale ends Friday at 6pm",
    "Room 214 - Quantum Optics Lab", "Fragile: handle with care", "Lost property is kept at reception",
    "Order number 58213", "Boil for 12 minutes, then drain", "Turn off the lights when you leave", "Next bus: 7:42",
    "Welcome to Alder Valley", "Do not feed the ducks bread", "Season tickets available online", "Pool depth 1.2 m",
    "Max load 350 kg", "Emergency phone 0800 555 0199", "Garden centre closed on Mondays",
    "Unit 7, Brook Lane Industrial Estate", "Keep refrigerated below 5C", "Battery at 15%, please charge",
    "Meeting notes: agree budget, hire designer", "Flight AT 318 to Lisbon, gate 22", "Step 3: tighten the four bolts",
    "Tickets 4.50 adults, 2.00 children", "Silence your phone during the film", "Saturday market from 8 until 1",
    "Use the stairs in case of fire", "Version 2.4.1 release candidate", "Warning: hot surface",
    "Deliveries between 7am and 11am only", "Apartment 9C buzzer broken, knock loudly", "Total distance 42.2 km",
    "Happy birthday, Rosa!", "Water the tomatoes every evening", "No ball games on the lawn",
    "Password must be 12 characters", "Quiet carriage: coach F", "Pick up dry cleaning Thursday",
    "Herb garden planted May 2024", "Bring a packed lunch and waterproofs",
)
#: (size px, text colour, background, bold), taken in turn by the phrases.
OCR_STYLES = (
    (20, (20, 20, 20), (255, 255, 255), False), (28, (255, 255, 255), (25, 45, 110), False),
    (36, (20, 80, 30), (255, 250, 210), True), (24, (140, 20, 20), (225, 225, 225), False),
    (44, (20, 20, 20), (255, 255, 255), False),
)


# ---- easy-VQA -------------------------------------------------------------------------------


def easy_vqa_dir() -> Path:
    """``easy_vqa/data`` inside the installed ``easy-vqa`` package (found without importing it)."""
    return installed_data("easy_vqa", "data/test/questions.json", "the vision eval (easy-VQA)", f"pip install {DISTRIBUTION}").parents[1]


@cache
def easy_vqa_questions(split: str = "test") -> tuple[tuple[str, str, int], ...]:
    """Every ``(question, answer, image id)`` of an easy-VQA split, in the file's order."""
    data = json.loads((easy_vqa_dir() / split / "questions.json").read_text(encoding="utf-8"))
    return tuple((q, a, int(i)) for q, a, i in data)


def easy_vqa_image(image_id: int, split: str = "test") -> Path:
    """The PNG of image ``image_id`` of an easy-VQA split."""
    return easy_vqa_dir() / split / "images" / f"{image_id}.png"


def _vqa_key(question: str, image_id: int) -> str:
    return hashlib.sha256(f"{image_id}:{question}".encode()).hexdigest()


def vqa_cases(n: int = VQA_CASES) -> list[EvalCase]:
    """The first ``n`` test questions in SHA-256 order (fixed across runs and machines)."""
    ordered = sorted(easy_vqa_questions("test"), key=lambda qai: _vqa_key(qai[0], qai[2]))[:n]
    return [EvalCase(id=f"easy-vqa/{i}-{_vqa_key(q, i)[:8]}", prompt=VQA_PROMPT.format(question=q[0].upper() + q[1:]),
                     reference=a, group="easy-vqa", images=(str(easy_vqa_image(i)),), max_tokens=8)
            for q, a, i in ordered]


# ---- OCR of rendered text -------------------------------------------------------------------


def ocr_scene(index: int):
    """The :class:`~aetherial_vision.synth.TextScene` of phrase ``index`` (its style is fixed by the index)."""
    from aetherial_vision.synth import TextScene

    phrase = OCR_PHRASES[index]
    size, fg, bg, bold = OCR_STYLES[index % len(OCR_STYLES)]
    words = phrase.split()
    if index % 3 == 2 and len(words) >= 4:  # every third phrase of four words or more on two lines
        half = len(words) // 2
        lines = (" ".join(words[:half]), " ".join(words[half:]))
    else:
        lines = (phrase,)
    return TextScene("ocr", lines, size, fg, bg, bold)


def ocr_image_dir(home: Path) -> Path:
    """Where the OCR eval's images are rendered: under ``home/cache`` (an application's ``home``,
    ``$AETH_HOME``), per Pillow version."""
    import PIL

    return Path(home) / "cache" / "vision-eval" / f"ocr-v1-pillow{PIL.__version__}"


def render_ocr_images(directory: Path) -> list[Path]:
    """Render every OCR eval image into ``directory`` (kept when already there); return their paths."""
    from aetherial_vision.synth import png_bytes, render

    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(len(OCR_PHRASES)):
        path = directory / f"ocr-{i:02d}.png"
        if not path.is_file():
            tmp = path.with_suffix(f".tmp{os.getpid()}")
            tmp.write_bytes(png_bytes(render(ocr_scene(i))))
            os.replace(tmp, path)  # a reader never sees half an image
        paths.append(path)
    return paths


def ocr_cases(home: Path) -> list[EvalCase]:
    """One case per phrase, its image rendered under ``home``; the reference is the phrase (line
    breaks count as spaces)."""
    paths = render_ocr_images(ocr_image_dir(home))
    return [EvalCase(id=f"ocr/{i:02d}", prompt=OCR_PROMPT, reference=phrase, group="ocr", images=(str(path),),
                     max_tokens=48) for i, (phrase, path) in enumerate(zip(OCR_PHRASES, paths, strict=True))]


# ---- the suite ------------------------------------------------------------------------------




def _score(case: EvalCase, answer: str) -> float:
    if case.group == "easy-vqa":
        return vqa_score(answer, case.reference)
    return ocr_score(answer, case.reference)


def build_suite(home: Path) -> EvalSuite:
    """easy-VQA exact match and OCR 1 - CER, one mean over all cases (reports break it down by group).

    The OCR images are rendered under ``home`` (the registering application's), when the cases are
    first asked for.
    """
    return EvalSuite(
        name="vision",
        version="1.0",
        cases=lambda: vqa_cases() + ocr_cases(home),
        score=_score,
        metric="accuracy / 1-CER",
        max_tokens=48,
        description=f"{VQA_CASES} easy-VQA test questions (one-word answers, exact match after normalisation) and "
                    f"{len(OCR_PHRASES)} images of rendered text to transcribe (1 - character error rate).",
        source="easy-VQA test split (Victor Zhou, 2020), MIT licence, read from PyPI package easy-vqa 1.0; OCR images "
               "rendered at run time from phrases written for aeth, in Pillow's bundled Aileron Regular font (CC0)",
    )
