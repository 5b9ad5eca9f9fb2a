"""Quality control before an answer leaves: retry while the check fails, best-of-k, self-consistency
votes; chosen by ``quality.<specialist>.*``. On a generator plugin whose answers depend on the
sampling seed (so which answer must be chosen is known), in process and through ``aeth serve``."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import openai
import pytest

from aeth import ConfigError, Request, Specialist, hookimpl
from aeth.app import Aeth
from aeth.config import load_config
from aeth.quality import SAMPLE_TEMPERATURE, Quality, quality_for
from aeth.testing import install_plugin_source

NO_INPUT_CHECKS = ["policy.default.harmful=off", "policy.default.jailbreak=off", "policy.default.injection=off"]

GENERATOR = '''
def answer_for(sampling):
    """Greedy: a wrong answer that fails the check; sampled: by seed, 'good 5', 'good 5', 'bad 9', ..."""
    if sampling.temperature == 0:
        return "bad 7 (greedy)"
    return ["bad 9", "good 5", "good 5", "bad 9", "good 4"][sampling.seed % 5] + f" (seed {sampling.seed})"


def check(request, answer):
    return None if answer.startswith("good") else f"not good: {answer.split()[0]}"


def vote_key(request, answer):
    return answer.split()[1] if len(answer.split()) > 1 else None
'''
namespace: dict = {}
exec(GENERATOR, namespace)  # noqa: S102  (the same functions in process and in the server's plugin)
answer_for, check, vote_key = namespace["answer_for"], namespace["check"], namespace["vote_key"]


class Judged:
    """``qc`` (check and vote key, off by default) and ``plain`` (no Quality); both answer by seed."""

    @hookimpl
    def register_specialists(self, register):
        register(Specialist("qc", "answers judged before they leave", routing_examples=("judge me",),
                            generation=_greedy(), quality=Quality(check=check, vote_key=vote_key)))
        register(Specialist("plain", "no quality declared", routing_examples=("plain",), generation=_greedy()))

    @hookimpl(tryfirst=True)
    def generate(self, specialist, request, context):
        context.stats.update(finish_reason="stop", tokens_in=3, tokens_out=2)
        return iter([answer_for(context.sampling)])


def _greedy():
    from aeth.specialist import GenerationDefaults

    return GenerationDefaults(temperature=0.0, max_tokens=8)


@pytest.fixture
def judged(aeth_home, register_plugin):
    register_plugin(Judged(), "judged-test")


def make_app(*overrides: str) -> Aeth:
    return Aeth(load_config([*NO_INPUT_CHECKS, *overrides]))


def run(app: Aeth, name: str = "qc", seed: int | None = None):
    return app.run(Request("anything", specialist=name, seed=seed))


def test_off_answers_as_generated_and_reports_nothing(judged):
    response = run(make_app())
    assert response.text == "bad 7 (greedy)" and response.quality is None


def test_retry_regenerates_while_the_check_fails_up_to_k(judged):
    response = run(make_app("quality.qc.method=retry", "quality.qc.k=3"), seed=0)
    # greedy fails; sample 1 (seed 1) is "good 5": two answers generated, the second leaves
    assert response.text == "good 5 (seed 1)"
    assert response.quality == {"method": "retry", "k": 3, "generated": 2, "chosen": 1, "passed": True,
                                "problems": ["not good: bad", None], "tokens_generated": 4}
    failing = run(make_app("quality.qc.method=retry", "quality.qc.k=1"), seed=0)  # k=1: no second chance
    assert failing.text == "bad 7 (greedy)" and failing.quality["passed"] is False and failing.quality["generated"] == 1


def test_best_of_k_generates_k_together_and_keeps_the_first_that_passes(judged):
    response = run(make_app("quality.qc.method=best", "quality.qc.k=4"), seed=0)
    assert response.quality["generated"] == 4 and response.quality["chosen"] == 1 and response.text == "good 5 (seed 1)"
    assert response.quality["problems"] == ["not good: bad", None, None, "not good: bad"]


def test_vote_returns_the_answer_most_samples_agree_on(judged):
    response = run(make_app("quality.qc.method=vote", "quality.qc.k=5"), seed=0)
    # the greedy answer (7), then samples with seeds 1..4: 5, 5, 9, 4: 5 wins
    assert response.quality["votes"] == {"5": 2, "7": 1, "9": 1, "4": 1} and response.quality["answer"] == "5"
    assert response.text == "good 5 (seed 1)" and response.quality["chosen"] == 1
    two = run(make_app("quality.qc.method=vote", "quality.qc.k=2"), seed=3)  # 7 and 9 (seed 3000010): a tie, the earliest
    assert two.quality["votes"] == {"7": 1, "9": 1} and two.text == "bad 7 (greedy)" and two.quality["chosen"] == 0


def test_extra_samples_are_sampled_even_for_a_greedy_specialist(judged):
    seen = []

    class Spy:
        @hookimpl(tryfirst=True)
        def generate(self, specialist, request, context):
            seen.append(context.sampling)

    app = make_app("quality.qc.method=best", "quality.qc.k=3")
    app.host.register(Spy(), "spy")
    run(app, seed=2)
    assert [s.temperature for s in seen] == [0.0, SAMPLE_TEMPERATURE, SAMPLE_TEMPERATURE]
    assert len({s.seed for s in seen[1:]}) == 2


def test_a_method_the_specialist_cannot_use_is_a_config_error_naming_it(judged):
    app = make_app("quality.plain.method=vote")
    with pytest.raises(ConfigError, match=r"quality.plain: method 'vote' needs the specialist's Quality.vote_key"):
        quality_for(app, app.specialist("plain"))
    # quality.default applies where it can, and leaves the others as they are
    app = make_app("quality.default.method=vote", "quality.default.k=3")
    assert quality_for(app, app.specialist("qc")) == ("vote", 3)
    assert quality_for(app, app.specialist("plain")) == ("off", 3)
    with pytest.raises(ConfigError, match=r"quality.qc.k: must be between 1 and 64, got 0"):
        load_config(["quality.qc.k=0"])
    with pytest.raises(ConfigError, match=r"quality.qc.method: must be one of off, retry, best, vote"):
        load_config(["quality.qc.method=twice"])


def test_a_specialist_declaring_a_bad_quality_is_refused_with_the_field():
    assert Specialist("x", "y", quality=Quality(method="vote")).problems() == [
        ("quality", "method 'vote' needs the specialist's Quality.vote_key, which it does not declare")]
    assert Specialist("x", "y", quality=Quality(check=check, k=0)).problems()[0][0] == "quality"


SERVE_PLUGIN = GENERATOR + '''
from aeth import Specialist, hookimpl
from aeth.quality import Quality
from aeth.specialist import GenerationDefaults


@hookimpl
def register_specialists(register):
    register(Specialist("qc", "answers judged before they leave", base_model=BASE, routing_examples=("judge me",),
                        generation=GenerationDefaults(temperature=0.0, max_tokens=8),
                        quality=Quality(check=check, vote_key=vote_key, method="best", k=4)))


@hookimpl(tryfirst=True)
def generate(specialist, request, context):
    context.stats.update(finish_reason="stop", tokens_in=3, tokens_out=2)
    return iter([answer_for(context.sampling)])
'''


def test_serve_answers_the_chosen_answer_with_its_report(tiny_model_dir, tmp_path):
    aeth = str(Path(sys.executable).with_name("aeth"))
    env = {**os.environ, **install_plugin_source(tmp_path, "judged", SERVE_PLUGIN.replace("BASE", repr(str(tiny_model_dir)))),
           "AETH_HOME": str(tmp_path / "home")}
    env.pop("AETH_CONFIG", None)
    log = tmp_path / "serve.log"
    with open(log, "wb") as err:
        proc = subprocess.Popen([aeth, *(a for o in [*NO_INPUT_CHECKS, "model.threads=1"] for a in ("-o", o)), "serve",
                                 "--port", "0", "--log-level", "warning"], env=env, stdout=subprocess.DEVNULL, stderr=err,
                                cwd=tmp_path)
    try:
        end = time.monotonic() + 120
        while not (found := re.search(r"serving on (http://\S+)/v1", log.read_text())):
            assert proc.poll() is None and time.monotonic() < end, log.read_text()
            time.sleep(0.05)
        client = openai.OpenAI(base_url=found.group(1) + "/v1", api_key="none", max_retries=0)
        whole = client.chat.completions.create(model="qc", messages=[{"role": "user", "content": "hi"}], seed=0)
        assert whole.choices[0].message.content == "good 5 (seed 1)"  # the plugin's default: best of 4
        report = whole.model_extra["aeth"]["quality"]
        assert (report["method"], report["generated"], report["chosen"], report["passed"]) == ("best", 4, 1, True)
        chunks = [c.choices[0].delta.content for c in client.chat.completions.create(
            model="qc", messages=[{"role": "user", "content": "hi"}], seed=0, stream=True) if c.choices and c.choices[0].delta.content]
        assert chunks == ["good 5 (seed 1)"]  # chosen whole, sent in one piece
        two = client.chat.completions.create(model="qc", messages=[{"role": "user", "content": "hi"}], seed=0, n=2)
        # the second choice has seed 1: its samples have seeds 1000003 * 1 + i, the first of them "good 4"
        assert [c.message.content for c in two.choices] == ["good 5 (seed 1)", "good 4 (seed 1000004)"]
        assert [q["chosen"] for q in two.model_extra["aeth"]["quality"]] == [1, 1]
    finally:
        proc.terminate()
        proc.wait(30)
