"""API keys: created with a secret shown once, stored as its SHA-256, verified in constant time."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable
from datetime import timedelta
from typing import Any

from aeth.store.errors import KeyNameTaken, StoreError, UnknownKey
from aeth.store.rows import ApiKey, as_utc, new_id, utcnow

#: every secret starts with this, so a leaked one is recognisable (secret scanners, logs)
SECRET_PREFIX = "aeth-"
#: characters of the secret kept in clear to tell keys apart ("aeth-" and four more)
DISPLAY_CHARS = 9
#: ``last_used`` is written at most this often per key, so verifying a key is not a write per request
LAST_USED_EVERY = timedelta(seconds=60)


def hash_secret(secret: str) -> str:
    """The SHA-256 hex digest stored for ``secret``."""
    return hashlib.sha256(secret.encode("utf-8", errors="surrogatepass")).hexdigest()


def create(engine: Any, name: str, rpm: int | None, tpm: int | None,
           specialists: Iterable[str] | str | None) -> tuple[ApiKey, str]:
    """Insert a new key; return it and its secret (``aeth-`` + 43 URL-safe characters, 256 random bits)."""
    from sqlalchemy import insert
    from sqlalchemy.exc import IntegrityError

    from aeth.store.schema import api_keys

    name = (name or "").strip()
    if not name or len(name) > 200:
        raise StoreError("an API key needs a name of 1 to 200 characters, e.g. `aeth keys create my-app`")
    for what, limit in (("rpm", rpm), ("tpm", tpm)):
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
            raise StoreError(f"{what} must be a positive whole number (or unset for no limit), got {limit!r}")
    if isinstance(specialists, str):
        specialists = [s.strip() for s in specialists.split(",") if s.strip()]
    elif specialists is not None:
        specialists = [str(s).strip() for s in specialists if str(s).strip()]
    if specialists is not None and not specialists:
        raise StoreError("--specialists names none: give comma-separated names, e.g. coding,writing, or leave it out for all")
    secret = SECRET_PREFIX + secrets.token_urlsafe(32)
    key = ApiKey(id=new_id(), name=name, prefix=secret[:DISPLAY_CHARS], rpm=rpm, tpm=tpm, specialists=specialists,
                 created=utcnow())
    try:
        with engine.begin() as conn:
            conn.execute(insert(api_keys).values(id=key.id, name=key.name, prefix=key.prefix, hash=hash_secret(secret),
                                                 rpm=rpm, tpm=tpm, specialists=specialists, created=key.created))
    except IntegrityError:
        raise KeyNameTaken(f"an active API key is already called {name!r}: pick another name, or revoke it first "
                           f"(`aeth keys revoke {name}`)") from None
    return key, secret


def listing(engine: Any, include_revoked: bool) -> list[ApiKey]:
    """Keys, oldest first."""
    from sqlalchemy import select

    from aeth.store.schema import api_keys

    query = select(api_keys).order_by(api_keys.c.created, api_keys.c.id)
    if not include_revoked:
        query = query.where(api_keys.c.revoked.is_(None))
    with engine.connect() as conn:
        return [_key(r) for r in conn.execute(query).mappings()]


def revoke(engine: Any, name_or_id: str) -> ApiKey:
    """Revoke the active key named ``name_or_id`` (else the key with that id)."""
    from sqlalchemy import or_, select, update

    from aeth.store.schema import api_keys

    with engine.begin() as conn:
        rows = conn.execute(select(api_keys).where(or_(api_keys.c.name == name_or_id, api_keys.c.id == name_or_id))
                            .order_by(api_keys.c.revoked.is_(None).desc())).mappings().all()
        active = [r for r in rows if r["revoked"] is None]
        if not active:
            known = "it is already revoked" if rows else "no key has that name or id"
            raise UnknownKey(f"cannot revoke API key {name_or_id!r}: {known} (see `aeth keys list --all`)")
        row = active[0]
        now = utcnow()
        conn.execute(update(api_keys).where(api_keys.c.id == row["id"]).values(revoked=now))
    key = _key(row)
    key.revoked = now
    return key


def verify(engine: Any, writer: Any, secret: str) -> ApiKey | None:
    """The active key whose secret is ``secret``, else ``None``; notes when it was last used."""
    from sqlalchemy import select, update

    from aeth.store.schema import api_keys

    if not isinstance(secret, str) or not secret:
        return None
    digest = hash_secret(secret)
    with engine.connect() as conn:
        row = conn.execute(select(api_keys).where(api_keys.c.hash == digest)).mappings().first()
    # the lookup finds the row by the digest; comparing again in constant time keeps the decision
    # itself from depending on how much of a guess was right
    if row is None or not hmac.compare_digest(row["hash"], digest) or row["revoked"] is not None:
        return None
    key = _key(row)
    now = utcnow()
    if key.last_used is None or now - key.last_used >= LAST_USED_EVERY:
        with writer.begin() as conn:
            conn.execute(update(api_keys).where(api_keys.c.id == key.id).values(last_used=now))
        key.last_used = now
    return key


def any_active(engine: Any) -> bool:
    """Whether an unrevoked key exists."""
    from sqlalchemy import select

    from aeth.store.schema import api_keys

    with engine.connect() as conn:
        return conn.execute(select(api_keys.c.id).where(api_keys.c.revoked.is_(None)).limit(1)).first() is not None


def _key(row: Any) -> ApiKey:
    return ApiKey(id=row["id"], name=row["name"], prefix=row["prefix"], rpm=row["rpm"], tpm=row["tpm"],
                  specialists=row["specialists"], created=as_utc(row["created"]), revoked=as_utc(row["revoked"]),
                  last_used=as_utc(row["last_used"]))
