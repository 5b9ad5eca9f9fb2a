"""`aeth distill collect` against a real OpenAI-compatible server on 127.0.0.1 (aeth's own, serving
the tiny model), through a real HTTP proxy that injects 429s, 5xx, timeouts and malformed replies:
retries, the response cache, resuming after SIGKILL, filters, cost and the dataset card."""

import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from aeth.distill.collect import CollectError, CollectPlan, Options, ResponseCache, collect, prices, prompts_for, read_results, verdict, write_dataset
from aeth.distill.teachers import Completion

AETH = str(Path(sys.executable).with_name("aeth"))


def adder():
    from aeth.testing import adder_specialist

    return adder_specialist()


class Proxy:
    """A real HTTP server in front of the teacher server: it counts requests and answers the first
    ones with the faults queued in ``faults`` ("429", "500", "slow", "malformed", "refuse")."""

    def __init__(self, upstream: str, slow: float = 1.5):
        self.upstream, self.slow, self.faults, self.requests = upstream, slow, [], 0
        self.lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with proxy.lock:
                    proxy.requests += 1
                    fault = proxy.faults.pop(0) if proxy.faults else None
                if fault in ("429", "500"):
                    self.send_response(int(fault))
                    self.send_header("Retry-After", "0")
                    self.send_header("Content-Type", "application/json")
                    self.end_headers()
                    self.wfile.write(b'{"error": {"message": "slow down"}}')
                    return
                if fault == "malformed":
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.end_headers()
                    self.wfile.write(b'{"choices": [{"mess')
                    return
                if fault == "slow":
                    time.sleep(proxy.slow)
                data = json.loads(body)
                # the same prompt is sampled the same way on every run: a test of what the dataset
                # keeps must not hang on whether the tiny model happened to stop this time
                data.setdefault("seed", zlib.crc32(json.dumps(data.get("messages")).encode()))
                if fault == "refuse":  # the teacher answers with a refusal
                    reply = {"choices": [{"message": {"role": "assistant", "content": "I'm sorry, but I can't help with that."},
                                          "finish_reason": "stop"}], "usage": {"prompt_tokens": 9, "completion_tokens": 9}}
                    payload = json.dumps(reply).encode()
                else:
                    request = urllib.request.Request(proxy.upstream + self.path.removeprefix("/v1"), data=json.dumps(data).encode(),
                                                     headers={"Content-Type": "application/json"})
                    with urllib.request.urlopen(request, timeout=60) as r:
                        payload = r.read()
                try:
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):  # the client timed out and left
                    pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def upstream(tiny_model_dir, tmp_path_factory):
    from aeth.app import Aeth
    from aeth.config import load_config
    from aeth.serving.openai import serve

    home = tmp_path_factory.mktemp("upstream-home")
    server = serve(Aeth(load_config([f"home={home}", "model.threads=1"], env={})), str(tiny_model_dir))
    yield server.url
    server.shutdown()


@pytest.fixture
def proxy(upstream):
    p = Proxy(upstream)
    yield p
    p.close()


@pytest.fixture
def teacher(proxy):
    from aeth.distill.teachers import OpenAITeacher

    return OpenAITeacher("srv", proxy.url, "tiny")


def plan(n=12, **kw):
    return CollectPlan(specialist="adder", teacher="srv", model="tiny", n=n, max_tokens=kw.pop("max_tokens", 8),
                       temperature=kw.pop("temperature", 0.0), **kw)


FAST = dict(backoff=0.01, timeout=2.0)


def test_prompts_come_from_the_train_split_then_variations():
    spec = adder()
    train, validation = spec.recipe.split()
    held_out = {r["messages"][0]["content"] for r in validation}
    prompts = prompts_for(spec, 100, seed=0)
    texts = [p[-1]["content"] for p in prompts]
    assert len(texts) == len(set(texts)) == 100 and all(p[0] == {"role": "system", "content": "Be brief."} for p in prompts)
    assert not held_out & set(texts)  # a validation prompt never becomes training data
    assert set(texts[:len(train)]) == {r["messages"][0]["content"] for r in train}
    assert prompts_for(spec, 100, seed=0) == prompts and prompts_for(spec, 100, seed=1) != prompts
    assert len(prompts_for(spec, 10_000)) == 8 * len(train)  # every variation of every prompt, then no more


