"""Secrets in text (API keys, tokens, private keys, passwords in URLs): find them, or mask them
in an answer before it is shown or stored.

Detection is detect-secrets' plugins and false-positive filters, run line by line through its
ad-hoc scanner (``detect_secrets.core.scan.scan_line``) under ``transient_settings``. Three
things detect-secrets does that a masker must not inherit:

- A plugin reports a value, not a position, and not always the whole secret: a GitHub token
  comes back as ``ghp``, a JWT without its signature, a private key as the words ``BEGIN RSA
  PRIVATE KEY``. Each value is found in its line and widened to the whole token around it, and
  a private key to its ``-----END ...-----`` line (to the end of the text if there is none).
- Its ad-hoc scanner reports every word of a line as a "high entropy string" candidate, leaving
  the entropy limit to its command line; the limit is applied here.
- Some plugins can "verify" a secret by sending it to its service; that filter is never enabled,
  so scanning never touches the network.

By default only the detectors of named formats run (AWS, GitHub, GitLab, Slack, Stripe, OpenAI,
npm, PyPI, ... keys and tokens, JWTs, private keys, ``user:password@`` in URLs): each matches a
shape that is a secret wherever it appears. Two generic detectors are opt-in, because in code
answers they mostly find what is meant to be there:

- ``keywords=True``: a quoted value assigned to a name like password, secret, api_key or token
  (detect-secrets' KeywordDetector). It also flags placeholders (``"changeme"``, ``"sk-..."``,
  ``"xxxxxxxx"``) and plain names (``secret_name = "prod/db"``).
- ``entropy=True``: random-looking strings (Base64 above 4.5 bits a character, hex above 3.0,
  detect-secrets' defaults). It flags every git and content hash, pinned ``--hash=sha256:...``
  requirement lines, image digests and base64 test data.

detect-secrets' public-IP plugin is off: addresses are personal data (:mod:`aeth.safety.pii`).

detect-secrets keeps its settings in one process-wide object, so scans hold a lock and run one at
a time; code elsewhere in the process that uses detect-secrets while a scan runs sees its settings.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass

from aeth.errors import AethError

__all__ = ["Finding", "find", "mask", "placeholder"]

#: detect-secrets' secret type -> aeth's kind (unknown types get a slug of their own name).
_KINDS = {
    "AWS Access Key": "aws-key",
    "Artifactory Credentials": "artifactory-token",
    "Azure Storage Account access key": "azure-storage-key",
    "Base64 High Entropy String": "high-entropy",
    "Basic Auth Credentials": "basic-auth",
    "Cloudant Credentials": "cloudant-credentials",
    "Discord Bot Token": "discord-token",
    "GitHub Token": "github-token",
    "GitLab Token": "gitlab-token",
    "Hex High Entropy String": "high-entropy",
    "IBM COS HMAC Credentials": "ibm-cos-hmac",
    "IBM Cloud IAM Key": "ibm-cloud-key",
    "JSON Web Token": "jwt",
    "Mailchimp Access Key": "mailchimp-key",
    "NPM tokens": "npm-token",
    "OpenAI Token": "openai-key",
    "Private Key": "private-key",
    "PyPI Token": "pypi-token",
    "Secret Keyword": "credential",
    "SendGrid API Key": "sendgrid-key",
    "Slack Token": "slack-token",
    "SoftLayer Credentials": "softlayer-credentials",
    "Square OAuth Secret": "square-oauth",
    "Stripe Access Key": "stripe-key",
    "Telegram Bot Token": "telegram-token",
    "Twilio API Key": "twilio-key",
}
_GENERIC = ("high-entropy", "credential")  # when findings overlap, a named format wins over these
_OFF = {"IPPublicDetector"}
_KEYWORD = "KeywordDetector"
_ENTROPY = {"Base64HighEntropyString": 4.5, "HexHighEntropyString": 3.0}  # detect-secrets' defaults
_FILTERS = [  # detect-secrets' default heuristics that apply to text (not to file names)
    "detect_secrets.filters.heuristic.is_sequential_string",
    "detect_secrets.filters.heuristic.is_potential_uuid",
    "detect_secrets.filters.heuristic.is_likely_id_string",
    "detect_secrets.filters.heuristic.is_templated_secret",
    "detect_secrets.filters.heuristic.is_prefixed_with_dollar_sign",
    "detect_secrets.filters.heuristic.is_indirect_reference",
    "detect_secrets.filters.heuristic.is_not_alphanumeric_string",
]
_RIGHT = re.compile(r"[A-Za-z0-9_\-.+/=]*")  # a token goes on through these (a JWT's dots, base64's =)
_LEFT = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-+/")  # not `=`: `password=...`
_KEY_END = re.compile(r"-----END [^\n]*?-----|^Private-MAC: [^\n]*", re.MULTILINE)

_lock = threading.Lock()


@dataclass(frozen=True)
class Finding:
    """One secret: ``text[start:end]`` holds it (the whole block for a private key) and begins on
    1-based ``line``. ``kind`` is aeth's name, ``detector`` detect-secrets' secret type. The value
    itself is not kept, so a finding can be logged."""

    kind: str
    line: int
    start: int
    end: int
    detector: str


def placeholder(kind: str) -> str:
    """What :func:`mask` writes in place of a secret of ``kind``: ``<SECRET:aws-key>``, ..."""
    return f"<SECRET:{kind}>"


def find(text: str, *, keywords: bool = False, entropy: bool = False) -> list[Finding]:
    """Secrets in ``text``, in order, not overlapping (overlapping matches are merged into one
    finding that covers them all). ``keywords``, ``entropy``: also run the generic detectors (see
    the module docstring for why they are off by default)."""
    if not text:
        return []
    lines = text.splitlines(keepends=True)
    offsets = [0]
    for line in lines:
        offsets.append(offsets[-1] + len(line))
    found = []
    for n, detector, value in _scan([line.rstrip("\r\n") for line in lines], keywords, entropy):
        kind = _KINDS.get(detector) or re.sub(r"[^a-z0-9]+", "-", detector.lower()).strip("-")
        for start, end in _spans(text, offsets[n - 1], lines[n - 1].rstrip("\r\n"), value, kind):
            found.append(Finding(kind, n, start, end, detector))
    return _merge(found)


def mask(text: str, *, keywords: bool = False, entropy: bool = False) -> tuple[str, list[Finding]]:
    """``text`` with each secret of :func:`find` replaced by :func:`placeholder` of its kind, and
    the findings (offsets into the original ``text``)."""
    findings = find(text, keywords=keywords, entropy=entropy)
    parts, at = [], 0
    for f in findings:
        parts += [text[at:f.start], placeholder(f.kind)]
        at = f.end
    parts.append(text[at:])
    return "".join(parts), findings


def _scan(lines: list[str], keywords: bool, entropy: bool) -> list[tuple[int, str, str]]:
    """(1-based line, detect-secrets type, reported value) for each secret detect-secrets finds."""
    try:
        from detect_secrets.core.plugins.util import get_mapping_from_secret_type_to_class
        from detect_secrets.core.scan import scan_line
        from detect_secrets.settings import get_plugins, transient_settings
    except ImportError as e:
        raise AethError(f"secret detection needs detect-secrets ({e.name} is missing): pip install 'aeth[safety]'") from None
    names = [cls.__name__ for cls in get_mapping_from_secret_type_to_class().values()]
    names = [n for n in names if n not in _OFF and (entropy or n not in _ENTROPY) and (keywords or n != _KEYWORD)]
    plugins = [{"name": n, **({"limit": _ENTROPY[n]} if n in _ENTROPY else {})} for n in names]
    config = {"plugins_used": plugins, "filters_used": [{"path": p} for p in _FILTERS]}
    out = []
    with _lock, transient_settings(config):
        limits = {p.secret_type: p for p in get_plugins() if type(p).__name__ in _ENTROPY}
        for n, line in enumerate(lines, 1):
            for secret in scan_line(line):
                plugin = limits.get(secret.type)
                # scan_line's search without quotes reports every word, its entropy unchecked
                if plugin is not None and plugin.calculate_shannon_entropy(secret.secret_value) <= plugin.entropy_limit:
                    continue
                out.append((n, secret.type, secret.secret_value))
    return out


def _spans(text: str, line_start: int, line: str, value: str | None, kind: str) -> list[tuple[int, int]]:
    """Where ``value`` sits in ``line`` (every occurrence), widened to the whole secret; the whole
    line when the value cannot be found in it."""
    at = line.find(value) if value else -1
    if at < 0:
        return [(line_start, line_start + len(line))]
    spans = []
    while at >= 0:
        start, end = at, at + len(value)
        while start > 0 and line[start - 1] in _LEFT:
            start -= 1
        end += len(_RIGHT.match(line, end).group())
        if kind == "private-key":  # the header is all detect-secrets reports: mask to the footer
            close = _KEY_END.search(text, line_start + end)
            spans.append((line_start + start, close.end() if close else len(text)))
        else:
            spans.append((line_start + start, line_start + end))
        at = line.find(value, at + len(value))
    return spans


def _merge(found: list[Finding]) -> list[Finding]:
    """Overlapping findings become one covering their union; a named format names it."""
    out: list[Finding] = []
    group: list[Finding] = []

    def close():
        if group:
            best = min(group, key=lambda f: (f.kind in _GENERIC, f.kind == "high-entropy", -(f.end - f.start)))
            start, end = min(f.start for f in group), max(f.end for f in group)
            out.append(Finding(best.kind, min(f.line for f in group), start, end, best.detector))

    for f in sorted(found, key=lambda f: (f.start, -f.end)):
        if group and f.start < max(g.end for g in group):
            group.append(f)
        else:
            close()
            group = [f]
    close()
    return out
