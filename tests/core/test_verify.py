"""Verifiers as automatic feedback: a specialist's verifier judges logged answers, the rewards are
stored once as verifier ratings, and answers it cannot check are left alone."""

from datetime import datetime, timedelta, timezone

import pytest

from aeth import Request, Specialist, SpecialistError, hookimpl
from aeth.app import Aeth
from aeth.learning.verify import feedback_id, request_of, verify_answers, verify_interactions
from aeth.plugins import AethWarning
from aeth.specialist import reward_problem
from aeth.store import Interaction

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=timezone.utc)


def check_expected(request, answer):
    """1.0 when the answer is ``metadata["verify"]["expected"]``; None without one; a broken
    verifier for the two poison values."""
    expected = request.metadata.get("verify", {}).get("expected")
    if expected is None:
        return None
    if expected == "raise":
        raise RuntimeError("the checker broke")
    if expected == "out of range":
        return 2.0
    return 1.0 if answer.strip() == expected else 0.0


class CheckerPlugin:
    @hookimpl
    def register_specialists(self, register):
        register(Specialist(name="checker", description="answers sums", system_prompt="Be brief.",
                            verifier=check_expected))
        register(Specialist(name="unchecked", description="has no verifier", system_prompt="Be brief."))


@pytest.fixture
def app(aeth_home, register_plugin):
    assert register_plugin(CheckerPlugin(), "test-verify")
    application = Aeth()  # its store: SQLite in the fresh AETH_HOME
    yield application
    application.close()


@pytest.fixture
def pg_app(aeth_home, register_plugin, postgres_db, monkeypatch):
    monkeypatch.setenv("AETH_STORE_URL", postgres_db)
    assert register_plugin(CheckerPlugin(), "test-verify")
    application = Aeth()
    assert application.store.dialect == "postgresql"
    yield application
    application.close()


def log(app, prompt, answer, expected=None, specialist="checker", created=T0, history=()):
    messages = [{"role": "system", "content": "Be brief."}, *history, {"role": "user", "content": prompt}]
    metadata = {"verify": {"expected": expected}} if expected is not None else {"user": "someone"}
    return app.store.record(Interaction(messages=messages, answer=answer, specialist=specialist, created=created,
                                        metadata=metadata))


def verifier_feedback(app):
    return {f.interaction_id: f for f in app.store.feedback() if f.source == "verifier"}


@pytest.mark.parametrize("which", ["app", "pg_app"])
def test_rewards_are_stored_once_as_verifier_ratings(which, request):
    app = request.getfixturevalue(which)
    right = log(app, "What is 2 plus 2?", "4", expected="4")
    wrong = log(app, "What is 3 plus 3?", "7", expected="6", created=T0 + timedelta(seconds=1))
    unknown = log(app, "Tell me a joke", "no", created=T0 + timedelta(seconds=2))
    other = log(app, "What is 1 plus 1?", "2", expected="2", specialist="unchecked")

    counts = verify_interactions(app, "checker", progress=False)

    assert (counts.checked, counts.skipped, counts.already, counts.failed) == (2, 1, 0, 0)
    assert counts.mean_reward == 0.5
    stored = verifier_feedback(app)
    assert set(stored) == {right, wrong}  # the uncheckable one and the other specialist's get nothing
    assert stored[right].value == 1.0 and stored[wrong].value == 0.0
    assert all(f.kind == "rating" and f.id == feedback_id(iid) for iid, f in stored.items())
    assert unknown not in stored and other not in stored

    again = verify_interactions(app, "checker", progress=False)
    assert (again.checked, again.skipped, again.already) == (0, 1, 2)
    assert len([f for f in app.store.feedback() if f.source == "verifier"]) == 2


def test_a_users_rating_does_not_count_as_verified(app):
    iid = log(app, "What is 2 plus 2?", "4", expected="4")
    app.store.record_feedback(iid, "rating", 2, source="user")
    counts = verify_interactions(app, "checker", progress=False)
    assert counts.checked == 1 and verifier_feedback(app)[iid].value == 1.0


