"""The plugin host and the application: real entry-point discovery, isolation, registries, pluggy's
calling rules, name clashes between distributions, and two applications side by side."""

import importlib
import os
import textwrap
import warnings

import pytest

from aeth import Bid, PolicyBlocked, Request, Specialist, SpecialistError, hookimpl
from aeth.app import Aeth
from aeth.config import load_config
from aeth.plugins import AethWarning, default_host, reset_default_host

EXAMPLES = tuple(f"write a poem about thing number {i}" for i in range(40))


def make_dist(root, dist, module, source, ep_name=None, version="0.3.1", installed=None):
    """Write an installed distribution (dist-info + module) that importlib.metadata really discovers;
    ``installed`` sets when it was installed (the dist-info's modification time)."""
    (root / f"{module}.py").write_text(textwrap.dedent(source))
    info = root / f"{dist.replace('-', '_')}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
    (info / "entry_points.txt").write_text(f"[aeth]\n{ep_name or module} = {module}\n")
    if installed is not None:
        os.utime(info, (installed, installed))


GOOD = f"""
    from aeth import Specialist, hookimpl

    @hookimpl
    def register_specialists(register):
        register(Specialist(name="poetry", description="Writes poems.", system_prompt="You write poems.",
                            routing_examples={EXAMPLES!r}))
"""


@pytest.fixture
def site(tmp_path, monkeypatch, aeth_home):
    root = tmp_path / "site"
    root.mkdir()
    monkeypatch.syspath_prepend(str(root))
    reset_default_host()
    yield root
    reset_default_host()
    importlib.invalidate_caches()


