"""Personal data: a planted set of emails, phone and card numbers leaves nothing behind after
mask(); ordinary text and code are left alone; kinds are selectable; the engine is thread-safe."""

import importlib.util
import random
import threading

import pytest

if importlib.util.find_spec("presidio_analyzer") is None:  # checked without importing it (seconds)
    pytest.skip("needs presidio-analyzer: pip install 'aeth[safety]'", allow_module_level=True)

from aeth.errors import AethError
from aeth.safety import pii

EMAILS = [
    "jane.doe@example.com", "j.smith+newsletter@mail.co.uk", "ana_maria@uni-heidelberg.de", "Bob.Jones@Example.ORG",
    "x9@sub.domain.example.io", "o'connor@example.ie", "li.wei@company.cn", "first-last@startup.dev",
    "support+ticket-4821@shop.example.net", "m.rossi@libero.it", "user123@gmail.com", "a.b.c.d@my-domain.fr",
]
PHONES = [  # US formats, then international ones
    "(415) 555-2671", "415-555-2671", "415.555.2671", "+1 415 555 2671", "+1-415-555-2671", "+14155552671",
    "1 (415) 555-2671", "(212) 555-0187", "646-555-0143", "(646)555-0143", "+1.646.555.0143", "1-800-555-0199",
    "+1 604 555 0134", "+44 20 7946 0958", "+442079460958", "020 7946 0958", "+44 7911 123456", "07911 123456",
    "+33 6 12 34 56 78", "+33612345678", "06 12 34 56 78", "+49 30 901820", "+49 151 23456789",
    "+49 (0)30 901820", "+91 98765 43210", "+61 2 9374 4000", "+81 3-1234-5678", "+55 11 91234-5678",
    "+34 612 34 56 78", "+39 06 6982 0000", "+353 1 234 5678", "+31 20 123 4567", "+65 6123 4567",
    "+86 10 1234 5678", "+27 21 123 4567", "+7 495 123-45-67",
]
TEMPLATES = [
    "Hi, this is Jane. Email me at {email} or call {phone}. My card is {card}, exp 09/28.",
    "Contact: {email} | Tel: {phone} | Payment: {card}",
    "please charge {card} and send the receipt to {email}; questions? ring {phone} anytime",
    "My details: phone {phone}, mail {email}, visa {card}. Thanks!",
    "Order for Mr. Smith -- billing card {card} -- reach him on {phone} or <{email}>",
    "{email} wrote: my new number is {phone} and the card ending 4242 is wrong, use {card} instead",
]


def _luhn_complete(prefix: str, length: int, rng: random.Random) -> str:
    digits = prefix + "".join(str(rng.randrange(10)) for _ in range(length - len(prefix) - 1))
    total = 0
    for i, d in enumerate(reversed(digits)):  # the check digit will sit to the right of these
        n = int(d) * (2 if i % 2 == 0 else 1)
        total += n - 9 if n > 9 else n
    return digits + str((10 - total % 10) % 10)


def _cards(n: int) -> list[str]:
    """Valid (Luhn) card numbers of the main networks, written with spaces, dashes or nothing."""
    rng = random.Random(14)
    kinds = [("4", 16), ("51", 16), ("55", 16), ("2221", 16), ("2720", 16), ("6011", 16), ("34", 15), ("37", 15)]
    out = []
    for i in range(n):
        prefix, length = kinds[i % len(kinds)]
        number = _luhn_complete(prefix, length, rng)
        groups = [number[:4], number[4:10], number[10:]] if length == 15 else [number[j:j + 4] for j in range(0, 16, 4)]
        out.append([" ", "-", ""][i % 3].join(groups))
    return out


def _planted():
    cards = _cards(len(PHONES))
    return [(TEMPLATES[i % len(TEMPLATES)].format(email=EMAILS[i % len(EMAILS)], phone=phone, card=cards[i]),
             [EMAILS[i % len(EMAILS)], phone, cards[i]])
            for i, phone in enumerate(PHONES)]


PLANTED = _planted()

BENIGN = [
    "We now require Python 3.11.7 or newer.", "Released on 2024-01-15.", "Tested on Python 3.12 and 3.13.",
    "The table has 1,000,000 rows.", "Your order #A-10293 has shipped.", "2024-01-15T10:30:00Z", "Meeting at 10:30.",
    "It costs $1,299.99 before tax.", "pip install numpy==1.26.4 torch==2.13.0",
    "Listening on 127.0.0.1:8080 and 0.0.0.0:5432", "postgres://localhost:5432/app", "MAX = 2147483647  # INT_MAX",
    "created_at = 1700000000", "ts_ms = 1700000000123", "commit 4e1243bd22c66e76c2ba9eddc1f91394e57f9f83",
    "id = '123e4567-e89b-12d3-a456-426614174000'", "color: #ff00aa; margin: 0 12px 4px 8px;",
    "x = 1e-9; y = 3.14159265358979", "for i in range(1, 10001): s += i * i", "HTTP/1.1 404 Not Found",
    "ISBN 978-3-16-148410-0", "v2.3.4-rc.1", "Error at line 1234, column 56", "MOD = 1_000_000_007",
    "MOD = 1000000007", "print(9876543210 // 7)", "np.random.seed(20240115)", "batch 128, lr 3e-4, steps 10000, seed 42",
    "git clone git@github.com:org/repo.git", "user@localhost", "Chapter 12.3.4 of the manual",
    "uint64 max is 18446744073709551615", "Invoice INV-2024-000123 totals 4,250.00 EUR", "Ubuntu 22.04.3 LTS",
    "Coordinates 37.7749, -122.4194", "10.0.0.0/8 and 192.168.1.0/24", "ports 8000-8080", "zip 94103",
    "4111 1111 1111 1112 fails the Luhn check", "ID 123456789", "Numbers: 555-1234",
    "def area(r: float) -> float:\n    return 3.14159 * r ** 2  # r in metres, e.g. area(2.5) == 19.63",
]


