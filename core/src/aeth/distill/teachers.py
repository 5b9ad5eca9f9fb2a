"""Teachers: models that answer prompts for distillation, behind one small interface.

A teacher has a registry ``name``, the ``model`` id it asks for (part of every cache key and of
the price lookup), and ``complete(messages, ...)`` returning a :class:`Completion`. Failures raise
:class:`TeacherError`, which says whether a retry may succeed (429, 5xx, timeouts, a malformed
reply) and how long the server asked to wait.
"""

from __future__ import annotations

import difflib
import json
import os
import re
import threading
import time
import weakref
from collections.abc import Mapping
from dataclasses import dataclass, field, is_dataclass, replace
from typing import Any, Protocol

from aeth.errors import AethError, ConfigError


@dataclass(frozen=True)
class Completion:
    """One teacher answer and what it cost in tokens."""

    text: str
    tokens_in: int
    tokens_out: int
    finish_reason: str  #: "stop" (ended by itself), "length" (cut by max_tokens), or the API's own word


class TeacherError(AethError):
    """A teacher request failed; ``retryable`` says whether trying again may succeed."""

    def __init__(self, message: str, *, retryable: bool, status: int | None = None, retry_after: float | None = None):
        super().__init__(message)
        self.retryable, self.status, self.retry_after = retryable, status, retry_after


class Teacher(Protocol):
    """What ``aeth distill`` needs from a teacher."""

    name: str
    model: str

    def complete(self, messages: list[dict[str, str]], *, max_tokens: int, temperature: float,
                 timeout: float) -> Completion:
        """Answer ``messages`` (chat messages, system first if any) once."""
        ...


def describe(teacher: Any) -> str:
    """``name (model)`` for messages and dataset cards."""
    return f"{teacher.name} ({teacher.model})"


# ---- HTTP teachers ---------------------------------------------------------------------------
# Plain urllib: two JSON POSTs do not justify an HTTP client dependency. The API key is read from
# the environment on every request and lives only in local variables and request headers, never
# in an attribute (so never in a repr, a pickle or a dataset card) and never in a message.

_RETRYABLE_STATUS = {408, 409, 429}  # plus every 5xx (529 is Anthropic's "overloaded")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _api_key(teacher: Any) -> str | None:
    """The key in the environment variable the teacher names (None when it names none)."""
    if not teacher.api_key_env:
        return None
    key = os.environ.get(teacher.api_key_env, "").strip()
    if not key:
        raise TeacherError(f"teacher {teacher.name!r} needs an API key in the environment variable ${teacher.api_key_env}, "
                           f"which is not set; export it, or name another variable with teachers.{teacher.name}.api_key_env",
                           retryable=False)
    return key


def _redact(text: str, key: str | None) -> str:
    return text.replace(key, "***") if key else text


def _snippet(raw: bytes | str, limit: int = 200) -> str:
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
    text = " ".join(text.split())
    return repr(text[:limit] + ("..." if len(text) > limit else ""))


def _api_message(raw: bytes) -> str:
    """The error message inside an API's error body (OpenAI, Anthropic, Ollama, FastAPI shapes), else the body."""
    try:
        data = json.loads(raw)
    except ValueError:
        return _snippet(raw) if raw.strip() else "empty body"
    if isinstance(data, dict):
        for found in (data.get("error"), data.get("detail"), data.get("message")):
            if isinstance(found, dict) and isinstance(found.get("message"), str):
                return found["message"]
            if isinstance(found, str):
                return found
    return _snippet(raw)


def _retry_after(headers: Any) -> float | None:
    """Seconds the server asked us to wait: ``retry-after-ms``, or ``Retry-After`` as seconds or an HTTP-date."""
    if headers is None:
        return None
    try:
        if headers.get("retry-after-ms"):
            return max(0.0, float(headers["retry-after-ms"]) / 1000)
        value = headers.get("Retry-After")
        if not value:
            return None
        try:
            return max(0.0, float(value))
        except ValueError:
            from datetime import datetime, timezone
            from email.utils import parsedate_to_datetime

            when = parsedate_to_datetime(value)
            if when.tzinfo is None:
                when = when.replace(tzinfo=timezone.utc)
            return max(0.0, (when - datetime.now(timezone.utc)).total_seconds())
    except (TypeError, ValueError, OverflowError):
        return None


