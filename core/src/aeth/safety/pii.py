"""Personal data in text: find it, or mask it before an interaction or a dataset is stored.

Detection is presidio-analyzer's predefined pattern recognizers (emails with a public-suffix
check, phone numbers through Google's libphonenumber, Luhn-checked card numbers, checksummed
IBANs, IP addresses, US SSNs), run by an ``AnalyzerEngine`` over presidio's ``NoOpNlpEngine``:
no spaCy model is loaded or downloaded (presidio's default engine would download
en_core_web_lg). aeth names the kinds itself (:data:`KINDS`), so a policy file does not depend
on presidio's entity names.

Two rules of aeth's own remove the false positives code answers are full of, unless
``strict=True``:

- a phone number written as a bare run of digits (``2147483647``, a Unix time ``1700000000``)
  counts only with a phone word (phone, call, mobile, ...) shortly before it; any number with a
  ``+``, spaces, dashes, dots or parentheses counts always;
- an IP address counts only when it is globally routable (not 127.0.0.1, 10.x, 192.168.x, ...);
- ``git@host:`` (an SSH remote such as ``git@github.com:org/repo.git``) is not an email.

Phone numbers are matched with libphonenumber's STRICT_GROUPING leniency rather than presidio's
default VALID: a valid number must also be grouped the way it is written in its country, which
drops ``2024-000123``, ``37.7749`` and ``192.168.1.0/24`` and keeps every real format tried.

The engine is built on first use (importing presidio takes seconds: it imports spaCy, and
transformers and torch when they are installed), once per process, under a lock; :func:`warm`
builds it ahead of time. Built, it is safe to call from several threads at once.
"""

from __future__ import annotations

import ipaddress
import re
import threading
from dataclasses import dataclass
from typing import Any

from aeth.errors import AethError

__all__ = ["DEFAULT_KINDS", "KINDS", "Finding", "find", "mask", "placeholder", "warm"]

#: aeth's kind -> presidio's entity name.
_ENTITIES = {
    "EMAIL": "EMAIL_ADDRESS",
    "PHONE": "PHONE_NUMBER",
    "CARD": "CREDIT_CARD",
    "IBAN": "IBAN_CODE",
    "IP": "IP_ADDRESS",
    "SSN": "US_SSN",
}
_KIND_OF = {entity: kind for kind, entity in _ENTITIES.items()}

#: Every kind this module can find.
KINDS: tuple[str, ...] = tuple(_ENTITIES)
#: The kinds found when ``kinds`` is None.
DEFAULT_KINDS: tuple[str, ...] = KINDS

# presidio's own scores: validated emails, cards and IBANs 1.0, IPs 0.6, phones 0.4, a
# formatted SSN 0.5; below 0.4 are its "very weak" SSN patterns (any 9 digits), noise in code.
_MIN_SCORE = 0.4
# The words presidio's PhoneRecognizer uses as context, plus a few; looked for just before a bare
# run of digits, since the no-op NLP engine gives presidio's own context step no tokens.
_PHONE_WORDS = re.compile(
    r"\b(phone|telephone|tel|cell|cellphone|mobile|call|number|fax|sms|whatsapp|contact|reach|dial)\b", re.IGNORECASE)
_PHONE_WINDOW = 40  # characters before the number

_engine: Any = None
_lock = threading.Lock()


@dataclass(frozen=True)
class Finding:
    """One piece of personal data: ``text[start:end]`` is ``text``, of ``kind`` (one of :data:`KINDS`)."""

    kind: str
    start: int
    end: int
    score: float
    text: str


def placeholder(kind: str) -> str:
    """What :func:`mask` writes in place of a finding of ``kind``: ``<EMAIL>``, ``<PHONE>``, ``<CARD>``, ..."""
    return f"<{kind}>"


def warm() -> None:
    """Build the engine now (seconds, once per process) rather than on the first :func:`find`."""
    _get_engine()


def find(text: str, kinds: list[str] | tuple[str, ...] | None = None, *, strict: bool = False) -> list[Finding]:
    """Personal data in ``text``, in order, not overlapping (overlapping matches are merged into
    one finding that covers them all, of the kind scored highest).

    ``kinds``: a subset of :data:`KINDS` (default :data:`DEFAULT_KINDS`). ``strict``: also report
    bare digit runs with no phone word near them and non-global IP addresses.
    """
    wanted = _check_kinds(kinds)
    if not text or not wanted:
        return []
    results = _get_engine().analyze(text, language="en", entities=[_ENTITIES[k] for k in wanted],
                                    score_threshold=_MIN_SCORE)
    found = []
    for r in results:
        kind = _KIND_OF.get(r.entity_type)
        if kind not in wanted:
            continue
        span = text[r.start:r.end]
        if not strict and not _counts(kind, span, text, r.start):
            continue
        found.append(Finding(kind, r.start, r.end, float(r.score), span))
    return _merge(found, text)


