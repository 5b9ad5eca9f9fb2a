"""The ecommerce suite: benchmark data read from its packages, answers taken out of chat replies,
scored like OpenAI evals' Match, and no benchmark item in the training data."""

import io
import json
import subprocess
import sys
import tarfile
from collections import Counter
from pathlib import Path

import pytest

from aeth.errors import SpecialistError
from aetherial_ecommerce import evals, vader_data
from aetherial_ecommerce.evals import (
    GROUPS,
    PRODUCT_IE_FILE,
    PRODUCT_MATCHING_FILE,
    SHOPPING_FILE,
    attribute_value,
    build_suite,
    evals_records,
    score_attribute,
    score_case,
    score_sentiment,
    score_shop,
    score_yes_no,
    sentiment_items,
    sentiment_of,
    value_matches,
)

# ---- the data, read offline from where the packages put it --------------------------------------


def test_evals_sets_load_with_their_sizes():
    pm = evals_records(PRODUCT_MATCHING_FILE)
    assert len(pm) == 433
    assert Counter(r["ideal"] for r in pm) == {"No": 383, "Yes": 50}
    ie = evals_records(PRODUCT_IE_FILE)
    assert len(ie) == 40
    assert all(isinstance(r["ideal"], list) and r["ideal"] for r in ie)
    assert sum(r["ideal"] == ["I do not know."] for r in ie) == 17
    assert all("Requested Attribute:" in r["input"][-1]["content"] for r in ie)
    shop = evals_records(SHOPPING_FILE)
    assert len(shop) == 16
    assert {r["ideal"] for r in shop} == {"Shop 1", "Shop 2", "Shop 3"}


def test_vader_sentences_load_from_the_installed_file():
    rows = vader_data.load()
    assert vader_data.default_path().is_file()
    assert len(rows) == 3708
    assert rows[0] == {"id": "1_1", "mean_sentiment": -0.9, "text": "troubleshooting ad-2500 and ad-2600 no picture scrolling b/w."}
    assert sum(r["mean_sentiment"] > 0 for r in rows) == 2128
    assert sum(r["mean_sentiment"] < 0 for r in rows) == 1482
    assert all(-4 <= r["mean_sentiment"] <= 4 and r["text"] for r in rows)


def test_a_missing_evals_package_names_the_pip_command(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "evals" else real(name, *a))
    evals_records.cache_clear()
    try:
        with pytest.raises(SpecialistError, match=r"pip install --no-deps evals==3\.0\.1\.post1"):
            evals.product_matching_cases()
    finally:
        evals_records.cache_clear()


def test_a_missing_vader_file_names_the_fetch_command(tmp_path):
    with pytest.raises(SpecialistError, match=r"python -m aetherial_ecommerce\.vader_data"):
        vader_data.load(tmp_path / "nope.txt")


# ---- the suite --------------------------------------------------------------------------------


def test_suite_cases_counts_groups_and_ids():
    suite = build_suite()
    cases = list(suite.cases())
    assert Counter(c.group for c in cases) == {"product_matching": 100, "product_ie": 40,
                                               "shopping_discount_comparison": 16, "review_sentiment": 150}
    assert {c.group for c in cases} == set(GROUPS)
    assert len({c.id for c in cases}) == len(cases)
    assert all(c.id.startswith(c.group + "/") for c in cases)
    assert all(c.prompt.strip() and c.max_tokens for c in cases)
    assert suite.source and suite.description and suite.metric == "accuracy"


def test_subsets_are_balanced_and_deterministic():
    first, again = list(build_suite().cases()), list(build_suite().cases())
    assert first == again
    pm = [c for c in first if c.group == "product_matching"]
    assert Counter(c.reference for c in pm) == {("Yes",): 50, ("No",): 50}
    assert len({c.prompt for c in pm}) == 100
    # shuffled, so `aeth eval --limit` gets both labels early on
    assert {c.reference for c in pm[:6]} == {("Yes",), ("No",)}
    sent = [c for c in first if c.group == "review_sentiment"]
    assert Counter(c.reference for c in sent) == {"positive": 75, "negative": 75}
    assert {c.reference for c in sent[:6]} == {"positive", "negative"}


