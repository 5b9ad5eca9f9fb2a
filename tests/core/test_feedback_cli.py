"""`aeth feedback` and `Aeth.feedback`: each kind, id prefixes, idempotent ids, usage errors, and the
preference value's checks, on SQLite and on a real PostgreSQL server."""

import json
from datetime import datetime, timedelta, timezone

import pytest
from click.testing import CliRunner

from aeth.app import Aeth
from aeth.cli import cli
from aeth.config import load_config
from aeth.plugins import default_host
from aeth.store import Interaction, Store, StoreError, UnknownInteraction

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=timezone.utc)
ASK = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "What is the capital of France?"}]


def invoke(*args, input=None):
    default_host()
    return CliRunner().invoke(cli, list(args), input=input)


@pytest.fixture(params=["sqlite", "postgres"])
def db(request, aeth_home):
    """(url, home, -o options) of an empty database: SQLite in $AETH_HOME, or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return None, aeth_home, ()
    url = request.getfixturevalue("postgres_db")
    return url, aeth_home, ("-o", f"store.url={url}")


def seed(url, home):
    """Two answers to ASK (choices 0 and 1 of one request), one to another prompt; their ids."""
    with Store.open(url, home) as store:
        pair = store.record_many([Interaction(messages=ASK, answer=a, specialist="general", group_id="g1", choice_index=k,
                                              finish_reason="stop", created=T0 + timedelta(minutes=k))
                                  for k, a in enumerate(["Lyon.", "Paris."])])
        other = store.record(Interaction(messages=[{"role": "user", "content": "2 + 2?"}], answer="5", specialist="general",
                                         finish_reason="stop", created=T0 + timedelta(hours=1)))
    return [*pair, other]


def stored(url, home, iid=None):
    with Store.open(url, home) as store:
        return store.feedback(iid)


def test_each_kind_is_stored_from_a_prefix_and_the_id_printed(db):
    url, home, opts = db
    worse, better, other = seed(url, home)
    runs = [
        (["--up"], "thumbs", True, None),
        (["--down", "--comment", "wrong city"], "thumbs", False, "wrong city"),
        (["--rating", "4"], "rating", 4, None),
        (["--correct", "Paris is the capital of France."], "correction", "Paris is the capital of France.", None),
        (["--prefer", better[:8]], "preference", {"chosen": better, "rejected": worse}, None),
        (["--comment", "too short"], "comment", "too short", None),
    ]
    for flags, kind, value, comment in runs:
        done = invoke(*opts, "feedback", worse[:10], *flags)
        assert done.exit_code == 0, done.output
        fid = done.stdout.strip()
        assert len(fid) == 24 and "\n" not in fid
        assert f"on interaction {worse}" in done.stderr
        row = next(f for f in stored(url, home, worse) if f.id == fid)
        assert (row.kind, row.value, row.comment, row.source) == (kind, value, comment, "user")
    piped = invoke(*opts, "feedback", other, "--correct", "-", input="4\n")
    assert piped.exit_code == 0, piped.output
    assert [(f.kind, f.value) for f in stored(url, home, other)] == [("correction", "4")]
    assert len(stored(url, home)) == len(runs) + 1

    listing = invoke(*opts, "feedback", "--list", worse[:6])
    assert listing.exit_code == 0, listing.output
    lines = listing.stdout.splitlines()
    assert lines[0].split()[:3] == ["FEEDBACK", "INTERACTION", "CREATED"] and len(lines) == 1 + len(runs)
    assert '"wrong city"' not in listing.stdout and "false (wrong city)" in listing.stdout
    everything = [json.loads(x) for x in invoke(*opts, "feedback", "--list", "--json").stdout.splitlines()]
    assert [f["kind"] for f in everything][-1] == "correction" and len(everything) == len(runs) + 1


def test_a_feedback_id_makes_it_idempotent(db):
    url, home, opts = db
    worse, better, _ = seed(url, home)
    first = invoke(*opts, "feedback", worse, "--up", "--id", "my-app-42")
    again = invoke(*opts, "feedback", worse, "--up", "--id", "my-app-42")
    assert first.exit_code == again.exit_code == 0 and first.stdout.strip() == again.stdout.strip() == "my-app-42"
    assert [f.id for f in stored(url, home)] == ["my-app-42"]
    elsewhere = invoke(*opts, "feedback", better, "--up", "--id", "my-app-42")
    assert elsewhere.exit_code == 1 and "already used for interaction" in elsewhere.stderr


def test_unknown_and_ambiguous_ids_are_errors_that_say_so(db):
    url, home, opts = db
    worse, _, _ = seed(url, home)
    missing = invoke(*opts, "feedback", "abcdef", "--up")
    assert missing.exit_code == 1 and "no interaction 'abcdef'" in missing.stderr and "aeth log list" in missing.stderr
    other = invoke(*opts, "feedback", worse, "--prefer", "fedcba9")
    assert other.exit_code == 1 and "no interaction 'fedcba9'" in other.stderr
    not_hex = invoke(*opts, "feedback", "not-an-id", "--down")
    assert not_hex.exit_code == 1 and "ids are hex" in not_hex.stderr
    with Store.open(url, home) as store:
        store.record_many([Interaction(messages=ASK, answer="Paris.", specialist="general", id=f"abc{k}" + "0" * 21)
                           for k in range(2)])
    ambiguous = invoke(*opts, "feedback", "abc", "--up")
    assert ambiguous.exit_code == 1 and "'abc' is the start of several interaction ids" in ambiguous.stderr
    assert stored(url, home) == []


@pytest.mark.parametrize("args, message", [
    (["ID", "--up", "--down"], "--up and --down cannot go together"),
    (["ID", "--rating", "5", "--correct", "x"], "--rating and --correct cannot go together"),
    (["ID"], "say what you think of the answer"),
    (["--up"], "which answer?"),
    (["--list", "ID", "--up"], "--list only shows feedback"),
    (["ID", "--up", "--json"], "--json goes with --list"),
    (["ID", "--rating", "6"], "6 is not in the range 1<=x<=5"),
    (["ID", "--correct", "  "], "the correction is the answer it should have given"),
    (["ID", "--comment", ""], "a comment is some text"),
])
def test_bad_combinations_are_usage_errors(aeth_home, args, message):
    with Store.open(None, aeth_home) as store:
        iid = store.record(Interaction(messages=ASK, answer="Paris.", specialist="general"))
    done = invoke("feedback", *[iid if a == "ID" else a for a in args])
    assert done.exit_code == 2, done.output
    assert message in done.stderr
    with Store.open(None, aeth_home) as store:
        assert store.feedback() == []


def test_help_shows_examples():
    done = invoke("feedback", "--help")
    assert done.exit_code == 0
    assert "aeth feedback 3f2a9c --prefer 7be01d" in done.stdout and "--correct -" in done.stdout


def test_preference_values_are_checked(db):
    url, home, opts = db
    worse, better, other = seed(url, home)
    with Store.open(url, home) as store:
        fid = store.record_feedback(worse, "preference", {"chosen": better, "rejected": worse})
        assert store.feedback(worse)[0].value == {"chosen": better, "rejected": worse}
        store.record_feedback(better, "preference", {"chosen": better, "rejected": worse})  # on either side
        for value, message in [
            ("better", 'a preference is {"chosen": ID, "rejected": ID}'),
            ({"chosen": better}, 'a preference is {"chosen": ID, "rejected": ID}'),
            ({"chosen": better, "rejected": worse, "why": "x"}, "got {"),
            ({"chosen": better, "rejected": 3}, "both are interaction ids"),
            ({"chosen": better, "rejected": "a" * 33}, "both are interaction ids"),
            ({"chosen": worse, "rejected": worse}, "the same interaction"),
            ({"chosen": better, "rejected": other}, f"a preference on interaction {worse!r} names it as chosen or rejected"),
            ({"chosen": other, "rejected": worse}, "answer different prompts"),
        ]:
            with pytest.raises(StoreError) as caught:
                store.record_feedback(worse, "preference", value)
            assert message in str(caught.value), (value, str(caught.value))
        with pytest.raises(StoreError) as caught:
            store.record_feedback(worse, "preference", {"chosen": "f" * 24, "rejected": worse})
        # the other id is part of the value: a bad value (400 from the server), not an unknown interaction (404)
        assert not isinstance(caught.value, UnknownInteraction)
        assert f"names interaction {'f' * 24!r} as chosen, but no interaction has that id" in str(caught.value)
        with pytest.raises(UnknownInteraction):
            store.record_feedback("e" * 24, "preference", {"chosen": better, "rejected": "e" * 24})
        with pytest.raises(StoreError, match="a verifier's rating is a reward from 0 to 1"):
            store.record_feedback(worse, "rating", 3, source="verifier")
        store.record_feedback(worse, "rating", 0.5, source="verifier")
        assert [f.id for f in store.feedback(worse)][0] == fid and len(store.feedback()) == 3
    cli_other = invoke(*opts, "feedback", other, "--prefer", better)
    assert cli_other.exit_code == 1 and "answer different prompts" in cli_other.stderr
    cli_self = invoke(*opts, "feedback", worse, "--prefer", worse[:12])
    assert cli_self.exit_code == 1 and "the same interaction" in cli_self.stderr


def test_the_python_api_takes_prefixes(db):
    url, home, _ = db
    worse, better, _ = seed(url, home)
    app = Aeth(load_config([f"store.url={url}"] if url else []))
    try:
        up = app.feedback(better[:9], "thumbs", True, comment="right")
        pair = app.feedback(worse[:9], "preference", {"chosen": better[:9], "rejected": worse[:9]}, feedback_id="p1")
        assert pair == "p1" and app.feedback(worse, "preference", {"chosen": better, "rejected": worse}, feedback_id="p1") == "p1"
        reward = app.feedback(better, "rating", 1.0, source="verifier")
        rows = {f.id: f for f in app.store.feedback()}
        assert (rows[up].interaction_id, rows[up].value, rows[up].comment) == (better, True, "right")
        assert rows["p1"].value == {"chosen": better, "rejected": worse} and rows[reward].source == "verifier"
        with pytest.raises(UnknownInteraction):
            app.feedback("0123abc", "thumbs", False)
    finally:
        app.close()


def test_the_server_answers_a_bad_preference_with_400_and_an_unknown_answer_with_404(db):
    from fastapi.testclient import TestClient

    from aeth.serving.app import create_app

    url, home, _ = db
    worse, better, other = seed(url, home)
    app = Aeth(load_config([f"store.url={url}"] if url else []))
    try:
        with TestClient(create_app(app)) as client:
            def post(interaction, value):
                return client.post("/v1/feedback", json={"interaction": interaction, "kind": "preference", "value": value})

            ok = post(worse, {"chosen": better, "rejected": worse})
            assert ok.status_code == 200 and ok.json()["interaction"] == worse
            unknown_other = post(worse, {"chosen": "f" * 24, "rejected": worse})
            assert unknown_other.status_code == 400 and unknown_other.json()["error"]["param"] == "value"
            assert "no interaction has that id" in unknown_other.json()["error"]["message"]
            assert post(other, {"chosen": better, "rejected": other}).status_code == 400
            assert post(worse, better).status_code == 400
            unknown = post("e" * 24, {"chosen": better, "rejected": "e" * 24})
            assert unknown.status_code == 404 and unknown.json()["error"]["param"] == "interaction"
        assert [f.kind for f in app.store.feedback()] == ["preference"]
    finally:
        app.close()
