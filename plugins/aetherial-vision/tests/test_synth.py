"""The synthetic images: deterministic, and drawn exactly as their scenes say."""

import random

import pytest

from aetherial_vision import synth
from aetherial_vision.synth import PALETTE, BarChart, ColourRow, Shape, ShapeScene, TrafficLight


def _pixel(image, x, y):
    return image.convert("RGB").getpixel((int(x), int(y)))


def test_scenes_and_pixels_are_a_function_of_the_seed():
    a = [synth.random_shape_scene(random.Random(7)) for _ in range(5)]
    b = [synth.random_shape_scene(random.Random(7)) for _ in range(5)]
    assert a == b
    assert synth.random_shape_scene(random.Random(7)) != synth.random_shape_scene(random.Random(8))
    chart = BarChart("Cups of tea", ("Mon", "Tue"), (3, 7), "green")
    assert synth.png_bytes(synth.render(chart)) == synth.png_bytes(synth.render(chart))


def test_random_scenes_keep_their_promises():
    rng = random.Random(3)
    for _ in range(50):
        scene = synth.random_shape_scene(rng, n=3, one_large=True)
        assert len(scene.shapes) == 3
        assert len({(s.row, s.col) for s in scene.shapes}) == 3  # one shape per cell
        assert sum(s.large for s in scene.shapes) == 1


def test_each_shape_is_drawn_in_its_cell_in_its_colour():
    scene = ShapeScene((Shape("circle", "red", 0, 0), Shape("square", "blue", 1, 1, large=True),
                        Shape("triangle", "green", 2, 1), Shape("star", "orange", 2, 2)))
    image = synth.render(scene)
    assert image.size == (3 * synth.CELL, 3 * synth.CELL)
    for s in scene.shapes:
        centre = (s.col * synth.CELL + synth.CELL / 2, s.row * synth.CELL + synth.CELL / 2)
        assert _pixel(image, *centre) == PALETTE[s.colour], s
    empty = {(r, c) for r in range(3) for c in range(3)} - {(s.row, s.col) for s in scene.shapes}
    for r, c in empty:
        assert _pixel(image, c * synth.CELL + synth.CELL / 2, r * synth.CELL + synth.CELL / 2) == (255, 255, 255)
    # the large square reaches further from its centre than a small shape does
    assert _pixel(image, 96 + 22, 96) == PALETTE["blue"] and _pixel(image, 32 + 22, 32) == (255, 255, 255)


def test_bars_are_as_tall_as_their_values():
    chart = BarChart("Goals", ("Owls", "Foxes", "Bears"), (2, 9, 5), "purple")
    image = synth.render(chart).convert("RGB")
    heights = []
    for i in range(3):
        x = 18 + i * (36 + 18) + 18
        heights.append(sum(_pixel(image, x, y) == PALETTE["purple"] for y in range(image.height)))
    assert heights == [v * 14 for v in chart.values]


def test_colour_rows_and_traffic_lights():
    row = synth.render(ColourRow(("yellow", "purple", "red")))
    assert [_pixel(row, 10 + i * 50 + 20, 30) for i in range(3)] == [PALETTE[c] for c in ("yellow", "purple", "red")]
    for lit, y in (("red", 40), ("amber", 100), ("green", 160)):
        image = synth.render(TrafficLight(lit))
        lamps = [_pixel(image, 60, cy) for cy in (40, 100, 160)]
        assert lamps.count((80, 80, 80)) == 2 and _pixel(image, 60, y) != (80, 80, 80)


def test_png_bytes_keep_flat_colours_exactly():
    from io import BytesIO

    from PIL import Image

    scene = ShapeScene(tuple(Shape("square", c, i // 3, i % 3) for i, c in enumerate(list(PALETTE)[:9])))
    image = synth.render(scene)
    again = Image.open(BytesIO(synth.png_bytes(image))).convert("RGB")
    assert again.tobytes() == image.tobytes()


def test_position_names():
    assert synth.position_name(0, 0) == "top left" and synth.position_name(1, 1) == "centre"
    assert synth.position_name(1, 2) == "middle right" and synth.position_name(2, 1) == "bottom centre"


def test_unknown_scene_is_refused():
    with pytest.raises(TypeError):
        synth.render("a cat")
