"""Distillation teachers against real HTTP servers on 127.0.0.1, and the OpenAI-compatible server.

The OpenAI teacher talks to ``aeth.serving.openai.serve`` over the tiny model, and to handler
subclasses of the same server that inject faults; the Anthropic teacher talks to a small Messages
API server written here. No client is patched: every request crosses a real socket.
"""

from __future__ import annotations

import email.utils
import json
import socket
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler

import pytest

from aeth.app import Aeth
from aeth.config import load_config
from aeth.distill.teachers import (
    AnthropicTeacher,
    Completion,
    LocalTeacher,
    OpenAITeacher,
    TeacherError,
    get_teacher,
)
from aeth.errors import AethError, ConfigError
from aeth.plugins import AethWarning
from aeth.serving.openai import ChatCompletionsHandler, OpenAIServer, serve

MESSAGES = [{"role": "system", "content": "You are a helpful assistant."},
            {"role": "user", "content": "What is two plus two?"}]
KEY = "sk-test-0123456789abcdef"


@pytest.fixture
def configure(aeth_home):
    """An application (optionally configured by aeth.yaml text and -o overrides); call it again
    for another. Each application collects its own teachers, so nothing leaks into other tests."""
    def apply(yaml_text: str | None = None, overrides: tuple[str, ...] = ()):
        if yaml_text is not None:
            (aeth_home.parent / "cwd" / "aeth.yaml").write_text(yaml_text)
        return Aeth(load_config(list(overrides)))
    return apply


@pytest.fixture
def app(configure):
    return configure()


@pytest.fixture
def tiny_server(app, tiny_model_dir):
    with serve(app, tiny_model_dir) as server:
        yield server


def fault_server(respond, *, threads_seen: list | None = None) -> OpenAIServer:
    """A server (no model) whose POSTs are answered by ``respond(handler, body)``."""
    class Faulty(ChatCompletionsHandler):
        def chat_completion(self, body):
            self.server.seen.append((self.headers, body))
            return respond(self, body)

        def send_json(self, status, payload, headers=None):
            if payload is not None:  # ``respond`` may have answered already and returned None
                super().send_json(status, payload, headers)

    server = OpenAIServer(("127.0.0.1", 0), Faulty, teacher=None, model_id="faulty")
    server.seen = []
    return server.start()


def raw(handler, status, body: bytes, headers: dict[str, str] | None = None):
    """Answer with exactly ``status`` and ``body`` (no JSON encoding); return None so nothing else is sent."""
    handler.send_response(status)
    for k, v in {"Content-Type": "application/json", "Content-Length": str(len(body)), **(headers or {})}.items():
        handler.send_header(k, v)
    handler.end_headers()
    handler.wfile.write(body)


def ok_body(text="four", finish="stop"):
    return {"choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": finish}],
            "usage": {"prompt_tokens": 11, "completion_tokens": 3, "total_tokens": 14}}


def ask(teacher, timeout=30.0, **kw):
    return teacher.complete(MESSAGES, max_tokens=kw.pop("max_tokens", 8), temperature=kw.pop("temperature", 0.0),
                            timeout=timeout, **kw)


def post(url, payload) -> tuple[int, dict]:
    data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


# ---- the OpenAI-compatible server and teacher, on the tiny model -----------------------------


def test_openai_teacher_against_the_served_tiny_model(tiny_server, tiny_model_dir, app):
    teacher = OpenAITeacher("tiny", tiny_server.url, "tiny")
    first = ask(teacher, max_tokens=6)
    assert isinstance(first, Completion) and isinstance(first.text, str)
    assert first.tokens_in > 10 and 0 <= first.tokens_out <= 6
    assert first.finish_reason in ("stop", "length")
    assert first.finish_reason == "stop" or first.tokens_out == 6
    assert ask(teacher, max_tokens=6) == first  # temperature 0: the same answer every time
    # the same model in-process gives the same text and counts: the server adds nothing
    assert ask(LocalTeacher("direct", str(tiny_model_dir), app), max_tokens=6) == first
    with urllib.request.urlopen(tiny_server.url + "/models", timeout=10) as r:
        assert json.loads(r.read())["data"][0]["id"] == str(tiny_model_dir)