def test_sentiment_items_are_clear_and_distinct():
    items = sentiment_items()
    assert len(items) == 150 and len({i["text"] for i in items}) == 150
    for item in items:
        assert (item["label"] == "positive" and item["mean_sentiment"] >= 1.0) or \
               (item["label"] == "negative" and item["mean_sentiment"] <= -1.0)
        assert 4 <= len(item["text"].split()) <= 40
    assert evals.sentiment_label(1.0) == "positive" and evals.sentiment_label(-1.0) == "negative"
    assert evals.sentiment_label(0.95) is None and evals.sentiment_label(-0.95) is None


def test_every_gold_answer_scores_one_and_every_wrong_one_zero():
    # the harness is right: each benchmark's own gold answer, written the way a chat model writes
    # it, scores 1; another label or value scores 0
    for case in build_suite().cases():
        if case.group == "product_matching":
            gold, wrong = case.reference[0], {"Yes": "No", "No": "Yes"}[case.reference[0]]
            answers, wrongs = [gold, f"**Answer:** {gold}.", f"{gold.lower()}, because ..."], [wrong, f"Answer: {wrong}"]
        elif case.group == "product_ie":
            attribute, gold = case.reference[0], case.reference[1]
            value = None if gold == "I do not know." else gold
            answers = [gold, f"{attribute}: {gold}", f'```json\n{json.dumps({attribute: value})}\n```']
            wrongs = ["42 GHz", "Banana", ""] + (["I do not know."] if value is not None else ["2.4 GHz"])
        elif case.group == "shopping_discount_comparison":
            gold = case.reference[0]
            other = "Shop 2" if gold == "Shop 1" else "Shop 1"
            answers, wrongs = [gold, f"{gold}.", f"Shop 1 costs ... so\nAnswer: {gold}"], [other, f"Answer: {other}"]
        else:
            gold = case.reference
            other = {"positive": "negative", "negative": "positive"}[gold]
            answers = [gold, gold.capitalize() + ".", f"**Sentiment:** {gold} | **Reason:** ..."]
            wrongs = [other, "neutral", "mixed", f"**Sentiment:** {other}"]
        for answer in answers:
            assert score_case(case, answer) == 1.0, (case.id, answer)
        for answer in wrongs + ["", "I'm not sure.", "???"]:
            assert score_case(case, answer) == 0.0, (case.id, answer)


# ---- the scorers, on the formats a small chat model produces --------------------------------


@pytest.mark.parametrize("answer,ideal,score", [
    ("Yes", "Yes", 1), ("yes.", "Yes", 1), ("**No**, the model numbers differ.", "No", 1),
    ("Answer: No", "No", 1), ("Both are Cooler Master coolers.\n\nAnswer: **Yes**", "Yes", 1),
    ("- No", "No", 1), ("No", "Yes", 0), ("They are the same product.", "Yes", 0),
    ("Yesterday's model", "Yes", 0), ("Maybe", "No", 0), ("", "No", 0), ("Not sure", "No", 0),
])
def test_yes_no(answer, ideal, score):
    assert score_yes_no(answer, (ideal,)) == score


@pytest.mark.parametrize("answer,score", [
    ("Shop 2", 1), ("shop 2.", 1), ("**Shop 2**", 1), ("2", 1), ("Shop #2", 1),
    ("Shop 1: $20 - 10% = $18\nShop 2: $15 + $5 = $20\nAnswer: Shop 2", 1),
    ("Shop 1", 0), ("Shop 12", 0), ("Shop 1 is cheaper than Shop 2", 0), ("Shop", 0), ("", 0),
    ("Shop 2: $15 + $5\nAnswer: Shop 1", 0),
])
def test_shop(answer, score):
    assert score_shop(answer, ("Shop 2",)) == score


