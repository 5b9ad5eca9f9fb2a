"""The plugin host: real entry-point discovery, isolation of broken plugins, registries and hooks."""

import importlib
import textwrap
import warnings

import pytest

from aeth import Bid, PolicyBlocked, Request, Specialist, hookimpl
from aeth.app import Aeth
from aeth.plugins import AethWarning, get_host, reset_host


def make_dist(root, dist, module, source, ep_name=None, version="0.3.1"):
    """Write an installed distribution (dist-info + module) that importlib.metadata really discovers."""
    (root / f"{module}.py").write_text(textwrap.dedent(source))
    info = root / f"{dist.replace('-', '_')}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
    (info / "entry_points.txt").write_text(f"[aeth]\n{ep_name or module} = {module}\n")


GOOD = """
    from aeth import Specialist, hookimpl

    @hookimpl
    def register_specialists(register):
        register(Specialist(name="poetry", description="Writes poems.", routing_examples=("a poem",)))
"""


@pytest.fixture
def site(tmp_path, monkeypatch, aeth_home):
    root = tmp_path / "site"
    root.mkdir()
    monkeypatch.syspath_prepend(str(root))
    reset_host()
    yield root
    reset_host()
    importlib.invalidate_caches()


def loaded(**env):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        host = get_host()
        host.specialists()
    return host, [str(w.message) for w in caught if issubclass(w.category, AethWarning)]


def test_installed_plugin_is_discovered_with_version(site):
    make_dist(site, "poetry-plugin", "poetry_plugin", GOOD, ep_name="poetry")
    host, warned = loaded()
    assert warned == []
    assert host.specialists()["poetry"].plugin == "poetry"
    info = next(p for p in host.describe() if p["name"] == "poetry")
    assert info["version"] == "0.3.1"
    assert info["hooks"] == ["register_specialists"]
    assert info["registered"]["specialists"] == ["poetry"]
    host.pm.check_pending()


def test_plugin_that_fails_to_import_costs_one_warning_and_nothing_else(site):
    make_dist(site, "poetry-plugin", "poetry_plugin", GOOD, ep_name="poetry")
    make_dist(site, "broken-plugin", "broken_plugin", "import does_not_exist_anywhere\n", ep_name="broken")
    host, warned = loaded()
    assert len(warned) == 1
    assert "'broken'" in warned[0] and "ModuleNotFoundError" in warned[0] and "pip uninstall broken-plugin" in warned[0]
    assert {"poetry", "general"} <= set(host.specialists())


def test_duplicate_name_keeps_the_first_and_names_both(site):
    make_dist(site, "poetry-plugin", "poetry_plugin", GOOD, ep_name="poetry")
    make_dist(site, "zz-copy", "zz_copy", GOOD, ep_name="zzcopy")
    host, warned = loaded()
    assert len(warned) == 1 and "'zzcopy'" in warned[0] and "'poetry'" in warned[0]
    assert host.specialists()["poetry"].plugin == "poetry"
    assert host.infos["zzcopy"].registered["specialists"] == []


def test_invalid_specialist_warning_names_plugin_and_field(site):
    make_dist(site, "bad-spec", "bad_spec", GOOD.replace('name="poetry"', 'name="Poetry!"'), ep_name="badspec")
    host, warned = loaded()
    assert len(warned) == 1 and "'badspec'" in warned[0] and "field name" in warned[0]
    assert "Poetry!" not in host.specialists()


def test_misnamed_hook_is_skipped_with_a_warning(site):
    make_dist(site, "typo-plugin", "typo_plugin", """
        from aeth import hookimpl

        @hookimpl
        def register_specialist(register):
            pass
    """, ep_name="typo")
    host, warned = loaded()
    assert len(warned) == 1 and "'typo'" in warned[0] and "register_specialist" in warned[0]
    assert "typo" not in host.infos


def test_hook_that_raises_costs_only_that_plugin(site):
    make_dist(site, "poetry-plugin", "poetry_plugin", GOOD, ep_name="poetry")
    make_dist(site, "raiser", "raiser", """
        from aeth import hookimpl

        @hookimpl
        def register_specialists(register):
            raise RuntimeError("kaboom")
    """)
    host, warned = loaded()
    assert len(warned) == 1 and "'raiser'" in warned[0] and "kaboom" in warned[0]
    assert "poetry" in host.specialists()


@pytest.mark.parametrize(("value", "expect"), [("", set()), ("poetry", {"poetry"}), ("other-plugin", {"other"})])
def test_load_plugins_env_restricts(site, monkeypatch, value, expect):
    make_dist(site, "poetry-plugin", "poetry_plugin", GOOD, ep_name="poetry")
    make_dist(site, "other-plugin", "other_plugin", GOOD.replace('"poetry"', '"other"'), ep_name="other")
    monkeypatch.setenv("AETH_LOAD_PLUGINS", value)
    host, warned = loaded()
    assert {p["name"] for p in host.describe()} == expect
    assert warned == []
    assert "general" in host.specialists()  # defaults always load


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
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        teachers = get_host().teachers()
    assert teachers["echo"]("hi") == "hi"
    assert any("'t2'" in str(w.message) and "'t1'" in str(w.message) for w in caught)
    assert get_host().infos["t1"].registered["teachers"] == ["echo"]


class Canned:
    """A whole pipeline without a model: a router, a generator and policies."""

    def __init__(self, block_in=None, block_out=None):
        self.block_in, self.block_out, self.seen = block_in, block_out, []

    @hookimpl
    def register_specialists(self, register):
        register(Specialist(name="canned", description="Answers from a can."))

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
    from aeth.config import load_config

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
    host = get_host()
    spec = host.specialists()["canned"]
    assert host.pm.hook.train(specialist=spec, plan={"steps": 3}) == {"trained": "canned", "steps": 3}