def _http_error(teacher: Any, where: str, status: int, raw: bytes, headers: Any, key: str | None) -> TeacherError:
    message = _redact(_api_message(raw), key)
    if status in (401, 403):
        if key:
            text = f"{where} refused the API key in ${teacher.api_key_env} ({status}: {message}); check that key"
        else:
            text = (f"{where} wants an API key ({status}: {message}); put it in an environment variable and "
                    f"name that variable with teachers.{teacher.name}.api_key_env")
        return TeacherError(text, retryable=False, status=status)
    if status in _RETRYABLE_STATUS or status >= 500:
        retry_after = _retry_after(headers)
        wait = f"; it asked to wait {retry_after:g}s" if retry_after is not None else ""
        what = "is rate limiting us" if status == 429 else "is overloaded" if status == 529 else "failed"
        return TeacherError(f"{where} {what} ({status}: {message}){wait}", retryable=True, status=status, retry_after=retry_after)
    hint = f"; check the model name {teacher.model!r} and the base_url" if status == 404 else ""
    return TeacherError(f"{where} rejected the request ({status}: {message}){hint}", retryable=False, status=status)


def _network_error(where: str, error: BaseException, timeout: float) -> TeacherError:
    import http.client
    import socket
    import ssl

    if isinstance(error, TimeoutError):
        return TeacherError(f"{where} did not answer within {timeout:g}s", retryable=True)
    if isinstance(error, ConnectionRefusedError):
        return TeacherError(f"{where} refused the connection; is the server running?", retryable=True)
    if isinstance(error, socket.gaierror):
        return TeacherError(f"{where}: cannot resolve the host ({error}); check the base_url", retryable=False)
    if isinstance(error, ssl.SSLCertVerificationError):
        return TeacherError(f"{where}: TLS certificate not trusted ({error.verify_message})", retryable=False)
    if isinstance(error, (OSError, http.client.HTTPException)):
        return TeacherError(f"{where}: connection failed ({type(error).__name__}: {error})", retryable=True)
    return TeacherError(f"{where}: {error}", retryable=False)


def _post_json(teacher: Any, url: str, body: dict[str, Any], headers: dict[str, str], timeout: float,
               key: str | None) -> dict[str, Any]:
    """POST ``body`` as JSON and return the JSON object answered; every failure is a TeacherError."""
    import http.client
    import urllib.error
    import urllib.request

    where = f"teacher {teacher.name!r} at {url}"
    try:
        request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST", headers={
            "Content-Type": "application/json", "Accept": "application/json", "User-Agent": "aeth", **headers})
    except ValueError as e:  # "unknown url type" and friends
        raise TeacherError(f"{where}: bad base_url ({e})", retryable=False) from None
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            raw = response.read()
    except urllib.error.HTTPError as e:
        try:
            raw = e.read()
        except (OSError, http.client.HTTPException):
            raw = b""
        raise _http_error(teacher, where, e.code, raw, e.headers, key) from None
    except urllib.error.URLError as e:
        reason = e.reason if isinstance(e.reason, BaseException) else ValueError(str(e.reason))
        raise _network_error(where, reason, timeout) from None
    except (OSError, http.client.HTTPException) as e:  # a timeout or reset while reading the body
        raise _network_error(where, e, timeout) from None
    try:
        data = json.loads(raw)
    except ValueError:
        raise TeacherError(f"{where} sent a malformed reply: not JSON ({_redact(_snippet(raw), key)})", retryable=True) from None
    if not isinstance(data, dict):
        raise TeacherError(f"{where} sent a malformed reply: a JSON {type(data).__name__}, not an object", retryable=True)
    return data


class _Malformed(Exception):
    """A reply parsed as JSON but lacks what the API promises (turned into a retryable TeacherError)."""


