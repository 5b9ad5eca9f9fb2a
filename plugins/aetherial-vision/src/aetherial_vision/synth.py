"""Synthetic images whose content is known exactly: shapes, text, bar charts, patterns, lights.

Every image is drawn from a small frozen *scene* (a dataclass), so whatever is said about the
image (how many circles, what the sign says, which bar is tallest) is true by construction. Scenes
are sampled from a seeded :class:`random.Random`, and drawing is plain Pillow with no randomness, so
the same seed gives the same pixels. Text uses the font bundled inside Pillow (Aileron Regular,
CC0, ``ImageFont.load_default(size=...)``), not a system font, so no machine lacks it.

``python -m aetherial_vision.synth --write DIR`` writes the seed data (``seed.jsonl`` and
``images/``) that ships in ``aetherial_vision/data`` (see :mod:`aetherial_vision.seed_records`).
"""

from __future__ import annotations

import io
import random
from dataclasses import dataclass
from typing import Any

#: Named colours (RGB). Names are what answers say, so each colour is unambiguous to a person.
PALETTE: dict[str, tuple[int, int, int]] = {
    "red": (214, 39, 40), "green": (44, 160, 44), "blue": (31, 90, 200), "yellow": (240, 200, 20),
    "orange": (245, 130, 20), "purple": (128, 60, 170), "black": (20, 20, 20), "gray": (130, 130, 130),
    "pink": (240, 120, 180), "brown": (125, 75, 35),
}
SHAPES = ("circle", "square", "triangle", "star")
ROWS = ("top", "middle", "bottom")
COLS = ("left", "centre", "right")
CELL = 64  # a shape scene is a 3 x 3 grid of CELL-pixel cells


def font(size: int) -> Any:
    """Pillow's bundled Aileron Regular at ``size`` pixels (the same on every machine with Pillow >= 10.1)."""
    from PIL import ImageFont

    return ImageFont.load_default(size=size)


def position_name(row: int, col: int) -> str:
    """``"top left"``, ``"centre"``, ``"bottom right"``...: how a person names a grid cell."""
    if row == 1 and col == 1:
        return "centre"
    if row == 1:
        return f"middle {COLS[col]}"
    if col == 1:
        return f"{ROWS[row]} centre"
    return f"{ROWS[row]} {COLS[col]}"


# ---- scenes ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Shape:
    """One shape in a 3 x 3 grid scene."""

    kind: str
    colour: str
    row: int
    col: int
    large: bool = False

    @property
    def where(self) -> str:
        """Its position in words."""
        return position_name(self.row, self.col)


@dataclass(frozen=True)
class ShapeScene:
    """A few coloured shapes, each in its own cell of a 3 x 3 grid, on a light background."""

    shapes: tuple[Shape, ...]
    background: str = "white"


@dataclass(frozen=True)
class TextScene:
    """Lines of text on a plain panel: a sign, a label, a receipt, a note, a ticket."""

    kind: str
    lines: tuple[str, ...]
    size: int = 24
    fg: tuple[int, int, int] = (20, 20, 20)
    bg: tuple[int, int, int] = (255, 255, 255)
    bold: bool = False


@dataclass(frozen=True)
class BarChart:
    """A bar chart: one bar per label, its value printed above it, one colour for all bars."""

    title: str
    labels: tuple[str, ...]
    values: tuple[int, ...]
    colour: str = "blue"


@dataclass(frozen=True)
class ColourRow:
    """A row of coloured squares, read left to right."""

    colours: tuple[str, ...]


@dataclass(frozen=True)
class TrafficLight:
    """A traffic light with one lamp lit: ``red``, ``amber`` or ``green``."""

    lit: str


Scene = ShapeScene | TextScene | BarChart | ColourRow | TrafficLight


def random_shape_scene(rng: random.Random, n: int | None = None, one_large: bool = False) -> ShapeScene:
    """``n`` shapes (1-4 when not given) in distinct cells; with ``one_large`` exactly one is large."""
    n = n or rng.randint(1, 4)
    cells = rng.sample(range(9), n)
    big = rng.randrange(n) if one_large else -1
    shapes = tuple(Shape(rng.choice(SHAPES), rng.choice(list(PALETTE)), c // 3, c % 3, i == big)
                   for i, c in enumerate(cells))
    return ShapeScene(tuple(sorted(shapes, key=lambda s: (s.row, s.col))))


# ---- drawing --------------------------------------------------------------------------------


def _star(cx: float, cy: float, r: float) -> list[tuple[float, float]]:
    import math

    points = []
    for i in range(10):  # five outer and five inner points, alternating, first one straight up
        radius = r if i % 2 == 0 else r * 0.45
        angle = -math.pi / 2 + i * math.pi / 5
        points.append((cx + radius * math.cos(angle), cy + radius * math.sin(angle)))
    return points


def _draw_shape(draw: Any, shape: Shape) -> None:
    cx, cy = shape.col * CELL + CELL / 2, shape.row * CELL + CELL / 2
    r = 27 if shape.large else 15
    fill = PALETTE[shape.colour]
    if shape.kind == "circle":
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=fill)
    elif shape.kind == "square":
        draw.rectangle((cx - r, cy - r, cx + r, cy + r), fill=fill)
    elif shape.kind == "triangle":
        draw.polygon([(cx, cy - r), (cx + r, cy + r), (cx - r, cy + r)], fill=fill)
    else:
        draw.polygon(_star(cx, cy, r * 1.15), fill=fill)


