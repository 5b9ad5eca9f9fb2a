"""Answers from several specialists: a prompt whose requests belong to different specialists is
answered part by part and composed; every contributor is named (response, --json, the log, the
API). Routed by the real router (MiniLM) over two test specialists whose generator says who
answered what, in process and through ``aeth serve``."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx
import openai
import pytest
from click.testing import CliRunner

from aeth import Request
from aeth.app import Aeth
from aeth.cli import cli
from aeth.compose import SEPARATOR, plan, split_requests
from aeth.config import load_config
from aeth.plugins import reset_default_host
from aeth.testing import install_plugin_source

NO_INPUT_CHECKS = ["policy.default.harmful=off", "policy.default.jailbreak=off", "policy.default.injection=off"]
TWO_PART = "Write a Python function that reverses a string. Also, write a haiku about autumn leaves."
ONE_TOPIC = "Write a Python function that parses ISO dates. What edge cases should it handle?"

PLUGIN = '''from aeth import Specialist, hookimpl

CODER = ("Write a Python function that sorts a list of numbers", "Fix the bug in this Python loop",
         "Implement binary search in Python", "Write a Python class for a bank account",
         "How do I read a CSV file in Python?", "Write a unit test for this Python function",
         "What edge cases should my parsing function handle?", "Refactor this Python code to use a dict")
POET = ("Write a haiku about the sea", "Compose a short poem about love", "Write a limerick about a cat",
        "Write a sonnet about winter mornings", "Give me a poem about the moon", "Write a haiku about spring rain")


@hookimpl
def register_specialists(register):
    register(Specialist("coder", "writes code", base_model=BASE, routing_examples=CODER, system_prompt="You code."))
    register(Specialist("poet", "writes poems", base_model=BASE, routing_examples=POET, system_prompt="You rhyme."))


@hookimpl(tryfirst=True)
def generate(specialist, request, context):
    if specialist.name not in ("coder", "poet"):
        return None
    context.stats.update(finish_reason="stop", tokens_in=5, tokens_out=4)
    return iter([specialist.name, " answers: ", request.prompt])
'''


@pytest.fixture
def two(aeth_home, tiny_model_dir, tmp_path, monkeypatch):
    """The coder and poet plugin, installed for this process and for child processes."""
    env = install_plugin_source(tmp_path / "plugin", "two", PLUGIN.replace("BASE", repr(str(tiny_model_dir))))
    monkeypatch.syspath_prepend(str(tmp_path / "plugin"))
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    reset_default_host()  # this process's host: aeth's defaults and this plugin only (no installed specialists)
    yield env
    reset_default_host()


def make_app(*overrides: str) -> Aeth:
    return Aeth(load_config([*NO_INPUT_CHECKS, *overrides]))


def test_a_prompt_is_split_into_its_requests_with_their_context():
    assert split_requests(TWO_PART) == ["Write a Python function that reverses a string.",
                                        "Also, write a haiku about autumn leaves."]
    assert split_requests("I have orders in a table. Write a SQL query that totals them by month.") == [
        "I have orders in a table. Write a SQL query that totals them by month."]
    assert split_requests("Reverse a list in Python and write a haiku about the sea") == [
        "Reverse a list in Python", "write a haiku about the sea"]
    assert split_requests("Sort it and return it.") == ["Sort it and return it."]  # "return" asks nothing here
    assert split_requests("Hello there") == ["Hello there"]


def test_requests_for_different_specialists_are_answered_by_each_and_composed(two):
    app = make_app()
    answer = app.stream(Request(TWO_PART))
    assert answer.bid.specialist == "coder+poet" and answer.bid.plugin == "aeth.compose"
    chunks = list(answer)
    text = "".join(chunks)
    assert text == ("coder answers: Write a Python function that reverses a string." + SEPARATOR
                    + "poet answers: Also, write a haiku about autumn leaves.")
    r = answer.response
    assert r.text == text and r.specialist == "coder+poet" and r.tokens_out == 8
    assert [(c["specialist"], c["part"]) for c in r.contributors] == [
        ("coder", "Write a Python function that reverses a string."), ("poet", "Also, write a haiku about autumn leaves.")]
    iid = app.log_answer(answer, "run")
    row = app.store.find(iid)
    assert row.specialist == "coder+poet" and [c["specialist"] for c in row.metadata["contributors"]] == ["coder", "poet"]
    assert [m["role"] for m in row.messages] == ["user"] and row.prompt == TWO_PART


def test_one_topic_over_several_sentences_is_one_specialist_and_compose_can_be_turned_off(two):
    app = make_app()
    assert plan(app, Request(ONE_TOPIC), app.bids(Request(ONE_TOPIC))) is None
    assert app.run(Request(ONE_TOPIC)).contributors is None
    off = make_app("router.compose=false")
    response = off.run(Request(TWO_PART))
    assert response.contributors is None and response.specialist == off.bids(Request(TWO_PART))[0].specialist
    assert make_app().run(Request(TWO_PART, specialist="poet")).contributors is None  # a named specialist answers alone


def test_a_close_runner_up_also_answers_within_router_margin(two):
    prompt = "Write a Python function that prints a short poem"
    app = make_app("router.margin=1.0")
    bids = app.bids(Request(prompt))
    parts = plan(app, Request(prompt), bids)
    assert [p.specialist for p in parts] == [bids[0].specialist, bids[1].specialist]
    assert all(p.prompt == prompt for p in parts) and "within router.margin 1" in parts[1].bid.reason
    assert plan(make_app(), Request(prompt), bids) is None  # the default margin is 0: never


def test_run_json_names_every_contributor(two):
    out = CliRunner().invoke(cli, [*(a for o in NO_INPUT_CHECKS for a in ("-o", o)), "run", "--json", TWO_PART])
    assert out.exit_code == 0, out.output
    got = json.loads(out.stdout)
    assert got["specialist"] == "coder+poet" and [c["specialist"] for c in got["contributors"]] == ["coder", "poet"]
    route = CliRunner().invoke(cli, [*(a for o in NO_INPUT_CHECKS for a in ("-o", o)), "route", "--json", TWO_PART])
    assert [p["specialist"] for p in json.loads(route.stdout)["parts"]] == ["coder", "poet"]


def test_serve_composes_and_names_the_contributors(two, tmp_path):
    aeth = str(Path(sys.executable).with_name("aeth"))
    env = {**os.environ, "AETH_HOME": str(tmp_path / "home")}
    log = tmp_path / "serve.log"
    with open(log, "wb") as err:
        proc = subprocess.Popen([aeth, *(a for o in [*NO_INPUT_CHECKS, "model.threads=1"] for a in ("-o", o)), "serve",
                                 "--port", "0", "--log-level", "warning"], env=env, stdout=subprocess.DEVNULL,
                                stderr=err, cwd=tmp_path)
    try:
        end = time.monotonic() + 120
        while not (found := re.search(r"serving on (http://\S+)/v1", log.read_text())):
            assert proc.poll() is None and time.monotonic() < end, log.read_text()
            time.sleep(0.05)
        url = found.group(1)
        client = openai.OpenAI(base_url=url + "/v1", api_key="none", max_retries=0)
        reply = client.chat.completions.create(model="aeth", messages=[{"role": "user", "content": TWO_PART}])
        meta = reply.model_extra["aeth"]
        assert meta["specialist"] == "coder+poet" and [c["specialist"] for c in meta["contributors"]] == ["coder", "poet"]
        assert reply.choices[0].message.content.startswith("coder answers: Write a Python function")
        assert "poet answers: Also, write a haiku" in reply.choices[0].message.content
        streamed = "".join(c.choices[0].delta.content or "" for c in client.chat.completions.create(
            model="aeth", messages=[{"role": "user", "content": TWO_PART}], stream=True) if c.choices)
        assert streamed == reply.choices[0].message.content
        raw = httpx.post(url + "/v1/chat/completions", json={"model": "aeth", "messages": [{"role": "user", "content": TWO_PART}]})
        assert raw.headers["x-aeth-specialist"] == "coder+poet"
    finally:
        proc.terminate()
        proc.wait(30)
    rows = Aeth(load_config([], env={**env})).store.list(limit=5)
    assert {r.specialist for r in rows} == {"coder+poet"} and all(r.metadata.get("contributors") for r in rows)