def test_since_and_limit_choose_the_oldest_unverified(app):
    ids = [log(app, f"What is {i} plus {i}?", str(2 * i), expected=str(2 * i), created=T0 + timedelta(minutes=i))
           for i in range(4)]
    first = verify_interactions(app, "checker", since=T0 + timedelta(minutes=1), limit=2, progress=False)
    assert first.checked == 2 and set(verifier_feedback(app)) == set(ids[1:3])
    rest = verify_interactions(app, "checker", progress=False)
    assert (rest.checked, rest.already) == (2, 2) and set(verifier_feedback(app)) == set(ids)


def test_a_failing_verifier_is_counted_and_warned_about_once(app):
    log(app, "poison", "x", expected="raise")
    log(app, "poison 2", "x", expected="out of range", created=T0 + timedelta(seconds=1))
    good = log(app, "What is 2 plus 2?", "4", expected="4", created=T0 + timedelta(seconds=2))
    with pytest.warns(AethWarning, match=r"failed on 2 answer\(s\).*RuntimeError: the checker broke"):
        counts = verify_interactions(app, "checker", progress=False)
    assert (counts.checked, counts.failed) == (1, 2)
    assert set(verifier_feedback(app)) == {good}


def test_a_specialist_without_verifier_is_refused(app):
    with pytest.raises(SpecialistError, match="declares no verifier"):
        verify_interactions(app, "unchecked", progress=False)
    with pytest.raises(SpecialistError, match="declares no verifier"):
        verify_answers(app.specialist("unchecked"), [(Request("x"), "y")], progress=False)


def test_the_request_is_rebuilt_from_the_interaction(app):
    history = ({"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"})
    iid = log(app, "What is 2 plus 2?", "4", expected="4", history=history)
    request = request_of(app.store.get(iid))
    assert request.prompt == "What is 2 plus 2?" and request.specialist == "checker"
    assert request.history == history  # the system prompt is the specialist's, not a turn
    assert request.metadata == {"verify": {"expected": "4"}} and request.id == iid


def test_verify_answers_judges_pairs_without_storing(app):
    spec = app.specialist("checker")
    pairs = [(Request("2+2", metadata={"verify": {"expected": "4"}}), "4"),
             (Request("2+3", metadata={"verify": {"expected": "5"}}), "6"),
             (Request("a joke"), "no")]
    assert verify_answers(spec, pairs, progress=False) == [1.0, 0.0, None]
    assert app.store.feedback() == []


def test_the_declaration_is_validated():
    assert Specialist("a", "b", verifier=check_expected, practice=lambda n, seed: []).problems() == []
    fields = [f for f, _ in Specialist("a", "b", verifier="check", practice=3).problems()]
    assert fields == ["verifier", "practice"]
    assert Specialist("a", "b", verifier=check_expected).summary()["verifier"] is True
    assert [reward_problem(v) is None for v in (None, 0, 0.5, 1.0, 1.5, -0.1, True, "1", float("nan"))] == [
        True, True, True, True, False, False, False, False, False]


def test_an_answer_logged_from_the_library_keeps_its_requests_metadata(aeth_home, register_plugin, tiny_model_dir):
    """What the verifier needs travels with the request into the log (`aeth run` and library use),
    so verify_interactions can judge the answer later."""
    from aeth.config import load_config

    assert register_plugin(CheckerPlugin(), "test-verify")
    app = Aeth(load_config([f"model.default={tiny_model_dir}", "model.threads=1"]))
    answer = app.stream(Request(prompt="1+1", specialist="general", max_tokens=3, seed=0,
                                metadata={"verify": {"expected": "2"}}))
    answer.text()
    iid = app.log_answer(answer, "run", metadata={"conversation": "c1"})
    assert app.store.get(iid).metadata == {"verify": {"expected": "2"}, "conversation": "c1"}
    assert request_of(app.store.get(iid)).metadata["verify"] == {"expected": "2"}
    app.close()