def _get(data: Any, *path: str | int) -> Any:
    """``data[path[0]][path[1]]...``, or :class:`_Malformed` naming the first missing step."""
    where = ""
    for step in path:
        try:
            data = data[step]
        except (KeyError, IndexError, TypeError):
            raise _Malformed(f"no {where}{f'[{step}]' if isinstance(step, int) else ('.' if where else '') + step}") from None
        where += f"[{step}]" if isinstance(step, int) else ("." if where else "") + step
    return data


def _count(usage: Any, field_name: str) -> int:
    value = usage.get(field_name, 0) if isinstance(usage, dict) else 0
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise _Malformed(f"usage.{field_name} is {value!r}, not a token count")
    return value


@dataclass
class OpenAITeacher:
    """A chat-completions endpoint: OpenAI, any gateway speaking its API, vLLM, llama.cpp's server, Ollama.

    ``base_url`` ends where ``/chat/completions`` is appended (``https://api.openai.com/v1``,
    ``http://127.0.0.1:11434/v1``). ``api_key_env`` names the environment variable holding the
    key, read at each request and sent as a Bearer token; ``None`` sends no key (local servers).
    A server that reports no usage counts as 0 tokens.
    """

    name: str
    base_url: str
    model: str
    api_key_env: str | None = None

    def complete(self, messages: list[dict[str, str]], *, max_tokens: int, temperature: float,
                 timeout: float) -> Completion:
        """Answer ``messages`` once through ``POST {base_url}/chat/completions``."""
        key = _api_key(self)
        url = self.base_url.rstrip("/") + "/chat/completions"
        body = {"model": self.model, "messages": messages, "max_tokens": max_tokens, "temperature": temperature}
        data = _post_json(self, url, body, {"Authorization": f"Bearer {key}"} if key else {}, timeout, key)
        try:
            message = _get(data, "choices", 0, "message")
            text = message.get("content") if isinstance(message, dict) else None
            if isinstance(text, list):  # some gateways answer with content parts
                text = "".join(p.get("text", "") for p in text if isinstance(p, dict))
            if text is None and isinstance(message, dict) and isinstance(message.get("refusal"), str):
                text = message["refusal"]
            if not isinstance(text, str):
                raise _Malformed(f"choices[0].message.content is {type(text).__name__}, not text")
            usage = data.get("usage") or {}
            finish = data["choices"][0].get("finish_reason") or "stop"
            return Completion(text, _count(usage, "prompt_tokens"), _count(usage, "completion_tokens"), str(finish))
        except _Malformed as e:
            raise TeacherError(f"teacher {self.name!r} at {url} sent a malformed reply: {e}", retryable=True) from None


#: Anthropic stop reasons in aeth's words (others, like "refusal", are kept as they are)
ANTHROPIC_STOP = {"end_turn": "stop", "stop_sequence": "stop", "max_tokens": "length"}


@dataclass
class AnthropicTeacher:
    """Anthropic's native Messages API (``POST {base_url}/v1/messages``).

    System messages go to the top-level ``system`` field; the key in ``api_key_env`` is sent as
    ``x-api-key``. A ``base_url`` already ending in ``/v1`` is accepted too.
    """

    name: str
    model: str
    base_url: str = "https://api.anthropic.com"
    api_key_env: str | None = "ANTHROPIC_API_KEY"
    version: str = "2023-06-01"  #: the ``anthropic-version`` header

    def complete(self, messages: list[dict[str, str]], *, max_tokens: int, temperature: float,
                 timeout: float) -> Completion:
        """Answer ``messages`` once through the Messages API."""
        key = _api_key(self)
        base = self.base_url.rstrip("/")
        url = base + ("/messages" if base.endswith("/v1") else "/v1/messages")
        system = "\n\n".join(m["content"] for m in messages if m["role"] == "system")
        body: dict[str, Any] = {"model": self.model, "max_tokens": max_tokens, "temperature": temperature,
                                "messages": [{"role": m["role"], "content": m["content"]} for m in messages if m["role"] != "system"]}
        if system:
            body["system"] = system
        headers = {"anthropic-version": self.version, **({"x-api-key": key} if key else {})}
        data = _post_json(self, url, body, headers, timeout, key)
        try:
            blocks = _get(data, "content")
            if not isinstance(blocks, list):
                raise _Malformed(f"content is {type(blocks).__name__}, not a list of blocks")
            text = "".join(b["text"] for b in blocks if isinstance(b, dict) and b.get("type") == "text" and isinstance(b.get("text"), str))
            usage = _get(data, "usage")
            stop = data.get("stop_reason") or "stop"
            return Completion(text, _count(usage, "input_tokens"), _count(usage, "output_tokens"), ANTHROPIC_STOP.get(stop, str(stop)))
        except _Malformed as e:
            raise TeacherError(f"teacher {self.name!r} at {url} sent a malformed reply: {e}", retryable=True) from None