def test_filters_name_why_an_answer_is_dropped():
    assert verdict(Completion("  ", 1, 0, "stop"), 100) == "empty"
    assert verdict(Completion("I'm sorry, but I can't help with that.", 1, 9, "stop"), 100) == "refused"
    assert verdict(Completion("As an AI language model, I cannot", 1, 9, "stop"), 100) == "refused"
    assert verdict(Completion("Two plus two is four, and", 1, 9, "length"), 100) == "truncated"
    assert verdict(Completion("x" * 101, 1, 9, "stop"), 100) == "too_long"
    assert verdict(Completion("Sorry to hear that! Here is how: ...", 1, 9, "stop"), 100) is None


def test_retries_429_5xx_timeouts_and_malformed_replies_then_caches_every_answer(aeth_home, proxy, teacher):
    proxy.faults = ["429", "500", "malformed", "slow", "429"]
    proxy.slow = 3.0  # past the 2 s timeout
    folder, totals = collect(teacher, adder(), plan(), aeth_home, Options(concurrency=1, **FAST))
    assert totals.done == 12 and totals.failed == 0 and totals.retries == 5
    assert proxy.requests == 12 + 5 and totals.requests == 17
    results = read_results(folder / "results.jsonl")
    assert sorted(r["index"] for r in results) == list(range(12))
    assert all(r["tokens_out"] >= 1 and r["tokens_in"] > 5 and not r["cached"] for r in results)
    # the run is complete; a new run of the same prompts (another folder) is answered by the cache alone
    before = proxy.requests
    _, again = collect(teacher, adder(), plan(max_answer_chars=7999), aeth_home, Options(**FAST))
    assert proxy.requests == before and again.cached == 12 and again.requests == 0


def test_a_teacher_that_keeps_failing_is_given_up_on_with_what_to_do(aeth_home, proxy, teacher):
    proxy.faults = ["500"] * 3
    with pytest.raises(CollectError, match=r"1 prompt\(s\) failed after 2 retries.*11/12 are recorded.*same command"):
        collect(teacher, adder(), plan(), aeth_home, Options(concurrency=1, retries=2, **FAST))
    folder, totals = collect(teacher, adder(), plan(), aeth_home, Options(**FAST))  # resumes: only the missing one
    assert totals.done == 12 and totals.requests == 1


