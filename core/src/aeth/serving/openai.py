"""A minimal OpenAI-compatible server over one aeth model (standard library only).

``serve(model_name)`` starts it in a background thread and returns an :class:`OpenAIServer`
whose ``url`` is the base URL an OpenAI client or :class:`~aeth.distill.teachers.OpenAITeacher`
takes. Endpoints: ``GET /v1/models`` and non-streaming ``POST /v1/chat/completions`` (honouring
``temperature``, ``top_p``, ``max_tokens`` or ``max_completion_tokens``, and ``seed``), with
OpenAI-style error bodies. Answers come from a :class:`~aeth.distill.teachers.LocalTeacher`, so
concurrent requests take turns on the model.

:class:`ChatCompletionsHandler` keeps each step in its own method (``chat_completion``,
``send_json``, ``send_error_json``) so a subclass can change one, e.g. to inject faults in tests.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from aeth.distill.teachers import LocalTeacher

DEFAULT_MAX_TOKENS = 256
MAX_BODY = 8 * 1024 * 1024
ROLES = {"system", "user", "assistant", "developer"}  # "developer" is OpenAI's newer name for system


class BadRequest(Exception):
    """A request the API refuses with a 400; ``param`` names the offending field."""

    def __init__(self, message: str, param: str | None = None):
        super().__init__(message)
        self.param = param


def _number(body: dict[str, Any], name: str, default: Any, lo: float, hi: float, kind: type = float) -> Any:
    value = body.get(name)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (kind is int and not float(value).is_integer()):
        raise BadRequest(f"'{name}' must be {'an integer' if kind is int else 'a number'}, got {value!r}", name)
    if not lo <= value <= hi:
        raise BadRequest(f"'{name}' must be between {lo:g} and {hi:g}, got {value!r}", name)
    return kind(value)


def _messages(body: dict[str, Any]) -> list[dict[str, str]]:
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise BadRequest("'messages' must be a non-empty list of {role, content} objects", "messages")
    out = []
    for i, m in enumerate(messages):
        role = m.get("role") if isinstance(m, dict) else None
        content = m.get("content") if isinstance(m, dict) else None
        if isinstance(content, list):  # content parts: text only
            if any(not isinstance(p, dict) or p.get("type") != "text" for p in content):
                raise BadRequest(f"messages[{i}].content: only text parts are supported", f"messages[{i}].content")
            content = "".join(str(p.get("text", "")) for p in content)
        if role not in ROLES:
            raise BadRequest(f"messages[{i}].role must be one of {', '.join(sorted(ROLES))}, got {role!r}", f"messages[{i}].role")
        if not isinstance(content, str):
            raise BadRequest(f"messages[{i}].content must be text", f"messages[{i}].content")
        out.append({"role": "system" if role == "developer" else role, "content": content})
    return out


class ChatCompletionsHandler(BaseHTTPRequestHandler):
    """One HTTP request against ``self.server.teacher`` (a LocalTeacher) and ``self.server.model_id``."""

    server_version = "aeth"
    protocol_version = "HTTP/1.1"

    # ---- routing -----------------------------------------------------------------------------

    def do_GET(self) -> None:
        if self.path.rstrip("/") in ("/v1/models", "/models"):
            self.send_json(200, {"object": "list", "data": [{"id": self.server.model_id, "object": "model",
                                                             "created": int(self.server.started), "owned_by": "aeth"}]})
        else:
            self.send_error_json(404, f"no route GET {self.path}; try GET /v1/models", "not_found_error")

    def do_POST(self) -> None:
        if self.path.rstrip("/") not in ("/v1/chat/completions", "/chat/completions"):
            self.read_body()
            self.send_error_json(404, f"no route POST {self.path}; try POST /v1/chat/completions", "not_found_error")
            return
        try:
            body = self.read_json()
            self.send_json(200, self.chat_completion(body))
        except BadRequest as e:
            self.send_error_json(400, str(e), "invalid_request_error", e.param)
        except Exception as e:  # the model failed: the client sees a 500 with the reason
            self.send_error_json(500, f"{type(e).__name__}: {e}", "server_error")

    # ---- steps a subclass may replace ---------------------------------------------------------

    def read_body(self) -> bytes:
        """The request body (Content-Length bytes)."""
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            self.close_connection = True
            raise BadRequest(f"request body of {length} bytes is over the limit of {MAX_BODY}")
        return self.rfile.read(length) if length else b""

    def read_json(self) -> dict[str, Any]:
        """The request body as a JSON object, or BadRequest."""
        raw = self.read_body()
        try:
            body = json.loads(raw or b"null")
        except ValueError as e:
            raise BadRequest(f"the request body is not valid JSON: {e}") from None
        if not isinstance(body, dict):
            raise BadRequest("the request body must be a JSON object")
        return body

    def chat_completion(self, body: dict[str, Any]) -> dict[str, Any]:
        """The ``chat.completion`` object answering ``body`` (raises BadRequest for a bad one)."""
        messages = _messages(body)
        if body.get("stream"):
            raise BadRequest("streaming is not supported by this server; send stream: false", "stream")
        if body.get("n", 1) != 1:
            raise BadRequest("only n=1 is supported", "n")
        max_tokens = body.get("max_completion_tokens", body.get("max_tokens"))
        max_tokens = _number({"max_tokens": max_tokens}, "max_tokens", DEFAULT_MAX_TOKENS, 1, 1_000_000, int)
        temperature = _number(body, "temperature", 1.0, 0.0, 2.0)
        top_p = _number(body, "top_p", 1.0, 0.0, 1.0)
        seed = _number(body, "seed", None, 0, 2**63 - 1, int)
        done = self.server.teacher.complete(messages, max_tokens=max_tokens, temperature=temperature,
                                            timeout=self.server.generation_timeout, seed=seed, top_p=top_p)
        return {
            "id": f"chatcmpl-{uuid.uuid4().hex[:24]}", "object": "chat.completion", "created": int(time.time()),
            "model": self.server.model_id,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": done.text}, "finish_reason": done.finish_reason}],
            "usage": {"prompt_tokens": done.tokens_in, "completion_tokens": done.tokens_out,
                      "total_tokens": done.tokens_in + done.tokens_out},
        }

    def send_json(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        """Send ``payload`` as a JSON response with ``status`` and extra ``headers``."""
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def send_error_json(self, status: int, message: str, kind: str, param: str | None = None,
                        headers: dict[str, str] | None = None) -> None:
        """Send an OpenAI-style error body: ``{"error": {"message", "type", "param", "code"}}``."""
        self.send_json(status, {"error": {"message": message, "type": kind, "param": param, "code": None}}, headers)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: a test or a distillation run does not want a line per request on stderr."""