# ---- local teacher ---------------------------------------------------------------------------

_model_locks: weakref.WeakKeyDictionary[Any, threading.Lock] = weakref.WeakKeyDictionary()
_locks_guard = threading.Lock()


def _lock_for(model: Any) -> threading.Lock:
    """One lock per loaded model, shared by every LocalTeacher (and server) answering with it."""
    with _locks_guard:
        return _model_locks.setdefault(model, threading.Lock())


@dataclass
class LocalTeacher:
    """Any model aeth can load (built-in name, local directory, hub id), answering through aeth's
    decode loop on the shared model pool, without any specialist adapter.

    ``model_name`` is public: logit distillation loads the same model for its token
    distributions. Calls from several threads take turns on the model. ``complete`` also accepts
    ``seed`` (reproducible sampling) and ``top_p``; ``timeout`` bounds the generation itself, not
    the wait for the model, and running past it is not retryable (it would run past it again).
    """

    name: str
    model_name: str
    #: the :class:`~aeth.app.Aeth` whose model pool holds the model
    app: Any = field(default=None, repr=False, compare=False)
    local = True  #: answers on this machine: no price per token

    @property
    def model(self) -> str:
        """The model id (as every teacher has): ``model_name``."""
        return self.model_name

    def load(self) -> Any:
        """The :class:`~aeth.models.loading.LoadedModel` from the application's pool (loaded on first use)."""
        if self.app is None:
            raise AethError(f"local teacher {self.name!r} has no application to load {self.model_name!r} with; "
                            "build it as LocalTeacher(name, model, app)")
        return self.app.models.get(self.model_name)

    def complete(self, messages: list[dict[str, str]], *, max_tokens: int, temperature: float, timeout: float,
                 seed: int | None = None, top_p: float = 1.0) -> Completion:
        """Answer ``messages`` once with the local model."""
        from aeth.generation.decode import cache_settings, default_cache, stream_text
        from aeth.request import Sampling

        loaded = self.load()
        served, scope = self.app.models.with_adapter(loaded, f"teacher-{self.name}", None)  # the bare base
        sampling = Sampling(temperature=temperature, top_p=top_p, top_k=0, max_tokens=max_tokens, repetition_penalty=1.0, seed=seed)
        stats: dict[str, Any] = {}
        with _lock_for(loaded.model), scope:
            deadline = time.monotonic() + timeout
            text = "".join(stream_text(served, messages, sampling, stats, cancel=lambda: time.monotonic() > deadline,
                                       cache=default_cache(served.model, **cache_settings(self.app.config))))
        if stats["finish_reason"] == "cancelled":
            raise TeacherError(f"teacher {self.name!r} ({self.model_name}) took longer than {timeout:g}s for one answer; "
                               "give it more time or fewer max_tokens", retryable=False)
        return Completion(text, stats["tokens_in"], stats["tokens_out"], stats["finish_reason"])


