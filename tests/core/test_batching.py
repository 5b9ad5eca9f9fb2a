"""BatchingEngine: concurrent requests decoded in one batch give each what it gets alone (greedy, token
for token; seeded sampling alike), with any mix of adapters, joining and leaving between steps;
cancel, hot swap, stop strings, lengths, context overflow, plugin hand-off, failures and close.

Every forward of the batch goes through the pool's ``mixed``; the tests wrap it in a :class:`Stepper`
that holds each forward until the test lets it run, so who joins when is decided by the test, not
by timing.
"""

import threading
from contextlib import contextmanager

import pytest
import torch

from aeth import Request, Specialist, hookimpl
from aeth.errors import ContextOverflow, InputTooLong
from aeth.models.adapters import AdapterError, AdapterStore
from aeth.serving.batching import BatchingEngine, merge_system
from aeth.serving.engine import HookEngine
from aeth.serving.generation import Job

peft = pytest.importorskip("peft")

PROMPTS = ("hello", "What is two plus two, and why?", "Tell me a story about a cat and a dog in the rain",
           "hi there friend, how are you doing today? I am well, thank you for asking.")


def make_lora(tiny_model_dir, out, seed, modules):
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    model = peft.get_peft_model(base, peft.LoraConfig(r=4, lora_alpha=8, target_modules=modules))
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():  # non-zero B, so the adapter changes the output
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.copy_(torch.rand(p.shape, generator=generator) - 0.5)
    model.save_pretrained(out)
    return out


@pytest.fixture(scope="module")
def loras(tiny_model_dir, tmp_path_factory):
    """Three real LoRA adapters on the tiny model, on different modules."""
    root = tmp_path_factory.mktemp("loras")
    return {"x": make_lora(tiny_model_dir, root / "x", 1, ["q_proj", "v_proj"]),
            "y": make_lora(tiny_model_dir, root / "y", 2, ["k_proj", "down_proj"]),
            "z": make_lora(tiny_model_dir, root / "z", 3, ["q_proj", "v_proj", "up_proj"])}


@pytest.fixture
def app(aeth_home, register_plugin, tiny_model_dir):
    from aeth.app import Aeth
    from aeth.config import load_config

    class Specialists:
        @hookimpl
        def register_specialists(self, register):
            for name in ("plain", "one", "two", "broken"):
                register(Specialist(name=name, description=name, base_model=str(tiny_model_dir), system_prompt="Be brief."))

    register_plugin(Specialists(), "batching-specialists")
    return Aeth(load_config(["model.dtype=float32", "model.threads=1"]))


@pytest.fixture
def engine(app):
    engine = BatchingEngine(app)
    yield engine
    engine.close()


class Stepper:
    """Stands in for the pool's ``mixed``: each forward of the batch waits at :meth:`step` until the
    test lets it run (or runs freely after :meth:`free`), and its row count is recorded."""

    def __init__(self, pool):
        self.inner = pool.mixed
        self.arrived = threading.Semaphore(0)
        self.permits = threading.Semaphore(0)
        self.freed = self.holding = False
        self.sizes = []

    @contextmanager
    def __call__(self, loaded, names):
        if not self.freed:
            self.arrived.release()
            self.permits.acquire()
        self.sizes.append(len(names))
        with self.inner(loaded, names) as result:
            yield result

    def wait(self):
        """Until the scheduler is at its next forward, held there."""
        self.arrived.acquire()
        self.holding = True

    def step(self, n=1):
        """Let ``n`` forwards run (the held one first); the one after them will be held."""
        for _ in range(n):
            if not self.holding:
                self.arrived.acquire()
            self.holding = False
            self.permits.release()

    def free(self):
        self.freed = True
        self.permits.release()


@pytest.fixture
def stepper(app, monkeypatch):
    stepper = Stepper(app.models)
    monkeypatch.setattr(app.models, "mixed", stepper)
    yield stepper
    stepper.free()


def job(app, prompt, specialist="plain", max_tokens=24, temperature=0.0, seed=None, **kw):
    spec = app.specialist(specialist)
    request = Request(prompt, specialist=specialist, temperature=temperature, max_tokens=max_tokens, seed=seed)
    return Job(spec, request, app.sampling(spec, request), **kw)


def alone(app, job):
    """The answer the one-at-a-time engine (aeth's default generator) gives ``job``."""
    gen = HookEngine(app).submit(job)
    return gen.text(), gen.stats


