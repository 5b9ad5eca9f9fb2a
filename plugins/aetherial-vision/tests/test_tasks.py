"""Sorting prompts for the offline path: transcribe (OCR alone), read (OCR + text model), look (needs a VLM)."""

import pytest

from aetherial_vision.tasks import LOOK, READ, TRANSCRIBE, classify


@pytest.mark.parametrize("prompt", [
    "Transcribe the handwritten note in the picture.",
    "Read the text in this image.",
    "What does this sign say?",
    "What does the label on this bottle say?",
    "OCR this receipt and give me the lines as plain text.",
    "Extract all the text from this scanned page.",
    "Copy the words from the whiteboard photo into text.",
    "What's written on the back of the card?",
    "Can you read this out to me?",
])
def test_requests_for_the_text_itself_are_transcriptions(prompt):
    assert classify(prompt) == TRANSCRIBE


@pytest.mark.parametrize("prompt", [
    "What colour is the sign?",  # mentions a sign, but asks how it looks
    "Describe this image in detail.",
    "How many people are in this picture?",
    "Is there a dog anywhere in this photo?",
    "Classify this image: is it a cat or a dog?",
    "Which shape in the picture is the biggest?",
    "Is the triangle to the left of the square in this image?",
    "What is this?",
    "what is the red shape?",  # easy-VQA's questions all need eyes
    "does the image contain a circle?",
])
def test_questions_about_appearance_need_a_vlm(prompt):
    assert classify(prompt) == LOOK


@pytest.mark.parametrize("prompt", [
    "What is the total amount on this receipt?",
    "What date is printed on the ticket in the image?",
    "When does the gate close?",
    "How much was the muffin?",
    "What is this receipt's total?",  # "what is this" only means LOOK when it is the whole question
    "Which platform does the train leave from?",
])
def test_other_questions_are_answered_from_the_text(prompt):
    assert classify(prompt) == READ
