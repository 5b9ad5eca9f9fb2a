"""Which database a ``store.url`` names: unset means SQLite in ``$AETH_HOME``. No SQLAlchemy here,
so configuration can check a URL without importing it."""

from __future__ import annotations

import re
from pathlib import Path

from aeth.store.errors import StoreError

#: the SQLite file inside ``$AETH_HOME`` when ``store.url`` is unset
SQLITE_FILE = "aeth.db"
#: what ``store.url`` may be, for error messages
ACCEPTED = ("unset (SQLite at $AETH_HOME/aeth.db), sqlite:///PATH (a SQLite file), or "
            "postgresql+psycopg://USER[:PASSWORD]@HOST[:PORT]/DATABASE")


def problem(url: str) -> str | None:
    """Why ``url`` is not a database URL aeth can use, or ``None`` when it is."""
    if not isinstance(url, str) or not url.strip():
        return f"must be {ACCEPTED}"
    url = url.strip()
    if url.startswith("sqlite:///"):
        return None if len(url) > len("sqlite:///") else "sqlite:/// needs a file path, e.g. sqlite:////srv/aeth/aeth.db"
    scheme, sep, rest = url.partition("://")
    if scheme in ("postgresql+psycopg", "postgresql", "postgres"):
        return None if sep and rest else "a PostgreSQL URL needs a host and database, e.g. postgresql+psycopg://aeth@db:5432/aeth"
    if scheme.startswith(("postgresql+", "postgres+")):
        return f"driver {scheme.split('+', 1)[1]!r} is not supported: use postgresql+psycopg:// (psycopg 3)"
    return f"must be {ACCEPTED} ({scheme!r} databases are not supported)" if sep and scheme else f"must be {ACCEPTED}"


def resolve(url: str | None, home: Path | str | None) -> str:
    """The SQLAlchemy URL for ``url`` (``None``: SQLite at ``home/aeth.db``), or a :class:`StoreError`
    naming ``store.url`` and the accepted forms."""
    if url is None or (isinstance(url, str) and not url.strip()):
        if home is None:
            raise StoreError("no database: store.url is unset and no home directory was given")
        return f"sqlite:///{Path(home).expanduser() / SQLITE_FILE}"
    why = problem(url)
    if why:
        raise StoreError(f"store.url {redact(str(url))!r} {why}")
    url = url.strip()
    scheme, _, rest = url.partition("://")
    if scheme in ("postgresql", "postgres"):
        return "postgresql+psycopg://" + rest
    return url


def redact(url: str) -> str:
    """``url`` with its password hidden, for messages."""
    return re.sub(r"(://[^:/@]+:)[^@]*@", r"\1***@", url)


def sqlite_path(url: str) -> Path | None:
    """The file a ``sqlite:///`` URL names, else ``None``."""
    return Path(url[len("sqlite:///"):]) if url.startswith("sqlite:///") else None