def add_version(app, specialist, source, activate=True):
    from aeth.models.adapters import AdapterStore

    store = AdapterStore(app.config.home)
    version = store.add(specialist, source, {})
    if activate:
        store.activate(specialist, version.version)
    return version.version


# ---- same answers as alone ------------------------------------------------------------------------


def test_each_request_in_a_batch_gets_what_it_gets_alone_joining_and_leaving_between_steps(app, engine, stepper):
    jobs = [job(app, p, max_tokens=n) for p, n in zip(PROMPTS, (30, 12, 24, 18), strict=True)]
    expected = [alone(app, j) for j in jobs]
    assert all(s["finish_reason"] == "length" for _, s in expected)
    first = engine.submit(jobs[0])
    stepper.wait()  # the first request's prefill is held: it runs alone
    second, third = engine.submit(jobs[1]), engine.submit(jobs[2])  # arrive together, while the first decodes
    stepper.step(3)  # first's prefill, its first token, then second and third prefilled together
    fourth = engine.submit(jobs[3])  # arrives mid-decode of the three
    stepper.free()
    gens = [first, second, third, fourth]
    for gen, (text, stats) in zip(gens, expected, strict=True):
        assert gen.text() == text
        assert gen.stats["tokens_out"] == stats["tokens_out"] and gen.stats["tokens_in"] == stats["tokens_in"]
        assert gen.stats["finish_reason"] == "length" and gen.stats["model"] == stats["model"]
    assert stepper.sizes[:4] == [1, 1, 2, 3]  # prefill, step, the pair's prefill, the three together
    assert 1 in stepper.sizes[4:] and 4 in stepper.sizes  # the fourth's own prefill, then four rows
    # every answer counts its forwards and a share of them; the first was alone for two of them
    assert first.steps == jobs[0].sampling.max_tokens + 1
    assert all(g.stats["ttft_s"] is not None and g.stats["machine_seconds"] > 0 for g in gens)
    assert engine.stats() == {"running": 0, "waiting": 0}


def test_mixed_adapters_in_one_batch_equal_their_solo_answers(app, engine, stepper, loras):
    one = add_version(app, "one", loras["x"])
    two = add_version(app, "two", loras["y"])
    jobs = [job(app, PROMPTS[1], "one"), job(app, PROMPTS[2], "two"), job(app, PROMPTS[3], "plain"),
            job(app, PROMPTS[0], "two", adapter="base")]
    expected = [alone(app, j) for j in jobs]
    assert [s["adapter"] for _, s in expected] == [one, two, None, None]
    assert expected[0][0] != alone(app, job(app, PROMPTS[1], "one", adapter="base"))[0]  # the adapter matters
    first = engine.submit(jobs[0])
    stepper.wait()
    rest = [engine.submit(j) for j in jobs[1:]]
    stepper.free()
    for gen, (text, stats) in zip([first, *rest], expected, strict=True):
        assert (gen.text(), gen.stats["adapter"]) == (text, stats["adapter"])
    assert stepper.sizes[:3] == [1, 1, 3] and 4 in stepper.sizes


def test_seeded_sampling_in_a_batch_equals_seeded_sampling_alone(app, engine, stepper):
    jobs = [job(app, p, temperature=0.9, seed=s, max_tokens=20) for p, s in zip(PROMPTS, (7, 7, 8, 9), strict=True)]
    expected = [alone(app, j)[0] for j in jobs]
    assert expected[0] != alone(app, job(app, PROMPTS[0], temperature=0.9, seed=8, max_tokens=20))[0]
    first = engine.submit(jobs[0])
    stepper.wait()
    rest = [engine.submit(j) for j in jobs[1:]]
    stepper.free()
    assert [g.text() for g in [first, *rest]] == expected


# ---- cancel, close, limits ------------------------------------------------------------------------


def test_a_cancelled_request_stops_within_one_step_and_the_next_is_served(app, engine, stepper):
    gen = engine.submit(job(app, PROMPTS[1], max_tokens=200))
    stepper.step(3)  # prefill and two tokens; held at the third
    gen.cancel()
    steps = gen.steps
    stepper.free()
    gen.text()
    assert gen.steps <= steps + 1 and gen.stats["finish_reason"] == "cancelled"
    assert gen.stats["tokens_out"] < 200
    following = job(app, PROMPTS[2])
    nxt = engine.submit(following)
    assert nxt.text() == alone(app, following)[0] and nxt.stats["finish_reason"] == "length"