class OpenAIServer(ThreadingHTTPServer):
    """The running server: ``url`` ("http://HOST:PORT/v1"), ``shutdown()``; usable as a context manager."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler], teacher: Any, model_id: str,
                 generation_timeout: float = 600.0):
        super().__init__(address, handler)
        self.teacher, self.model_id, self.generation_timeout = teacher, model_id, generation_timeout
        self.started = time.time()
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """The base URL clients take (``/chat/completions`` goes after it)."""
        host, port = self.server_address[:2]
        return f"http://{host}:{port}/v1"

    def start(self) -> OpenAIServer:
        """Serve in a daemon thread; returns self."""
        # a short poll interval: shutdown() waits for the serving loop to notice, up to one interval
        self._thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=f"aeth-openai-{self.server_address[1]}", daemon=True)
        self._thread.start()
        return self

    def shutdown(self) -> None:
        """Stop serving and close the listening socket (requests in flight finish on their own threads)."""
        if self._thread is not None:
            super().shutdown()
            self._thread.join()
            self._thread = None
        self.server_close()

    def __enter__(self) -> OpenAIServer:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.shutdown()


def serve(app: Any, model_name: str, host: str = "127.0.0.1", port: int = 0, *,
          handler: type[BaseHTTPRequestHandler] = ChatCompletionsHandler, load: bool = True) -> OpenAIServer:
    """Serve ``model_name`` (a built-in name, local directory or hub id) from ``app``'s model pool on
    ``host:port`` (0: any free port) in a background thread, and return the running :class:`OpenAIServer`.

    The model is loaded before this returns (``load=False`` defers it to the first request), so
    the first request does not time out waiting for it. ``handler`` may be a subclass of
    :class:`ChatCompletionsHandler`.
    """
    teacher = LocalTeacher("serve", str(model_name), app)
    if load:
        teacher.load()
    return OpenAIServer((host, port), handler, teacher, str(model_name)).start()