@pytest.mark.parametrize("answer,label", [
    ("positive", "positive"), ("Negative.", "negative"), ("**Sentiment:** negative | **Reason:** it broke", "negative"),
    ("Sentiment: Positive\nReason: praises the zoom", "positive"), ("The sentiment is positive.", "positive"),
    ("This sentence is clearly negative", "negative"), ("mixed", "mixed"), ("Neutral", "neutral"),
    ("It is not positive.", None), ("Positive and negative aspects", None), ("The customer is happy", None),
    ("", None), ("positively glowing", None), ("Sentiment: unclear", None),
])
def test_sentiment_label_extraction(answer, label):
    assert sentiment_of(answer) == label


def test_sentiment_scores_only_the_exact_label():
    assert score_sentiment("**Sentiment:** positive", "positive") == 1.0
    assert score_sentiment("**Sentiment:** mixed | **Reason:** good and bad", "positive") == 0.0
    assert score_sentiment("The sentence isn't negative", "negative") == 0.0
    assert score_sentiment("It doesn't seem negative", "negative") == 0.0


@pytest.mark.parametrize("value,ideal,ok", [
    ("2 GHz", "2 GHz", True), ("2GHz", "2 GHz", True), ("2 ghz.", "2 GHz", True),
    ("1.83 GHz", "1.83GHz", True), ("MicroSDHC", "Micro Sdhc", True), ("micro SDHC card", "MicroSDHC", True),
    ("Intel Core i3", "Intel", True), ("Core i3-4010U", "Core I3", True), ("4K UHD", "4K", True),
    ("SDHC", "SD", False), ("20 GHz", "2.0 GHz", False), ("2 GHz", "2.0 GHz", False), ("1.86 GHz", "1.8 GHz", False),
    ("Inte", "Intel", False), ("", "SD", False),
])
def test_value_matching(value, ideal, ok):
    assert value_matches(value, ideal) is ok


@pytest.mark.parametrize("answer,value", [
    ("2 GHz", "2 GHz"),
    ("Processor Speed: 2 GHz", "2 GHz"),
    ("**Processor Speed:** 2 GHz", "2 GHz"),
    ("The processor speed is 2 GHz.", "2 GHz."),
    ("The processor speed of this laptop is 2 GHz", "2 GHz"),
    ("Answer: 2 GHz", "2 GHz"),
    ("processor_speed: __2 GHz__", "2 GHz"),
    ('Sony VAIO VGN-SZ430N/B 13.3" Laptop (Intel Core 2 Duo T7200 2 GHz)\nProcessor Speed: 2 GHz', "2 GHz"),
    ("Requested Attribute: Processor Speed\n- processor speed = 2 GHz", "2 GHz"),
    ("Processor speed: 1.6 GHz\nAnswer: 2 GHz", "2 GHz"),
    ('```json\n{"brand": "Sony", "processor_speed": "2 GHz", "ram": "2 GB"}\n```', "2 GHz"),
    ('{"Processor Speed": null}', "I do not know."),
    ('```json\n{"value": "2 GHz"}\n```', "2 GHz"),
    ('```json\n{"brand": "Sony", "ram": "2 GB"}\n```', None),  # JSON without the attribute
    ("", None),
])
def test_attribute_value_extraction(answer, value):
    assert attribute_value(answer, "Processor Speed") == value