def mask(text: str, kinds: list[str] | tuple[str, ...] | None = None, *,
         strict: bool = False) -> tuple[str, list[Finding]]:
    """``text`` with each finding of :func:`find` replaced by :func:`placeholder` of its kind,
    and the findings (offsets into the original ``text``)."""
    findings = find(text, kinds, strict=strict)
    parts, at = [], 0
    for f in findings:
        parts += [text[at:f.start], placeholder(f.kind)]
        at = f.end
    parts.append(text[at:])
    return "".join(parts), findings


def _check_kinds(kinds) -> tuple[str, ...]:
    if kinds is None:
        return DEFAULT_KINDS
    if isinstance(kinds, str):
        kinds = [kinds]
    unknown = [k for k in kinds if k not in _ENTITIES]
    if unknown:
        raise AethError(f"unknown personal-data kind(s) {', '.join(map(repr, unknown))}; "
                        f"known kinds: {', '.join(KINDS)}")
    return tuple(dict.fromkeys(kinds))


def _counts(kind: str, span: str, text: str, start: int) -> bool:
    """aeth's false-positive rules (see the module docstring)."""
    if kind == "PHONE" and span.strip("()").isdigit():
        return _PHONE_WORDS.search(text, max(0, start - _PHONE_WINDOW), start) is not None
    if kind == "EMAIL" and span.startswith("git@") and text[start + len(span):start + len(span) + 1] == ":":
        return False
    if kind == "IP":
        try:
            return ipaddress.ip_interface(span).ip.is_global
        except ValueError:
            return True
    return True


def _merge(found: list[Finding], text: str) -> list[Finding]:
    """Overlapping findings become one covering their union: masking must leave no piece behind."""
    out: list[Finding] = []
    group: list[Finding] = []

    def close():
        if group:
            best = max(group, key=lambda f: (f.score, f.end - f.start))
            start, end = min(f.start for f in group), max(f.end for f in group)
            out.append(Finding(best.kind, start, end, best.score, text[start:end]))

    for f in sorted(found, key=lambda f: (f.start, -f.end)):
        if group and f.start < max(g.end for g in group):
            group.append(f)
        else:
            close()
            group = [f]
    close()
    return out


def _get_engine():
    global _engine
    if _engine is None:
        with _lock:
            if _engine is None:
                engine = _build_engine()
                # The first analysis compiles presidio's regexes, loads the public-suffix list and
                # phonenumbers' metadata: done here, under the lock, not raced by the first callers.
                engine.analyze("mail a.b@example.com, call +1 415 555 2671, card 4111 1111 1111 1111, "
                               "IBAN DE89 3704 0044 0532 0130 00, 8.8.8.8, 536-22-1457", language="en")
                _engine = engine
    return _engine


def _build_engine():
    try:
        import tldextract
        from presidio_analyzer import AnalyzerEngine, Pattern, RecognizerRegistry
        from presidio_analyzer.nlp_engine import NoOpNlpEngine
        from presidio_analyzer.predefined_recognizers import (
            CreditCardRecognizer,
            EmailRecognizer,
            IbanRecognizer,
            IpRecognizer,
            PhoneRecognizer,
            UsSsnRecognizer,
        )
    except ImportError as e:
        raise AethError(f"personal-data detection needs presidio-analyzer ({e.name} is missing): "
                        "pip install 'aeth[safety]'") from None

    # presidio checks an email's domain with tldextract's module-level extractor, which fetches the
    # public-suffix list over HTTP on first use (and caches it under ~/.cache). This one uses the
    # snapshot tldextract ships: no network, no files written.
    offline = tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None, fallback_to_snapshot=True)

    class OfflineEmailRecognizer(EmailRecognizer):
        def validate_result(self, pattern_text: str) -> bool:
            return offline(pattern_text).fqdn != ""

    # presidio's card pattern knows Mastercard's 51-55 range, not its 2221-2720 range (issued since
    # 2017); added here as one more pattern, Luhn-checked by the recognizer like the others.
    card_patterns = [*CreditCardRecognizer.PATTERNS,
                     Pattern("Mastercard 2-series (weak)", r"\b2(?:22[1-9]|2[3-9]\d|[3-6]\d\d|7[01]\d|720)[- ]?\d{4}[- ]?\d{4}[- ]?\d{4}\b", 0.3)]
    recognizers = [OfflineEmailRecognizer(), PhoneRecognizer(leniency=2), CreditCardRecognizer(patterns=card_patterns),
                   IbanRecognizer(), IpRecognizer(), UsSsnRecognizer()]
    registry = RecognizerRegistry(recognizers=recognizers, supported_languages=["en"])
    nlp = NoOpNlpEngine(models=[{"lang_code": "en", "model_name": "none"}])
    return AnalyzerEngine(registry=registry, nlp_engine=nlp, supported_languages=["en"])
