"""Safety: detection of personal data and secrets in text, for the content policies (issue 14).

- ``aeth.safety.pii``: emails, phone and card numbers, IBANs, IP addresses and US SSNs, found by
  presidio-analyzer's pattern recognizers and masked as ``<EMAIL>``, ``<PHONE>``, ...
- ``aeth.safety.secrets``: API keys, tokens, private keys and credentials in URLs, found by
  detect-secrets' plugins and masked as ``<SECRET:kind>``.

Both need the ``aeth[safety]`` extra and load their libraries on first use, so importing this
package (or either module) costs nothing.
"""