@pytest.mark.parametrize("answer,reference,score", [
    ("2 GHz", ("Processor Speed", "2 GHz"), 1),
    ("I do not know.", ("Processor Speed", "I do not know."), 1),
    ("I don't know", ("Processor Speed", "I do not know."), 1),
    ("Not specified", ("Processor Speed", "I do not know."), 1),
    ('```json\n{"sd_format": null}\n```', ("SD Format", "I do not know."), 1),
    ('```json\n{"sd_format": "microSDHC"}\n```', ("SD Format", "Micro Sdhc", "MicroSDHC"), 1),
    ("SDHC", ("SD Format", "SD"), 0),
    ("I do not know.", ("Processor Speed", "2 GHz"), 0),
    ("unknown", ("Processor Speed", "2 GHz"), 0),
    ("1.6 GHz", ("Processor Speed", "I do not know."), 0),
    ('```json\n{"sd_format": null}\n```', ("SD Format", "SDXC"), 0),
    ("Intel", ("Processor Brand", "Intel Pentium Dual Core", "Intel"), 1),
])
def test_attribute_scores(answer, reference, score):
    assert score_attribute(answer, reference) == score


def test_an_unknown_group_is_a_plugin_bug():
    from aeth import EvalCase

    with pytest.raises(SpecialistError, match="unknown group"):
        score_case(EvalCase(id="x", prompt="p", group="nope"), "yes")


# ---- fetching VADER's file, without the network --------------------------------------------------