def test_served_sampling_honours_seed_and_max_tokens(tiny_server):
    url = tiny_server.url + "/chat/completions"
    body = {"model": "x", "messages": MESSAGES, "temperature": 1.5, "max_tokens": 12, "seed": 3}
    status, a = post(url, body)
    assert status == 200 and a["object"] == "chat.completion"
    assert post(url, body)[1]["choices"] == a["choices"]  # same seed, same sample
    others = {post(url, {**body, "seed": s})[1]["choices"][0]["message"]["content"] for s in range(4, 8)}
    assert others - {a["choices"][0]["message"]["content"]}  # another seed, another sample
    usage = a["usage"]
    assert usage["completion_tokens"] <= 12 and usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    _, one = post(url, {**body, "max_tokens": 1})
    assert one["usage"]["completion_tokens"] <= 1


@pytest.mark.parametrize("payload, param", [
    (b"{not json", None),
    ({"messages": []}, "messages"),
    ({"messages": [{"role": "wizard", "content": "hi"}]}, "messages[0].role"),
    ({"messages": MESSAGES, "temperature": 5}, "temperature"),
    ({"messages": MESSAGES, "max_tokens": 0}, "max_tokens"),
    ({"messages": MESSAGES, "stream": True}, "stream"),
])
def test_server_answers_bad_requests_with_an_openai_error(tiny_server, payload, param):
    status, body = post(tiny_server.url + "/chat/completions", payload)
    assert status == 400
    assert body["error"]["type"] == "invalid_request_error" and body["error"]["message"]
    assert body["error"]["param"] == param


def test_a_bad_request_is_not_retryable_and_carries_the_servers_message(tiny_server):
    teacher = OpenAITeacher("tiny", tiny_server.url, "tiny")
    with pytest.raises(TeacherError) as err:
        teacher.complete(MESSAGES, max_tokens=8, temperature=9.0, timeout=10)
    assert not err.value.retryable and err.value.status == 400
    assert "'temperature' must be between" in str(err.value)


def teacher_error(respond, model="m", api_key_env=None):
    """The TeacherError an OpenAI teacher raises against :func:`fault_server` ``(respond)``."""
    server = fault_server(respond)
    try:
        with pytest.raises(TeacherError) as err:
            ask(OpenAITeacher("gw", server.url, model, api_key_env=api_key_env))
    finally:
        server.shutdown()
    return err.value