def loaded(config=None):
    """A fresh application on a freshly loaded default host, and the AethWarnings that cost."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        app = Aeth(config)
        app.specialists()
    return app, [str(w.message) for w in caught if issubclass(w.category, AethWarning)]


def test_installed_plugin_is_discovered_under_its_distribution(site):
    make_dist(site, "poetry-plugin", "poetry_plugin", GOOD, ep_name="poetry")
    app, warned = loaded()
    assert warned == []
    assert app.specialists()["poetry"].plugin == "poetry-plugin"
    info = next(p for p in app.describe_plugins() if p["name"] == "poetry-plugin")
    assert (info["distribution"], info["version"]) == ("poetry-plugin", "0.3.1")
    assert info["hooks"] == ["register_specialists"]
    assert info["registered"]["specialists"] == ["poetry"]
    app.host.pm.check_pending()


def test_plugin_that_fails_to_import_costs_one_warning_and_nothing_else(site):
    make_dist(site, "poetry-plugin", "poetry_plugin", GOOD, ep_name="poetry")
    make_dist(site, "broken-plugin", "broken_plugin", "import does_not_exist_anywhere\n", ep_name="broken")
    app, warned = loaded()
    assert len(warned) == 1
    assert "'broken-plugin'" in warned[0] and "ModuleNotFoundError" in warned[0] and "pip uninstall broken-plugin" in warned[0]
    assert {"poetry", "general"} <= set(app.specialists())


def test_two_distributions_with_the_same_entry_point_name_both_load(site):
    make_dist(site, "poetry-plugin", "poetry_plugin", GOOD, ep_name="plugin")
    make_dist(site, "other-plugin", "other_plugin", GOOD.replace('"poetry"', '"other"'), ep_name="plugin")
    app, warned = loaded()
    assert warned == []
    assert app.specialists()["poetry"].plugin == "poetry-plugin" and app.specialists()["other"].plugin == "other-plugin"


def test_a_newly_installed_package_never_takes_a_name_already_served(site):
    # "aaa" sorts before "poetry" and registers the same name; it was installed later, so it loses
    make_dist(site, "poetry-plugin", "poetry_plugin", GOOD, ep_name="poetry", installed=1_700_000_000)
    make_dist(site, "aaa-poems", "aaa_poems", GOOD.replace("Writes poems.", "Imitates."), ep_name="aaa",
              installed=1_800_000_000)
    app, warned = loaded()
    assert app.specialists()["poetry"].plugin == "poetry-plugin"
    assert app.specialists()["poetry"].description == "Writes poems."
    assert len(warned) == 1, warned
    assert warned[0].startswith("plugin 'aaa-poems' also registers specialist 'poetry', which plugin 'poetry-plugin' "
                                "already serves (installed first)")
    assert "specialists.poetry.plugin: aaa-poems" in warned[0]
    described = {p["name"]: p["registered"]["specialists"] for p in app.describe_plugins()}
    assert (described["poetry-plugin"], described["aaa-poems"]) == (["poetry"], [])


def test_config_chooses_which_plugin_serves_a_name(site):
    make_dist(site, "poetry-plugin", "poetry_plugin", GOOD, ep_name="poetry", installed=1_700_000_000)
    make_dist(site, "aaa-poems", "aaa_poems", GOOD.replace("Writes poems.", "Imitates."), ep_name="aaa",
              installed=1_800_000_000)
    app, warned = loaded(load_config(["specialists.poetry.plugin=aaa-poems"]))
    assert warned == []
    assert app.specialists()["poetry"].plugin == "aaa-poems"
    _, warned = loaded(load_config(["specialists.poetry.plugin=nobody"]))
    assert "'nobody'" in warned[0] and "using 'poetry-plugin'" in warned[0]
    assert len(warned) == 2 and "'aaa-poems''s was ignored" in warned[1]  # no choice made: the usual rule, told


def test_a_bad_specialists_entry_is_a_config_error(aeth_home):
    from aeth.errors import ConfigError

    with pytest.raises(ConfigError, match=r"specialists.poetry.plugins: unknown field"):
        load_config(["specialists.poetry.plugins=x"])


def test_invalid_specialist_warning_names_plugin_and_field(site):
    make_dist(site, "bad-spec", "bad_spec", GOOD.replace('name="poetry"', 'name="Poetry!"'), ep_name="badspec")
    app, warned = loaded()
    assert len(warned) == 1 and "'bad-spec'" in warned[0] and "field name" in warned[0]
    assert "Poetry!" not in app.specialists()


def test_thin_specialists_are_warned_about_at_registration(site):
    make_dist(site, "thin", "thin", """
        from aeth import Specialist, hookimpl

        @hookimpl
        def register_specialists(register):
            register(Specialist(name="thin", description="Too few examples.", routing_examples=("one", "two")))
    """)
    app, warned = loaded()
    assert "thin" in app.specialists()  # valid, so registered; but told what will work badly
    assert len(warned) == 2, warned
    assert "2 routing examples; the router needs at least 40" in warned[0]
    assert "empty system_prompt" in warned[1]


def test_misnamed_hook_is_skipped_with_a_warning(site):
    make_dist(site, "typo-plugin", "typo_plugin", """
        from aeth import hookimpl

        @hookimpl
        def register_specialist(register):
            pass
    """, ep_name="typo")
    app, warned = loaded()
    assert len(warned) == 1 and "'typo-plugin'" in warned[0] and "register_specialist" in warned[0]
    assert "typo-plugin" not in app.host.infos


def test_hook_that_raises_costs_only_that_plugin(site):
    make_dist(site, "poetry-plugin", "poetry_plugin", GOOD, ep_name="poetry")
    make_dist(site, "raiser", "raiser", """
        from aeth import hookimpl

        @hookimpl
        def register_specialists(register):
            raise RuntimeError("kaboom")
    """)
    app, warned = loaded()
    assert len(warned) == 1 and "'raiser'" in warned[0] and "kaboom" in warned[0]
    assert "poetry" in app.specialists()


@pytest.mark.parametrize(("value", "expect"), [("", set()), ("poetry", {"poetry-plugin"}),
                                               ("other-plugin", {"other-plugin"})])
def test_load_plugins_env_restricts_by_entry_point_or_distribution(site, monkeypatch, value, expect):
    make_dist(site, "poetry-plugin", "poetry_plugin", GOOD, ep_name="poetry")
    make_dist(site, "other-plugin", "other_plugin", GOOD.replace('"poetry"', '"other"'), ep_name="other")
    monkeypatch.setenv("AETH_LOAD_PLUGINS", value)
    app, warned = loaded()
    assert {p["name"] for p in app.describe_plugins()} == expect
    assert warned == []
    assert "general" in app.specialists()  # defaults always load


def test_load_plugins_env_warns_about_unknown_names(site, monkeypatch):
    monkeypatch.setenv("AETH_LOAD_PLUGINS", "nope")
    _, warned = loaded()
    assert len(warned) == 1 and "'nope'" in warned[0]


class Teachers:
    @hookimpl
    def register_teachers(self, register):
        register("echo", lambda prompt: prompt)


def test_teachers_registry_and_clash(aeth_home, register_plugin):
    register_plugin(Teachers(), name="t1")
    register_plugin(Teachers(), name="t2")
    app = Aeth()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        teachers = app.teachers()
    assert teachers["echo"]("hi") == "hi"
    said = [str(w.message) for w in caught]
    assert any("'t2' also registers teacher 'echo'" in m and "'t1'" in m for m in said), said
    assert app.registry.registered["t1"]["teachers"] == ["echo"]


# ---- two applications in one process ------------------------------------------------------------


def test_two_apps_with_different_configs_each_see_only_their_own(aeth_home, tmp_path):
    from aeth.default_plugins.router import get_router

    a_home, b_home = tmp_path / "a", tmp_path / "b"
    a = Aeth(load_config([f"home={a_home}", "model.default=org/model-a", "model.threads=1", "router.top_k=2"]))
    b = Aeth(load_config([f"home={b_home}", "model.default=org/model-b", "model.threads=2", "router.top_k=5"]))
    assert a.specialists()["general"].base_model == "org/model-a"
    assert b.specialists()["general"].base_model == "org/model-b"
    assert a.specialists()["general"].base_model == "org/model-a"  # still, after b registered
    assert (a.config.home, b.config.home) == (a_home, b_home)
    assert (a.adapters.root, b.adapters.root) == (a_home / "adapters", b_home / "adapters")
    assert a.models is not b.models
    assert (a.models.config["model.threads"], b.models.config["model.threads"]) == (1, 2)
    assert (get_router(a).top_k, get_router(b).top_k) == (2, 5)
    teachers_a, teachers_b = a.teachers(), b.teachers()
    assert (teachers_a["local"].model_name, teachers_b["local"].model_name) == ("org/model-a", "org/model-b")
    assert teachers_a["local"].app is a and teachers_b["local"].app is b


def test_two_apps_load_the_same_model_into_their_own_pools(aeth_home, tmp_path, tiny_model_dir):
    a = Aeth(load_config([f"home={tmp_path / 'a'}", f"model.default={tiny_model_dir}", "model.threads=1"]))
    b = Aeth(load_config([f"home={tmp_path / 'b'}", f"model.default={tiny_model_dir}", "model.threads=1"]))
    for app in (a, b):
        app.run(Request("hi", specialist="general", max_tokens=2, seed=0))
    assert len(a.models.loaded) == len(b.models.loaded) == 1
    assert a.models.loaded[0] is not b.models.loaded[0]


# ---- a whole pipeline without a model ----------------------------------------------------------


class Canned:
    """A whole pipeline without a model: a router, a generator and policies."""

    def __init__(self, block_in=None, block_out=None):
        self.block_in, self.block_out, self.seen = block_in, block_out, []

    @hookimpl
    def register_specialists(self, register):
        register(Specialist(name="canned", description="Answers from a can.", system_prompt="Be canned."))

    @hookimpl
    def route(self, request):  # fewer arguments than the spec: allowed
        return [Bid("canned", 0.99, "it always wins")]

    @hookimpl(tryfirst=True)
    def generate(self, specialist, request, context):
        self.seen.append(context.sampling)
        context.stats.update(tokens_in=3, tokens_out=2, finish_reason="stop")
        return iter(["Hello", " there"])

    @hookimpl
    def check_input(self, request):
        return self.block_in if self.block_in and self.block_in in request.prompt else None

    @hookimpl
    def check_output(self, request, response):
        return "no greetings" if self.block_out and "Hello" in response.text else None

    @hookimpl
    def train(self, specialist, plan):
        return {"trained": specialist.name, "steps": plan["steps"]}


def test_pipeline_routes_generates_and_checks(aeth_home, register_plugin):
    canned = Canned()
    register_plugin(canned, name="canned")
    app = Aeth()
    answer = app.stream(Request("say hi", temperature=0.5, max_tokens=7))
    assert (answer.specialist.name, answer.bid.reason) == ("canned", "it always wins")
    assert "".join(answer) == "Hello there"
    r = answer.response
    assert (r.text, r.tokens_out, r.finish_reason, r.specialist) == ("Hello there", 2, "stop", "canned")
    assert canned.seen[0].temperature == 0.5 and canned.seen[0].max_tokens == 7
    assert canned.seen[0].top_p == answer.specialist.generation.top_p  # unset: the specialist's default


def test_sampling_precedence_request_then_config_then_specialist(aeth_home, register_plugin, monkeypatch):
    canned = Canned()
    register_plugin(canned, name="canned")
    app = Aeth(load_config(["generation.max_tokens=11", "generation.top_k=4"]))
    app.run(Request("hi", top_k=9))
    s = canned.seen[0]
    assert (s.max_tokens, s.top_k, s.temperature) == (11, 9, Specialist("x", "y").generation.temperature)


def test_input_and_output_policies_block(aeth_home, register_plugin):
    register_plugin(Canned(block_in="secret", block_out=True), name="canned")
    app = Aeth()
    with pytest.raises(PolicyBlocked, match="input blocked by plugin 'canned': secret"):
        app.stream(Request("tell me the secret"))
    with pytest.raises(PolicyBlocked, match="output blocked by plugin 'canned': no greetings"):
        app.run(Request("say hi"))


def test_unknown_specialist_suggests_a_name(aeth_home, register_plugin):
    register_plugin(Canned(), name="canned")
    with pytest.raises(Exception, match=r"unknown specialist 'caned'. Did you mean 'canned'\?"):
        Aeth().stream(Request("x", specialist="caned"))


def test_train_hook_dispatches_first_result(aeth_home, register_plugin):
    register_plugin(Canned(), name="canned")
    app = Aeth()
    spec = app.specialist("canned")
    assert app.hook.train(specialist=spec, plan={"steps": 3}, app=app) == {"trained": "canned", "steps": 3}


# ---- pluggy's calling rules hold ----------------------------------------------------------------


def test_a_wrapper_on_check_input_sees_the_verdicts_and_blocks_nothing_by_itself(aeth_home, register_plugin):
    seen = []

    class Audit:
        @hookimpl(wrapper=True)
        def check_input(self, request):
            verdicts = yield
            seen.append(list(verdicts))
            return verdicts

    register_plugin(Canned(block_in="secret"), name="canned")
    register_plugin(Audit(), name="audit")
    app = Aeth()
    assert app.run(Request("say hi")).text == "Hello there"  # a wrapper is not a block
    with pytest.raises(PolicyBlocked, match="input blocked by plugin 'canned': secret"):
        app.stream(Request("the secret"))
    assert seen == [[], ["secret"]]


def test_a_wrapper_may_add_a_verdict(aeth_home, register_plugin):
    class Veto:
        @hookimpl(wrapper=True)
        def check_input(self, request):
            verdicts = yield
            return [*verdicts, "vetoed by the wrapper"]

    register_plugin(Canned(), name="canned")
    register_plugin(Veto(), name="veto")
    with pytest.raises(PolicyBlocked, match="input blocked by plugin 'a hook wrapper': vetoed by the wrapper"):
        Aeth().stream(Request("say hi"))


class Bidder:
    def __init__(self, name, score=0.5):
        self.name, self.score = name, score

    @hookimpl
    def register_specialists(self, register):
        register(Specialist(name=self.name, description=f"{self.name} answers.", system_prompt="Bid."))

    @hookimpl
    def route(self, request, specialists):
        return [Bid(self.name, self.score, f"{self.name} bids")]


class FirstBidder(Bidder):
    @hookimpl(tryfirst=True)
    def route(self, request, specialists):
        return [Bid(self.name, self.score, f"{self.name} bids")]


def test_a_tie_goes_to_the_plugin_pluggy_calls_first(aeth_home, register_plugin):
    register_plugin(Bidder("early"), name="early")
    register_plugin(Bidder("late"), name="late")
    bid, bids = Aeth().route(Request("anything"))
    assert bid.specialist == "late"  # pluggy calls the most recently registered plugin first
    assert [b.plugin for b in bids if b.score == 0.5] == ["late", "early"]


def test_tryfirst_wins_a_tie(aeth_home, register_plugin):
    register_plugin(FirstBidder("early"), name="early")
    register_plugin(Bidder("late"), name="late")
    bid, _ = Aeth().route(Request("anything"))
    assert bid.specialist == "early"


def test_a_raising_generate_costs_a_warning_and_the_next_implementation_answers(aeth_home, register_plugin):
    class Broken:
        @hookimpl(tryfirst=True)
        def generate(self, specialist, request, context):
            raise RuntimeError("the GPU caught fire")

    register_plugin(Canned(), name="canned")
    register_plugin(Broken(), name="broken")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        text = Aeth().run(Request("say hi")).text
    assert text == "Hello there"
    said = [str(w.message) for w in caught if issubclass(w.category, AethWarning)]
    assert said == ["plugin 'broken' failed in hook generate: RuntimeError: the GPU caught fire"]


def test_a_users_error_from_generate_reaches_the_user(aeth_home, register_plugin):
    class Refuses:
        @hookimpl(tryfirst=True)
        def generate(self, specialist, request, context):
            raise SpecialistError("no images here")

    register_plugin(Canned(), name="canned")
    register_plugin(Refuses(), name="refuses")
    with pytest.raises(SpecialistError, match="no images here"):
        Aeth().run(Request("say hi"))


def test_raising_train_and_evaluate_fall_through_to_the_next(aeth_home, register_plugin):
    class Broken:
        @hookimpl(tryfirst=True)
        def train(self, specialist, plan):
            raise ValueError("bad plan")

        @hookimpl(tryfirst=True)
        def evaluate(self, specialist, model, suite):
            raise ValueError("bad suite")

    class Fallback:
        @hookimpl
        def evaluate(self, specialist, model, suite, app):
            return ("evaluated", app.config.home.name)

    register_plugin(Canned(), name="canned")
    register_plugin(Fallback(), name="fallback")
    register_plugin(Broken(), name="broken")
    app = Aeth()
    spec = app.specialist("canned")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert app.hook.train(specialist=spec, plan={"steps": 1}, app=app) == {"trained": "canned", "steps": 1}
        assert app.hook.evaluate(specialist=spec, model=None, suite=None, app=app) == ("evaluated", "home")
    said = sorted(str(w.message) for w in caught if issubclass(w.category, AethWarning))
    assert said == ["plugin 'broken' failed in hook evaluate: ValueError: bad suite",
                    "plugin 'broken' failed in hook train: ValueError: bad plan"]


def test_the_default_host_is_shared_but_registries_follow_it(aeth_home, register_plugin):
    app = Aeth()
    assert "canned" not in app.specialists()
    register_plugin(Canned(), name="canned")
    assert "canned" in app.specialists()  # rebuilt after a plugin came
    assert app.host is default_host()