def leaks(value: str, masked: str) -> list[str]:
    """The pieces of ``value`` (the whole, and every 6 characters of it) still in ``masked``."""
    return [p for p in [value] + [value[i:i + 6] for i in range(len(value) - 5)] if p in masked]


def test_nothing_planted_survives_mask():
    assert len(PLANTED) >= 30
    survived = []
    for text, values in PLANTED:
        masked, findings = pii.mask(text)
        survived += [(v, masked) for v in values if leaks(v, masked)]
        assert {"EMAIL", "PHONE", "CARD"} <= {f.kind for f in findings}, text
    assert survived == []


def test_findings_point_at_the_values_and_placeholders_replace_them():
    text, (email, phone, card) = PLANTED[0]
    masked, findings = pii.mask(text)
    assert [(f.kind, f.text) for f in findings] == [("EMAIL", email), ("PHONE", phone), ("CARD", card)]
    assert all(text[f.start:f.end] == f.text for f in findings)
    assert masked == text.replace(email, "<EMAIL>").replace(phone, "<PHONE>").replace(card, "<CARD>")


@pytest.mark.parametrize("text", BENIGN)
def test_ordinary_text_and_code_are_left_alone(text):
    assert pii.find(text) == []
    assert pii.mask(text) == (text, [])


def test_bare_digits_count_as_a_phone_number_only_with_a_phone_word_or_in_strict_mode():
    assert pii.find("x = 4155552671") == []
    assert [f.text for f in pii.find("call me at 4155552671 tonight")] == ["4155552671"]
    assert [f.kind for f in pii.find("x = 4155552671", strict=True)] == ["PHONE"]
    assert [f.text for f in pii.find("host 127.0.0.1", strict=True)] == ["127.0.0.1"]


def test_other_kinds_and_kind_selection():
    text = "IBAN GB82 WEST 1234 5698 7654 32, SSN 536-22-1457, from 8.8.4.4, mail a@example.com"
    assert [f.kind for f in pii.find(text)] == ["IBAN", "SSN", "IP", "EMAIL"]
    masked, findings = pii.mask(text, kinds=["EMAIL", "IP"])
    assert masked == "IBAN GB82 WEST 1234 5698 7654 32, SSN 536-22-1457, from <IP>, mail <EMAIL>"
    assert pii.find(text, kinds=[]) == []
    with pytest.raises(AethError, match="unknown personal-data kind.*PASSPORT.*known kinds: EMAIL"):
        pii.find(text, kinds=["PASSPORT"])


def test_overlapping_matches_become_one_span_covering_all():
    findings = [pii.Finding("PHONE", 5, 12, 0.4, ""), pii.Finding("CARD", 8, 20, 1.0, ""),
                pii.Finding("EMAIL", 30, 40, 1.0, "")]
    text = "x" * 50
    merged = pii._merge(findings, text)
    assert [(f.kind, f.start, f.end) for f in merged] == [("CARD", 5, 20), ("EMAIL", 30, 40)]


def test_concurrent_first_callers_build_one_engine_and_get_the_same_answers_as_one(monkeypatch):
    texts = [t for t, _ in PLANTED]
    expected = [pii.mask(t) for t in texts]
    builds = []
    build = pii._build_engine
    monkeypatch.setattr(pii, "_build_engine", lambda: builds.append(1) or build())
    monkeypatch.setattr(pii, "_engine", None)  # the next callers race to build it
    results, errors = {}, []
    start = threading.Barrier(4)

    def work(i):
        try:
            start.wait()
            results[i] = [pii.mask(t) for t in texts]
        except Exception as e:  # reported by the assertion below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and len(builds) == 1
    assert len(results) == 4 and all(r == expected for r in results.values())


def test_the_engine_builds_and_runs_without_the_network_or_a_spacy_model(monkeypatch):
    import requests
    import spacy.cli

    calls = []
    monkeypatch.setattr(requests.sessions.Session, "request", lambda *a, **k: calls.append(a) or 1 / 0)
    monkeypatch.setattr(spacy.cli, "download", lambda *a, **k: calls.append(a) or 1 / 0)
    monkeypatch.setattr(pii, "_engine", None)
    assert [f.kind for f in pii.find("write to jane.doe@example.com")] == ["EMAIL"]
    assert calls == []