@dataclass
class SpecialistTeacher:
    """One of this installation's specialists as a teacher: its active adapter version, its system
    prompt and its generation defaults answer, exactly as ``aeth run --specialist NAME`` would.

    This is how a version that ``aeth learn`` promoted teaches another specialist. ``model`` is
    ``aeth:NAME@VERSION`` (``@base`` without an adapter), fixed when the teacher is built, so the
    response cache never mixes the answers of two versions. The student's system prompt is
    replaced by the teacher's own; earlier turns are kept. Answers come in text, as from an API
    teacher (logit distillation needs a bare model: the ``local`` teacher).
    """

    name: str
    specialist: str
    app: Any = field(default=None, repr=False, compare=False)
    version: str = "base"  #: the active version when the teacher was built
    local = True  #: answers on this machine: no price per token

    @property
    def model(self) -> str:
        """``aeth:NAME@VERSION``: which specialist and version answer (part of every cache key)."""
        return f"aeth:{self.specialist}@{self.version}"

    def complete(self, messages: list[dict[str, str]], *, max_tokens: int, temperature: float, timeout: float,
                 seed: int | None = None, top_p: float | None = None) -> Completion:
        """Answer ``messages`` once as the specialist (its active version must still be ``version``)."""
        from aeth.request import Request

        active = self.app.adapters.active(self.specialist)
        if (active.version if active else "base") != self.version:
            raise TeacherError(f"teacher {self.name!r}: {self.specialist}'s active version changed from {self.version} to "
                               f"{active.version if active else 'base'} during the collection; run it again to collect "
                               "from the new version", retryable=False)
        turns = [m for m in messages if m["role"] != "system"]
        if not turns or turns[-1]["role"] != "user":
            raise TeacherError(f"teacher {self.name!r} needs messages that end with the user's turn", retryable=False)
        request = Request(prompt=turns[-1]["content"], specialist=self.specialist, history=tuple(turns[:-1]),
                          max_tokens=max_tokens, temperature=temperature, top_p=top_p, seed=seed)
        deadline = time.monotonic() + timeout
        answer = self.app.stream(request, cancel=lambda: time.monotonic() > deadline)
        answer.text()
        response = answer.response
        if response.finish_reason == "cancelled":
            raise TeacherError(f"teacher {self.name!r} ({self.model}) took longer than {timeout:g}s for one answer; "
                               "give it more time or fewer max_tokens", retryable=False)
        return Completion(response.text, response.tokens_in, response.tokens_out, response.finish_reason)


def specialist_teacher(app: Any, name: str) -> SpecialistTeacher:
    """The teacher ``specialist:NAME``: specialist NAME (which must exist) at its active version."""
    specialist = app.specialist(name).name  # raises the usual "no specialist named ..." with the list
    active = app.adapters.active(specialist)
    return SpecialistTeacher(f"specialist:{specialist}", specialist, app, active.version if active else "base")


# ---- building and finding teachers -----------------------------------------------------------

#: The teachers every installation has, as ``teachers.<name>`` entries; a config entry of the
#: same name changes single fields of one (``teachers.ollama.model: qwen2.5``).
BUILTIN_TEACHERS: dict[str, dict[str, Any]] = {
    "local": {"kind": "local"},  # model: the config's model.default
    "openai": {"kind": "openai", "base_url": "https://api.openai.com/v1", "model": "gpt-4o-mini", "api_key_env": "OPENAI_API_KEY"},
    "anthropic": {"kind": "anthropic", "base_url": "https://api.anthropic.com", "model": "claude-3-5-haiku-latest",
                  "api_key_env": "ANTHROPIC_API_KEY"},
    "ollama": {"kind": "openai", "base_url": "http://127.0.0.1:11434/v1", "model": "llama3.2", "api_key_env": None},
}
KINDS = ("openai", "anthropic", "local")
#: ``--teacher specialist:NAME``: specialist NAME's active version teaches (:class:`SpecialistTeacher`)
SPECIALIST_PREFIX = "specialist:"
FIELDS = ("kind", "base_url", "model", "api_key_env")
_SECRET_FIELDS = ("api_key", "key", "token", "secret", "password", "authorization")