def test_cancel_while_streaming_without_a_stepper(app, engine):
    gen = engine.submit(job(app, PROMPTS[1], max_tokens=300))
    next(iter(gen))  # the first text has come
    gen.cancel()
    steps = gen.steps
    gen.text()
    assert gen.steps <= steps + 1 and gen.stats["finish_reason"] == "cancelled"


def test_close_ends_running_and_waiting_answers_as_cancelled(app, stepper):
    engine = BatchingEngine(app, max_batch=1)
    running = engine.submit(job(app, PROMPTS[1], max_tokens=100))
    stepper.wait()
    waiting = engine.submit(job(app, PROMPTS[2]))  # max_batch=1: it waits for a free row
    assert engine.stats() == {"running": 1, "waiting": 1}
    closer = threading.Thread(target=engine.close)
    closer.start()
    assert waiting.text() == "" and waiting.stats["finish_reason"] == "cancelled"  # ended by close at once
    stepper.free()  # the held forward ends; the scheduler stops at the next boundary
    closer.join()
    running.text()
    assert running.stats["finish_reason"] == "cancelled" and running.steps == 1
    assert engine.stats() == {"running": 0, "waiting": 0}
    with pytest.raises(RuntimeError, match="closed"):
        engine.submit(job(app, PROMPTS[0]))


def test_max_batch_bounds_the_rows_per_forward(app, stepper):
    engine = BatchingEngine(app, max_batch=2)
    try:
        jobs = [job(app, p, max_tokens=8) for p in PROMPTS[:3]]
        expected = [alone(app, j)[0] for j in jobs]
        gens = [engine.submit(jobs[0])]
        stepper.wait()
        gens += [engine.submit(j) for j in jobs[1:]]
        assert engine.stats()["waiting"] == 2
        stepper.free()
        assert [g.text() for g in gens] == expected
        assert max(stepper.sizes) == 2
    finally:
        engine.close()


def test_stop_strings_and_max_tokens_end_answers_with_their_reasons(app, engine):
    full, stats = alone(app, job(app, PROMPTS[2], max_tokens=30))
    stop = full[8:11]
    cut = engine.submit(job(app, PROMPTS[2], max_tokens=30, stop=(stop, "never appears")))
    short = engine.submit(job(app, PROMPTS[2], max_tokens=5))
    assert cut.text() == full[:full.find(stop)] and cut.stats["finish_reason"] == "stop"
    assert short.text() == alone(app, job(app, PROMPTS[2], max_tokens=5))[0]
    assert short.stats["finish_reason"] == "length" and short.stats["tokens_out"] == 5


def test_a_prompt_that_does_not_fit_is_refused_before_any_generation(app, engine, stepper):
    with pytest.raises(ContextOverflow) as overflow:
        engine.submit(job(app, PROMPTS[0], max_tokens=500))  # the tiny model's context is 512
    e = overflow.value
    assert e.limit == 512 and e.max_tokens == 500 and e.prompt_tokens > 12
    assert str(e) == (f"This model's maximum context length is 512 tokens; the messages have {e.prompt_tokens} tokens "
                      "and max_tokens asks for 500 more. Shorten the messages or lower max_tokens.")
    assert stepper.sizes == [] and engine.stats() == {"running": 0, "waiting": 0}


def test_max_input_tokens_is_checked_at_submission(aeth_home, register_plugin, tiny_model_dir):
    from aeth.app import Aeth
    from aeth.config import load_config

    class One:
        @hookimpl
        def register_specialists(self, register):
            register(Specialist(name="plain", description="p", base_model=str(tiny_model_dir), system_prompt="Be brief."))

    register_plugin(One(), "batching-one")
    app = Aeth(load_config(["model.dtype=float32", "model.threads=1", "generation.max_input_tokens=10"]))
    engine = BatchingEngine(app)
    try:
        with pytest.raises(InputTooLong):
            engine.submit(job(app, PROMPTS[3]))
    finally:
        engine.close()


# ---- adapters: hot swap, failures -----------------------------------------------------------------


