"""The eval scorers: VQA exact match after normalisation, OCR 1 - character error rate."""

import pytest

from aetherial_vision.scoring import cer, levenshtein, normalise_ocr, normalise_vqa, ocr_score, vqa_score


@pytest.mark.parametrize("answer, reference", [
    ("circle", "circle"), ("Circle.", "circle"), ("  The circle!\n", "circle"), ("A triangle", "triangle"),
    ("Yes.", "yes"), ("NO", "no"), ("grey", "gray"), ("Gray.", "gray"), ("two", "2"), ("teal\nbecause...", "teal"),
])
def test_vqa_normalisation_makes_equal_answers_match(answer, reference):
    assert vqa_score(answer, reference) == 1.0


@pytest.mark.parametrize("answer, reference", [
    ("Yes, there is.", "yes"),  # exact match: more than the answer is not the answer
    ("blue", "teal"), ("circles", "circle"), ("", "no"), ("no", "yes"), ("red triangle", "triangle"),
    ("The answer is yes", "yes"),
])
def test_vqa_normalisation_keeps_different_answers_apart(answer, reference):
    assert vqa_score(answer, reference) == 0.0


def test_vqa_normalised_form():
    assert normalise_vqa("  The Grey, square!  ") == "gray square"
    assert normalise_vqa("An apple") == "apple"


def test_levenshtein_counts_edits():
    assert levenshtein("kitten", "sitting") == 3
    assert levenshtein("", "abc") == levenshtein("abc", "") == 3
    assert levenshtein("same", "same") == 0


def test_cer_and_ocr_score():
    ref = "Order 58213"  # 11 characters
    assert cer(ref, ref) == 0.0 and ocr_score(ref, ref) == 1.0
    assert ocr_score("Order 58218", ref) == pytest.approx(1 - 1 / 11)  # one substitution
    assert ocr_score("order 58213", ref) == pytest.approx(1 - 1 / 11)  # case counts
    assert ocr_score("Order58213", ref) == pytest.approx(1 - 1 / 11)  # a dropped space counts
    assert ocr_score("", ref) == 0.0
    assert ocr_score("x" * 50, ref) == 0.0  # CER above 1 is clipped, never negative
    assert cer("x" * 50, ref) > 1


def test_ocr_normalisation_forgives_layout_and_wrapping_only():
    assert ocr_score("Sale ends\nFriday  at 6pm", "Sale ends Friday at 6pm") == 1.0  # line breaks are spaces
    assert ocr_score('"Sale ends Friday at 6pm"', "Sale ends Friday at 6pm") == 1.0
    assert ocr_score("The text reads: Sale ends Friday at 6pm", "Sale ends Friday at 6pm") == 1.0
    assert normalise_ocr("Sale, ends!") == "Sale, ends!"  # punctuation is kept
    assert ocr_score("Sale ends Friday at 6pm. Hope that helps!", "Sale ends Friday at 6pm") < 0.6