def in_threads(call, n=4):
    """What ``call()`` returns in each of ``n`` threads started together, in thread order."""
    results: list = [None] * n
    threads = [threading.Thread(target=lambda i=i: results.__setitem__(i, call())) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def test_concurrent_requests_take_turns_on_the_model(tiny_server):
    teacher = OpenAITeacher("tiny", tiny_server.url, "tiny")
    expected = ask(teacher, max_tokens=6)
    assert in_threads(lambda: ask(teacher, max_tokens=6)) == [expected] * 4


# ---- the OpenAI teacher against faults --------------------------------------------------------


def test_the_key_is_sent_as_a_bearer_token_read_at_request_time_and_never_kept(monkeypatch, configure):
    server = fault_server(lambda h, body: ok_body())
    try:
        teacher = OpenAITeacher("gw", server.url, "m", api_key_env="AETH_TEST_TEACHER_KEY")
        with pytest.raises(TeacherError) as err:
            ask(teacher)
        assert not err.value.retryable and "$AETH_TEST_TEACHER_KEY" in str(err.value)
        assert server.seen == []  # nothing was sent without the key
        monkeypatch.setenv("AETH_TEST_TEACHER_KEY", KEY)
        assert ask(teacher) == Completion("four", 11, 3, "stop")
        headers, body = server.seen[0]
        assert headers["Authorization"] == f"Bearer {KEY}"
        assert body == {"model": "m", "messages": MESSAGES, "max_tokens": 8, "temperature": 0.0}
        assert KEY not in repr(teacher) and KEY not in repr(vars(teacher))
        monkeypatch.setenv("AETH_TEST_TEACHER_KEY", "sk-rotated")  # read again on every request
        ask(teacher)
        assert server.seen[1][0]["Authorization"] == "Bearer sk-rotated"
    finally:
        server.shutdown()


def in_30s() -> str:
    return email.utils.formatdate(time.time() + 30, usegmt=True)


@pytest.mark.parametrize("status, headers, retry_after", [
    (429, {"Retry-After": "7"}, (7, 7)),
    (429, {"Retry-After": "HTTP-DATE"}, (20, 31)),
    (429, {"retry-after-ms": "1500"}, (1.5, 1.5)),
    (500, {}, None),
    (503, {"Retry-After": "garbage"}, None),
    (408, {}, None),
])
def test_rate_limits_and_server_errors_are_retryable(configure, status, headers, retry_after):
    headers = {k: in_30s() if v == "HTTP-DATE" else v for k, v in headers.items()}
    error = json.dumps({"error": {"message": "slow down", "type": "rate_limit"}}).encode()
    failure = teacher_error(lambda h, body: raw(h, status, error, headers))
    assert failure.retryable and failure.status == status
    assert "slow down" in str(failure)
    if retry_after is None:
        assert failure.retry_after is None
    else:
        assert retry_after[0] <= failure.retry_after <= retry_after[1]


@pytest.mark.parametrize("reply, said", [
    (b"{not json", "not JSON"),
    (b"[1, 2]", "not an object"),
    (json.dumps({"id": "x", "usage": {}}).encode(), "no choices"),
    (json.dumps({"choices": []}).encode(), "no choices[0]"),
    (json.dumps({"choices": [{"message": {"content": None}}]}).encode(), "content"),
    (json.dumps({**ok_body(), "usage": {"prompt_tokens": "many"}}).encode(), "usage.prompt_tokens"),
])
def test_malformed_replies_are_retryable_and_say_what_was_wrong(configure, reply, said):
    failure = teacher_error(lambda h, body: raw(h, 200, reply))
    assert failure.retryable and "malformed" in str(failure) and said in str(failure)


def test_a_refused_key_is_not_retryable_and_never_appears_in_the_message(monkeypatch, configure):
    monkeypatch.setenv("AETH_TEST_TEACHER_KEY", KEY)
    echo = json.dumps({"error": {"message": f"Incorrect API key provided: {KEY}", "type": "invalid_request_error"}}).encode()
    failure = teacher_error(lambda h, body: raw(h, 401, echo), api_key_env="AETH_TEST_TEACHER_KEY")
    assert not failure.retryable and failure.status == 401
    assert "$AETH_TEST_TEACHER_KEY" in str(failure) and "Incorrect API key" in str(failure)
    assert KEY not in str(failure) and KEY not in repr(failure.args)


def test_other_client_errors_are_not_retryable(configure):
    body = json.dumps({"error": "model 'nope' not found"}).encode()  # Ollama's error shape
    failure = teacher_error(lambda h, b: raw(h, 404, body), model="nope")
    assert not failure.retryable and "model 'nope' not found" in str(failure) and "'nope'" in str(failure)


def test_a_server_slower_than_the_timeout_is_retryable(configure):
    release = threading.Event()

    def stall(handler, body):
        release.wait(10)  # the fault: no answer until the test is over
        return ok_body()

    server = fault_server(stall)
    try:
        with pytest.raises(TeacherError) as err:
            ask(OpenAITeacher("gw", server.url, "m"), timeout=0.3)
    finally:
        release.set()
        server.shutdown()
    assert err.value.retryable and "did not answer within 0.3s" in str(err.value)


def test_a_dropped_connection_is_retryable(configure):
    def hang_up(handler, body):
        handler.close_connection = True
        handler.connection.shutdown(socket.SHUT_RDWR)

    failure = teacher_error(hang_up)
    assert failure.retryable and "connection" in str(failure)


def test_no_server_is_a_retryable_refused_connection():
    with socket.socket() as s:  # a port nobody listens on once this socket closes
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(TeacherError) as err:
        ask(OpenAITeacher("gw", f"http://127.0.0.1:{port}/v1", "m"), timeout=5)
    assert err.value.retryable and "refused the connection" in str(err.value)
    with pytest.raises(TeacherError) as err:
        ask(OpenAITeacher("gw", "ftp:/nowhere", "m"))
    assert not err.value.retryable


# ---- the Anthropic teacher against a Messages API server --------------------------------------


class MessagesHandler(BaseHTTPRequestHandler):
    """A small Anthropic Messages API: answers with fixed text, or with ``server.fault``."""

    protocol_version = "HTTP/1.1"

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.server.seen.append((self.path, self.headers, body))
        status, reply, headers = self.server.fault or (200, {
            "id": "msg_1", "type": "message", "role": "assistant", "model": body["model"],
            "content": [{"type": "text", "text": "Two plus "}, {"type": "tool_use", "id": "t", "name": "x", "input": {}},
                        {"type": "text", "text": "two is four."}],
            "stop_reason": self.server.stop_reason, "stop_sequence": None,
            "usage": {"input_tokens": 21, "output_tokens": 6},
        }, {})
        data = json.dumps(reply).encode()
        self.send_response(status)
        for k, v in {"Content-Type": "application/json", "Content-Length": str(len(data)), **headers}.items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture
def messages_api(configure):
    server = OpenAIServer(("127.0.0.1", 0), MessagesHandler, teacher=None, model_id="")
    server.seen, server.fault, server.stop_reason = [], None, "end_turn"
    server.start()
    host, port = server.server_address[:2]
    server.base = f"http://{host}:{port}"
    yield server
    server.shutdown()


def test_anthropic_teacher_speaks_the_messages_api(messages_api, monkeypatch):
    monkeypatch.setenv("AETH_TEST_ANTHROPIC_KEY", KEY)
    teacher = AnthropicTeacher("claude", "claude-test", base_url=messages_api.base, api_key_env="AETH_TEST_ANTHROPIC_KEY")
    assert ask(teacher, max_tokens=50, temperature=0.5) == Completion("Two plus two is four.", 21, 6, "stop")
    path, headers, body = messages_api.seen[0]
    assert path == "/v1/messages"
    assert headers["x-api-key"] == KEY and headers["anthropic-version"] == "2023-06-01" and "Authorization" not in headers
    assert body == {"model": "claude-test", "max_tokens": 50, "temperature": 0.5, "system": "You are a helpful assistant.",
                    "messages": [{"role": "user", "content": "What is two plus two?"}]}
    assert KEY not in repr(teacher)
    # a base URL that already ends in /v1 (some gateways are given that way) reaches the same path
    AnthropicTeacher("claude", "claude-test", base_url=messages_api.base + "/v1/", api_key_env=None).complete(
        MESSAGES[1:], max_tokens=5, temperature=0, timeout=10)
    path, headers, body = messages_api.seen[1]
    assert path == "/v1/messages" and "system" not in body and "x-api-key" not in headers


@pytest.mark.parametrize("stop_reason, finish", [("end_turn", "stop"), ("stop_sequence", "stop"),
                                                 ("max_tokens", "length"), ("refusal", "refusal")])
def test_anthropic_stop_reasons_map_to_aeths(messages_api, stop_reason, finish):
    messages_api.stop_reason = stop_reason
    assert ask(AnthropicTeacher("c", "m", base_url=messages_api.base, api_key_env=None)).finish_reason == finish


@pytest.mark.parametrize("status, retryable", [(529, True), (429, True), (500, True), (400, False), (403, False)])
def test_anthropic_errors(messages_api, monkeypatch, status, retryable):
    monkeypatch.setenv("AETH_TEST_ANTHROPIC_KEY", KEY)
    error = {"type": "error", "error": {"type": "overloaded_error" if status == 529 else "x", "message": f"problem {status}"}}
    messages_api.fault = (status, error, {"retry-after": "2"})
    with pytest.raises(TeacherError) as err:
        ask(AnthropicTeacher("c", "m", base_url=messages_api.base, api_key_env="AETH_TEST_ANTHROPIC_KEY"))
    assert err.value.retryable is retryable and err.value.status == status
    assert f"problem {status}" in str(err.value) and KEY not in str(err.value)
    if retryable:
        assert err.value.retry_after == 2
    if status == 403:
        assert "$AETH_TEST_ANTHROPIC_KEY" in str(err.value)


def test_anthropic_reply_without_usage_is_malformed(messages_api):
    messages_api.fault = (200, {"content": [{"type": "text", "text": "hi"}], "stop_reason": "end_turn"}, {})
    with pytest.raises(TeacherError) as err:
        ask(AnthropicTeacher("c", "m", base_url=messages_api.base, api_key_env=None))
    assert err.value.retryable and "no usage" in str(err.value)


# ---- the local teacher ------------------------------------------------------------------------


def test_local_teacher_answers_counts_and_is_safe_across_threads(app, tiny_model_dir):
    teacher = LocalTeacher("tiny", str(tiny_model_dir), app)
    assert teacher.model == teacher.model_name == str(tiny_model_dir)
    first = ask(teacher, max_tokens=5)
    from aeth.generation.prompt import encode_chat

    assert first.tokens_in == len(encode_chat(teacher.load().tokenizer, MESSAGES))
    assert first.tokens_out <= 5 and first.finish_reason in ("stop", "length")
    sampled = ask(teacher, max_tokens=10, temperature=1.0, seed=5)
    assert ask(teacher, max_tokens=10, temperature=1.0, seed=5) == sampled
    assert in_threads(lambda: ask(teacher, max_tokens=5)) == [first] * 4
    with pytest.raises(TeacherError) as err:
        ask(teacher, timeout=0)
    assert not err.value.retryable and "longer than 0s" in str(err.value)


# ---- registry and configuration ---------------------------------------------------------------


def test_builtin_teachers(app):
    teachers = app.teachers()
    assert {"local", "openai", "anthropic", "ollama"} <= set(teachers)
    assert isinstance(teachers["local"], LocalTeacher) and teachers["local"].model_name == app.config["model.default"]
    assert teachers["openai"] == OpenAITeacher("openai", "https://api.openai.com/v1", "gpt-4o-mini", "OPENAI_API_KEY")
    assert teachers["anthropic"].model == "claude-3-5-haiku-latest" and teachers["anthropic"].api_key_env == "ANTHROPIC_API_KEY"
    assert teachers["ollama"] == OpenAITeacher("ollama", "http://127.0.0.1:11434/v1", "llama3.2", None)
    assert app.registry.registered["aeth.teachers"]["teachers"] == ["local", "openai", "anthropic", "ollama"]


def test_config_entries_add_and_change_teachers(configure, tiny_model_dir):
    app = configure(
        "teachers:\n"
        "  mine:\n    kind: openai\n    base_url: http://127.0.0.1:8000/v1\n    model: qwen\n    api_key_env: MY_GATEWAY_KEY\n"
        "  claude:\n    kind: anthropic\n    model: claude-sonnet\n"
        "  ollama:\n    model: qwen2.5\n"
        f"  small:\n    kind: local\n    model: {tiny_model_dir}\n",
        overrides=("teachers.mine.model=qwen-14b", "model.default=" + str(tiny_model_dir)),
    )
    assert get_teacher(app, "mine") == OpenAITeacher("mine", "http://127.0.0.1:8000/v1", "qwen-14b", "MY_GATEWAY_KEY")
    assert get_teacher(app, "claude") == AnthropicTeacher("claude", "claude-sonnet", base_url="https://api.anthropic.com",
                                                     api_key_env="ANTHROPIC_API_KEY")
    assert get_teacher(app, "ollama") == OpenAITeacher("ollama", "http://127.0.0.1:11434/v1", "qwen2.5", None)
    assert get_teacher(app, "small") == LocalTeacher("small", str(tiny_model_dir), app)
    assert get_teacher(app, "local").model_name == str(tiny_model_dir)  # follows model.default
    assert app.config.sources["teachers.mine"] == "-o"


def test_get_teacher_overrides_and_errors(app):
    original = app.teachers()["openai"]
    other = get_teacher(app, "openai", model="gpt-4o", base_url="http://127.0.0.1:9/v1")
    assert (other.model, other.base_url, other.api_key_env) == ("gpt-4o", "http://127.0.0.1:9/v1", "OPENAI_API_KEY")
    assert original.model == "gpt-4o-mini"  # a copy, the registered one is untouched
    assert get_teacher(app, "local", model="some/model").model_name == "some/model"
    with pytest.raises(AethError, match="no base_url"):
        get_teacher(app, "local", base_url="http://127.0.0.1:9/v1")
    with pytest.raises(AethError) as err:
        get_teacher(app, "nope")
    assert "'nope'" in str(err.value) and "anthropic, local, ollama, openai" in str(err.value)


def test_a_bad_config_entry_is_a_config_error_naming_its_keys(configure):
    app = configure("teachers:\n"
              "  bad:\n    kind: grpc\n    model: ''\n    api_key: sk-do-not-print\n    base_ur: http://x\n"
              "  worse: just-a-string\n"
              "  leaky:\n    kind: openai\n    model: m\n    api_key_env: sk-live-key-by-mistake\n")
    with pytest.warns(AethWarning) as caught:
        teachers = app.teachers()
    warned = sorted(str(w.message).split(" was skipped")[0] for w in caught)
    assert warned == ["teacher 'bad'", "teacher 'leaky'", "teacher 'worse'"]
    assert "teachers.bad.kind" in str(caught[0].message)
    assert "bad" not in teachers and "openai" in teachers  # one bad entry costs only itself
    with pytest.raises(ConfigError) as err:
        get_teacher(app, "bad")
    problems = "\n".join(err.value.problems)
    for key in ("teachers.bad.kind", "teachers.bad.model", "teachers.bad.api_key", "teachers.bad.base_ur"):
        assert key in problems
    assert "did you mean 'base_url'" in problems and "sk-do-not-print" not in str(err.value)
    with pytest.raises(ConfigError, match="teachers.worse: must be a mapping"):
        get_teacher(app, "worse")
    with pytest.raises(ConfigError) as err:
        get_teacher(app, "leaky")
    assert "teachers.leaky.api_key_env" in str(err.value) and "sk-live-key-by-mistake" not in str(err.value)


# ---- a specialist as the teacher ----------------------------------------------------------------


def test_a_specialist_teaches_as_it_serves_and_never_mixes_versions(configure, tiny_model_dir, aeth_home, tmp_path):
    from aeth.distill.collect import CollectPlan, Options, collect
    from aeth.request import Request
    from aeth.testing import adder_specialist, build_lora

    app = configure(overrides=(f"model.default={tiny_model_dir}", "model.threads=1", "model.dtype=float32"))
    base = get_teacher(app, "specialist:general")
    assert base.model == "aeth:general@base" and base.local
    before = ask(base, max_tokens=8)
    app.adapters.add("general", build_lora(tiny_model_dir, tmp_path / "lora"), {"base_model": str(tiny_model_dir)})
    app.adapters.activate("general", "v0001")  # e.g. aeth learn promoted it
    with pytest.raises(TeacherError, match="active version changed from base to v0001-") as err:
        ask(base)  # built at base: answering as v0001 would mix two versions under one cache key
    assert not err.value.retryable
    teacher = get_teacher(app, "specialist:general")
    version = app.adapters.active("general").version
    assert teacher.model == f"aeth:general@{version}"
    got = ask(teacher, max_tokens=8)
    served = app.run(Request(prompt=MESSAGES[-1]["content"], specialist="general", max_tokens=8, temperature=0.0))
    assert got.text == served.text and served.adapter == version  # what `aeth run --specialist general` answers
    assert (got.tokens_in, got.tokens_out) == (served.tokens_in, served.tokens_out)
    assert got.text != before.text  # the promoted adapter answers, not the bare base
    # collection with it: free (a local model) and kept apart from the base's answers by the version
    folder, totals = collect(teacher, adder_specialist(), CollectPlan(specialist="adder", teacher=teacher.name,
                             model=teacher.model, n=3, max_tokens=4, temperature=0.0, seed=0), aeth_home, Options())
    assert totals.done == 3 and totals.cost == 0.0 and ":" not in folder.name
    with pytest.raises(AethError, match="unknown specialist 'nobody'"):
        get_teacher(app, "specialist:nobody")
    with pytest.raises(AethError, match="takes no --model"):
        get_teacher(app, "specialist:general", model="other")
    with pytest.raises(AethError, match=r"specialist:NAME for one of your specialists"):
        get_teacher(app, "nosuch")