def test_activating_another_version_takes_effect_at_the_next_request_not_in_flight(app, engine, stepper, loras):
    first = add_version(app, "one", loras["x"])
    second = add_version(app, "one", loras["z"], activate=False)
    prompts = (PROMPTS[1], PROMPTS[3])
    expected = {v: [alone(app, job(app, p, "one", adapter=v))[0] for p in prompts] for v in (first, second)}
    assert expected[first] != expected[second]
    before = engine.submit(job(app, prompts[0], "one"))  # the active version: first
    stepper.step(2)  # in flight
    AdapterStore(app.config.home).activate("one", second)  # `aeth adapters activate one <second>`
    after = engine.submit(job(app, prompts[1], "one"))
    stepper.free()
    assert (before.text(), before.stats["adapter"]) == (expected[first][0], first)
    assert (after.text(), after.stats["adapter"]) == (expected[second][1], second)
    assert 2 in stepper.sizes  # both versions of one specialist decoded in the same forwards
    AdapterStore(app.config.home).rollback("one")
    assert engine.submit(job(app, prompts[1], "one")).stats["adapter"] == first


def test_a_job_whose_adapter_cannot_load_fails_alone(app, engine, stepper, loras):
    broken = add_version(app, "broken", loras["y"])
    weights = AdapterStore(app.config.home).get("broken", broken).path / "adapter_model.safetensors"
    weights.write_bytes(b"not safetensors")  # damaged after it was activated
    good_job = job(app, PROMPTS[2])
    expected = alone(app, good_job)[0]
    good = engine.submit(good_job)
    stepper.wait()
    bad = engine.submit(job(app, PROMPTS[1], "broken"))
    after = engine.submit(job(app, PROMPTS[3], max_tokens=6))
    stepper.free()
    with pytest.raises(AdapterError, match=f"adapter {broken} of 'broken' could not be loaded"):
        bad.text()
    assert bad.stats["adapter"] == broken and bad.steps == 0
    with pytest.raises(AdapterError):  # the failed load left nothing half-loaded to be served next time
        engine.submit(job(app, PROMPTS[1], "broken")).text()
    assert good.text() == expected and good.stats["finish_reason"] == "length"
    assert after.text() == alone(app, job(app, PROMPTS[3], max_tokens=6))[0]


def test_a_failing_forward_fails_its_rows_and_the_scheduler_serves_on(app, engine, monkeypatch):
    inner = app.models.mixed
    calls = {"n": 0}

    @contextmanager
    def flaky(loaded, names):
        calls["n"] += 1
        if calls["n"] == 3:
            raise RuntimeError("the forward broke")
        with inner(loaded, names) as result:
            yield result

    monkeypatch.setattr(app.models, "mixed", flaky)
    doomed = engine.submit(job(app, PROMPTS[1]))
    with pytest.raises(RuntimeError, match="the forward broke"):
        doomed.text()
    assert doomed.steps == 2
    fine = job(app, PROMPTS[2])
    assert engine.submit(fine).text() == alone(app, fine)[0]


# ---- hand-off to plugins ---------------------------------------------------------------------------


def test_a_job_another_plugin_generates_goes_to_it_once(app, engine, register_plugin):
    calls = []

    class Echo:
        @hookimpl
        def generate(self, specialist, request, context):
            calls.append(specialist.name)
            if specialist.name != "one":
                return None
            context.stats.update(tokens_out=2, finish_reason="stop")
            return iter(["echo: ", request.prompt])

    register_plugin(Echo(), "batching-echo")
    gen = engine.submit(job(app, "ping", "one"))
    assert gen.text() == "echo: ping" and calls == ["one"] and gen.stats["tokens_out"] == 2
    plain = job(app, PROMPTS[0])
    assert engine.submit(plain).text() == alone(app, plain)[0]  # declined: batched (then alone: the hook)
    assert calls == ["one", "plain", "plain"]


def test_images_go_to_the_generate_hook(app, engine):
    from aeth.errors import SpecialistError

    spec = app.specialist("plain")
    request = Request("what is this?", specialist="plain", images=(b"\x89PNG",))
    with pytest.raises(SpecialistError, match="answers text only"):
        engine.submit(Job(spec, request, app.sampling(spec, request)))


def test_leading_system_messages_are_merged_into_one():
    messages = [{"role": "system", "content": "Be brief."}, {"role": "system", "content": "Use French."},
                {"role": "user", "content": "hi"}]
    assert merge_system(messages) == [{"role": "system", "content": "Be brief.\n\nUse French."},
                                      {"role": "user", "content": "hi"}]
    assert merge_system(messages[1:]) == messages[1:]