def test_an_unauthorised_teacher_stops_at_once(aeth_home, upstream, monkeypatch):
    from aeth.distill.teachers import OpenAITeacher

    class Deny(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_POST(self):
            self.send_response(401)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(b'{"error": {"message": "Incorrect API key provided"}}')

    server = ThreadingHTTPServer(("127.0.0.1", 0), Deny)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("SECRET_KEY_VAR", "sk-do-not-print-me")
    teacher = OpenAITeacher("srv", f"http://127.0.0.1:{server.server_address[1]}/v1", "tiny", api_key_env="SECRET_KEY_VAR")
    try:
        with pytest.raises(CollectError, match="refused") as info:
            collect(teacher, adder(), plan(), aeth_home, Options(concurrency=2, **FAST))
    finally:
        server.shutdown()
    assert "sk-do-not-print-me" not in str(info.value)


def test_the_dataset_keeps_good_answers_and_its_card_says_what_was_dropped_and_paid(aeth_home, proxy, teacher):
    (aeth_home / "prices.yaml").write_text("tiny: {input: 1.0, output: 2.0}\n")
    proxy.faults = ["refuse", "refuse"]
    p = plan(n=20, max_tokens=150, temperature=1.0)  # long enough for the tiny model to stop by itself at times
    folder, totals = collect(teacher, adder(), p, aeth_home, Options(concurrency=1, **FAST))
    results = read_results(folder / "results.jsonl")
    expected_cost = sum(r["tokens_in"] * 1.0 + r["tokens_out"] * 2.0 for r in results) / 1e6
    assert totals.cost == pytest.approx(expected_cost) and totals.priced
    path, card = write_dataset(folder, aeth_home, p, teacher)
    records = [json.loads(line) for line in (path / "records.jsonl").read_text().splitlines()]
    kept = [r for r in results if r["dropped"] is None]
    assert card["dropped"]["refused"] == 2 and 1 <= card["records"] == len(records) <= len(kept)
    assert card["records"] + sum(card["dropped"].values()) == 20 and card["cost_usd"] == pytest.approx(expected_cost, abs=1e-6)
    assert card["teacher"] == "srv" and card["model"] == "tiny" and path.name == "v0001-srv"
    assert all(r["messages"][-1]["role"] == "assistant" and r["messages"][0]["role"] == "system" for r in records)
    # aeth train reads it as a generated set of the specialist
    from aeth.datasets import training_records

    data = training_records(adder(), aeth_home)
    assert data.sources["generated v0001-srv"] == len(records)


def test_the_price_table_file_is_checked(aeth_home):
    table, path = prices(aeth_home)
    assert table["gpt-4o-mini"] == (0.15, 0.60) and path == aeth_home / "prices.yaml"
    path.write_text("gpt-4o-mini: {input: 0.1, output: 0.4}\nmine: {input: 1, output: 2}\n")
    assert prices(aeth_home)[0]["gpt-4o-mini"] == (0.1, 0.4) and prices(aeth_home)[0]["mine"] == (1.0, 2.0)
    path.write_text("mine: 3\n")
    with pytest.raises(CollectError, match="prices.yaml: expected"):
        prices(aeth_home)


def test_the_response_cache_survives_processes(tmp_path):
    a = ResponseCache(tmp_path / "c.sqlite")
    key = ResponseCache.key("t", "m", [{"role": "user", "content": "hi"}], {"temperature": 0})
    assert a.get(key) is None
    a.put(key, Completion("hello", 3, 1, "stop"))
    a.close()
    assert ResponseCache(tmp_path / "c.sqlite").get(key) == Completion("hello", 3, 1, "stop")
    assert key != ResponseCache.key("t", "m", [{"role": "user", "content": "hi"}], {"temperature": 0.5})


def test_sigkill_mid_collection_then_the_same_command_resumes_and_a_rerun_asks_nothing(aeth_home, proxy, tmp_path):
    from aeth.testing import adder_plugin_source, install_plugin_source

    env = {**os.environ, **install_plugin_source(tmp_path, "adder", adder_plugin_source()), "AETH_HOME": str(aeth_home),
           "OPENAI_API_KEY": "sk-test", "OMP_NUM_THREADS": "1"}
    cmd = [AETH, "distill", "collect", "adder", "--teacher", "openai", "--base-url", proxy.url, "--model", "tiny",
           "--n", "30", "--max-tokens", "8", "--temperature", "0", "--concurrency", "2", "--backoff", "0.01"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    results = None
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        found = list((aeth_home / "distill" / "adder").glob("*/results.jsonl"))
        if found and len(read_results(found[0])) >= 8:
            results = found[0]
            break
        time.sleep(0.02)
    assert results is not None, proc.communicate(timeout=60)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    recorded = len(read_results(results))
    assert 8 <= recorded < 30
    with open(results, "a") as f:
        f.write('{"index": 99, "answ')  # as if the kill had landed inside a write
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "resuming 30 answers" in out.stderr
    indices = [r["index"] for r in read_results(results)]
    assert sorted(indices) == list(range(30))  # nothing lost, nothing twice
    # answers received but not yet recorded when the kill came are not asked again
    assert proxy.requests <= 30 + 2
    dataset = Path(out.stdout.strip())
    card = json.loads((dataset / "card.json").read_text())
    assert card["prompts"] == 30 and card["records"] + sum(card["dropped"].values()) == 30
    assert len((dataset / "records.jsonl").read_text().splitlines()) == card["records"]
    before = proxy.requests
    again = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert again.returncode == 0 and "already collected" in again.stderr and proxy.requests == before


def test_a_local_teacher_costs_nothing_and_threads_share_one_model(aeth_home, tiny_model_dir):
    from aeth.app import Aeth
    from aeth.config import load_config
    from aeth.distill.teachers import LocalTeacher

    app = Aeth(load_config([f"model.default={tiny_model_dir}", "model.threads=1"]))
    teacher = LocalTeacher("local", str(tiny_model_dir), app)
    folder, totals = collect(teacher, adder(), plan(n=8, max_tokens=4), aeth_home, Options(concurrency=4, **FAST))
    assert totals.done == 8 and totals.priced and totals.cost == 0.0 and totals.tokens_out > 0
    assert len(app.models.loaded) == 1  # four threads asked for the model at once; it loaded once