def teacher_from_config(name: str, entry: Any, app: Any) -> Any:
    """The teacher described by the ``teachers.<name>`` config entry (over the built-in of that name).

    ``kind`` is openai, anthropic or local; ``model`` is required for API kinds (local defaults to
    ``app``'s ``model.default``, and loads through ``app``'s model pool); ``base_url`` defaults per kind; ``api_key_env`` names an environment
    variable (the key itself is never accepted in config). Raises one ConfigError listing every
    problem, each naming its key.
    """
    at = f"teachers.{name}"
    if not isinstance(entry, Mapping):
        raise ConfigError([f"{at}: must be a mapping with {', '.join(FIELDS)}, got {type(entry).__name__}"])
    spec = {**BUILTIN_TEACHERS.get(name, {}), **entry}
    problems = []
    for field_name in spec:
        if field_name in FIELDS:
            continue
        if str(field_name).lower() in _SECRET_FIELDS:  # never echo its value: it may be a real key
            problems.append(f"{at}.{field_name}: API keys are never read from config files; put the key in an environment "
                            "variable and name that variable with api_key_env")
        else:
            near = difflib.get_close_matches(str(field_name), FIELDS, n=1)
            problems.append(f"{at}.{field_name}: unknown field" + (f" (did you mean {near[0]!r}?)" if near else f" (fields: {', '.join(FIELDS)})"))
    kind = spec.get("kind")
    if kind not in KINDS:
        problems.append(f"{at}.kind: must be one of {', '.join(KINDS)}, got {kind!r}")
    model = spec.get("model")
    if model is None and kind == "local":
        model = app.config["model.default"]
    if not isinstance(model, str) or not model.strip():
        problems.append(f"{at}.model: must name the model to ask for, got {model!r}")
    base_url = spec.get("base_url", "https://api.openai.com/v1" if kind == "openai" else "https://api.anthropic.com")
    key_env = spec.get("api_key_env", {"anthropic": "ANTHROPIC_API_KEY",
                                       "openai": "OPENAI_API_KEY" if base_url == "https://api.openai.com/v1" else None}.get(kind))
    if kind == "local":
        problems += [f"{at}.{f}: a local teacher has no {f}" for f in ("base_url", "api_key_env") if spec.get(f) is not None]
    else:
        if not isinstance(base_url, str) or not base_url.startswith(("http://", "https://")):
            problems.append(f"{at}.base_url: must be an http:// or https:// URL, got {base_url!r}")
        if key_env is not None and (not isinstance(key_env, str) or not _ENV_NAME.match(key_env)):
            problems.append(f"{at}.api_key_env: must be the name of an environment variable holding the key "
                            "(letters, digits and _), not the key itself")
    if problems:
        raise ConfigError(problems)
    if kind == "local":
        return LocalTeacher(name, model, app)
    if kind == "anthropic":
        return AnthropicTeacher(name, model, base_url=base_url, api_key_env=key_env)
    return OpenAITeacher(name, base_url, model, api_key_env=key_env)


def get_teacher(app: Any, name: str, *, model: str | None = None, base_url: str | None = None) -> Any:
    """``app``'s registered teacher ``name``, or a copy asking for another ``model`` or ``base_url``.

    An unknown name raises AethError listing the teachers; a ``teachers.<name>`` entry with
    problems raises its ConfigError.
    """
    teachers = app.teachers()
    teacher = teachers.get(name)
    if teacher is None and name.startswith(SPECIALIST_PREFIX):
        teacher = specialist_teacher(app, name[len(SPECIALIST_PREFIX):])
    if teacher is None:
        entry = app.config.subtrees("teachers").get(name)
        if entry is None:
            raise AethError(f"no teacher named {name!r}; teachers: {', '.join(sorted(teachers)) or 'none'}, or "
                            f"{SPECIALIST_PREFIX}NAME for one of your specialists (add one as teachers.{name} in "
                            "aeth.yaml: kind, model, base_url, api_key_env)")
        teacher = teacher_from_config(name, entry, app)  # raises the entry's ConfigError
    changes: dict[str, str] = {}
    if (model or base_url) and isinstance(teacher, SpecialistTeacher):
        raise AethError(f"teacher {name!r} is a specialist at its active version ({teacher.model}); it takes no --model "
                        "or --base-url (activate another version with aeth adapters activate)")
    if model:
        changes["model_name" if isinstance(teacher, LocalTeacher) else "model"] = model
    if base_url:
        if not hasattr(teacher, "base_url"):
            raise AethError(f"teacher {name!r} ({type(teacher).__name__}) has no base_url to override")
        changes["base_url"] = base_url
    if changes:
        if not is_dataclass(teacher):
            raise AethError(f"teacher {name!r} ({type(teacher).__name__}) cannot take another model or base_url")
        teacher = replace(teacher, **changes)
    return teacher
