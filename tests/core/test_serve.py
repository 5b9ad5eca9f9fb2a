"""`aeth serve` as applications use it: a real server process on 127.0.0.1, answered through the
unchanged openai SDK, httpx (raw SSE framing) and a websockets client, on the tiny model."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import openai
import pytest

from aeth.testing import install_plugin_source

AETH = str(Path(sys.executable).with_name("aeth"))
PLUGIN = """from aeth import hookimpl


@hookimpl
def register_specialists(register):
    from aeth import Specialist

    for name in ("tuned", "plain"):
        register(Specialist(name=name, description="the " + name + " one", base_model=BASE,
                            routing_examples=("please answer as " + name,)))
"""


class Served:
    """A running `aeth serve`: its base URL, home and process."""

    def __init__(self, proc: subprocess.Popen, url: str, home: Path, env: dict, log: Path):
        self.proc, self.url, self.home, self.env, self.log = proc, url, home, env, log

    def client(self, key: str = "none", **kw) -> openai.OpenAI:
        return openai.OpenAI(base_url=self.url + "/v1", api_key=key, max_retries=0, **kw)

    def aeth(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run([AETH, *args], env=self.env, capture_output=True, text=True, timeout=120)

    def wait_idle(self, deadline: float = 60.0) -> dict:
        """Poll /health until no answer is running (bounded)."""
        end = time.monotonic() + deadline
        while time.monotonic() < end:
            health = httpx.get(self.url + "/health").json()
            if health["running"] == 0:
                return health
            time.sleep(0.05)
        raise AssertionError(f"the server still runs answers after {deadline} s: {health}")


def start(home: Path, tiny: Path, plugin_dir: Path, *args: str) -> Served:
    env = {**os.environ, **install_plugin_source(plugin_dir, "two", PLUGIN.replace("BASE", repr(str(tiny)))),
           "AETH_HOME": str(home), "AETH_LOAD_PLUGINS": "two"}
    env.pop("AETH_CONFIG", None)
    log = plugin_dir / f"serve-{time.monotonic_ns()}.log"
    with open(log, "wb") as err:
        proc = subprocess.Popen([AETH, "-o", f"model.default={tiny}", "-o", "model.threads=1", "serve", "--port", "0",
                                 "--log-level", "warning", *args], env=env, stdout=subprocess.DEVNULL, stderr=err,
                                cwd=plugin_dir)
    end = time.monotonic() + 120
    while time.monotonic() < end:
        found = re.search(r"serving on (http://\S+)/v1", log.read_text())
        if found:
            return Served(proc, found.group(1), home, env, log)
        if proc.poll() is not None:
            raise AssertionError(f"aeth serve exited {proc.returncode}: {log.read_text()}")
        time.sleep(0.05)
    proc.kill()
    raise AssertionError(f"aeth serve did not start: {log.read_text()}")


def stop(served: Served) -> None:
    served.proc.send_signal(signal.SIGINT)
    try:
        served.proc.wait(30)
    except subprocess.TimeoutExpired:
        served.proc.kill()


@pytest.fixture(scope="module")
def long_tiny(tiny_model_dir, tmp_path_factory):
    """The tiny model with a context of a million positions (rotary positions are computed, not
    learned), so an answer can run long enough that cancelling it is certain to cut it short."""
    out = tmp_path_factory.mktemp("long-tiny")
    for f in tiny_model_dir.iterdir():
        shutil.copy(f, out / f.name)
    config = json.loads((out / "config.json").read_text())
    (out / "config.json").write_text(json.dumps({**config, "max_position_embeddings": 1_000_000}))
    return out


@pytest.fixture(scope="module")
def server(long_tiny, tmp_path_factory):
    root = tmp_path_factory.mktemp("serve")
    (root / "home").mkdir()
    served = start(root / "home", long_tiny, root)
    yield served
    stop(served)


@pytest.fixture
def fresh_server(long_tiny, tmp_path):
    """A server of its own (for tests that add keys or change limits)."""
    started = []

    def make(*args: str) -> Served:
        (tmp_path / "home").mkdir(exist_ok=True)
        started.append(start(tmp_path / "home", long_tiny, tmp_path, *args))
        return started[-1]

    yield make
    for s in started:
        stop(s)


ASK = [{"role": "user", "content": "hello there"}]
# Greedy, the tiny model answers ASK without ever producing a stop token (it loops), so a request
# for 100,000 tokens runs until it is cancelled: what the cancellation and capacity tests need.


def test_openai_sdk_chat_and_stream_agree(server):
    client = server.client()
    raw = client.chat.completions.with_raw_response.create(model="plain", messages=ASK, temperature=0, max_tokens=12)
    done = raw.parse()
    assert raw.headers["x-aeth-specialist"] == "plain"
    assert re.fullmatch(r"[0-9a-f]{24}", raw.headers["x-aeth-interaction"])
    assert done.object == "chat.completion" and done.choices[0].message.role == "assistant"
    assert done.choices[0].finish_reason in ("stop", "length")
    assert done.usage.completion_tokens >= 1 and done.usage.prompt_tokens > 3
    extra = done.model_extra["aeth"]
    assert extra["specialist"] == "plain" and extra["interaction"] == raw.headers["x-aeth-interaction"]

    chunks = list(client.chat.completions.create(model="plain", messages=ASK, temperature=0, max_tokens=12, stream=True,
                                                 stream_options={"include_usage": True}))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text.strip() == done.choices[0].message.content  # greedy: the same answer either way
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == done.usage.completion_tokens
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == \
        [done.choices[0].finish_reason]


def test_models_list_names_every_specialist_and_the_router(server):
    ids = {m.id for m in server.client().models.list()}
    assert {"aeth", "general", "plain", "tuned"} <= ids


def test_routed_model_and_n_alternatives_are_logged_separately(server):
    client = server.client()
    done = client.chat.completions.create(model="aeth", messages=[{"role": "user", "content": "please answer as tuned"}],
                                          n=2, seed=3, temperature=1.0, max_tokens=8)
    extra = done.model_extra["aeth"]
    assert extra["specialist"] == "tuned" and extra["route"]["bids"][0]["specialist"] == "tuned"
    assert [c.index for c in done.choices] == [0, 1] and len(set(extra["interactions"])) == 2
    shown = json.loads(server.aeth("log", "show", extra["interactions"][1], "--json").stdout)
    assert shown["answer"] == done.choices[1].message.content and shown["source"] == "serve"
    assert shown["choice_index"] == 1 and shown["group_id"] == done.id


def test_client_errors_are_openai_errors_with_the_sdk_types(server):
    client = server.client()
    with pytest.raises(openai.BadRequestError) as e:
        client.chat.completions.create(model="plain", messages=ASK, temperature=5)
    assert e.value.body["param"] == "temperature"
    with pytest.raises(openai.BadRequestError, match="the last message must be the user's"):
        client.chat.completions.create(model="plain", messages=[*ASK, {"role": "assistant", "content": "hi"}])
    with pytest.raises(openai.BadRequestError) as e:
        client.chat.completions.create(model="plain", messages=[])
    assert e.value.body["param"] == "messages"
    with pytest.raises(openai.NotFoundError, match="does not exist"):
        client.chat.completions.create(model="nope", messages=ASK)
    with pytest.raises(openai.BadRequestError) as e:  # the prompt and a million more tokens exceed the context
        client.chat.completions.create(model="plain", messages=ASK, max_tokens=1_000_000)
    assert e.value.body["code"] == "context_length_exceeded"
    assert re.search(r"\d+ tokens", e.value.body["message"]) and "1000000" in e.value.body["message"]


def test_raw_sse_framing(server):
    body = {"model": "plain", "messages": ASK, "stream": True, "max_tokens": 6, "temperature": 0}
    with httpx.stream("POST", server.url + "/v1/chat/completions", json=body, timeout=120) as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        raw = b"".join(r.iter_raw())
    events = raw.split(b"\n\n")
    assert events[-1] == b"" and events[-2] == b"data: [DONE]"
    payloads = [json.loads(e[len(b"data: "):]) for e in events[:-2]]
    assert all(e.startswith(b"data: ") for e in events[:-1])
    assert payloads[0]["choices"][0]["delta"]["role"] == "assistant"
    assert payloads[-1]["choices"][0]["finish_reason"] in ("stop", "length") and "aeth" in payloads[-1]


def test_a_client_that_leaves_mid_stream_frees_its_slot(server):
    body = {"model": "plain", "messages": ASK, "stream": True, "max_tokens": 100_000, "temperature": 0,
            "stop": ["\u0000never"]}
    with httpx.stream("POST", server.url + "/v1/chat/completions", json=body, timeout=120) as r:
        interaction = r.headers["x-aeth-interaction"]
        lines = r.iter_lines()
        for _ in range(4):
            next(lines)
    server.wait_idle()  # the generation stopped: nothing is running any more
    shown = json.loads(server.aeth("log", "show", interaction, "--json").stdout)
    assert shown["finish_reason"] == "cancelled" and shown["tokens_out"] < 100_000
    ok = server.client().chat.completions.create(model="plain", messages=ASK, max_tokens=3)
    assert ok.choices[0].message.content is not None


def test_websocket_runs_requests_side_by_side_with_cancel_feedback_and_ping(server):
    from websockets.sync.client import connect

    with connect(server.url.replace("http", "ws") + "/v1/ws") as ws:
        ws.send(json.dumps({"type": "ping", "id": 7}))
        assert json.loads(ws.recv()) == {"type": "pong", "id": 7}
        short = {"model": "plain", "messages": ASK, "max_tokens": 5, "temperature": 0}
        long = {"model": "tuned", "messages": ASK, "max_tokens": 100_000, "temperature": 0}
        ws.send(json.dumps({"type": "chat", "id": "long", "request": long}))
        ws.send(json.dumps({"type": "chat", "id": "short", "request": short}))
        seen: dict[str, list] = {"long": [], "short": []}
        done = {}
        cancelled = False
        while len(done) < 2:
            m = json.loads(ws.recv(timeout=60))
            if m["type"] == "delta":
                seen[m["id"]].append(m["content"])
                if m["id"] == "long" and not cancelled:
                    ws.send(json.dumps({"type": "cancel", "id": "long"}))
                    cancelled = True
            elif m["type"] == "done":
                done[m["id"]] = m["response"]
            else:
                assert m["type"] == "start", m
        assert done["short"]["choices"][0]["message"]["content"] == "".join(seen["short"]).strip()
        assert done["long"]["aeth"]["finish_reasons"] == ["cancelled"]
        assert done["long"]["usage"]["completion_tokens"] < 100_000
        interaction = done["short"]["aeth"]["interaction"]
        ws.send(json.dumps({"type": "feedback", "id": "f", "feedback": {"interaction": interaction, "kind": "thumbs",
                                                                        "value": True, "id": "client-1"}}))
        assert json.loads(ws.recv())["feedback_id"] == "client-1"
        ws.send(json.dumps({"type": "feedback", "id": "bad", "feedback": {"interaction": interaction, "kind": "rating",
                                                                          "value": 9}}))
        assert json.loads(ws.recv())["status"] == 400
        ws.send(json.dumps({"type": "feedback", "id": "g", "feedback": {"interaction": "f" * 24, "kind": "thumbs",
                                                                        "value": True}}))
        error = json.loads(ws.recv())
        assert error["type"] == "error" and error["status"] == 404
        ws.send("not json")
        assert json.loads(ws.recv())["status"] == 400


def test_metrics_count_answers_tokens_and_routes(server):
    server.client().chat.completions.create(model="plain", messages=ASK, max_tokens=3)
    text = httpx.get(server.url + "/metrics").text
    assert re.search(r'aeth_requests_total\{adapter="base",specialist="plain",status="200"\} [1-9]', text)
    assert re.search(r'aeth_tokens_total\{direction="out",specialist="plain"\} [1-9]', text)
    assert 'aeth_route_decisions_total{how="named",specialist="plain"}' in text
    assert "aeth_time_to_first_token_seconds_bucket" in text and "aeth_queue_depth" in text
    assert re.search(r'aeth_cost_dollars_total\{kind="aeth",model="[^"]+"\} [0-9.e-]+', text)


def test_keys_are_required_once_one_exists(fresh_server):
    served = fresh_server()
    assert served.client().models.list()  # no keys yet: loopback is open
    made = served.aeth("keys", "create", "app", "--rpm", "2")
    secret = re.search(r"aeth-\S+", made.stdout).group(0)
    with pytest.raises(openai.AuthenticationError):
        served.client().models.list()
    with pytest.raises(openai.AuthenticationError):
        served.client("aeth-wrong").models.list()
    assert httpx.get(served.url + "/health").status_code == 200  # health needs no key
    client = served.client(secret)
    for _ in range(2):
        client.chat.completions.create(model="plain", messages=ASK, max_tokens=2)
    with pytest.raises(openai.RateLimitError) as e:
        client.chat.completions.create(model="plain", messages=ASK, max_tokens=2)
    assert int(e.value.response.headers["retry-after"]) >= 1
    narrow = re.search(r"aeth-\S+", served.aeth("keys", "create", "narrow", "--specialists", "tuned").stdout).group(0)
    with pytest.raises(openai.PermissionDeniedError):
        served.client(narrow).chat.completions.create(model="plain", messages=ASK, max_tokens=2)
    frugal = re.search(r"aeth-\S+", served.aeth("keys", "create", "frugal", "--tpm", "10").stdout).group(0)
    first = served.client(frugal).chat.completions.create(model="plain", messages=ASK, max_tokens=4)
    assert first.usage.total_tokens >= 10  # the prompt alone spends the minute's budget
    with pytest.raises(openai.RateLimitError, match="tokens per minute"):
        served.client(frugal).chat.completions.create(model="plain", messages=ASK, max_tokens=4)
    served.aeth("keys", "revoke", "app")
    with pytest.raises(openai.AuthenticationError):
        client.models.list()


def test_full_queue_is_503_and_large_body_413(fresh_server):
    served = fresh_server("--max-concurrent", "1", "--max-queue", "0", "--max-body-kb", "4")
    body = {"model": "plain", "messages": ASK, "stream": True, "max_tokens": 100_000, "temperature": 0}
    with httpx.stream("POST", served.url + "/v1/chat/completions", json=body, timeout=120) as r:
        lines = r.iter_lines()
        first = next(lines)
        assert httpx.get(served.url + "/health").json()["running"] == 1, first  # the one slot is taken
        busy = httpx.post(served.url + "/v1/chat/completions", json={**body, "stream": False}, timeout=60)
        assert busy.status_code == 503 and busy.headers["retry-after"] == "1"
        assert busy.json()["error"]["code"] == "server_overloaded"
    big = httpx.post(served.url + "/v1/chat/completions",
                     json={"model": "plain", "messages": [{"role": "user", "content": "x" * 5000}]})
    assert big.status_code == 413 and "KiB" in big.json()["error"]["message"]


def test_refuses_to_listen_beyond_loopback_without_keys(aeth_home):
    out = subprocess.run([AETH, "serve", "--host", "0.0.0.0", "--port", "0"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and "without API keys" in out.stderr


def test_adapters_activated_and_rolled_back_take_effect_between_requests(server, long_tiny, tmp_path):
    from aeth.models.adapters import AdapterStore
    from aeth.testing import build_lora

    store = AdapterStore(server.home)
    version = store.add("tuned", build_lora(long_tiny, tmp_path / "lora"), {"base_model": str(long_tiny), "base_hash": "b" * 8,
                                                      "recipe": {"data_hash": "d" * 8}})
    client = server.client()

    def ask() -> tuple[str, str | None]:
        done = client.chat.completions.create(model="tuned", messages=ASK, temperature=0, max_tokens=8)
        return done.choices[0].message.content, done.model_extra["aeth"]["adapter"]

    bare = ask()
    assert bare[1] is None
    store.activate("tuned", version.version)  # what `aeth adapters activate` does, while the server runs
    tuned = ask()
    assert tuned[1] == version.version and tuned[0] != bare[0]
    listed = {m.id: m.model_extra["aeth"] for m in client.models.list()}["tuned"]
    assert listed["adapter"] == version.version and listed["lineage"]["base_hash"] == "b" * 8
    assert listed["lineage"]["data_hash"] == "d" * 8
    pinned = client.chat.completions.create(model="tuned@base", messages=ASK, temperature=0, max_tokens=8)
    assert pinned.choices[0].message.content == bare[0]
    store.rollback("tuned")
    assert ask() == bare