def _text_panel(scene: TextScene) -> Any:
    from PIL import Image, ImageDraw

    f = font(scene.size)
    line_h = int(scene.size * 1.45)
    width = max(int(f.getlength(line)) for line in scene.lines) + 2 * scene.size
    height = line_h * len(scene.lines) + scene.size
    img = Image.new("RGB", (width, height), scene.bg)
    draw = ImageDraw.Draw(img)
    for i, line in enumerate(scene.lines):
        draw.text((scene.size, scene.size // 2 + i * line_h), line, fill=scene.fg, font=f,
                  stroke_width=1 if scene.bold else 0, stroke_fill=scene.fg)
    return img


def _bar_chart(scene: BarChart) -> Any:
    from PIL import Image, ImageDraw

    bar_w, gap, unit, top, bottom = 36, 18, 14, 52, 28
    width = gap + len(scene.labels) * (bar_w + gap)
    height = top + 10 * unit + bottom
    img = Image.new("RGB", (max(width, 200), height), "white")
    draw = ImageDraw.Draw(img)
    small, title = font(12), font(15)
    draw.text((gap, 8), scene.title, fill=(20, 20, 20), font=title)
    base = top + 10 * unit
    draw.line((gap // 2, base, width - gap // 2, base), fill=(60, 60, 60), width=2)
    for i, (label, value) in enumerate(zip(scene.labels, scene.values, strict=True)):
        x = gap + i * (bar_w + gap)
        draw.rectangle((x, base - value * unit, x + bar_w, base - 1), fill=PALETTE[scene.colour])
        draw.text((x + bar_w / 2, base - value * unit - 3), str(value), fill=(20, 20, 20), font=small, anchor="md")
        draw.text((x + bar_w / 2, base + 6), label, fill=(20, 20, 20), font=small, anchor="ma")
    return img


def render(scene: Scene) -> Any:
    """The RGB ``PIL.Image`` of ``scene`` (deterministic: the same scene, the same pixels)."""
    from PIL import Image, ImageDraw

    if isinstance(scene, ShapeScene):
        img = Image.new("RGB", (3 * CELL, 3 * CELL), scene.background)
        draw = ImageDraw.Draw(img)
        for shape in scene.shapes:
            _draw_shape(draw, shape)
        return img
    if isinstance(scene, TextScene):
        return _text_panel(scene)
    if isinstance(scene, BarChart):
        return _bar_chart(scene)
    if isinstance(scene, ColourRow):
        side = 40
        img = Image.new("RGB", (side * len(scene.colours) + 10 * (len(scene.colours) + 1), side + 20), "white")
        draw = ImageDraw.Draw(img)
        for i, colour in enumerate(scene.colours):
            x = 10 + i * (side + 10)
            draw.rectangle((x, 10, x + side, 10 + side), fill=PALETTE[colour])
        return img
    if isinstance(scene, TrafficLight):
        img = Image.new("RGB", (120, 200), (235, 240, 245))
        draw = ImageDraw.Draw(img)
        draw.rectangle((35, 10, 85, 190), fill=(40, 40, 40))
        lamps = {"red": (230, 30, 30), "amber": (250, 170, 0), "green": (30, 200, 60)}
        for i, name in enumerate(("red", "amber", "green")):
            cy = 40 + i * 60
            draw.ellipse((42, cy - 18, 78, cy + 18), fill=lamps[name] if name == scene.lit else (80, 80, 80))
        return img
    raise TypeError(f"not a scene: {type(scene).__name__}")


def png_bytes(image: Any) -> bytes:
    """``image`` as PNG bytes, written the same way every time (no timestamps, fixed compression)."""
    buf = io.BytesIO()
    # Few colours: a palette PNG is a fraction of the size and loses nothing for flat drawings;
    # anti-aliased text keeps 64 levels, plenty for reading it.
    image.quantize(colors=64, dither=0).save(buf, format="PNG", optimize=True)
    return buf.getvalue()


def main(argv: list[str] | None = None) -> int:
    """``python -m aetherial_vision.synth --write DIR``: (re)write the seed data into DIR."""
    import argparse
    from pathlib import Path

    from aetherial_vision.seed_records import write_seed

    parser = argparse.ArgumentParser(prog="python -m aetherial_vision.synth", description=main.__doc__)
    parser.add_argument("--write", metavar="DIR", required=True, help="directory for seed.jsonl and images/")
    args = parser.parse_args(argv)
    n = write_seed(Path(args.write))
    print(f"wrote {n} records to {args.write}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