def _tar_gz(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as t:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
    return buf.getvalue()


SAMPLE = b"1_1\t-0.9\tthe picture failed.\r\n1_2\t2.5\tbest player i have owned, works great.\r\n2_1\t0.0\tit is black."


def _fake_sdist(path: Path, member: bytes = SAMPLE) -> Path:
    inner = _tar_gz({vader_data.MEMBER: member, "hutto_ICWSM_2014/tweets_GroundTruth.txt": b"x\t1\ty"})
    path.write_bytes(_tar_gz({"vaderSentiment-3.3.2/setup.py": b"", vader_data.INNER_ARCHIVE: inner}))
    return path


def test_extract_takes_only_the_amazon_file_out_of_the_nested_archive(tmp_path):
    sdist = _fake_sdist(tmp_path / vader_data.SDIST)
    dest = tmp_path / "out"
    path = vader_data.extract(sdist, dest)
    assert path == dest / vader_data.FILE_NAME
    assert path.read_bytes() == SAMPLE
    assert sorted(p.name for p in dest.iterdir()) == [vader_data.FILE_NAME]  # no temp file left, nothing else
    rows = vader_data.load(path)
    assert rows == [{"id": "1_1", "mean_sentiment": -0.9, "text": "the picture failed."},
                    {"id": "1_2", "mean_sentiment": 2.5, "text": "best player i have owned, works great."},
                    {"id": "2_1", "mean_sentiment": 0.0, "text": "it is black."}]


def test_extract_refuses_an_archive_without_the_file(tmp_path):
    other = tmp_path / "other.tar.gz"
    other.write_bytes(_tar_gz({"vaderSentiment-3.3.2/setup.py": b""}))
    with pytest.raises(SpecialistError, match="cannot read"):
        vader_data.extract(other, tmp_path / "out")
    assert not (tmp_path / "out" / vader_data.FILE_NAME).exists()
    (tmp_path / "junk.tar.gz").write_bytes(b"not a tar file")
    with pytest.raises(SpecialistError, match="cannot read"):
        vader_data.extract(tmp_path / "junk.tar.gz", tmp_path / "out")


def test_an_existing_file_is_replaced_whole(tmp_path):
    dest = tmp_path / "out"
    dest.mkdir()
    (dest / vader_data.FILE_NAME).write_text("old contents")
    vader_data.extract(_fake_sdist(tmp_path / "s.tar.gz"), dest)
    assert (dest / vader_data.FILE_NAME).read_bytes() == SAMPLE
    assert [p.name for p in dest.iterdir()] == [vader_data.FILE_NAME]


def test_fetch_downloads_only_when_the_file_is_missing(tmp_path, monkeypatch):
    calls = []

    def download(into):
        calls.append(into)
        return _fake_sdist(Path(into) / vader_data.SDIST)

    monkeypatch.setattr(vader_data, "download_sdist", download)
    dest = tmp_path / "share"
    assert vader_data.fetch(dest) == dest / vader_data.FILE_NAME
    assert len(calls) == 1 and not Path(calls[0]).exists()  # the download's temp dir is gone
    assert vader_data.fetch(dest) == dest / vader_data.FILE_NAME
    assert len(calls) == 1  # already there: nothing downloaded
    vader_data.fetch(dest, force=True)
    assert len(calls) == 2


def test_download_runs_pip_download_for_the_sdist(tmp_path, monkeypatch):
    seen = {}

    def run(cmd, **kw):
        seen["cmd"] = cmd
        _fake_sdist(Path(cmd[cmd.index("-d") + 1]) / vader_data.SDIST)
        return subprocess.CompletedProcess(cmd, 0, "", "")

    monkeypatch.setattr(vader_data.subprocess, "run", run)
    sdist = vader_data.download_sdist(tmp_path)
    assert sdist == tmp_path / vader_data.SDIST
    assert seen["cmd"][:4] == [sys.executable, "-m", "pip", "download"]
    assert seen["cmd"][4:9] == ["--no-deps", "--no-binary", ":all:", "vaderSentiment==3.3.2", "-d"]

    monkeypatch.setattr(vader_data.subprocess, "run",
                        lambda cmd, **kw: subprocess.CompletedProcess(cmd, 1, "", "ERROR: No matching distribution"))
    with pytest.raises(SpecialistError, match="No matching distribution"):
        vader_data.download_sdist(tmp_path / "empty")


def test_the_command_line_fetches_into_dest(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(vader_data, "download_sdist", lambda into: _fake_sdist(Path(into) / vader_data.SDIST))
    assert vader_data.main(["--dest", str(tmp_path)]) == 0
    assert capsys.readouterr().out.strip() == str(tmp_path / vader_data.FILE_NAME)

    def fail(into):
        raise SpecialistError("offline")

    monkeypatch.setattr(vader_data, "download_sdist", fail)
    assert vader_data.main(["--dest", str(tmp_path / "new")]) == 1
    assert "offline" in capsys.readouterr().err


def test_default_location_is_in_the_environment():
    assert vader_data.default_path() == Path(sys.prefix) / "share" / "aeth-benchmarks" / "vader-3.3.2" / vader_data.FILE_NAME


@pytest.mark.parametrize("line", ["1_1\tnot-a-number\ttext", "1_1\t0.5", "1_1\t0.5\t  "])
def test_a_malformed_line_is_reported(line):
    with pytest.raises(SpecialistError, match=r"f\.txt:2: malformed"):
        vader_data.parse("0_1\t1.0\tfine.\n" + line, "f.txt")


def test_building_the_suite_imports_neither_benchmark_package():
    code = ("import sys; from aetherial_ecommerce.evals import build_suite; list(build_suite().cases()); "
            "print(sorted(m for m in ('evals', 'vaderSentiment', 'torch') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


# ---- contamination ---------------------------------------------------------------------------


def test_no_benchmark_item_leaks_into_the_training_data():
    from aeth.evals import find_overlaps, record_text
    from aetherial_ecommerce.recipe import build_recipe

    records = build_recipe().records()
    bench = []  # each case's own item, without the benchmark's instructions around it
    for case in build_suite().cases():
        if case.group == "product_matching":  # the pair, and each title alone (a short one is matched whole)
            pair = [line for line in case.prompt.splitlines() if line.startswith("Product ")]
            bench += ["\n".join(pair)] + [line.split("Title: ", 1)[1] for line in pair]
        elif case.group == "product_ie":  # the title and requested attribute
            bench.append(case.prompt.split("\n\n")[1])
        elif case.group == "shopping_discount_comparison":
            bench.append(case.prompt.split("\n\n")[-1])
        else:
            bench.append(case.prompt.split("Sentence: ", 1)[1])
    assert len(bench) == 100 * 3 + 40 + 16 + 150
    assert find_overlaps([record_text(r) for r in records], bench, n=13) == []
