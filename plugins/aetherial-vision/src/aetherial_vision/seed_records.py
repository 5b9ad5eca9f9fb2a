"""The vision seed data: chat records about synthetic images, correct by construction.

Each record is ``{"messages": [...], "images": ["images/<name>.png"]}``; the image path is
relative to the data directory holding ``seed.jsonl``. Questions and answers are written from the
scene that drew the image (:mod:`aetherial_vision.synth`), never by looking at pixels, so every
count, colour, position, transcription and total is exact. Four capabilities, roughly evenly:
description, visual question answering, reading text (OCR and questions about the text) and
classification, plus a few two-turn conversations. Every first user prompt is distinct (a prompt
twice would be learnt twice); the whole set is a function of :data:`SEED` alone.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from pathlib import Path

from aetherial_vision import synth
from aetherial_vision.synth import BarChart, ColourRow, Shape, ShapeScene, TextScene, TrafficLight
from aetherial_vision.text_content import LABELS, NOTICES, RECEIPTS, SIGNS, TICKETS, receipt_total

SEED = 2026
NUMBERS = ("no", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
ORDINALS = ("first", "second", "third", "fourth", "fifth")
WARM, COOL, NEUTRAL = {"red", "orange", "yellow", "pink", "brown"}, {"blue", "green", "purple"}, {"black", "gray"}

Record = tuple[str, synth.Scene, list[dict]]  # (image name, scene, messages)


def _a(word: str) -> str:
    return f"an {word}" if word[0] in "aeiou" else f"a {word}"


def _plural(n: int, noun: str) -> str:
    return f"{NUMBERS[n]} {noun}" + ("" if n == 1 else "s")


def _chat(*turns: str) -> list[dict]:
    roles = ("user", "assistant")
    return [{"role": roles[i % 2], "content": t} for i, t in enumerate(turns)]


class Prompts:
    """Hands out user prompts that have not been used yet, so every first prompt is distinct."""

    def __init__(self, rng: random.Random):
        self.rng, self.used = rng, set()

    def pick(self, options: list[str]) -> str | None:
        """An unused option (in a seeded random order), or None when all are taken."""
        options = list(options)
        self.rng.shuffle(options)
        for option in options:
            if option not in self.used:
                self.used.add(option)
                return option
        return None


# ---- describing shapes ----------------------------------------------------------------------


def _shape_phrase(s: Shape, sized: bool) -> str:
    size = ("large " if s.large else "small ") if sized else ""
    return f"{_a(size + s.colour)} {s.kind} in the {s.where}"


def describe_shapes(scene: ShapeScene) -> str:
    """A one-paragraph description naming every shape, its colour, size (when they differ) and place."""
    sized = any(s.large for s in scene.shapes)
    parts = [_shape_phrase(s, sized) for s in scene.shapes]
    if len(parts) == 1:
        return f"The image shows a single shape on a plain white background: {parts[0]}."
    listed = ", ".join(parts[:-1]) + f" and {parts[-1]}"
    return f"The image shows {NUMBERS[len(parts)]} shapes on a plain white background: {listed}."


def _describe_shape_record(scene: ShapeScene, prompts: Prompts) -> list[dict] | None:
    p = prompts.pick(["Describe this image.", "What do you see in this picture?", "Write alt text for this image.",
                      "Give me a short description of this picture.", "What's in this image?",
                      "Describe the shapes in this picture and where they are.", "Can you describe this drawing?",
                      "Tell me what this image contains.", "Caption this image.", "What is shown here?",
                      "Describe this picture for someone who can't see it.", "Summarise what's in this image.",
                      "Explain what this graphic shows.", "Describe the layout of this image.",
                      "List everything you can see in this image.", "What does this picture look like?",
                      "Give a detailed description of this image.", "Describe the contents of this picture, please.",
                      "I can't open this image right now, what's in it?", "Write a caption for this diagram.",
                      "What shapes are in this picture, and where?", "Describe what you see, please.",
                      "Could you describe this image for me?", "Tell me about this picture.",
                      "What's going on in this image?", "Please write a description of this image.",
                      "Describe the colours and positions of everything in this image.", "What is in this drawing?",
                      "Write a one-sentence description of this image.", "Describe this image for my notes.",
                      "Give me alt text for this graphic.", "What can you see here?",
                      "Walk me through what this picture shows.", "Describe this image in plain words.",
                      "What objects are in this picture?", "Briefly describe this image.",
                      "Help me understand what this image shows.", "Describe every shape in this image.",
                      "What does this image contain, and where is each thing?", "Look at this picture and describe it."])
    return _chat(p, describe_shapes(scene)) if p else None


# ---- questions about shapes -----------------------------------------------------------------


def _shape_questions(scene: ShapeScene, rng: random.Random, prompts: Prompts) -> list[dict] | None:
    shapes = scene.shapes
    kind = rng.choice(synth.SHAPES)
    colour = rng.choice(list(synth.PALETTE))
    askers: list[Callable[[], list[dict] | None]] = []

    def count_kind() -> list[dict] | None:
        hits = [s for s in shapes if s.kind == kind]
        p = prompts.pick([f"How many {kind}s are in this image?", f"Count the {kind}s in this picture.",
                          f"How many {kind}s can you see?", f"How many {kind}s are there here?",
                          f"Number of {kind}s in this image?", f"Can you count the {kind}s for me?"])
        if not p:
            return None
        if not hits:
            return _chat(p, f"There are no {kind}s in this image.")
        where = ", ".join(f"{s.colour} in the {s.where}" for s in hits)
        return _chat(p, f"There {'is' if len(hits) == 1 else 'are'} {_plural(len(hits), kind)}: {where}.")

    def count_colour() -> list[dict] | None:
        hits = [s for s in shapes if s.colour == colour]
        p = prompts.pick([f"How many {colour} shapes are in this picture?", f"How many {colour} things can you see?",
                          f"Count the {colour} shapes.", f"How many shapes here are {colour}?"])
        if not p:
            return None
        if not hits:
            return _chat(p, f"None: there are no {colour} shapes in this picture.")
        listed = ", ".join(f"{_a(s.kind)} in the {s.where}" for s in hits)
        return _chat(p, f"{NUMBERS[len(hits)].capitalize()}: {listed}.")

    def colour_of() -> list[dict] | None:
        s = rng.choice(shapes)
        same = [t for t in shapes if t.kind == s.kind]
        ref = f"the {s.kind}" if len(same) == 1 else f"the {s.kind} in the {s.where}"
        p = prompts.pick([f"What colour is {ref}?", f"Which colour is {ref}?", f"What colour is {ref} in this image?",
                          f"Tell me the colour of {ref}."])
        return _chat(p, f"{ref[0].upper() + ref[1:]} is {s.colour}.") if p else None

    def what_at() -> list[dict] | None:
        row, col = rng.randrange(3), rng.randrange(3)
        where = synth.position_name(row, col)
        p = prompts.pick([f"What is in the {where} of this image?", f"What shape is in the {where}?",
                          f"Is there anything in the {where} of the picture?", f"What's drawn in the {where}?"])
        if not p:
            return None
        hit = next((s for s in shapes if (s.row, s.col) == (row, col)), None)
        if hit is None:
            return _chat(p, f"Nothing is there: the {where} of the image is empty.")
        return _chat(p, f"There is {_a(hit.colour)} {hit.kind} in the {where}.")

    def presence() -> list[dict] | None:
        p = prompts.pick([f"Is there {_a(colour)} {kind} in this image?", f"Do you see {_a(colour)} {kind}?",
                          f"Does this picture contain {_a(colour)} {kind}?", f"Can you spot {_a(colour)} {kind} here?"])
        if not p:
            return None
        hit = next((s for s in shapes if s.kind == kind and s.colour == colour), None)
        if hit is not None:
            return _chat(p, f"Yes, there is {_a(colour)} {kind} in the {hit.where}.")
        others = [s for s in shapes if s.kind == kind]
        if others:
            return _chat(p, f"No. There is {_a(others[0].colour)} {kind}, but no {colour} one.")
        return _chat(p, f"No, there is no {colour} {kind} in this image.")

    def left_of() -> list[dict] | None:
        distinct = [s for s in shapes if sum(t.kind == s.kind and t.colour == s.colour for t in shapes) == 1]
        if len(distinct) < 2:
            return None
        a, b = rng.sample(distinct, 2)
        p = prompts.pick([f"Is the {a.colour} {a.kind} to the left of the {b.colour} {b.kind}?",
                          f"Is the {a.colour} {a.kind} left of the {b.colour} {b.kind} in this picture?"])
        if not p:
            return None
        if a.col < b.col:
            return _chat(p, f"Yes. The {a.colour} {a.kind} is in the {a.where} and the {b.colour} {b.kind} is in the {b.where}.")
        if a.col > b.col:
            return _chat(p, f"No, it is to the right: the {a.colour} {a.kind} is in the {a.where} and the {b.colour} {b.kind} is in the {b.where}.")
        above = "above" if a.row < b.row else "below"
        return _chat(p, f"No, they are in the same column: the {a.colour} {a.kind} is directly {above} the {b.colour} {b.kind}.")

    def biggest() -> list[dict] | None:
        large = [s for s in shapes if s.large]
        if len(large) != 1 or len(shapes) < 2:
            return None
        s = large[0]
        p = prompts.pick(["Which shape is the biggest?", "What is the largest shape in this picture?",
                          "What colour is the biggest shape?", "Which object here is the largest?",
                          "Where is the biggest shape in this image?", "Which shape stands out as the largest?"])
        return _chat(p, f"The {s.colour} {s.kind} in the {s.where} is the largest; the others are small.") if p else None

    askers += [count_kind, count_colour, colour_of, what_at, presence, left_of, biggest]
    rng.shuffle(askers)
    for ask in askers:
        messages = ask()
        if messages:
            return messages
    return None


# ---- text images ----------------------------------------------------------------------------


def text_scenes(rng: random.Random) -> list[tuple[str, TextScene, dict]]:
    """Every text image with its facts: (kind, scene, fields the questions use)."""
    styles = [((20, 20, 20), (255, 255, 255)), ((255, 255, 255), (30, 70, 150)), ((30, 30, 30), (250, 230, 120)),
              ((255, 255, 255), (170, 30, 30)), ((20, 60, 20), (225, 240, 225))]
    out = []
    for sign in SIGNS:
        fg, bg = rng.choice(styles)
        out.append(("sign", TextScene("sign", (sign,), rng.choice((22, 26, 30)), fg, bg, rng.random() < 0.3), {}))
    for product, size, best, price in LABELS:
        out.append(("label", TextScene("label", (product, size, f"Best before {best}", f"Price {price}"), 20),
                    {"product": product, "size": size, "best": best, "price": price}))
    for shop, items in RECEIPTS:
        lines = (shop, *(f"{item} {price}" for item, price in items), f"Total {receipt_total(items)}")
        out.append(("receipt", TextScene("receipt", lines, 20), {"shop": shop, "items": items, "total": receipt_total(items)}))
    for event, when, place in NOTICES:
        out.append(("notice", TextScene("notice", (event, when, place), 22, (20, 20, 20), (255, 250, 225)),
                    {"event": event, "when": when, "place": place}))
    for start, end, seat, date in TICKETS:
        lines = ("Train ticket", f"From {start} to {end}", f"Seat {seat}", f"Date {date}")
        out.append(("ticket", TextScene("ticket", lines, 20, (20, 20, 20), (235, 225, 250)),
                    {"from": start, "to": end, "seat": seat, "date": date}))
    return out


def _transcribe(kind: str, scene: TextScene, prompts: Prompts) -> list[dict] | None:
    p = prompts.pick([f"What does this {kind} say?", f"Read the text on this {kind}.", f"Transcribe this {kind}.",
                      f"Type out the text from this {kind}.", f"OCR this {kind} for me.", f"Copy the words on this {kind}.",
                      f"Can you read this {kind} out to me?", f"What's written on this {kind}?",
                      f"Extract the text from this picture of a {kind}.", f"Transcribe the {kind} in this photo line by line."])
    if not p:
        return None
    return _chat(p, "\n".join(scene.lines) if len(scene.lines) > 1 else scene.lines[0])


def _place(place: str) -> str:
    """"Room 4" and "Studio B" are names; "Main hall" wants an article: "the Main hall"."""
    return place if place.startswith(("Room", "Lab", "Studio")) else f"the {place}"


def _text_question(kind: str, facts: dict, rng: random.Random, prompts: Prompts) -> list[dict] | None:
    qa: list[tuple[list[str], str]] = []
    if kind == "label":
        qa += [([f"How much does the {facts['product'].lower()} cost?", f"What price is on the {facts['product'].lower()} label?"],
                f"The label gives the price as {facts['price']}."),
               ([f"When does the {facts['product'].lower()} go out of date?", f"What is the best before date of the {facts['product'].lower()}?"],
                f"Best before {facts['best']}."),
               ([f"How big is this pack of {facts['product'].lower()}?"], f"The label says {facts['size']}.")]
    elif kind == "receipt":
        item, price = rng.choice(facts["items"])
        n = len(facts["items"])
        shop = facts["shop"].title()
        qa += [([f"What is the total on this {shop} receipt?", f"How much did I spend at {shop}?"],
                f"The total is {facts['total']}."),
               ([f"How much was the {item.lower()} on this receipt?", f"What did the {item.lower()} cost?"],
                f"The {item.lower()} cost {price}."),
               ([f"How many items are on this {shop} receipt?"],
                f"{NUMBERS[n].capitalize()} items: " + ", ".join(i for i, _ in facts["items"]) + f", for a total of {facts['total']}.")]
    elif kind == "notice":
        event = facts["event"].lower()
        qa += [([f"When is the {event}?", f"What time does the {event} start?"], f"{facts['when']}, according to the notice."),
               ([f"Where is the {event} held?", f"Which room is the {event} in?"], f"In {_place(facts['place'])}.")]
    elif kind == "ticket":
        qa += [([f"Which seat is on my {facts['from']} ticket?", f"What seat number does this {facts['from']} ticket give?"],
                f"Seat {facts['seat']}."),
               ([f"Where does this ticket from {facts['from']} go to?"], f"To {facts['to']}: the ticket reads From {facts['from']} to {facts['to']}."),
               ([f"What date is the {facts['from']} to {facts['to']} ticket for?"], f"{facts['date']}.")]
    rng.shuffle(qa)
    for options, answer in qa:
        p = prompts.pick(options)
        if p:
            return _chat(p, answer)
    return None


def _describe_text(kind: str, scene: TextScene, prompts: Prompts) -> list[dict] | None:
    p = prompts.pick([f"Describe this picture of a {kind}.", f"What is this {kind} image?", f"Describe this {kind}."])
    if not p:
        return None
    if len(scene.lines) == 1:
        return _chat(p, f"It is a plain rectangular {kind} with text on a solid background. It reads: \"{scene.lines[0]}\".")
    return _chat(p, f"It is {_a(kind)} with {NUMBERS[len(scene.lines)]} lines of text. It reads: "
                    + " / ".join(scene.lines) + ".")


# ---- charts, colour rows, traffic lights ----------------------------------------------------

CHARTS = (
    ("Fruit sold on Monday", "fruit", ("apples", "pears", "plums", "kiwis", "limes")),
    ("Rainy days per month", "month", ("Jan", "Feb", "Mar", "Apr", "May")),
    ("Books read this term", "reader", ("Ana", "Ben", "Cleo", "Dev", "Ema")),
    ("Goals per team", "team", ("Owls", "Foxes", "Bears", "Hawks", "Elks")),
    ("Visitors per day", "day", ("Mon", "Tue", "Wed", "Thu", "Fri")),
    ("Cakes baked per shop", "shop", ("Bath", "York", "Hull", "Ely", "Rye")),
    ("Bikes parked by hour", "hour", ("8am", "9am", "10am", "11am", "noon")),
    ("Trees planted per street", "street", ("Oak", "Elm", "Ash", "Yew", "Fir")),
)


def random_chart(rng: random.Random, i: int) -> tuple[BarChart, str]:
    """A chart with 3-5 bars of distinct values 1-10, and the noun for one of its labels."""
    title, noun, labels = CHARTS[i % len(CHARTS)]
    n = rng.randint(3, 5)
    picked = tuple(labels[:n])
    values = tuple(rng.sample(range(1, 11), n))
    return BarChart(title, picked, values, rng.choice(["blue", "green", "orange", "purple", "red"])), noun


def _chart_record(chart: BarChart, noun: str, rng: random.Random, prompts: Prompts) -> list[dict] | None:
    pairs = dict(zip(chart.labels, chart.values, strict=True))
    top = max(pairs, key=pairs.get)
    low = min(pairs, key=pairs.get)
    label = rng.choice(chart.labels)
    a, b = rng.sample(chart.labels, 2)
    listed = ", ".join(f"{k} {v}" for k, v in pairs.items())
    options = [
        ([f"Which {noun} has the highest value in this chart?", f"Which {noun} is top in the '{chart.title}' chart?"],
         f"{top[0].upper() + top[1:]}, with {pairs[top]}."),
        ([f"Which {noun} has the lowest bar?", f"Which {noun} scored least in this chart?"],
         f"{low[0].upper() + low[1:]}, with {pairs[low]}."),
        ([f"What is the value for {label} in the '{chart.title}' chart?", f"How tall is the {label} bar?"],
         f"{label[0].upper() + label[1:]} is at {pairs[label]}."),
        ([f"Is {a} higher than {b} in the '{chart.title}' chart?"],
         (f"Yes: {a} is at {pairs[a]} and {b} at {pairs[b]}." if pairs[a] > pairs[b] else f"No: {a} is at {pairs[a]} and {b} at {pairs[b]}.")),
        ([f"What do all the bars in the '{chart.title}' chart add up to?"], f"{sum(chart.values)} ({listed})."),
        ([f"Describe the '{chart.title}' chart.", f"What does this chart of {chart.title.lower()} show?"],
         f"A bar chart titled \"{chart.title}\" with {NUMBERS[len(pairs)]} {chart.colour} bars: {listed}. "
         f"{top[0].upper() + top[1:]} is the highest and {low} the lowest."),
    ]
    rng.shuffle(options)
    for prompt_options, answer in options:
        p = prompts.pick(prompt_options)
        if p:
            return _chat(p, answer)
    return None


def _colour_row_record(row: ColourRow, rng: random.Random, prompts: Prompts) -> list[dict] | None:
    colours = row.colours
    i = rng.randrange(len(colours))
    colour = rng.choice(colours)
    count = colours.count(colour)
    options = [
        ([f"What colour is the {ORDINALS[i]} square from the left?", f"Which colour is square number {i + 1}, counting from the left?"],
         f"The {ORDINALS[i]} square is {colours[i]}."),
        ([f"How many {colour} squares are in this row?", f"Count the {colour} squares."],
         f"{NUMBERS[count].capitalize()}." if count > 1 else "Just one."),
        ([f"List the colours of these {len(colours)} squares from left to right.",
          f"What order are the {len(colours)} colours in, left to right?"],
         ", ".join(colours).capitalize() + "."),
    ]
    rng.shuffle(options)
    for prompt_options, answer in options:
        p = prompts.pick(prompt_options)
        if p:
            return _chat(p, answer)
    return None


LIGHT_PROMPTS = {
    "stop/go": (["Should a driver stop or go at this light?", "Is this traffic light saying stop or go?",
                 "Can I drive through this signal?", "Stop, get ready, or go: which does this light mean?",
                 "Classify this signal: stop, caution or go?", "What should a cyclist do at this light?",
                 "Is it safe to cross at this traffic light if I'm driving?"],
                {"red": "Stop: the red lamp is lit.", "amber": "Get ready to stop: the amber lamp is lit, so stop unless it is unsafe to do so.",
                 "green": "Go: the green lamp is lit, so you may proceed if the way is clear."}),
    "lamp": (["Which lamp of the traffic light is on?", "Which colour is lit on this traffic light?",
              "What light is showing on this signal?"],
             {"red": "The top lamp, red.", "amber": "The middle lamp, amber.", "green": "The bottom lamp, green."}),
}


# ---- classification -------------------------------------------------------------------------


def _kind_of(scene: synth.Scene) -> tuple[str, str]:
    if isinstance(scene, BarChart):
        return "bar chart", "it has labelled bars with values printed above them"
    if isinstance(scene, TextScene):
        return "text", f"it is {_a(scene.kind)} made only of written text"
    if isinstance(scene, TrafficLight):
        return "traffic light", "it shows a signal with three round lamps, one of them lit"
    if isinstance(scene, ColourRow):
        return "colour swatches", "it is a row of plain coloured squares"
    return "shapes", "it is a simple drawing of geometric shapes"


def _classify_type(scene: synth.Scene, rng: random.Random, prompts: Prompts) -> list[dict] | None:
    names = ["bar chart", "text", "shapes", "traffic light", "colour swatches"]
    kind, why = _kind_of(scene)
    for _ in range(6):
        rng.shuffle(names)
        listed = ", ".join(names[:-1]) + " or " + names[-1]
        p = prompts.pick([f"Classify this image as one of: {', '.join(names)}.", f"Is this image {listed}?",
                          f"Which category fits this picture best: {listed}?"])
        if p:
            return _chat(p, f"{kind.capitalize()}: {why}.")
    return None


def _classify_shape(scene: ShapeScene, rng: random.Random, prompts: Prompts) -> list[dict] | None:
    s = scene.shapes[0]
    sides = {"circle": "it is round, with no corners", "square": "it has four equal straight sides and four right angles",
             "triangle": "it has three straight sides and three corners", "star": "it has five points"}
    temp = "warm" if s.colour in WARM else "cool" if s.colour in COOL else "neutral"
    names = list(synth.SHAPES)
    for _ in range(6):
        rng.shuffle(names)
        listed = ", ".join(names[:-1]) + " or " + names[-1]
        if rng.random() < 0.7:
            p = prompts.pick([f"Classify the shape in this image: {listed}?", f"Is this shape {_a(listed)}?",
                              f"Which is it: {listed}?"])
            if p:
                return _chat(p, f"{s.kind.capitalize()}: {sides[s.kind]}.")
        else:
            p = prompts.pick([f"Is the colour of this {s.kind} warm, cool or neutral?",
                              f"Would you call this {s.kind}'s colour warm or cool?"])
            if p:
                return _chat(p, f"{temp.capitalize()}: the {s.kind} is {s.colour}"
                                + (", which is neither warm nor cool." if temp == "neutral" else f", a {temp} colour."))
    return None


# ---- the whole set --------------------------------------------------------------------------


def build_seed(seed: int = SEED) -> list[Record]:
    """Every seed record with the scene of its image, in a fixed order (a function of ``seed``)."""
    rng = random.Random(seed)
    prompts = Prompts(rng)
    out: list[Record] = []
    names: dict[synth.Scene, str] = {}  # a scene asked about twice is one image file

    def add(prefix: str, scene: synth.Scene, messages: list[dict] | None) -> None:
        if messages:
            name = names.setdefault(scene, f"{prefix}-{len(names):03d}")
            out.append((name, scene, messages))

    for _ in range(24):  # describing shapes
        add("shapes", scene := synth.random_shape_scene(rng, one_large=rng.random() < 0.4),
            _describe_shape_record(scene, prompts))
    for _ in range(70):  # questions about shapes
        scene = synth.random_shape_scene(rng, n=rng.randint(2, 4), one_large=rng.random() < 0.3)
        add("shapes", scene, _shape_questions(scene, rng, prompts))
    texts = text_scenes(rng)
    for i, (kind, scene, facts) in enumerate(texts):  # reading text
        if kind == "sign":
            add("text", scene, _transcribe(kind, scene, prompts) if i % 4 else _describe_text(kind, scene, prompts))
        else:
            add("text", scene, _transcribe(kind, scene, prompts))
            add("text", scene, _text_question(kind, facts, rng, prompts))
    for i in range(24):  # charts
        chart, noun = random_chart(rng, i)
        add("chart", chart, _chart_record(chart, noun, rng, prompts))
    for _ in range(12):  # colour rows
        row = ColourRow(tuple(rng.choice(["red", "blue", "green", "yellow", "purple", "orange"]) for _ in range(rng.randint(3, 5))))
        add("row", row, _colour_row_record(row, rng, prompts))
    for options, answers in LIGHT_PROMPTS.values():  # traffic lights (classification)
        for prompt in options:
            lit = rng.choice(("red", "amber", "green"))
            if prompts.pick([prompt]):
                add("light", TrafficLight(lit), _chat(prompt, answers[lit]))
    for _ in range(14):  # classifying a single shape
        scene = synth.random_shape_scene(rng, n=1, one_large=True)
        add("shapes", scene, _classify_shape(scene, rng, prompts))
    for _ in range(16):  # what kind of image is this?
        pick = rng.randrange(4)
        scene = (synth.random_shape_scene(rng) if pick == 0 else random_chart(rng, rng.randrange(8))[0] if pick == 1
                 else texts[rng.randrange(len(texts))][1] if pick == 2 else TrafficLight(rng.choice(("red", "amber", "green"))))
        add("kind", scene, _classify_type(scene, rng, prompts))
    for _ in range(12):  # two-turn conversations: describe, then a follow-up
        scene = synth.random_shape_scene(rng, n=rng.randint(2, 3))
        first = _describe_shape_record(scene, prompts)
        follow = _shape_questions(scene, rng, prompts)
        if first and follow:
            add("shapes", scene, first + follow)
    return out


def records(built: list[Record]) -> list[dict]:
    """The seed records as written to ``seed.jsonl`` (image paths relative to the data directory)."""
    return [{"messages": messages, "images": [f"images/{name}.png"]} for name, _, messages in built]


def write_seed(directory: Path, seed: int = SEED) -> int:
    """Write ``seed.jsonl`` and ``images/*.png`` into ``directory``; return the number of records.

    Old images are removed first, so the directory holds exactly what ``seed`` builds.
    """
    images = directory / "images"
    images.mkdir(parents=True, exist_ok=True)
    for old in images.glob("*.png"):
        old.unlink()
    built = build_seed(seed)
    for name, scene in dict((name, scene) for name, scene, _ in built).items():
        (images / f"{name}.png").write_bytes(synth.png_bytes(synth.render(scene)))
    lines = [json.dumps(r, ensure_ascii=False) for r in records(built)]
    (directory / "seed.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return len(built)
